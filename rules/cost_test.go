package rules_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/netguard/netguard/rules"
)

// The API server stores objects of up to about 3 MiB, and the webhook reads
// reviews of up to 3 MiB (webhook.MaxRequestBytes). These policies are the
// worst cases we know of at that size, over the limits of limits.go and just
// within them. The tests evaluate them and check the verdict; they take no
// time: if evaluation were quadratic again they would run for minutes and
// hit go test's timeout. BenchmarkEvaluateWorstCase (make bench) times them.

const requestLimit = 3 << 20

func manyValues(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

func policyOf(name string, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace},
		Spec:       spec,
	}
}

// hugeInPeerPolicy is one ingress peer whose podSelector has one In
// expression with n values.
func hugeInPeerPolicy(n int) *networkingv1.NetworkPolicy {
	p := intstr.FromInt32(8080)
	return policyOf("huge-in", networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
		Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: manyValues("v", n)},
			}}}},
			Ports: []networkingv1.NetworkPolicyPort{{Port: &p}},
		}},
	})
}

// namespaceInListsPolicy has one namespaceSelector with two
// kubernetes.io/metadata.name In lists of n values each.
func namespaceInListsPolicy(n int) *networkingv1.NetworkPolicy {
	p := intstr.FromInt32(8080)
	return policyOf("ns-lists", networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
		Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpIn, Values: manyValues("a", n)},
				{Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpIn, Values: manyValues("b", n)},
			}}}},
			Ports: []networkingv1.NetworkPolicyPort{{Port: &p}},
		}},
	})
}

// manyPeersPolicy is the most pairwise work within the limits: as many
// peers as are merged pairwise, in rules of two, each peer an In list on the
// same label whose values no other peer shares (so no comparison stops
// early), the selector values and ports entries of the policy at their
// limits, and the same for egress.
func manyPeersPolicy() *networkingv1.NetworkPolicy {
	const peers = 500
	valuesPerPeer := rules.MaxSelectorValuesPerPolicy / (2 * peers)
	portsPerRule := rules.MaxPortsPerDirection / (peers / 2)
	var spec networkingv1.NetworkPolicySpec
	spec.PodSelector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpExists}}}
	peer := func(dir string, n int) networkingv1.NetworkPolicyPeer {
		return networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: manyValues(fmt.Sprintf("%s%d-", dir, n), valuesPerPeer)},
		}}}
	}
	ports := func(r int) []networkingv1.NetworkPolicyPort {
		var out []networkingv1.NetworkPolicyPort
		for k := range portsPerRule {
			first := int32(1 + (r*portsPerRule+k)*4%65000)
			p, end := intstr.FromInt32(first), first+3
			out = append(out, networkingv1.NetworkPolicyPort{Port: &p, EndPort: &end})
		}
		return out
	}
	for r := range peers / 2 {
		spec.Ingress = append(spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{peer("i", 2*r), peer("i", 2*r+1)}, Ports: ports(r)})
		spec.Egress = append(spec.Egress, networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{peer("e", 2*r), peer("e", 2*r+1)}, Ports: ports(r)})
	}
	spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	return policyOf("many-peers", spec)
}

// overlappingPeersPolicy is manyPeersPolicy with every peer on a label of
// its own, so that every peer overlaps every other and gets the ports of
// every rule: the most port merging within the limits.
func overlappingPeersPolicy() *networkingv1.NetworkPolicy {
	np := manyPeersPolicy()
	for i := range np.Spec.Ingress {
		for j := range np.Spec.Ingress[i].From {
			np.Spec.Ingress[i].From[j].PodSelector.MatchExpressions[0].Key = fmt.Sprintf("l%d-%d", i, j)
		}
	}
	return np
}

type worstCase struct {
	name string
	np   *networkingv1.NetworkPolicy
	// want are the rules the policy violates at restricted, latest.
	want []string
}

func worstCases(t testing.TB) []worstCase {
	cases := []worstCase{
		{"in-values=40000", hugeInPeerPolicy(40000), []string{"policySize"}},
		{"in-values=160000", hugeInPeerPolicy(160000), []string{"policySize"}},
		{"in-values=300000-3MiB", hugeInPeerPolicy(300000), []string{"policySize"}},
		{"namespace-lists=2x80000", namespaceInListsPolicy(80000), []string{"policySize"}},
		{"namespace-lists=2x1000", namespaceInListsPolicy(1000), nil}, // no namespace is in both
		{"in-values=1000-at-limit", hugeInPeerPolicy(rules.MaxValuesPerRequirement), nil},
		{"peers=500-one-label", manyPeersPolicy(), nil},
		{"peers=500-overlapping", overlappingPeersPolicy(), []string{"ingressWidePortRange"}},
	}
	for _, c := range cases {
		b, err := json.Marshal(c.np)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > requestLimit {
			t.Fatalf("%s: %d bytes, over the API server's request limit: not a case the webhook can be sent", c.name, len(b))
		}
	}
	return cases
}

func TestWorstCasesFinish(t *testing.T) {
	for _, c := range worstCases(t) {
		t.Run(c.name, func(t *testing.T) {
			for _, v := range []rules.Version{rules.LatestVersion(), rules.MajorMinorVersion(1, 0)} {
				for _, l := range []rules.Level{rules.LevelBaseline, rules.LevelRestricted} {
					vs := rules.Evaluate(l, v, c.np)
					if l == rules.LevelRestricted && v.Latest() {
						if got := ruleIDs(vs); !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
							t.Errorf("restricted:latest: got %v, want %v", got, c.want)
						}
					}
					if slices.Contains(c.want, "policySize") && (len(vs) == 0 || vs[0].Rule != "policySize") {
						t.Errorf("%s:%s: a policy over the limits must be denied by policySize, got %v", l, v, vs)
					}
				}
			}
		})
	}
}

func BenchmarkEvaluateWorstCase(b *testing.B) {
	for _, c := range worstCases(b) {
		for _, v := range []rules.Version{rules.LatestVersion(), rules.MajorMinorVersion(1, 0)} {
			b.Run(c.name+"/"+v.String(), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					rules.Evaluate(rules.LevelRestricted, v, c.np)
				}
			})
		}
	}
}
