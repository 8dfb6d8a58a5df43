package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/netguard/netguard/webhook"
)

// policyReport is the part of a Report or PolicyReport the test reads.
type policyReport struct {
	Metadata struct{ Labels map[string]string }
	Summary  struct{ Pass, Fail, Warn int }
	Results  []policyReportResult
}

type policyReportResult struct {
	Source, Policy, Rule, Result, Severity, Category, Message string
	Properties                                                map[string]string
	Subjects, Resources                                       []struct{ APIVersion, Kind, Namespace, Name, UID string }
}

// TestPolicyReports seeds violations, runs netguard with both report formats
// on and reads the reports back with kubectl; then fixes a violation and
// exempts the namespace, and checks that the reports follow.
func TestPolicyReports(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	crds, err := filepath.Abs("../charts/netguard/files/crds")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := testCluster.Kubectl(ctx, nil, "apply", "--server-side", "-f", crds); err != nil {
		t.Fatalf("install the report CRDs: %v\n%s", err, out)
	}
	if out, err := testCluster.Kubectl(ctx, nil, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/reports.openreports.io", "crd/policyreports.wgpolicyk8s.io"); err != nil {
		t.Fatalf("report CRDs not established: %v\n%s", err, out)
	}
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ns := "reports-" + rand.String(5)
	if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	port := intstr.FromInt32(80)
	// Seeded before netguard runs: its webhook would deny it.
	fromAnywhere := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "from-anywhere"}, Spec: networkingv1.NetworkPolicySpec{
		Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: &port}}}}}}
	np, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, fromAnywhere, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	startNetguard(t, "--audit-interval=2s", "--audit-reports=openreports,policyreports", "--audit-report-max-results=20")

	read := func(resource string) (*policyReport, bool) {
		out, err := testCluster.Kubectl(ctx, nil, "get", resource, "-n", ns, webhook.ReportName, "-o", "json")
		if err != nil {
			return nil, false
		}
		var r policyReport
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%s: %v\n%s", resource, err, out)
		}
		return &r, true
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) { return ok(), nil }); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
	hasFinding := func(r *policyReport, subjects bool) bool {
		for _, res := range r.Results {
			objs := res.Resources
			if subjects {
				objs = res.Subjects
			}
			if res.Rule == "ingressFromAnywhere" && res.Result == "fail" && len(objs) == 1 && objs[0].Name == "from-anywhere" {
				return true
			}
		}
		return false
	}

	var rep, polr *policyReport
	waitFor("both reports with the seeded violation", func() bool {
		var ok1, ok2 bool
		rep, ok1 = read("reports.openreports.io")
		polr, ok2 = read("policyreports.wgpolicyk8s.io")
		return ok1 && ok2 && hasFinding(rep, true) && hasFinding(polr, false)
	})
	for name, r := range map[string]*policyReport{"Report": rep, "PolicyReport": polr} {
		if r.Metadata.Labels["app.kubernetes.io/managed-by"] != "netguard" || r.Summary.Fail < 1 {
			t.Errorf("%s: labels %v summary %+v", name, r.Metadata.Labels, r.Summary)
		}
		for _, res := range r.Results {
			if res.Rule != "ingressFromAnywhere" || res.Result != "fail" {
				continue
			}
			objs := res.Subjects
			if name == "PolicyReport" {
				objs = res.Resources
			}
			if res.Source != "netguard" || res.Policy != "netguard-baseline" || res.Severity != "high" || res.Category != "NetworkPolicy" ||
				res.Properties["level"] != "baseline" || res.Properties["field"] != "spec.ingress[0]" ||
				objs[0].Kind != "NetworkPolicy" || objs[0].Namespace != ns || objs[0].UID != string(np.UID) || objs[0].APIVersion != "networking.k8s.io/v1" {
				t.Errorf("%s result %+v", name, res)
			}
		}
		// Stricter levels are warnings, not failures.
		if !slices.ContainsFunc(r.Results, func(res policyReportResult) bool {
			return res.Result == "warn" && res.Policy == "netguard-restricted"
		}) {
			t.Errorf("%s has no restricted warning: %+v", name, r.Results)
		}
	}

	// Fixed: the result leaves both reports.
	if err := cs.NetworkingV1().NetworkPolicies(ns).Delete(ctx, np.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the fixed violation to leave the reports", func() bool {
		r1, ok1 := read("reports.openreports.io")
		r2, ok2 := read("policyreports.wgpolicyk8s.io")
		return ok1 && ok2 && !hasFinding(r1, true) && !hasFinding(r2, false)
	})

	// Exempt: the audit leaves the namespace, and its reports go.
	if out, err := testCluster.Kubectl(ctx, nil, "label", "namespace", ns, webhook.LabelIgnore+"="); err != nil {
		t.Fatalf("label: %v\n%s", err, out)
	}
	waitFor("the reports of an exempt namespace to be deleted", func() bool {
		_, ok1 := read("reports.openreports.io")
		_, ok2 := read("policyreports.wgpolicyk8s.io")
		return !ok1 && !ok2
	})
}
