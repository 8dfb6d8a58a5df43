package rules

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func workload(name string, ann map[string]string) Workload {
	return Workload{Kind: "Deployment", Namespace: "shop", Name: name, Annotations: ann}
}

func TestGenerateExactPolicies(t *testing.T) {
	w := workload("web", map[string]string{AnnotationDependsOn: "api:8080 api:grpc, cache:6379\ncache:6379"})
	w.UID = "1234"
	got, errs := Generate(w, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	tcp := corev1.ProtocolTCP
	port := func(p intstr.IntOrString) networkingv1.NetworkPolicyPort {
		return networkingv1.NetworkPolicyPort{Protocol: &tcp, Port: &p}
	}
	no := false
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{
			Name: name, Namespace: "shop",
			Labels:          map[string]string{LabelManagedBy: ManagedByValue, LabelComponent: "web"},
			Annotations:     map[string]string{AnnotationWorkload: "Deployment/web"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "1234", Controller: &no, BlockOwnerDeletion: &no}},
		}
	}
	typeMeta := metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"}
	want := []*networkingv1.NetworkPolicy{
		{TypeMeta: typeMeta, ObjectMeta: meta("netguard.web.depends-on"), Spec: networkingv1.NetworkPolicySpec{
			PodSelector: *componentSelector("web"),
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{
				{To: []networkingv1.NetworkPolicyPeer{{PodSelector: componentSelector("api")}}, Ports: []networkingv1.NetworkPolicyPort{port(intstr.FromInt32(8080)), port(intstr.FromString("grpc"))}},
				{To: []networkingv1.NetworkPolicyPeer{{PodSelector: componentSelector("cache")}}, Ports: []networkingv1.NetworkPolicyPort{port(intstr.FromInt32(6379))}},
			},
		}},
		{TypeMeta: typeMeta, ObjectMeta: meta("netguard.web.to.api"), Spec: networkingv1.NetworkPolicySpec{
			PodSelector: *componentSelector("api"),
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{From: []networkingv1.NetworkPolicyPeer{{PodSelector: componentSelector("web")}}, Ports: []networkingv1.NetworkPolicyPort{port(intstr.FromInt32(8080)), port(intstr.FromString("grpc"))}},
			},
		}},
		{TypeMeta: typeMeta, ObjectMeta: meta("netguard.web.to.cache"), Spec: networkingv1.NetworkPolicySpec{
			PodSelector: *componentSelector("cache"),
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{From: []networkingv1.NetworkPolicyPeer{{PodSelector: componentSelector("web")}}, Ports: []networkingv1.NetworkPolicyPort{port(intstr.FromInt32(6379))}},
			},
		}},
	}
	if got.Component != "web" {
		t.Errorf("component %q", got.Component)
	}
	if !reflect.DeepEqual(got.Policies, want) {
		for i := range got.Policies {
			t.Logf("got %d: %+v", i, got.Policies[i])
		}
		t.Errorf("policies differ")
	}
	if want := []string{`netguard.io/depends-on: "cache:6379" is listed more than once`}; !reflect.DeepEqual(got.Warnings, want) {
		t.Errorf("warnings %q", got.Warnings)
	}
	if len(got.Digest) != 64 {
		t.Errorf("digest %q", got.Digest)
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, _ := Generate(workload("web", map[string]string{AnnotationDependsOn: "api:8080 cache:6379 dns:53/udp", AnnotationProfiles: "p2 p1"}), testProfiles())
	b, _ := Generate(workload("web", map[string]string{AnnotationDependsOn: "dns:53/UDP,cache:6379\napi:8080", AnnotationProfiles: "p1,p2,p1"}), testProfiles())
	if a.Digest != b.Digest || !reflect.DeepEqual(a.Policies, b.Policies) {
		t.Errorf("order of entries changed the result")
	}
	c, _ := Generate(workload("web", map[string]string{AnnotationDependsOn: "api:8081 cache:6379 dns:53/udp", AnnotationProfiles: "p2 p1"}), testProfiles())
	if c.Digest == a.Digest {
		t.Errorf("a different port kept the digest")
	}
	// Labels and owners do not change what is allowed, so not the digest.
	w := workload("web", map[string]string{AnnotationDependsOn: "api:8080 cache:6379 dns:53/udp", AnnotationProfiles: "p2 p1"})
	w.Kind, w.UID = "StatefulSet", "uid"
	e, _ := Generate(w, testProfiles())
	if e.Digest != a.Digest {
		t.Errorf("owner changed the digest")
	}
}

func testProfiles() map[string]Profile {
	udp := corev1.ProtocolUDP
	p53 := intstr.FromInt32(53)
	p9090 := intstr.FromInt32(9090)
	return map[string]Profile{
		"p1": {Name: "p1", Egress: []networkingv1.NetworkPolicyEgressRule{{
			To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "192.0.2.0/24"}}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &p53}},
		}}},
		"p2": {Name: "p2", Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel(corev1.LabelMetadataName, "monitoring")}},
			Ports: []networkingv1.NetworkPolicyPort{{Port: &p9090}},
		}}},
		"empty": {Name: "empty"},
	}
}

func TestGenerateProfiles(t *testing.T) {
	got, errs := Generate(workload("web", map[string]string{AnnotationProfiles: "p1 p2 empty"}), testProfiles())
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var names []string
	for _, p := range got.Policies {
		names = append(names, p.Name)
	}
	if want := []string{"netguard.web.profile.p1", "netguard.web.profile.p2"}; !reflect.DeepEqual(names, want) {
		t.Errorf("names %q", names)
	}
	if want := []string{`netguard.io/profiles: NetworkProfile "empty" has no rules`}; !reflect.DeepEqual(got.Warnings, want) {
		t.Errorf("warnings %q", got.Warnings)
	}
	p1 := got.Policies[0]
	if !reflect.DeepEqual(p1.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}) || len(p1.Spec.Ingress) != 0 {
		t.Errorf("p1 spec %+v", p1.Spec)
	}
	// The profile's rules are copies: changing the policy leaves the profile alone.
	profiles := testProfiles()
	got, _ = Generate(workload("web", map[string]string{AnnotationProfiles: "p1"}), profiles)
	got.Policies[0].Spec.Egress[0].To[0].IPBlock.CIDR = "0.0.0.0/0"
	if profiles["p1"].Egress[0].To[0].IPBlock.CIDR != "192.0.2.0/24" {
		t.Error("generated policy shares memory with the profile")
	}
}

func TestGenerateErrors(t *testing.T) {
	profPath := field.NewPath("metadata", "annotations").Key(AnnotationProfiles)
	got, errs := Generate(workload("web", map[string]string{AnnotationProfiles: "p1 missing", AnnotationDependsOn: "api:80"}), testProfiles())
	if want := (field.ErrorList{MissingProfile(profPath, "missing")}); !reflect.DeepEqual(errs, want) {
		t.Errorf("errors %v", errs)
	}
	if len(got.Policies) != 0 {
		t.Error("policies returned with errors")
	}
	_, errs = Generate(workload("web", map[string]string{AnnotationDependsOn: "api:80a"}), nil)
	if len(errs) != 1 || errs[0].Field != "metadata.annotations[netguard.io/depends-on]" {
		t.Errorf("errors %v", errs)
	}
	got, errs = Generate(workload("web", map[string]string{"unrelated": "x"}), nil)
	if len(errs) > 0 || !reflect.DeepEqual(got, Generated{}) {
		t.Errorf("unannotated workload: %+v %v", got, errs)
	}
	// A component alone declares the pods' identity and opens nothing.
	got, errs = Generate(workload("web", map[string]string{AnnotationComponent: "frontend"}), nil)
	if len(errs) > 0 || got.Component != "frontend" || len(got.Policies) != 0 {
		t.Errorf("component only: %+v %v", got, errs)
	}
}

func TestPolicyNames(t *testing.T) {
	long := strings.Repeat("p", 63) + "." + strings.Repeat("q", 63) + "." + strings.Repeat("r", 63) + "." + strings.Repeat("s", 61)
	profiles := map[string]Profile{long: {Name: long, Egress: []networkingv1.NetworkPolicyEgressRule{{}}}}
	comp := strings.Repeat("c", 63)
	got, errs := Generate(workload("web", map[string]string{AnnotationComponent: comp, AnnotationProfiles: long, AnnotationDependsOn: comp + ":80 " + strings.Repeat("t", 63) + ":80"}), profiles)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	seen := map[string]bool{}
	for _, p := range got.Policies {
		if msgs := validation.IsDNS1123Subdomain(p.Name); len(msgs) > 0 {
			t.Errorf("%q: %v", p.Name, msgs)
		}
		if seen[p.Name] {
			t.Errorf("duplicate name %q", p.Name)
		}
		seen[p.Name] = true
	}
	var long253 bool
	for _, p := range got.Policies {
		long253 = long253 || (len(p.Name) == 253 && strings.HasPrefix(p.Name, "netguard."+comp+".profile.ppp"))
	}
	if !long253 {
		t.Errorf("no profile policy with a shortened name: %v", seen)
	}
	if policyName("a.b") != "a.b" {
		t.Error("short name changed")
	}
}

func TestNamespaceBaseline(t *testing.T) {
	ps := NamespaceBaseline("shop", BaselineOptions{})
	if len(ps) != 2 || ps[0].Name != AllowDNSPolicyName || ps[1].Name != DefaultDenyPolicyName {
		t.Fatalf("got %v", ps)
	}
	gen, _ := Generate(workload("web", map[string]string{AnnotationDependsOn: "api:8080"}), nil)
	e, err := NewEvaluator(append(ps, gen.Policies...))
	if err != nil {
		t.Fatal(err)
	}
	web := pod("shop", "web", map[string]string{LabelComponent: "web"})
	api := pod("shop", "api", map[string]string{LabelComponent: "api"})
	other := pod("shop", "other", map[string]string{"app": "other"})
	dns := pod("kube-system", "coredns", map[string]string{"k8s-app": "kube-dns"})
	fakeDNS := pod("shop", "coredns", map[string]string{"k8s-app": "kube-dns"})
	for _, c := range []struct {
		from, to Endpoint
		port     Port
		want     bool
	}{
		{web, dns, Port{53, corev1.ProtocolUDP}, true},
		{web, dns, Port{53, corev1.ProtocolTCP}, true},
		{other, dns, Port{53, corev1.ProtocolUDP}, true},
		{web, dns, Port{80, corev1.ProtocolTCP}, false},
		{web, fakeDNS, Port{53, corev1.ProtocolUDP}, false},
		{web, ExternalEndpoint("8.8.8.8"), Port{53, corev1.ProtocolUDP}, false},
		{web, api, Port{8080, ""}, true},
		{api, web, Port{8080, ""}, false},
		{other, api, Port{8080, ""}, false},
		{web, other, Port{8080, ""}, false},
	} {
		if v := e.Reach(c.from, c.to, c.port); v.Allowed != c.want {
			t.Errorf("%s -> %s %s: %s", c.from, c.to, c.port, v.Reason())
		}
	}
	custom := NamespaceBaseline("shop", BaselineOptions{DNS: DNSOptions{
		NamespaceSelector: sel(corev1.LabelMetadataName, "dns"),
		PodSelector:       sel("app", "unbound"),
		Ports:             []networkingv1.NetworkPolicyPort{npPort(corev1.ProtocolUDP, intstr.FromInt32(5353), 0)},
	}})
	peer := custom[0].Spec.Egress[0].To[0]
	if peer.NamespaceSelector.MatchLabels[corev1.LabelMetadataName] != "dns" || peer.PodSelector.MatchLabels["app"] != "unbound" || custom[0].Spec.Egress[0].Ports[0].Port.IntVal != 5353 {
		t.Errorf("custom DNS: %+v", custom[0].Spec)
	}
}

func TestWorkloadFromObject(t *testing.T) {
	meta := metav1.ObjectMeta{Name: "x", Namespace: "ns", UID: "u", Annotations: map[string]string{"a": "b"}}
	for _, c := range []struct {
		obj  runtime.Object
		kind string
	}{
		{&appsv1.Deployment{ObjectMeta: meta}, "Deployment"},
		{&appsv1.StatefulSet{ObjectMeta: meta}, "StatefulSet"},
		{&appsv1.DaemonSet{ObjectMeta: meta}, "DaemonSet"},
		{&batchv1.Job{ObjectMeta: meta}, "Job"},
		{&batchv1.CronJob{ObjectMeta: meta}, "CronJob"},
		{&corev1.Pod{ObjectMeta: meta}, "Pod"},
	} {
		w, ok := WorkloadFromObject(c.obj)
		want := Workload{Kind: c.kind, Namespace: "ns", Name: "x", UID: "u", Annotations: map[string]string{"a": "b"}}
		if !ok || !reflect.DeepEqual(w, want) {
			t.Errorf("%s: got %+v %v", c.kind, w, ok)
		}
	}
	yes := true
	owned := func(apiVersion, kind string) metav1.ObjectMeta {
		m := *meta.DeepCopy()
		m.OwnerReferences = []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: "o", UID: "o", Controller: &yes}}
		return m
	}
	for _, obj := range []runtime.Object{
		&appsv1.ReplicaSet{ObjectMeta: meta}, (*appsv1.Deployment)(nil), (*corev1.Pod)(nil),
		// Made from a template netguard handles: skipped.
		&corev1.Pod{ObjectMeta: owned("apps/v1", "ReplicaSet")},
		&corev1.Pod{ObjectMeta: owned("apps/v1", "StatefulSet")},
		&corev1.Pod{ObjectMeta: owned("apps/v1", "DaemonSet")},
		&corev1.Pod{ObjectMeta: owned("batch/v1", "Job")},
		&batchv1.Job{ObjectMeta: owned("batch/v1", "CronJob")},
	} {
		if _, ok := WorkloadFromObject(obj); ok {
			t.Errorf("%T: want false", obj)
		}
	}
}

func TestCheckWorkloadSet(t *testing.T) {
	ws := []Workload{
		workload("web", map[string]string{AnnotationDependsOn: "api:80 ghost:80 ghost:81"}),
		workload("api", map[string]string{AnnotationDependsOn: "api:7000"}),
		workload("api-canary", map[string]string{AnnotationComponent: "api"}),
		workload("plain", nil),
		workload("broken", map[string]string{AnnotationDependsOn: "x"}),
		{Kind: "Deployment", Namespace: "other", Name: "api", Annotations: map[string]string{AnnotationDependsOn: "web:80"}},
	}
	got := CheckWorkloadSet(ws)
	var lines []string
	for _, f := range got {
		if f.Error != nil {
			lines = append(lines, fmt.Sprintf("%d error %s", f.Index, f.Error.Error()))
		} else {
			lines = append(lines, fmt.Sprintf("%d warning %s", f.Index, f.Warning))
		}
	}
	want := []string{
		`0 warning netguard.io/depends-on: no workload in namespace "shop" declares component "ghost", so "ghost:80" reaches no pods`,
		`2 error metadata.annotations[netguard.io/component]: Duplicate value: "api": component "api" is already declared by Deployment/api in namespace "shop"; give each workload its own component`,
		`5 warning netguard.io/depends-on: no workload in namespace "other" declares component "web", so "web:80" reaches no pods`,
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// TestDigestGolden: Digest's values are recorded on every generated policy
// and in every workload's record, so they must never change, whatever
// encodes the specs. The values were taken at the commit before the
// hand-written encoder was removed.
func TestDigestGolden(t *testing.T) {
	w := workload("checkout", map[string]string{
		AnnotationDependsOn: "cart:8080 catalog:8080 users:8443 media:http stream:10000-10100/UDP",
		AnnotationProfiles:  "p1, p2",
	})
	w.UID = "6f9c1a4e-0000-4000-8000-000000000001"
	g, errs := Generate(w, testProfiles())
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	tcp, sctp := corev1.ProtocolTCP, corev1.ProtocolSCTP
	p, named, end := intstr.FromInt32(443), intstr.FromString("metrics"), int32(8443)
	odd := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "a<b&c", Name: "q\"uote\\\u2028é\x00"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"db", "日本"}}}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}}, {NamespaceSelector: &metav1.LabelSelector{}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &p, EndPort: &end}, {Protocol: &sctp, Port: &named}, {}},
			}},
			Egress:      []networkingv1.NetworkPolicyEgressRule{{}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	}
	for _, c := range []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		want     string
	}{
		{"none", nil, "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"},
		{"generated", g.Policies, "130ee1054eef2c08464e7e0507d7e482827a30d3aecd7f9a26f9a9ed392734b3"},
		{"every field, odd strings", []*networkingv1.NetworkPolicy{odd}, "442b8fcaba9c7a7f8ef37de14a0e77395d0cb37ccac40b70731bdd8da03ad51d"},
	} {
		if got := Digest(c.policies); got != c.want {
			t.Errorf("%s: Digest = %s, want %s", c.name, got, c.want)
		}
	}
}
