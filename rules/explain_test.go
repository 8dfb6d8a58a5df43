package rules

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// explainFixture is a namespace set with policies of every kind of peer and
// port, and endpoints on both sides of each.
func explainFixture() ([]*networkingv1.NetworkPolicy, []Endpoint) {
	web := pod("shop", "web", map[string]string{"app": "web"}, cport("http", 8080, ""))
	api := pod("shop", "api", map[string]string{"app": "api"}, cport("http", 9090, corev1.ProtocolTCP), cport("dns", 53, corev1.ProtocolUDP))
	other := pod("other", "api", map[string]string{"app": "api"}, cport("http", 9090, ""))
	prom := pod("monitoring", "prom", map[string]string{"app": "prom"})
	prom.NamespaceLabels = map[string]string{"team": "obs"}
	policies := []*networkingv1.NetworkPolicy{
		policy("shop", "deny", sel(), bothTypes, nil, nil),
		policy("shop", "api-in", sel("app", "api"), ingressOnly, []networkingv1.NetworkPolicyIngressRule{
			{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "web")}}, Ports: []networkingv1.NetworkPolicyPort{npPort("", intstr.FromString("http"), 0)}},
			{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("team", "obs")}}, Ports: []networkingv1.NetworkPolicyPort{npPort(corev1.ProtocolTCP, intstr.FromInt32(9000), 9100)}},
		}, nil),
		policy("shop", "web-out", sel("app", "web"), egressOnly, nil, []networkingv1.NetworkPolicyEgressRule{
			{To: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "api")}}},
			{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "203.0.113.0/24", Except: []string{"203.0.113.128/25"}}}}, Ports: []networkingv1.NetworkPolicyPort{npPort("", intstr.FromInt32(443), 0)}},
			{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel(corev1.LabelMetadataName, "other"), PodSelector: sel("app", "api")}}, Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr(corev1.ProtocolUDP)}}},
		}),
		policy("other", "in", sel(), nil, []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}}}}, nil),
	}
	eps := []Endpoint{web, api, other, prom, ExternalEndpoint("203.0.113.7"), ExternalEndpoint("203.0.113.200"), ExternalEndpoint("198.51.100.1")}
	return policies, eps
}

// TestExplainAgreesWithReach: for every pair and port of the fixture, the
// trace's verdict, sides and policies are Reach's.
func TestExplainAgreesWithReach(t *testing.T) {
	policies, eps := explainFixture()
	ev, err := NewEvaluator(policies)
	if err != nil {
		t.Fatal(err)
	}
	ports := []Port{{Number: 53, Protocol: corev1.ProtocolUDP}, {Number: 443}, {Number: 8080}, {Number: 9090}, {Number: 9100}, {Number: 9101}}
	n := 0
	for _, from := range eps {
		for _, to := range eps {
			for _, p := range ports {
				v := ev.Reach(from, to, p)
				x := ev.Explain(from, to, p)
				n++
				if x.Allowed != v.Allowed {
					t.Errorf("%s -> %s on %s: explain %v, reach %v", from, to, p, x.Allowed, v.Allowed)
				}
				for _, s := range []struct {
					st   SideTrace
					side Side
				}{{x.Egress, v.Egress}, {x.Ingress, v.Ingress}} {
					var selecting, allowing []string
					for _, pt := range s.st.Policies {
						if pt.Selects {
							selecting = append(selecting, pt.Policy)
						}
						if pt.Allowed {
							allowing = append(allowing, pt.Policy)
						}
					}
					slices.Sort(selecting)
					slices.Sort(allowing)
					if s.st.Allowed != s.side.Allowed || s.st.Restricted != s.side.Restricted ||
						strings.Join(selecting, ", ") != refList(s.side.SelectedBy) || strings.Join(allowing, ", ") != refList(s.side.AllowedBy) {
						t.Errorf("%s -> %s on %s: side %+v, reach %+v", from, to, p, s.st, s.side)
					}
				}
			}
		}
	}
	if n < 200 {
		t.Fatalf("only %d connections tried", n)
	}
}

// TestExplainSaysWhy checks the reasons of a denied and an allowed trace.
func TestExplainSaysWhy(t *testing.T) {
	policies, eps := explainFixture()
	ev, err := NewEvaluator(policies)
	if err != nil {
		t.Fatal(err)
	}
	web, api, prom := eps[0], eps[1], eps[3]
	var b strings.Builder
	x := ev.Explain(prom, api, Port{Number: 9101})
	x.Write(&b)
	text := b.String()
	for _, want := range []string{
		"monitoring/prom -> shop/api on 9101/TCP: denied",
		"1. Egress of monitoring/prom: allowed (no policy selects it for egress)",
		"2. Ingress of shop/api: denied",
		"- shop/deny selects it and does not allow it",
		"     the policy has no ingress rules: it denies every ingress connection of the pods it selects\n",
		"- shop/web-out does not select it: its policyTypes do not include Ingress",
		"spec.ingress[0].from[0]: without namespaceSelector it selects pods of namespace shop only, and monitoring/prom is in monitoring",
		"spec.ingress[0].ports[0]: named port \"http\" is 9090 at shop/api, not 9101",
		"spec.ingress[1].ports[0]: range 9000-9100 does not contain 9101",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("trace lacks %q:\n%s", want, text)
		}
	}
	b.Reset()
	x = ev.Explain(web, api, Port{Number: 9090})
	x.Write(&b)
	text = b.String()
	for _, want := range []string{
		"shop/web -> shop/api on 9090/TCP: allowed",
		"spec.egress[0] allows it: peer spec.egress[0].to[0], port spec.egress[0].ports is empty: every port",
		"spec.ingress[0] allows it: peer spec.ingress[0].from[0], port spec.ingress[0].ports[0]",
		"spec.ingress[1].from[0]: namespaceSelector {team=obs} does not match namespace shop's labels",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("trace lacks %q:\n%s", want, text)
		}
	}
	b.Reset()
	x = ev.Explain(web, ExternalEndpoint("203.0.113.200"), Port{Number: 443})
	x.Write(&b)
	if text = b.String(); !strings.Contains(text, "ipBlock 203.0.113.0/24 excepts 203.0.113.128/25, which contains 203.0.113.200") ||
		!strings.Contains(text, "2. Ingress of 203.0.113.200: allowed (outside the pod network") {
		t.Errorf("trace:\n%s", text)
	}
}
