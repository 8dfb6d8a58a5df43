package chart

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// TestPolicyReports: the reports values turn on --audit-reports, grant
// exactly the report resources and, with installCRDs, install their CRDs;
// by default there is none of it.
func TestPolicyReports(t *testing.T) {
	reportRules := func(r *release) []rbacv1.PolicyRule {
		var out []rbacv1.PolicyRule
		for _, rule := range get[rbacv1.ClusterRole](t, r, "ClusterRole", "netguard").Rules {
			if slices.Contains(rule.APIGroups, "openreports.io") || slices.Contains(rule.APIGroups, "wgpolicyk8s.io") {
				out = append(out, rule)
			}
		}
		return out
	}
	args := func(r *release) []string {
		return get[appsv1.Deployment](t, r, "Deployment", "netguard").Spec.Template.Spec.Containers[0].Args
	}

	def := mustRender(t, valueSetNamed(t, "defaults"))
	if rs := reportRules(def); len(rs) != 0 || argWithPrefix(args(def), "--audit-reports") != "" || len(def.ofKind("CustomResourceDefinition")) != 0 {
		t.Errorf("defaults: report rules %v, args %v, CRDs %d", rs, args(def), len(def.ofKind("CustomResourceDefinition")))
	}

	both := mustRender(t, valueSet{name: "reports", values: "reports:\n  openreports: true\n  policyReports: true\n  maxResults: 50\n  installCRDs: true\n"})
	a := args(both)
	if !slices.Contains(a, "--audit-reports=openreports,policyreports") || !slices.Contains(a, "--audit-report-max-results=50") {
		t.Errorf("args %v", a)
	}
	rs := reportRules(both)
	if len(rs) != 2 {
		t.Fatalf("report rules %v", rs)
	}
	for _, r := range rs {
		if !slices.Equal(r.Verbs, []string{"get", "create", "patch", "delete"}) {
			t.Errorf("rule %v: netguard applies and deletes its reports, nothing more", r)
		}
	}
	for _, name := range []string{"reports.openreports.io", "policyreports.wgpolicyk8s.io"} {
		crd := get[apiextensionsv1.CustomResourceDefinition](t, both, "CustomResourceDefinition", name)
		if crd.Spec.Scope != apiextensionsv1.NamespaceScoped || len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Schema == nil {
			t.Errorf("%s: %+v", name, crd.Spec)
		}
	}

	// Only openreports, CRDs from elsewhere.
	one := mustRender(t, valueSet{name: "openreports", values: "reports:\n  openreports: true\n"})
	if !slices.Contains(args(one), "--audit-reports=openreports") || len(reportRules(one)) != 1 || len(one.ofKind("CustomResourceDefinition")) != 0 {
		t.Errorf("openreports only: args %v, CRDs %d", args(one), len(one.ofKind("CustomResourceDefinition")))
	}
	if _, err := renderChart(t, "netguard", "netguard-system", "reports:\n  maxResults: 0\n"); err == nil || !strings.Contains(err.Error(), "maxResults") {
		t.Errorf("maxResults 0: %v", err)
	}
}
