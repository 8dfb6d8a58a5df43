package rules_test

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

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
	np := specPolicy(b, typicalPolicySpec)
	b.ReportAllocs()
	for b.Loop() {
		rules.Evaluate(rules.LevelRestricted, rules.LatestVersion(), np)
	}
}

// n=60 (3600 peers) is over the limits since policySize and would only
// time the denial; BenchmarkEvaluateWorstCase covers that.
func BenchmarkEvaluateLarge(b *testing.B) {
	for _, n := range []int{10, 20, 30} {
		np := largePolicy(b, n)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
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
	s.WriteString("podSelector: {matchLabels: {app: db}}\ningress:\n")
	// Two rules of 300 peers: past the merge bound, within the limit on
	// peers per rule (rules.MaxPeersPerRule).
	for range 2 {
		s.WriteString("- from:\n")
		for i := 0; i < 300; i++ {
			fmt.Fprintf(&s, "  - podSelector: {matchLabels: {app: c%d}}\n", i)
		}
		s.WriteString("  ports: [{port: 1, endPort: 1000}]\n")
	}
	s.WriteString("- from: [{podSelector: {matchLabels: {app: other}}}]\n  ports: [{port: 1001, endPort: 65535}]\n")
	ids := ruleIDs(rules.Evaluate(rules.LevelRestricted, rules.LatestVersion(), specPolicy(t, s.String())))
	if !strings.Contains(strings.Join(ids, ","), "ingressAllPorts") {
		t.Errorf("got %v, want ingressAllPorts among them", ids)
	}
}

// typicalPolicySpec is what a team writes: one server, two clients, two
// ports, one egress to the database. It passes restricted.
const typicalPolicySpec = `
podSelector: {matchLabels: {app: api}}
ingress:
- from: [{podSelector: {matchLabels: {app: web}}}, {podSelector: {matchLabels: {app: batch}}}]
  ports: [{port: 8080}, {port: metrics}]
egress:
- to: [{podSelector: {matchLabels: {app: db}}}]
  ports: [{port: 5432}]`

func BenchmarkAnalyzeTypical(b *testing.B) {
	np := specPolicy(b, typicalPolicySpec)
	b.ReportAllocs()
	for b.Loop() {
		rules.Analyze(np)
	}
}

// BenchmarkEvaluateTypicalBaseline is the enforce evaluation of a namespace at
// the default level; the webhook also evaluates warn and audit (restricted).
func BenchmarkEvaluateTypicalBaseline(b *testing.B) {
	np := specPolicy(b, typicalPolicySpec)
	b.ReportAllocs()
	for b.Loop() {
		rules.Evaluate(rules.LevelBaseline, rules.LatestVersion(), np)
	}
}

// manyRulesPolicy is a long but realistic policy: n ingress rules, each from
// two client components of the namespace on one or two ports, and n/4 egress
// rules. Every rule names different pods, so nothing merges.
func manyRulesPolicy(b testing.TB, n int) *networkingv1.NetworkPolicy {
	var s strings.Builder
	s.WriteString("podSelector: {matchLabels: {app: api}}\npolicyTypes: [Ingress, Egress]\ningress:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&s, "- from: [{podSelector: {matchLabels: {app: c%d}}}, {podSelector: {matchExpressions: [{key: tier, operator: In, values: [t%d, t%d]}]}}]\n", i, i, i+1)
		fmt.Fprintf(&s, "  ports: [{port: %d}", 1000+i)
		if i%2 == 0 {
			fmt.Fprintf(&s, ", {port: %d, endPort: %d, protocol: UDP}", 20000+i*10, 20000+i*10+1)
		}
		s.WriteString("]\n")
	}
	s.WriteString("egress:\n")
	for i := 0; i < n/4; i++ {
		fmt.Fprintf(&s, "- to: [{podSelector: {matchLabels: {app: d%d}}}]\n  ports: [{port: %d}]\n", i, 5000+i)
	}
	return specPolicy(b, s.String())
}

// BenchmarkEvaluateRules shows how the cost grows with the number of rules
// (n ingress plus n/4 egress rules): ns/rule should stay about flat.
func BenchmarkEvaluateRules(b *testing.B) {
	for _, n := range []int{50, 100, 200, 400} {
		np := manyRulesPolicy(b, n)
		if vs := rules.Evaluate(rules.LevelRestricted, rules.LatestVersion(), np); len(vs) != 0 {
			b.Fatalf("rules=%d: want an allowed policy, got %d violations, first %s", n, len(vs), vs[0])
		}
		total := n + n/4
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rules.Evaluate(rules.LevelRestricted, rules.LatestVersion(), np)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(total), "ns/rule")
		})
	}
}

// BenchmarkAnalyzeRules is the analysis alone, for the same policies.
func BenchmarkAnalyzeRules(b *testing.B) {
	for _, n := range []int{50, 100, 200, 400} {
		np := manyRulesPolicy(b, n)
		total := n + n/4
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rules.Analyze(np)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(total), "ns/rule")
		})
	}
}

// benchProfiles are three profiles as a platform team writes them: DNS via
// node-local DNS, Prometheus scraping, and an egress to a shared service.
func benchProfiles() map[string]rules.Profile {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	p53, metrics, p443 := intstr.FromInt32(53), intstr.FromString("metrics"), intstr.FromInt32(443)
	sel := func(k, v string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
	}
	return map[string]rules.Profile{
		"node-local-dns": {Name: "node-local-dns", Egress: []networkingv1.NetworkPolicyEgressRule{{
			To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "169.254.20.10/32"}}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &p53}, {Protocol: &tcp, Port: &p53}},
		}}},
		"prometheus-scrape": {Name: "prometheus-scrape", Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel(corev1.LabelMetadataName, "monitoring"), PodSelector: sel("app.kubernetes.io/name", "prometheus")}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &metrics}},
		}}},
		"payments-api": {Name: "payments-api", Egress: []networkingv1.NetworkPolicyEgressRule{{
			To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel(corev1.LabelMetadataName, "payments"), PodSelector: sel("app", "payments-api")}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &p443}},
		}}},
	}
}

// BenchmarkGenerate is the generator for a workload with 10 dependencies
// (one a port range, one UDP, one a named port) and 3 profiles.
func BenchmarkGenerate(b *testing.B) {
	w := rules.Workload{Kind: "Deployment", Namespace: "shop", Name: "checkout", UID: "6f9c1a4e-0000-4000-8000-000000000001", Annotations: map[string]string{
		rules.AnnotationDependsOn: "cart:8080 catalog:8080 users:8443 orders:8080 search:9200 cache:6379 db:5432 queue:5672 media:http stream:10000-10100/UDP",
		rules.AnnotationProfiles:  "node-local-dns, prometheus-scrape, payments-api",
	}}
	profiles := benchProfiles()
	if g, errs := rules.Generate(w, profiles); len(errs) > 0 || len(g.Policies) != 14 {
		b.Fatalf("generate: %d policies, errors %v", len(g.Policies), errs)
	}
	b.ReportAllocs()
	for b.Loop() {
		rules.Generate(w, profiles)
	}
}

// BenchmarkDigest is Digest over the 14 policies BenchmarkGenerate
// generates: what a workload webhook pays when the generation cache misses.
func BenchmarkDigest(b *testing.B) {
	w := rules.Workload{Kind: "Deployment", Namespace: "shop", Name: "checkout", UID: "6f9c1a4e-0000-4000-8000-000000000001", Annotations: map[string]string{
		rules.AnnotationDependsOn: "cart:8080 catalog:8080 users:8443 orders:8080 search:9200 cache:6379 db:5432 queue:5672 media:http stream:10000-10100/UDP",
		rules.AnnotationProfiles:  "node-local-dns, prometheus-scrape, payments-api",
	}}
	g, errs := rules.Generate(w, benchProfiles())
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	b.ReportAllocs()
	for b.Loop() {
		rules.Digest(g.Policies)
	}
}
