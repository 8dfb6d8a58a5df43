package webhook

import (
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/netguard/netguard/rules"
)

func TestReportOptionsValidate(t *testing.T) {
	if err := (ReportOptions{Formats: []string{"openreports", "policyreports"}}).Validate(); err != nil {
		t.Error(err)
	}
	if err := (ReportOptions{Formats: []string{"kyverno"}}).Validate(); err == nil || !strings.Contains(err.Error(), `report format "kyverno"`) {
		t.Errorf("unknown format: %v", err)
	}
	if newReportWriter(nil, ReportOptions{}, logr.Discard()) != nil {
		t.Error("no formats must mean no writer")
	}
}

// TestReportRendering renders a namespace's audit as both formats: results
// most severe first, failures before warnings, the objects as subjects or
// resources, the summary counting every result and a bound that says what
// it left out.
func TestReportRendering(t *testing.T) {
	enforce := rules.LevelVersion{Level: rules.LevelBaseline, Version: rules.LatestVersion()}
	restricted := rules.LevelVersion{Level: rules.LevelRestricted, Version: rules.LatestVersion()}
	res := rules.NamespaceAudit{Namespace: "shop", Enforce: enforce, Results: []rules.AuditResult{
		{Kind: "Namespace", Name: "shop", Violations: []rules.Violation{{Rule: rules.AuditMissingDefaultDeny, Message: "missing"}}},
		{Kind: "NetworkPolicy", Name: "open", UID: "u1",
			Violations: []rules.Violation{{Rule: "ingressFromAnywhere", Field: "spec.ingress[0]", Message: "from anywhere"}},
			Stricter:   []rules.LevelViolations{{Level: restricted, Violations: []rules.Violation{{Rule: "ingressAllPorts", Field: "spec.ingress[0]", Message: "all ports"}}}}},
		{Kind: "NetworkPolicy", Name: "fine", UID: "u2"},
		{Kind: "Deployment", Name: "web", UID: "u3", Violations: []rules.Violation{{Rule: rules.AuditUnknownProfile, Field: "metadata.annotations[netguard.io/profiles]", Message: "no such profile"}}},
	}}
	results := reportResults(res)
	var order []string
	for _, r := range results {
		order = append(order, r.result+" "+r.severity+" "+r.kind+"/"+r.name+" "+r.rule)
	}
	want := []string{
		"fail high Namespace/shop missingDefaultDeny",
		"fail high NetworkPolicy/open ingressFromAnywhere",
		"fail medium Deployment/web unknownProfile",
		"warn medium NetworkPolicy/open ingressAllPorts",
	}
	if strings.Join(order, "\n") != strings.Join(want, "\n") {
		t.Fatalf("results:\n%s\nwant:\n%s", strings.Join(order, "\n"), strings.Join(want, "\n"))
	}

	w := newReportWriter(nil, ReportOptions{Formats: []string{ReportFormatOpenReports, ReportFormatPolicyReports}, MaxResults: 3}, logr.Discard())
	w.now = func() time.Time { return time.Unix(1700000000, 0) }
	for _, f := range w.formats {
		u := w.report(f, "shop", res, results)
		if u.GetName() != ReportName || u.GetNamespace() != "shop" || u.GetKind() != reportKinds[f].Kind {
			t.Errorf("%s: %s %s/%s", f, u.GetKind(), u.GetNamespace(), u.GetName())
		}
		rows, _, _ := unstructured.NestedSlice(u.Object, "results")
		if len(rows) != 3 || u.GetAnnotations()["netguard.io/report-truncated"] != "3 of 4 results listed, most severe first" {
			t.Errorf("%s: %d results, annotations %v", f, len(rows), u.GetAnnotations())
		}
		summary, _, _ := unstructured.NestedMap(u.Object, "summary")
		if summary["fail"] != int64(3) || summary["warn"] != int64(1) || summary["pass"] != int64(1) {
			t.Errorf("%s: summary %v", f, summary)
		}
		row := rows[1].(map[string]any)
		objsField := "resources"
		if f == ReportFormatOpenReports {
			objsField = "subjects"
		}
		objs, _, _ := unstructured.NestedSlice(row, objsField)
		if len(objs) != 1 || objs[0].(map[string]any)["uid"] != "u1" || objs[0].(map[string]any)["namespace"] != "shop" ||
			row["policy"] != "netguard-baseline" || row["message"] != "spec.ingress[0]: from anywhere" ||
			row["properties"].(map[string]any)["level"] != "baseline" {
			t.Errorf("%s: row %v", f, row)
		}
		// The Namespace is a cluster-scoped subject.
		ns, _, _ := unstructured.NestedSlice(rows[0].(map[string]any), objsField)
		if _, has := ns[0].(map[string]any)["namespace"]; has {
			t.Errorf("%s: the Namespace subject has a namespace", f)
		}
	}
}
