package rules

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// This file checks generated policies against an independent model of what
// the annotations mean: in a namespace with the baseline policies, component C
// may reach component T on port P exactly when C depends on T:P, and every pod
// may reach the cluster DNS. Nothing else is open.

const modelNamespace = "shop"

// modelUniverse builds one pod per component (declared or depended on), plus
// a pod without component, a pod in another namespace, the cluster DNS and an
// external address. Each pod gets every port name used in the annotations,
// at a number that differs per pod, so a named port that resolves at the
// wrong pod shows up as a wrong verdict.
func modelUniverse(deps map[string][]Dependency, policies []*networkingv1.NetworkPolicy) []Endpoint {
	comps := map[string]bool{}
	names := map[string]bool{}
	for _, np := range policyPorts(policies) {
		if np.Port != nil && np.Port.Type == intstr.String {
			names[np.Port.StrVal] = true
		}
	}
	for c, ds := range deps {
		comps[c] = true
		for _, d := range ds {
			comps[d.Component] = true
			if d.Port.Type == intstr.String {
				names[d.Port.StrVal] = true
			}
		}
	}
	sortedNames := sortedKeys(names)
	podPorts := func(seed string) []corev1.ContainerPort {
		var ps []corev1.ContainerPort
		for _, n := range sortedNames {
			for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP} {
				h := fnv.New32a()
				h.Write([]byte(seed + "/" + n + "/" + string(proto)))
				ps = append(ps, corev1.ContainerPort{Name: n, Protocol: proto, ContainerPort: int32(40000 + h.Sum32()%20000)})
			}
		}
		return ps
	}
	var eps []Endpoint
	for _, c := range sortedKeys(comps) {
		eps = append(eps, Endpoint{Namespace: modelNamespace, Name: c + "-0", Labels: map[string]string{LabelComponent: c}, Ports: podPorts(c)})
	}
	eps = append(eps,
		Endpoint{Namespace: modelNamespace, Name: "unlabelled", Labels: map[string]string{"app": "x"}, Ports: podPorts("unlabelled")},
		Endpoint{Namespace: "elsewhere", Name: "same-component", Labels: map[string]string{LabelComponent: firstKey(comps)}, Ports: podPorts("elsewhere")},
		Endpoint{Namespace: "kube-system", Name: "coredns", Labels: map[string]string{"k8s-app": "kube-dns"}},
		ExternalEndpoint("198.51.100.10"),
	)
	return eps
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func firstKey(m map[string]bool) string {
	if k := sortedKeys(m); len(k) > 0 {
		return k[0]
	}
	return "none"
}

// policyPorts lists every port of every rule, so that probes cover what the
// policies open even where the model does not expect it.
func policyPorts(policies []*networkingv1.NetworkPolicy) []networkingv1.NetworkPolicyPort {
	var out []networkingv1.NetworkPolicyPort
	for _, p := range policies {
		for _, r := range p.Spec.Ingress {
			out = append(out, r.Ports...)
		}
		for _, r := range p.Spec.Egress {
			out = append(out, r.Ports...)
		}
	}
	return out
}

// modelProbes are the ports worth trying: every port named in the
// dependencies or the policies, its neighbours, both ends of every range and
// their neighbours, every container port, and DNS.
func modelProbes(deps map[string][]Dependency, policies []*networkingv1.NetworkPolicy, eps []Endpoint) []Port {
	set := map[Port]bool{}
	add := func(n int32) {
		if n < 1 || n > 65535 {
			return
		}
		for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP} {
			set[Port{Number: n, Protocol: proto}] = true
		}
	}
	add(53)
	add(1)
	for _, ds := range deps {
		for _, d := range ds {
			if d.Port.Type == intstr.Int {
				add(d.Port.IntVal - 1)
				add(d.Port.IntVal)
				add(d.Port.IntVal + 1)
			}
			if d.EndPort != 0 {
				add(d.EndPort - 1)
				add(d.EndPort)
				add(d.EndPort + 1)
			}
		}
	}
	for _, np := range policyPorts(policies) {
		if np.Port != nil && np.Port.Type == intstr.Int {
			add(np.Port.IntVal - 1)
			add(np.Port.IntVal)
			add(np.Port.IntVal + 1)
		}
		if np.EndPort != nil {
			add(*np.EndPort - 1)
			add(*np.EndPort)
			add(*np.EndPort + 1)
		}
	}
	for _, e := range eps {
		for _, cp := range e.Ports {
			add(cp.ContainerPort)
		}
	}
	out := make([]Port, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Number != out[j].Number {
			return out[i].Number < out[j].Number
		}
		return out[i].Protocol < out[j].Protocol
	})
	return out
}

// modelAllows is the meaning of the annotations, written without looking at
// the generated policies.
func modelAllows(deps map[string][]Dependency, from, to Endpoint, port Port) bool {
	inNS := func(e Endpoint) bool { return !e.External && e.Namespace == modelNamespace }
	if !inNS(from) && !inNS(to) {
		return true // neither side is governed by the generated namespace
	}
	if !inNS(from) {
		return false // default deny on the destination, no generated rule admits outsiders
	}
	if to.Namespace == "kube-system" && to.Labels["k8s-app"] == "kube-dns" && port.Number == 53 &&
		(port.Protocol == corev1.ProtocolUDP || port.Protocol == corev1.ProtocolTCP) {
		return true
	}
	if !inNS(to) {
		return false
	}
	c, t := from.Labels[LabelComponent], to.Labels[LabelComponent]
	if c == "" || t == "" {
		return false
	}
	for _, d := range deps[c] {
		if d.Component != t || d.Protocol != port.Protocol {
			continue
		}
		switch {
		case d.Port.Type == intstr.String:
			if p, ok := ResolvePort(to, d.Port.StrVal, d.Protocol); ok && p.Number == port.Number {
				return true
			}
		case d.EndPort != 0:
			if d.Port.IntVal <= port.Number && port.Number <= d.EndPort {
				return true
			}
		default:
			if d.Port.IntVal == port.Number {
				return true
			}
		}
	}
	return false
}

// generateNamespace runs Generate for every workload and adds the baseline.
func generateNamespace(t testing.TB, ws []Workload, profiles map[string]Profile) ([]*networkingv1.NetworkPolicy, map[string][]Dependency) {
	t.Helper()
	policies := NamespaceBaseline(modelNamespace, BaselineOptions{})
	deps := map[string][]Dependency{}
	for _, w := range ws {
		g, errs := Generate(w, profiles)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", w.Ref(), errs)
		}
		ann, _, _ := ParseAnnotations(w.Name, w.Annotations, nil)
		deps[g.Component] = append(deps[g.Component], ann.DependsOn...)
		policies = append(policies, g.Policies...)
	}
	return policies, deps
}

// checkAgainstModel fails t for every probe on which the evaluator and the
// model disagree. explained, when set, may excuse a connection the model does
// not expect (profiles open what the model does not know about).
func checkAgainstModel(t testing.TB, policies []*networkingv1.NetworkPolicy, deps map[string][]Dependency, explained func(Verdict) bool) {
	t.Helper()
	e, err := NewEvaluator(policies)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range policies {
		if msgs := validation.IsDNS1123Subdomain(p.Name); len(msgs) > 0 {
			t.Errorf("policy name %q: %s", p.Name, strings.Join(msgs, "; "))
		}
	}
	eps := modelUniverse(deps, policies)
	probes := modelProbes(deps, policies, eps)
	var bad []string
	for _, from := range eps {
		for _, to := range eps {
			for _, port := range probes {
				v := e.Reach(from, to, port)
				want := modelAllows(deps, from, to, port)
				if v.Allowed == want || (v.Allowed && explained != nil && explained(v)) {
					continue
				}
				bad = append(bad, fmt.Sprintf("%s -> %s %s: evaluator %v, annotations mean %v (%s)", from, to, port, v.Allowed, want, v.Reason()))
			}
		}
	}
	if len(bad) > 0 {
		if len(bad) > 20 {
			bad = append(bad[:20], fmt.Sprintf("... and %d more", len(bad)-20))
		}
		t.Errorf("generated policies disagree with the annotations:\n%s", strings.Join(bad, "\n"))
	}
}

func TestGeneratedConnectivityMatchesAnnotations(t *testing.T) {
	ws := []Workload{
		workload("web", map[string]string{AnnotationDependsOn: "api:8080 api:grpc cache:6379"}),
		workload("api", map[string]string{AnnotationDependsOn: "db:5432, api:7000-7010 metrics:9100/udp"}),
		workload("worker", map[string]string{AnnotationComponent: "jobs", AnnotationDependsOn: "db:5432 db:admin/sctp api:grpc"}),
		workload("db", map[string]string{AnnotationComponent: "db"}),
		workload("cache", map[string]string{AnnotationComponent: "cache"}),
	}
	policies, deps := generateNamespace(t, ws, nil)
	checkAgainstModel(t, policies, deps, nil)
}

// A profile adds exactly its rules and nothing else.
func TestGeneratedConnectivityWithProfiles(t *testing.T) {
	ws := []Workload{
		workload("web", map[string]string{AnnotationDependsOn: "api:8080", AnnotationProfiles: "p1 p2"}),
		workload("api", nil),
	}
	policies, deps := generateNamespace(t, ws, testProfiles())
	e, err := NewEvaluator(policies)
	if err != nil {
		t.Fatal(err)
	}
	web := Endpoint{Namespace: modelNamespace, Name: "web-0", Labels: map[string]string{LabelComponent: "web"}}
	prom := Endpoint{Namespace: "monitoring", Name: "prom", Labels: map[string]string{"app": "prometheus"}}
	for _, c := range []struct {
		from, to Endpoint
		port     Port
		want     bool
	}{
		{web, ExternalEndpoint("192.0.2.53"), Port{53, corev1.ProtocolUDP}, true},
		{web, ExternalEndpoint("192.0.2.53"), Port{53, corev1.ProtocolTCP}, false},
		{web, ExternalEndpoint("198.51.100.1"), Port{53, corev1.ProtocolUDP}, false},
		{prom, web, Port{9090, corev1.ProtocolTCP}, true},
		{prom, web, Port{9091, corev1.ProtocolTCP}, false},
	} {
		if v := e.Reach(c.from, c.to, c.port); v.Allowed != c.want {
			t.Errorf("%s -> %s %s: %s", c.from, c.to, c.port, v.Reason())
		}
	}
	checkAgainstModel(t, policies, deps, explainedByProfile)
}

// explainedByProfile accepts a connection one of whose sides a profile
// policy allows.
func explainedByProfile(v Verdict) bool {
	for _, r := range append(append([]PolicyRef{}, v.Egress.AllowedBy...), v.Ingress.AllowedBy...) {
		if strings.Contains(r.Name, ".profile.") {
			return true
		}
	}
	return false
}
