package rules

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func pod(ns, name string, lbls map[string]string, ports ...corev1.ContainerPort) Endpoint {
	return Endpoint{Namespace: ns, Name: name, Labels: lbls, Ports: ports}
}

func cport(name string, n int32, proto corev1.Protocol) corev1.ContainerPort {
	return corev1.ContainerPort{Name: name, ContainerPort: n, Protocol: proto}
}

func sel(kv ...string) *metav1.LabelSelector {
	s := &metav1.LabelSelector{MatchLabels: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		s.MatchLabels[kv[i]] = kv[i+1]
	}
	return s
}

func npPort(proto corev1.Protocol, port intstr.IntOrString, end int32) networkingv1.NetworkPolicyPort {
	p := networkingv1.NetworkPolicyPort{Port: &port}
	if proto != "" {
		p.Protocol = &proto
	}
	if end != 0 {
		p.EndPort = &end
	}
	return p
}

func policy(ns, name string, podSel *metav1.LabelSelector, types []networkingv1.PolicyType, in []networkingv1.NetworkPolicyIngressRule, out []networkingv1.NetworkPolicyEgressRule) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: *podSel, PolicyTypes: types, Ingress: in, Egress: out},
	}
}

var (
	ingressOnly = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	egressOnly  = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	bothTypes   = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	tcp80       = Port{Number: 80, Protocol: corev1.ProtocolTCP}
)

func TestReachSemantics(t *testing.T) {
	web := pod("shop", "web", map[string]string{"app": "web"}, cport("http", 8080, ""))
	api := pod("shop", "api", map[string]string{"app": "api"}, cport("http", 9090, corev1.ProtocolTCP), cport("metrics", 9100, ""), cport("dns", 53, corev1.ProtocolUDP))
	apiOther := pod("other", "api", map[string]string{"app": "api"}, cport("http", 9090, ""))
	monitor := pod("monitoring", "prom", map[string]string{"app": "prom"})
	monitor.NamespaceLabels = map[string]string{"team": "obs"}
	outside := ExternalEndpoint("203.0.113.7")
	outsideExcepted := ExternalEndpoint("203.0.113.200")

	denyAll := policy("shop", "deny", sel(), bothTypes, nil, nil)
	tests := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		from, to Endpoint
		port     Port
		want     bool
		reason   string
	}{
		{name: "no policies: everything open", from: web, to: api, port: tcp80, want: true,
			reason: "allowed: egress of shop/web is not restricted by any policy; ingress of shop/api is not restricted by any policy"},
		{name: "default deny", policies: []*networkingv1.NetworkPolicy{denyAll}, from: web, to: api, port: tcp80, want: false,
			reason: "denied: egress of shop/web is restricted by shop/deny and none of them allows shop/api on 80/TCP; ingress of shop/api is restricted by shop/deny and none of them allows shop/web on 80/TCP"},
		{name: "policyTypes default to Ingress only without egress rules",
			policies: []*networkingv1.NetworkPolicy{policy("shop", "p", sel(), nil, nil, nil)},
			from:     api, to: apiOther, port: tcp80, want: true},
		{name: "policyTypes default to Ingress only: ingress is denied",
			policies: []*networkingv1.NetworkPolicy{policy("shop", "p", sel(), nil, nil, nil)},
			from:     web, to: api, port: tcp80, want: false},
		{name: "policyTypes default includes Egress when there are egress rules",
			policies: []*networkingv1.NetworkPolicy{policy("shop", "p", sel("app", "web"), nil, nil, []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{npPort("", intstr.FromInt32(443), 0)}}})},
			from:     web, to: apiOther, port: tcp80, want: false},
		{name: "ingress allowed by podSelector in the same namespace; egress unrestricted",
			policies: []*networkingv1.NetworkPolicy{policy("shop", "p", sel("app", "api"), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "web")}}}}, nil)},
			from:     web, to: api, port: tcp80, want: true,
			reason: "allowed: egress of shop/web is not restricted by any policy; ingress of shop/api allowed by shop/p"},
		{name: "podSelector alone does not match another namespace",
			policies: []*networkingv1.NetworkPolicy{policy("other", "p", sel(), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "web")}}}}, nil)},
			from:     web, to: apiOther, port: tcp80, want: false},
		{name: "namespaceSelector alone matches all pods of the namespace",
			policies: []*networkingv1.NetworkPolicy{policy("other", "p", sel(), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel(corev1.LabelMetadataName, "shop")}}}}, nil)},
			from:     web, to: apiOther, port: tcp80, want: true},
		{name: "namespace and pod selector combined: both must match",
			policies: []*networkingv1.NetworkPolicy{policy("other", "p", sel(), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel(corev1.LabelMetadataName, "shop"), PodSelector: sel("app", "api")}}}}, nil)},
			from:     web, to: apiOther, port: tcp80, want: false},
		{name: "namespace and pod selector as separate peers: either matches",
			policies: []*networkingv1.NetworkPolicy{policy("other", "p", sel(), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel(corev1.LabelMetadataName, "shop")}, {PodSelector: sel("app", "api")}}}}, nil)},
			from:     web, to: apiOther, port: tcp80, want: true},
		{name: "namespace labels from the namespace",
			policies: []*networkingv1.NetworkPolicy{policy("shop", "p", sel(), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("team", "obs")}}}}, nil)},
			from:     monitor, to: api, port: tcp80, want: true},
		{name: "namespace selector with matchExpressions",
			policies: []*networkingv1.NetworkPolicy{policy("shop", "p", sel(), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"obs"}}}}}}}}, nil)},
			from:     monitor, to: api, port: tcp80, want: false},
		{name: "both sides must allow: egress denies",
			policies: []*networkingv1.NetworkPolicy{
				policy("shop", "in", sel("app", "api"), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{}}, nil),
				policy("shop", "out", sel("app", "web"), egressOnly, nil, nil),
			},
			from: web, to: api, port: tcp80, want: false,
			reason: "denied: egress of shop/web is restricted by shop/out and none of them allows shop/api on 80/TCP"},
		{name: "union of policies",
			policies: []*networkingv1.NetworkPolicy{
				denyAll,
				policy("shop", "a", sel("app", "api"), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{npPort("", intstr.FromInt32(80), 0)}}}, nil),
				policy("shop", "b", sel("app", "web"), egressOnly, nil, []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{PodSelector: sel()}}}}),
				policy("shop", "c", sel("app", "web"), egressOnly, nil, []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "api")}}}}),
			},
			from: web, to: api, port: tcp80, want: true,
			reason: "allowed: egress of shop/web allowed by shop/b, shop/c; ingress of shop/api allowed by shop/a"},
		{name: "port mismatch",
			policies: []*networkingv1.NetworkPolicy{policy("shop", "a", sel("app", "api"), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{npPort("", intstr.FromInt32(81), 0)}}}, nil)},
			from:     web, to: api, port: tcp80, want: false},
		{name: "protocol defaults to TCP",
			policies: []*networkingv1.NetworkPolicy{policy("shop", "a", sel("app", "api"), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{npPort("", intstr.FromInt32(80), 0)}}}, nil)},
			from:     web, to: api, port: Port{Number: 80, Protocol: corev1.ProtocolUDP}, want: false},
		{name: "port without number: every port of the protocol",
			policies: []*networkingv1.NetworkPolicy{policy("shop", "a", sel("app", "api"), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr(corev1.ProtocolUDP)}}}}, nil)},
			from:     web, to: api, port: Port{Number: 5353, Protocol: corev1.ProtocolUDP}, want: true},
		{name: "endPort range inside",
			policies: []*networkingv1.NetworkPolicy{policy("shop", "a", sel("app", "api"), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{npPort(corev1.ProtocolTCP, intstr.FromInt32(10000), 30000)}}}, nil)},
			from:     web, to: api, port: Port{Number: 30000}, want: true},
		{name: "endPort range outside",
			policies: []*networkingv1.NetworkPolicy{policy("shop", "a", sel("app", "api"), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{npPort(corev1.ProtocolTCP, intstr.FromInt32(10000), 30000)}}}, nil)},
			from:     web, to: api, port: Port{Number: 30001}, want: false},
		{name: "named port resolved at the destination (ingress)",
			policies: []*networkingv1.NetworkPolicy{policy("shop", "a", sel("app", "api"), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{npPort("", intstr.FromString("http"), 0)}}}, nil)},
			from:     web, to: api, port: Port{Number: 9090}, want: true},
		{name: "named port is not the source's port of that name",
			policies: []*networkingv1.NetworkPolicy{policy("shop", "a", sel("app", "api"), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{npPort("", intstr.FromString("http"), 0)}}}, nil)},
			from:     web, to: api, port: Port{Number: 8080}, want: false},
		{name: "named port resolved at the destination (egress)",
			policies: []*networkingv1.NetworkPolicy{policy("shop", "a", sel("app", "web"), egressOnly, nil, []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{npPort("", intstr.FromString("metrics"), 0)}}})},
			from:     web, to: api, port: Port{Number: 9100}, want: true},
		{name: "named port needs the protocol to match",
			policies: []*networkingv1.NetworkPolicy{policy("shop", "a", sel("app", "api"), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{npPort("", intstr.FromString("dns"), 0)}}}, nil)},
			from:     web, to: api, port: Port{Number: 53}, want: false},
		{name: "named UDP port",
			policies: []*networkingv1.NetworkPolicy{policy("shop", "a", sel("app", "api"), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{npPort(corev1.ProtocolUDP, intstr.FromString("dns"), 0)}}}, nil)},
			from:     web, to: api, port: Port{Number: 53, Protocol: corev1.ProtocolUDP}, want: true},
		{name: "named port never matches an external destination",
			policies: []*networkingv1.NetworkPolicy{policy("shop", "a", sel("app", "web"), egressOnly, nil, []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{npPort("", intstr.FromString("http"), 0)}}})},
			from:     web, to: outside, port: Port{Number: 8080}, want: false},
		{name: "ipBlock egress to an external address",
			policies: []*networkingv1.NetworkPolicy{denyAll, policy("shop", "a", sel("app", "web"), egressOnly, nil, []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "203.0.113.0/24", Except: []string{"203.0.113.128/25"}}}}}})},
			from:     web, to: outside, port: tcp80, want: true,
			reason: "allowed: egress of shop/web allowed by shop/a; ingress of 203.0.113.7 is outside the pod network"},
		{name: "ipBlock except",
			policies: []*networkingv1.NetworkPolicy{denyAll, policy("shop", "a", sel("app", "web"), egressOnly, nil, []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "203.0.113.0/24", Except: []string{"203.0.113.128/25"}}}}}})},
			from:     web, to: outsideExcepted, port: tcp80, want: false},
		{name: "ipBlock does not match pods",
			policies: []*networkingv1.NetworkPolicy{denyAll, policy("shop", "a", sel("app", "web"), egressOnly, nil, []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}}}}})},
			from:     web, to: apiOther, port: tcp80, want: false},
		{name: "ingress from an external address",
			policies: []*networkingv1.NetworkPolicy{denyAll, policy("shop", "a", sel("app", "api"), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "203.0.113.0/24"}}}}}, nil)},
			from:     outside, to: api, port: tcp80, want: true},
		{name: "pod selector does not match an external source",
			policies: []*networkingv1.NetworkPolicy{denyAll, policy("shop", "a", sel("app", "api"), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel()}}}}, nil)},
			from:     outside, to: api, port: tcp80, want: false},
		{name: "rule without peers matches an external source",
			policies: []*networkingv1.NetworkPolicy{denyAll, policy("shop", "a", sel("app", "api"), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{}}, nil)},
			from:     outside, to: api, port: tcp80, want: true},
		{name: "IPv6 ipBlock",
			policies: []*networkingv1.NetworkPolicy{denyAll, policy("shop", "a", sel("app", "web"), egressOnly, nil, []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "2001:db8::/32"}}}}})},
			from:     web, to: ExternalEndpoint("2001:db8::1"), port: tcp80, want: true},
		{name: "policy of another namespace does not select",
			policies: []*networkingv1.NetworkPolicy{policy("other", "deny", sel(), bothTypes, nil, nil)},
			from:     web, to: api, port: tcp80, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewEvaluator(tt.policies)
			if err != nil {
				t.Fatal(err)
			}
			v := e.Reach(tt.from, tt.to, tt.port)
			if v.Allowed != tt.want {
				t.Errorf("allowed = %v, want %v: %s", v.Allowed, tt.want, v.Reason())
			}
			if tt.reason != "" && v.Reason() != tt.reason {
				t.Errorf("reason:\n got %s\nwant %s", v.Reason(), tt.reason)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestNewEvaluatorErrors(t *testing.T) {
	bad := policy("shop", "bad", sel(), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/33"}}}}}, nil)
	_, err := NewEvaluator([]*networkingv1.NetworkPolicy{bad})
	if err == nil || err.Error() != `networkpolicy "bad" in namespace "shop": spec.ingress[0].from[0].ipBlock.cidr: "10.0.0.0/33" is not a CIDR` {
		t.Errorf("got %v", err)
	}
	badSel := policy("shop", "sel", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Bogus"}}}, nil, nil, nil)
	if _, err := NewEvaluator([]*networkingv1.NetworkPolicy{badSel}); err == nil || !strings.Contains(err.Error(), "spec.podSelector") {
		t.Errorf("got %v", err)
	}
}

func TestParsePort(t *testing.T) {
	for in, want := range map[string]Port{"80": {80, "TCP"}, "53/udp": {53, "UDP"}, "3868/SCTP": {3868, "SCTP"}} {
		got, err := ParsePort(in)
		if err != nil || got != want {
			t.Errorf("%q: got %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0", "http", "80/icmp", "70000"} {
		if _, err := ParsePort(in); err == nil {
			t.Errorf("%q: want error", in)
		}
	}
}

func TestMatrix(t *testing.T) {
	web := pod("shop", "web", map[string]string{"app": "web"}, cport("http", 8080, ""))
	api := pod("shop", "api", map[string]string{"app": "api"}, cport("http", 9090, ""), cport("metrics", 9100, ""))
	e, err := NewEvaluator([]*networkingv1.NetworkPolicy{
		policy("shop", "deny", sel(), bothTypes, nil, nil),
		policy("shop", "web-out", sel("app", "web"), egressOnly, nil, []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "api")}}}}),
		policy("shop", "api-in", sel("app", "api"), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "web")}}, Ports: []networkingv1.NetworkPolicyPort{npPort("", intstr.FromString("http"), 0)}}}, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	m := e.Matrix([]Endpoint{web, api}, nil)
	if want := []Port{{9090, "TCP"}}; !reflect.DeepEqual(m.Allowed[0][1], want) {
		t.Errorf("web->api: %v", m.Allowed[0][1])
	}
	var buf bytes.Buffer
	if err := m.Write(&buf); err != nil {
		t.Fatal(err)
	}
	want := "FROM \\ TO     [1]  [2]\n" +
		"[1] shop/web  -    9090/TCP\n" +
		"[2] shop/api  -    -\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
	m = e.Matrix([]Endpoint{web, ExternalEndpoint("192.0.2.1")}, []Port{{Number: 9090}})
	if len(m.Allowed[0][1]) != 0 || len(m.Checked[0][1]) != 1 {
		t.Errorf("web->external: %+v", m)
	}
}
