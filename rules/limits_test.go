package rules_test

import (
	"fmt"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/netguard/netguard/rules"
)

// Each limit: a policy at the limit is not a policySize violation, one over
// it is, naming the field, the count and the limit.
func TestPolicySizeLimits(t *testing.T) {
	port := func(n int) networkingv1.NetworkPolicyPort {
		p := intstr.FromInt32(int32(1 + n%65535))
		return networkingv1.NetworkPolicyPort{Port: &p}
	}
	podPeer := func(n int) networkingv1.NetworkPolicyPeer {
		return networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("c%d", n)}}}
	}
	ingress := func(rules, peersPerRule, portsPerRule int) []networkingv1.NetworkPolicyIngressRule {
		out := make([]networkingv1.NetworkPolicyIngressRule, rules)
		for i := range out {
			for j := range peersPerRule {
				out[i].From = append(out[i].From, podPeer(i*peersPerRule+j))
			}
			for j := range portsPerRule {
				out[i].Ports = append(out[i].Ports, port(i*portsPerRule+j))
			}
		}
		return out
	}
	inValues := func(n int) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: manyValues("v", n)}}}
	}
	requirements := func(n int) *metav1.LabelSelector {
		sel := &metav1.LabelSelector{MatchLabels: map[string]string{}}
		for i := range n {
			sel.MatchLabels[fmt.Sprintf("l%d", i)] = "x"
		}
		return sel
	}
	excepts := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)
		}
		return out
	}
	ipBlockRules := func(blocks, exceptsEach int) []networkingv1.NetworkPolicyEgressRule {
		r := networkingv1.NetworkPolicyEgressRule{Ports: []networkingv1.NetworkPolicyPort{port(442)}}
		for range blocks {
			r.To = append(r.To, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: excepts(exceptsEach)}})
		}
		return []networkingv1.NetworkPolicyEgressRule{r}
	}
	cases := []struct {
		name        string
		at, over    func(*networkingv1.NetworkPolicySpec)
		field, text string
	}{
		{"values per requirement",
			func(s *networkingv1.NetworkPolicySpec) {
				s.Ingress[0].From[0].PodSelector = inValues(rules.MaxValuesPerRequirement)
			},
			func(s *networkingv1.NetworkPolicySpec) {
				s.Ingress[0].From[0].PodSelector = inValues(rules.MaxValuesPerRequirement + 1)
			},
			"spec.ingress[0].from[0].podSelector.matchExpressions[0].values", "has 1001 values; netguard judges at most 1000 values per requirement"},
		{"requirements per selector",
			func(s *networkingv1.NetworkPolicySpec) {
				s.PodSelector = *requirements(rules.MaxRequirementsPerSelector)
			},
			func(s *networkingv1.NetworkPolicySpec) {
				s.PodSelector = *requirements(rules.MaxRequirementsPerSelector + 1)
			},
			"spec.podSelector", "has 65 requirements"},
		{"selector values per policy",
			func(s *networkingv1.NetworkPolicySpec) {
				s.Ingress = ingress(5, 1, 1)
				for i := range s.Ingress {
					s.Ingress[i].From[0].PodSelector = inValues(rules.MaxSelectorValuesPerPolicy/5 - 1)
				}
			},
			func(s *networkingv1.NetworkPolicySpec) {
				s.Ingress = ingress(6, 1, 1)
				for i := range s.Ingress {
					s.Ingress[i].From[0].PodSelector = inValues(rules.MaxSelectorValuesPerPolicy / 5)
				}
			},
			"spec", "label selector values in all; netguard judges at most 5000 per policy"},
		{"rules per direction",
			func(s *networkingv1.NetworkPolicySpec) { s.Ingress = ingress(rules.MaxRulesPerDirection, 1, 1) },
			func(s *networkingv1.NetworkPolicySpec) { s.Ingress = ingress(rules.MaxRulesPerDirection+1, 1, 1) },
			"spec.ingress", "has 501 rules"},
		{"peers per rule",
			func(s *networkingv1.NetworkPolicySpec) { s.Ingress = ingress(1, rules.MaxPeersPerRule, 1) },
			func(s *networkingv1.NetworkPolicySpec) { s.Ingress = ingress(1, rules.MaxPeersPerRule+1, 1) },
			"spec.ingress[0].from", "has 501 peers; netguard judges at most 500 per rule"},
		{"peers per direction",
			func(s *networkingv1.NetworkPolicySpec) { s.Ingress = ingress(rules.MaxPeersPerDirection/100, 100, 1) },
			func(s *networkingv1.NetworkPolicySpec) { s.Ingress = ingress(rules.MaxPeersPerDirection/100+1, 100, 1) },
			"spec.ingress", "has 1100 peers in all"},
		{"ports per rule",
			func(s *networkingv1.NetworkPolicySpec) { s.Ingress = ingress(1, 1, rules.MaxPortsPerRule) },
			func(s *networkingv1.NetworkPolicySpec) { s.Ingress = ingress(1, 1, rules.MaxPortsPerRule+1) },
			"spec.ingress[0].ports", "has 257 entries; netguard judges at most 256 per rule"},
		{"ports per direction",
			func(s *networkingv1.NetworkPolicySpec) { s.Ingress = ingress(rules.MaxPortsPerDirection/100, 1, 100) },
			func(s *networkingv1.NetworkPolicySpec) { s.Ingress = ingress(rules.MaxPortsPerDirection/100+1, 1, 100) },
			"spec.ingress", "has 1100 ports entries in all"},
		{"excepts per ipBlock",
			func(s *networkingv1.NetworkPolicySpec) { s.Egress = ipBlockRules(1, rules.MaxExceptsPerIPBlock) },
			func(s *networkingv1.NetworkPolicySpec) { s.Egress = ipBlockRules(1, rules.MaxExceptsPerIPBlock+1) },
			"spec.egress[0].to[0].ipBlock.except", "has 1001 entries; netguard judges at most 1000 per ipBlock"},
		{"excepts per direction",
			func(s *networkingv1.NetworkPolicySpec) { s.Egress = ipBlockRules(2, rules.MaxExceptsPerDirection/2) },
			func(s *networkingv1.NetworkPolicySpec) { s.Egress = ipBlockRules(3, rules.MaxExceptsPerDirection/2) },
			"spec.egress", "has 3000 ipBlock except entries in all"},
	}
	base := func() networkingv1.NetworkPolicySpec {
		return networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
			Ingress:     ingress(1, 1, 1),
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			at, over := base(), base()
			c.at(&at)
			c.over(&over)
			for _, v := range rules.Evaluate(rules.LevelBaseline, rules.LatestVersion(), policyOf("at", at)) {
				if v.Rule == "policySize" {
					t.Errorf("at the limit: %s", v)
				}
			}
			for _, version := range []rules.Version{rules.LatestVersion(), rules.MajorMinorVersion(1, 0)} {
				vs := rules.Evaluate(rules.LevelBaseline, version, policyOf("over", over))
				found := false
				for _, v := range vs {
					if v.Rule != "policySize" {
						t.Errorf("%s: over a limit only policySize is reported, got %s", version, v)
					}
					if v.Field == c.field && strings.Contains(v.Message, c.text) {
						found = true
					}
				}
				if !found {
					t.Errorf("%s: want [policySize] %s: %s..., got %v", version, c.field, c.text, vs)
				}
			}
			if vs := rules.Evaluate(rules.LevelPrivileged, rules.LatestVersion(), policyOf("over", over)); len(vs) != 0 {
				t.Errorf("privileged runs no check, got %v", vs)
			}
		})
	}
}
