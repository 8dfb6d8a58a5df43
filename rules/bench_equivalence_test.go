package rules

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Performance fixes measured by the benchmarks replace code on the admission
// path with faster code; these tests hold the two to the same answers.

var nameSeeds = []string{
	"", "a", "A", "0", "-", "_", ".", "/", "a/", "/a", "a/b", "a/b/c", "app", "App", "app.kubernetes.io/name",
	"kubernetes.io/metadata.name", "netguard.io/component", "Example.com/x", "example.com/X_y.z", "a-", "-a", "a_", "a.b",
	"a..b", "a.-b", "a-.b", "ex_ample.com/x", ".example.com/x", "example.com./x", "a b", "ä", "a\x00b", "1.2.3.4/x",
	strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 253) + "/x", strings.Repeat("a.", 126) + "a/x",
	strings.Repeat("a", 62) + "-", "x/" + strings.Repeat("b", 63), "x/" + strings.Repeat("b", 64),
}

func randomNames(n int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "aZ09-_./ \xc3"
	out := append([]string(nil), nameSeeds...)
	for range n {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		out = append(out, string(b))
	}
	return out
}

func TestNameChecksMatchApimachinery(t *testing.T) {
	for _, s := range randomNames(50000) {
		if got, want := isLabelKey(s), len(validation.IsQualifiedName(s)) == 0; got != want {
			t.Errorf("isLabelKey(%q) = %v, apimachinery says %v", s, got, want)
		}
		if got, want := labelValueErrors(s) == nil, len(validation.IsValidLabelValue(s)) == 0; got != want {
			t.Errorf("labelValueErrors(%q) = nil: %v, apimachinery says valid: %v", s, got, want)
		}
		if got, want := isDNS1123Label(s), len(validation.IsDNS1123Label(s)) == 0; got != want {
			t.Errorf("isDNS1123Label(%q) = %v, apimachinery says %v", s, got, want)
		}
		if got, want := isDNS1123Subdomain(s), len(validation.IsDNS1123Subdomain(s)) == 0; got != want {
			t.Errorf("isDNS1123Subdomain(%q) = %v, apimachinery says %v", s, got, want)
		}
	}
}

func FuzzNameChecksMatchApimachinery(f *testing.F) {
	for _, s := range nameSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isLabelKey(s), len(validation.IsQualifiedName(s)) == 0; got != want {
			t.Errorf("isLabelKey(%q) = %v, apimachinery says %v", s, got, want)
		}
		if got, want := isLabelName(s) || s == "", len(validation.IsValidLabelValue(s)) == 0; got != want {
			t.Errorf("label value %q: %v, apimachinery says %v", s, got, want)
		}
		if got, want := isDNS1123Label(s), len(validation.IsDNS1123Label(s)) == 0; got != want {
			t.Errorf("isDNS1123Label(%q) = %v, apimachinery says %v", s, got, want)
		}
	})
}

// randomPeerPolicy builds a policy whose peers overlap in many ways: the
// same labels with one or several values, NotIn, Exists, namespace pins and
// selectors, ipBlocks and empty peers.
func randomPeerPolicy(r *rand.Rand, rulesN int) *networkingv1.NetworkPolicy {
	vals := []string{"a", "b", "c"}
	sel := func() *metav1.LabelSelector {
		s := &metav1.LabelSelector{}
		for range r.IntN(3) {
			key := []string{"app", "tier", "team"}[r.IntN(3)]
			switch r.IntN(5) {
			case 0, 1:
				if s.MatchLabels == nil {
					s.MatchLabels = map[string]string{}
				}
				s.MatchLabels[key] = vals[r.IntN(3)]
			case 2:
				s.MatchExpressions = append(s.MatchExpressions, metav1.LabelSelectorRequirement{Key: key, Operator: metav1.LabelSelectorOpIn, Values: vals[:1+r.IntN(3)]})
			case 3:
				s.MatchExpressions = append(s.MatchExpressions, metav1.LabelSelectorRequirement{Key: key, Operator: metav1.LabelSelectorOpNotIn, Values: vals[r.IntN(3):]})
			default:
				s.MatchExpressions = append(s.MatchExpressions, metav1.LabelSelectorRequirement{Key: key, Operator: []metav1.LabelSelectorOperator{metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist}[r.IntN(2)]})
			}
		}
		return s
	}
	peer := func() networkingv1.NetworkPolicyPeer {
		switch r.IntN(8) {
		case 0:
			return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: []string{"10.0.0.0/8", "10.1.0.0/16", "0.0.0.0/0"}[r.IntN(3)]}}
		case 1:
			return networkingv1.NetworkPolicyPeer{}
		case 2:
			return networkingv1.NetworkPolicyPeer{PodSelector: sel(), NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: []string{"team-a", "other"}[r.IntN(2)]}}}
		case 3:
			return networkingv1.NetworkPolicyPeer{NamespaceSelector: sel()}
		}
		return networkingv1.NetworkPolicyPeer{PodSelector: sel()}
	}
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "team-a"}}
	for range rulesN {
		var rule networkingv1.NetworkPolicyIngressRule
		for range r.IntN(4) {
			rule.From = append(rule.From, peer())
		}
		for range r.IntN(3) {
			port := intstr.FromInt32(int32(1 + r.IntN(3)*1000))
			end := port.IntVal + int32(r.IntN(2000))
			rule.Ports = append(rule.Ports, networkingv1.NetworkPolicyPort{Port: &port, EndPort: &end})
		}
		np.Spec.Ingress = append(np.Spec.Ingress, rule)
	}
	return np
}

// TestCoverIndexIsPortsFor: the index the port checks use gives exactly
// PortsFor's answers, for small directions (compared pairwise) and large
// ones (listed by label value).
func TestCoverIndexIsPortsFor(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for n := range 3000 {
		rulesN := 1 + r.IntN(6)
		if n%3 == 0 { // past minIndexedPeers, where peers are listed by label value
			rulesN = 15 + r.IntN(20)
		}
		a := Analyze(randomPeerPolicy(r, rulesN))
		d := &a.Ingress
		peers := 0
		for _, rule := range d.Rules {
			peers += len(rule.Peers)
		}
		idx := newCoverIndex(d, peers)
		for i, rule := range d.Rules {
			for k, p := range rule.Peers {
				wantSet, wantRules := a.PortsFor(d, p)
				gotSet, gotRules := idx.portsFor(a, d, i, k)
				if !reflect.DeepEqual(gotRules, wantRules) || !reflect.DeepEqual(gotSet, wantSet) {
					t.Fatalf("policy %d, %s: index gives rules %v ports %v, PortsFor %v %v", n, p.Field, gotRules, gotSet, wantRules, wantSet)
				}
			}
		}
	}
}

// TestOverlapIndexIsSound: two peers that select a common endpoint are
// always found to overlap (the port checks never miss a merge), whether the
// index lists peers by label value or compares them all; and listing by
// value changes no answer. Endpoints are every labelling of the policies'
// keys with their values, one value none uses, or no label, in the own
// namespace and two others.
func TestOverlapIndexIsSound(t *testing.T) {
	keys := []string{"app", "tier", "team"}
	vals := []string{"", "a", "b", "c", "d"} // "" is no label
	var labelings []map[string]string
	for i := range len(vals) * len(vals) * len(vals) {
		l := map[string]string{}
		for k, key := range keys {
			if v := vals[(i/[]int{1, 5, 25}[k])%5]; v != "" {
				l[key] = v
			}
		}
		labelings = append(labelings, l)
	}
	type endpoint struct{ ns, pod map[string]string }
	var endpoints []endpoint
	for _, name := range []string{"team-a", "other", "x"} {
		for _, nl := range labelings {
			ns := map[string]string{corev1.LabelMetadataName: name}
			for k, v := range nl {
				ns[k] = v
			}
			for _, pl := range labelings {
				endpoints = append(endpoints, endpoint{ns, pl})
			}
		}
	}
	matches := func(p PeerAnalysis, e endpoint) bool {
		switch {
		case p.Namespaces != nil:
			if !p.Namespaces.Matches(e.ns) {
				return false
			}
		case e.ns[corev1.LabelMetadataName] != "team-a":
			return false
		}
		return p.Pods.Matches(e.pod)
	}
	r := rand.New(rand.NewPCG(7, 8))
	for n := range 40 {
		rulesN := 1 + r.IntN(6)
		if n%2 == 0 {
			rulesN = 15 + r.IntN(20)
		}
		a := Analyze(randomPeerPolicy(r, rulesN))
		d := &a.Ingress
		peers := 0
		for _, rule := range d.Rules {
			peers += len(rule.Peers)
		}
		indexed := newOverlapIndex(a, d, peers)
		plain := newOverlapIndex(a, d, peers)
		plain.byValue = nil
		hit := map[string][]bool{}
		matched := func(p PeerAnalysis) []bool {
			if m, ok := hit[p.Field]; ok {
				return m
			}
			m := make([]bool, len(endpoints))
			for i, e := range endpoints {
				m[i] = matches(p, e)
			}
			hit[p.Field] = m
			return m
		}
		for i, rule := range d.Rules {
			for k, p := range rule.Peers {
				_, got := indexed.portsFor(d, i, k)
				_, gotPlain := plain.portsFor(d, i, k)
				if !reflect.DeepEqual(got, gotPlain) {
					t.Fatalf("policy %d, %s: indexed %v, compared pairwise %v", n, p.Field, got, gotPlain)
				}
				if p.Class == PeerAnywhere || p.Class == PeerIPBlock {
					continue
				}
				mp := matched(p)
				for j, other := range d.Rules {
					if slices.Contains(got, j) {
						continue
					}
					for _, q := range other.Peers {
						if q.Class == PeerAnywhere || q.Class == PeerIPBlock {
							t.Fatalf("policy %d, %s: rule %d has a peer of class %s, which overlaps everything, but is not merged", n, p.Field, j, q.Class)
						}
						mq := matched(q)
						for e := range endpoints {
							if mp[e] && mq[e] {
								t.Fatalf("policy %d: %s and %s both select %v but rule %d is not merged", n, p.Field, q.Field, endpoints[e], j)
							}
						}
					}
				}
			}
		}
	}
}
