package rules_test

import (
	"fmt"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/netguard/netguard/rules"
)

// largePolicy is far beyond any real policy: n rules of n peers, n ports and
// an ipBlock with n excepts. The webhook evaluates whatever it is sent, so
// the work must stay close to linear in the size of the object.
func largePolicy(b testing.TB, n int) *networkingv1.NetworkPolicy {
	var s strings.Builder
	s.WriteString("podSelector: {}\ningress:\n")
	for i := 0; i < n; i++ {
		s.WriteString("- from:\n")
		for j := 0; j < n; j++ {
			fmt.Fprintf(&s, "  - podSelector: {matchLabels: {app: a%d-%d}}\n", i, j)
		}
		s.WriteString("  ports:\n")
		for j := 0; j < n; j++ {
			fmt.Fprintf(&s, "  - {port: %d}\n", 1+(i*n+j)%65535)
		}
	}
	s.WriteString("- from:\n  - ipBlock:\n      cidr: 10.0.0.0/8\n      except:\n")
	for i := 0; i < n*n; i++ {
		fmt.Fprintf(&s, "      - 10.%d.%d.0/24\n", (i/256)%256, i%256)
	}
	s.WriteString("  ports: [{port: 443}]\n")
	return specPolicy(b, s.String())
}

func BenchmarkEvaluateTypical(b *testing.B) {
	np := specPolicy(b, `
podSelector: {matchLabels: {app: api}}
ingress:
- from: [{podSelector: {matchLabels: {app: web}}}, {podSelector: {matchLabels: {app: batch}}}]
  ports: [{port: 8080}, {port: metrics}]
egress:
- to: [{podSelector: {matchLabels: {app: db}}}]
  ports: [{port: 5432}]`)
	b.ReportAllocs()
	for b.Loop() {
		rules.Evaluate(rules.LevelRestricted, rules.LatestVersion(), np)
	}
}

func BenchmarkEvaluateLarge(b *testing.B) {
	for _, n := range []int{10, 30, 60} {
		np := largePolicy(b, n)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			for b.Loop() {
				rules.Evaluate(rules.LevelRestricted, rules.LatestVersion(), np)
			}
		})
	}
}

// TestManyPeersStayConservative: past the merge bound every peer is assumed
// to get every rule's ports, so a split that adds up to every port is still
// reported.
func TestManyPeersStayConservative(t *testing.T) {
	var s strings.Builder
	s.WriteString("podSelector: {matchLabels: {app: db}}\ningress:\n- from:\n")
	for i := 0; i < 600; i++ {
		fmt.Fprintf(&s, "  - podSelector: {matchLabels: {app: c%d}}\n", i)
	}
	s.WriteString("  ports: [{port: 1, endPort: 1000}]\n- from: [{podSelector: {matchLabels: {app: other}}}]\n  ports: [{port: 1001, endPort: 65535}]\n")
	ids := ruleIDs(rules.Evaluate(rules.LevelRestricted, rules.LatestVersion(), specPolicy(t, s.String())))
	if !strings.Contains(strings.Join(ids, ","), "ingressAllPorts") {
		t.Errorf("got %v, want ingressAllPorts among them", ids)
	}
}
