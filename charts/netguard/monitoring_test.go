package chart

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestDashboardAndAlerts renders the Grafana dashboard and the
// PrometheusRule and checks that every metric they query is one netguard
// documents in docs/metrics.md, or controller-runtime's webhook metrics.
func TestDashboardAndAlerts(t *testing.T) {
	def := mustRender(t, valueSetNamed(t, "defaults"))
	if def.find("ConfigMap", "netguard-dashboard") != nil || len(def.ofKind("PrometheusRule")) != 0 {
		t.Error("the dashboard and the alerts must be off by default")
	}
	r := mustRender(t, valueSet{name: "monitoring", values: `
metrics:
  prometheusRule:
    enabled: true
    labels: {release: prometheus}
    certificateExpiryDays: 7
  grafanaDashboard:
    enabled: true
    namespace: grafana
`})
	cm := r.find("ConfigMap", "netguard-dashboard")
	if cm == nil {
		t.Fatalf("no dashboard ConfigMap: %s", r.summary())
	}
	if cm.GetNamespace() != "grafana" || cm.GetLabels()["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap %s/%s labels %v", cm.GetNamespace(), cm.GetName(), cm.GetLabels())
	}
	raw, _, _ := unstructured.NestedString(cm.Object, "data", "netguard.json")
	var dash struct {
		UID    string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal([]byte(raw), &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}

	rules := r.ofKind("PrometheusRule")
	if len(rules) != 1 || rules[0].GetLabels()["release"] != "prometheus" {
		t.Fatalf("PrometheusRule %v", rules)
	}
	groups, _, _ := unstructured.NestedSlice(rules[0].Object, "spec", "groups")
	alerts := map[string]string{}
	for _, g := range groups {
		rs, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
		for _, rule := range rs {
			m := rule.(map[string]any)
			alerts[m["alert"].(string)] = m["expr"].(string)
			exprs = append(exprs, m["expr"].(string))
			if sev, _, _ := unstructured.NestedString(m, "labels", "severity"); sev == "" {
				t.Errorf("alert %s has no severity", m["alert"])
			}
		}
	}
	for _, a := range []string{"NetguardCertificateExpiresSoon", "NetguardCertificateExpired", "NetguardDenialSurge", "NetguardAuditViolations", "NetguardWebhookErrors", "NetguardWebhookSlow"} {
		if alerts[a] == "" {
			t.Errorf("no alert %s", a)
		}
	}
	if !strings.Contains(alerts["NetguardCertificateExpiresSoon"], "< 604800") {
		t.Errorf("certificateExpiryDays 7 must be 604800 seconds: %s", alerts["NetguardCertificateExpiresSoon"])
	}

	docs, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{"controller_runtime_webhook_requests_total": true, "controller_runtime_webhook_latency_seconds": true}
	for _, m := range regexp.MustCompile("(?m)^\\| `(netguard_[a-z_]+)` \\|").FindAllStringSubmatch(string(docs), -1) {
		documented[m[1]] = true
	}
	metric := regexp.MustCompile(`\b(netguard|controller_runtime)_[a-z_]+`)
	for _, e := range exprs {
		for _, name := range metric.FindAllString(e, -1) {
			if !documented[strings.TrimSuffix(name, "_bucket")] {
				t.Errorf("%q queries %s, which netguard does not export", e, name)
			}
		}
	}
}
