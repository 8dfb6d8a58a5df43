package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// TestAuditFindsWhatEnforcementWouldBreak seeds a cluster while netguard is
// absent, as a platform adopting it has one, and checks what `netguard audit`
// reports before netguard runs, what the background audit reports once it
// runs (its controllers having fixed what they own), and that a fix clears a
// finding in both.
func TestAuditFindsWhatEnforcementWouldBreak(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	suffix := rand.String(5)
	shop, clean := "audit-shop-"+suffix, "audit-clean-"+suffix
	for _, ns := range []string{shop, clean} {
		if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
			t.Fatal(err)
		}
	}

	// Seeded before netguard runs: its webhook would deny most of these.
	port := func(n int32) *intstr.IntOrString { p := intstr.FromInt32(n); return &p }
	seed := []*networkingv1.NetworkPolicy{
		{ObjectMeta: metav1.ObjectMeta{Namespace: shop, Name: "from-anywhere"}, Spec: networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: port(80)}}}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: shop, Name: "ipblock"}, Spec: networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8"}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: port(80)}}}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: shop, Name: "other-namespaces"}, Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: port(443)}}}}}},
		rules.NamespaceBaseline(clean, rules.BaselineOptions{})[0],
		rules.NamespaceBaseline(clean, rules.BaselineOptions{})[1],
		{ObjectMeta: metav1.ObjectMeta{Namespace: clean, Name: "same-namespace"}, Spec: networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: port(8080)}}}}}},
	}
	for _, np := range seed {
		if _, err := cs.NetworkingV1().NetworkPolicies(np.Namespace).Create(ctx, np, metav1.CreateOptions{}); err != nil {
			t.Fatalf("seed NetworkPolicy %s/%s: %v", np.Namespace, np.Name, err)
		}
	}
	if _, err := cs.AppsV1().Deployments(shop).Create(ctx, webhooktest.Deployment(shop, "web", map[string]string{rules.AnnotationDependsOn: "api:8080"}), metav1.CreateOptions{}); err != nil {
		t.Fatalf("seed Deployment: %v", err)
	}

	// The command, before netguard runs.
	report := runAudit(t, ctx, 1, "-A", "-o", "json")
	want := map[string][]string{
		"Namespace " + shop:              {"missingDefaultDeny", "missingGeneratedPolicy"},
		"NetworkPolicy from-anywhere":    {"ingressFromAnywhere"},
		"NetworkPolicy ipblock":          {"ingressFromIPBlock"},
		"NetworkPolicy other-namespaces": {"egressToOtherNamespaces"},
		"Deployment web":                 {"missingGeneratedPolicy", "missingGeneratedPolicy", "missingGeneratedRecord"},
	}
	if got := report.findings(shop); !equalFindings(got, want) {
		t.Fatalf("audit -A findings in %s:\n got %v\nwant %v", shop, got, want)
	}
	if got := report.findings(clean); len(got) != 0 {
		t.Errorf("audit -A findings in %s: %v, want none", clean, got)
	}
	if !report.exempt("kube-system") {
		t.Errorf("kube-system is not reported as exempt: %+v", report.Namespaces)
	}
	if ns := report.namespace(shop); ns == nil || ns.Enforce != "baseline" || ns.NetworkPolicies != 3 || ns.Workloads != 1 || ns.NotAllowed != 5 {
		t.Errorf("summary of %s: %+v", shop, ns)
	}
	runAudit(t, ctx, 0, "-n", clean)

	// Once netguard runs, its controllers create the namespace baseline and
	// backfill the workload's policies and record; what they cannot fix,
	// the raw policies, the background audit reports in its gauge and warns
	// with Events.
	ng := startNetguard(t, "--audit-interval=2s")
	fixedByNetguard := []string{"missingDefaultDeny", "missingGeneratedPolicy", "missingGeneratedRecord"}
	waitForGauge(t, ng.Metrics, shop, func(g map[string]float64) bool {
		for k := range g {
			if slices.Contains(fixedByNetguard, strings.Fields(k)[1]) {
				return false
			}
		}
		return g["baseline ingressFromAnywhere"] == 1 && g["baseline ingressFromIPBlock"] == 1 && g["baseline egressToOtherNamespaces"] == 1 &&
			g["restricted ingressFromIPBlock"] == 1 && g["managed rawNetworkPolicy"] == 3
	})
	text, err := ng.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if line := `netguard_audit_enforce_level{level="baseline",namespace="` + shop + `"} 1`; !strings.Contains(text, line) {
		t.Errorf("metrics lack %s", line)
	}
	waitForEvent(t, ctx, cs, shop, "ipblock")
	report = runAudit(t, ctx, 1, "-n", shop, "-o", "json")
	want = map[string][]string{
		"NetworkPolicy from-anywhere":    {"ingressFromAnywhere"},
		"NetworkPolicy ipblock":          {"ingressFromIPBlock"},
		"NetworkPolicy other-namespaces": {"egressToOtherNamespaces"},
	}
	if got := report.findings(shop); !equalFindings(got, want) {
		t.Errorf("audit with netguard running:\n got %v\nwant %v", got, want)
	}

	// Fix one: the ipBlock policy goes, and with it its findings.
	if err := cs.NetworkingV1().NetworkPolicies(shop).Delete(ctx, "ipblock", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	report = runAudit(t, ctx, 1, "-n", shop, "-o", "json")
	delete(want, "NetworkPolicy ipblock")
	if got := report.findings(shop); !equalFindings(got, want) {
		t.Errorf("audit after the fix:\n got %v\nwant %v", got, want)
	}
	waitForGauge(t, ng.Metrics, shop, func(g map[string]float64) bool {
		for k := range g {
			if strings.HasSuffix(k, " ingressFromIPBlock") {
				return false
			}
		}
		return g["baseline ingressFromAnywhere"] == 1 && g["managed rawNetworkPolicy"] == 2
	})
}

// auditJSON is the part of `netguard audit -o json` the test reads.
type auditJSON struct {
	Results []struct {
		Kind, Namespace, Name, Level string
		Allowed                      bool
		Violations                   []rules.Violation
	}
	Namespaces []auditNamespaceJSON
}

type auditNamespaceJSON struct {
	Name                                   string
	Exempt                                 bool
	Enforce                                string
	NetworkPolicies, Workloads, NotAllowed int
}

// findings maps "Kind name" to the rule IDs of its violations, for the
// results of one namespace (the Namespace's own result included).
func (r auditJSON) findings(ns string) map[string][]string {
	out := map[string][]string{}
	for _, res := range r.Results {
		if res.Namespace != ns && !(res.Kind == "Namespace" && res.Name == ns) {
			continue
		}
		for _, v := range res.Violations {
			out[res.Kind+" "+res.Name] = append(out[res.Kind+" "+res.Name], v.Rule)
		}
	}
	return out
}

func (r auditJSON) namespace(name string) *auditNamespaceJSON {
	for i := range r.Namespaces {
		if r.Namespaces[i].Name == name {
			return &r.Namespaces[i]
		}
	}
	return nil
}

func (r auditJSON) exempt(name string) bool {
	ns := r.namespace(name)
	return ns != nil && ns.Exempt
}

func equalFindings(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w := slices.Clone(b[k])
		v = slices.Clone(v)
		slices.Sort(v)
		slices.Sort(w)
		if !slices.Equal(v, w) {
			return false
		}
	}
	return true
}

// runAudit runs the built `netguard audit` against the test cluster and
// checks its exit code. JSON output is decoded.
func runAudit(t *testing.T, ctx context.Context, wantCode int, args ...string) auditJSON {
	t.Helper()
	start := time.Now()
	cmd := exec.CommandContext(ctx, netguardBin, append([]string{"audit", "--kubeconfig", testCluster.KubeconfigPath}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("netguard audit %v: %v", args, err)
	}
	t.Logf("netguard audit %s: exit %d in %s", strings.Join(args, " "), code, time.Since(start).Round(time.Millisecond))
	if code != wantCode || errOut.Len() > 0 {
		t.Fatalf("netguard audit %v: exit %d (want %d), stderr %q\n%s", args, code, wantCode, errOut.String(), out.String())
	}
	var r auditJSON
	if slices.Contains(args, "json") {
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("netguard audit %v: %v\n%s", args, err, out.String())
		}
	}
	return r
}

var auditGaugeLine = regexp.MustCompile(`(?m)^netguard_audit_violations\{([^}]*)\} (\S+)$`)
var promLabel = regexp.MustCompile(`(\w+)="([^"]*)"`)

// auditGauge returns netguard_audit_violations for one namespace as
// "level rule" -> value.
func auditGauge(metrics func() (string, error), ns string) (map[string]float64, error) {
	text, err := metrics()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, m := range auditGaugeLine.FindAllStringSubmatch(text, -1) {
		l := map[string]string{}
		for _, p := range promLabel.FindAllStringSubmatch(m[1], -1) {
			l[p[1]] = p[2]
		}
		if l["namespace"] != ns {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return nil, fmt.Errorf("metric value %q: %v", m[2], err)
		}
		out[l["level"]+" "+l["rule"]] = v
	}
	return out, nil
}

// waitForGauge polls the namespace's netguard_audit_violations until ok
// accepts it.
func waitForGauge(t *testing.T, metrics func() (string, error), ns string, ok func(map[string]float64) bool) {
	t.Helper()
	eventually(t, 60*time.Second, "netguard_audit_violations for "+ns, func() error {
		g, err := auditGauge(metrics, ns)
		if err == nil && !ok(g) {
			err = fmt.Errorf("not as expected: %v", g)
		}
		return err
	})
}

// waitForEvent waits for the audit's Event on a NetworkPolicy that violates
// ingressFromIPBlock.
func waitForEvent(t *testing.T, ctx context.Context, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	eventually(t, 30*time.Second, "a NetguardViolation Event on NetworkPolicy "+ns+"/"+name, func() error {
		evs, err := cs.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Regarding.Kind == "NetworkPolicy" && e.Regarding.Name == name && e.Reason == "NetguardViolation" && e.Type == corev1.EventTypeWarning {
				if !strings.Contains(e.Note, "[ingressFromIPBlock]") {
					t.Errorf("Event note %q does not name the rule", e.Note)
				}
				return nil
			}
		}
		return fmt.Errorf("%d Events, none of them", len(evs.Items))
	})
}
