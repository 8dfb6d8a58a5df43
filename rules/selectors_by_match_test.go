package rules_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/netguard/netguard/rules"
)

// Selectors are judged by what they can match (v1.1): these policies were
// allowed at restricted by v1.0 although they open what the level forbids.
// A namespace pinned to v1.0 keeps the v1.0 verdict.
func TestRestrictedBypassesAreDenied(t *testing.T) {
	slices12 := func() string {
		var b strings.Builder
		b.WriteString("podSelector: {matchLabels: {app: db}}\ningress:\n")
		for i := range 64 {
			b.WriteString("- from: [{podSelector: {matchLabels: {l" + itoa(i) + ": \"y\"}}}]\n")
			b.WriteString("  ports: [{port: " + itoa(1+i*1024) + ", endPort: " + itoa(min(65535, (i+1)*1024)) + "}]\n")
		}
		return b.String()
	}
	cases := []struct {
		name, spec string
		want       []string
	}{
		{"every pod from every pod, by DoesNotExist", `
podSelector: {matchExpressions: [{key: no-such-label, operator: DoesNotExist}]}
ingress:
- from: [{podSelector: {matchExpressions: [{key: no-such-label, operator: DoesNotExist}]}}]
  ports: [{port: 8080}]`, []string{"ingressAllPodsFromAllPods"}},
		{"every pod to every pod, by NotIn", `
podSelector: {matchExpressions: [{key: role, operator: NotIn, values: [none]}]}
policyTypes: [Egress]
egress:
- to: [{podSelector: {}}]
  ports: [{port: 8080}]`, []string{"egressAllPodsToAllPods"}},
		{"x Exists and x DoesNotExist cover every pod", `
podSelector: {}
ingress:
- from: [{podSelector: {matchExpressions: [{key: x, operator: Exists}]}}, {podSelector: {matchExpressions: [{key: x, operator: DoesNotExist}]}}]
  ports: [{port: 8080}]`, []string{"ingressAllPodsFromAllPods"}},
		{"x In [a] and x NotIn [a] cover every pod", `
podSelector: {}
ingress:
- from: [{podSelector: {matchExpressions: [{key: x, operator: In, values: [a]}]}}, {podSelector: {matchExpressions: [{key: x, operator: NotIn, values: [a]}]}}]
  ports: [{port: 8080}]`, []string{"ingressAllPodsFromAllPods"}},
		{"adjacent 1024-port slices on different labels add up to every port", slices12(), []string{"ingressAllPorts"}},
		{"two wide slices on different labels", `
podSelector: {matchLabels: {app: db}}
ingress:
- from: [{podSelector: {matchLabels: {l1: "y"}}}]
  ports: [{port: 1000, endPort: 2023}]
- from: [{podSelector: {matchLabels: {l2: "y"}}}]
  ports: [{port: 2024, endPort: 3047}]`, []string{"ingressWidePortRange"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			np := specPolicy(t, c.spec)
			if got := ruleIDs(rules.Evaluate(rules.LevelRestricted, rules.LatestVersion(), np)); !slices.Equal(got, c.want) {
				t.Errorf("restricted:latest: got %v, want %v", got, c.want)
			}
			if got := ruleIDs(rules.Evaluate(rules.LevelRestricted, rules.MajorMinorVersion(1, 1), np)); !slices.Equal(got, c.want) {
				t.Errorf("restricted:v1.1: got %v, want %v", got, c.want)
			}
			if got := rules.Evaluate(rules.LevelRestricted, rules.MajorMinorVersion(1, 0), np); len(got) != 0 {
				t.Errorf("restricted:v1.0 keeps its verdict (allowed), got %v", got)
			}
			if got := rules.Evaluate(rules.LevelBaseline, rules.LatestVersion(), np); len(got) != 0 {
				t.Errorf("baseline: got %v, want allowed", got)
			}
		})
	}
}

// Real policies that select pods by labels they carry stay allowed.
func TestSelectorsByMatchKeepRealPolicies(t *testing.T) {
	for _, spec := range []string{
		// Every pod accepts the scraper.
		"podSelector: {}\ningress:\n- from: [{podSelector: {matchLabels: {app: prometheus}}}]\n  ports: [{port: 9090}]",
		// Servers that are not the database, from clients that are.
		"podSelector: {matchExpressions: [{key: app, operator: NotIn, values: [db]}]}\ningress:\n- from: [{podSelector: {matchExpressions: [{key: app, operator: Exists}]}}]\n  ports: [{port: 8080}]",
		// Slices on the same label with different values never meet in one pod.
		"podSelector: {matchLabels: {app: db}}\ningress:\n- from: [{podSelector: {matchLabels: {app: a}}}]\n  ports: [{port: 1000, endPort: 2023}]\n- from: [{podSelector: {matchLabels: {app: b}}}]\n  ports: [{port: 2024, endPort: 3047}]",
		// Exists against DoesNotExist on the same label: disjoint.
		"podSelector: {matchLabels: {app: db}}\ningress:\n- from: [{podSelector: {matchExpressions: [{key: canary, operator: Exists}]}}]\n  ports: [{port: 1000, endPort: 2023}]\n- from: [{podSelector: {matchLabels: {app: web}, matchExpressions: [{key: canary, operator: DoesNotExist}]}}]\n  ports: [{port: 2024, endPort: 3047}]",
		// Different labels, few ports in all.
		"podSelector: {matchLabels: {app: db}}\ningress:\n- from: [{podSelector: {matchLabels: {app: web}}}]\n  ports: [{port: 5432}]\n- from: [{podSelector: {matchLabels: {role: admin}}}]\n  ports: [{port: 5433}]",
	} {
		if vs := rules.Evaluate(rules.LevelRestricted, rules.LatestVersion(), specPolicy(t, spec)); len(vs) != 0 {
			t.Errorf("%s\ngot %v, want allowed", spec, vs)
		}
	}
}
