package rules

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func lncSelector(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func portOf(v string) *intstr.IntOrString {
	p := intstr.Parse(v)
	return &p
}

// shopLNC is the example: frontend depends on backend:8080 and a
// profile; backend selects operator-labelled pods.
func shopLNC() LocalConfig {
	return LocalConfig{Namespace: "shop", Name: "platform", Components: []LocalComponent{
		{Name: "frontend", PodSelector: lncSelector("app.kubernetes.io/name", "frontend"), DependsOn: []LocalDependency{
			{Component: "backend", Port: portOf("8080")},
			{NetworkProfile: "dns"},
		}},
		{Name: "backend", PodSelector: lncSelector("app.kubernetes.io/name", "backend")},
	}}
}

func dnsProfile() map[string]Profile {
	udp := corev1.ProtocolUDP
	p53 := intstr.FromInt32(53)
	return map[string]Profile{"dns": {Name: "dns", Egress: []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &p53}}}}}}
}

func lncPod(ns, name string, labels map[string]string, ports ...int32) Endpoint {
	e := Endpoint{Namespace: ns, Name: name, Labels: labels}
	for _, p := range ports {
		e.Ports = append(e.Ports, corev1.ContainerPort{ContainerPort: p, Protocol: corev1.ProtocolTCP})
	}
	return e
}

func TestGenerateLocalOpensExactlyTheDeclaredPaths(t *testing.T) {
	gen, errs := GenerateLocal(shopLNC(), dnsProfile(), nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var names []string
	for _, p := range gen.Policies {
		names = append(names, p.Name)
		if p.Annotations[AnnotationWorkload] != "LocalNetworkConfig/platform" || p.Labels[LabelManagedBy] != ManagedByValue {
			t.Errorf("%s: metadata %v %v", p.Name, p.Labels, p.Annotations)
		}
	}
	want := []string{"netguard.frontend.depends-on", "netguard.frontend.profile.dns", "netguard.frontend.to.backend"}
	if !slices.Equal(names, want) {
		t.Fatalf("policies %v, want %v", names, want)
	}
	policies := append(gen.Policies, NamespaceBaseline("shop", BaselineOptions{})...)
	ev, err := NewEvaluator(policies)
	if err != nil {
		t.Fatal(err)
	}
	front := lncPod("shop", "frontend-7d9", map[string]string{"app.kubernetes.io/name": "frontend"})
	back := lncPod("shop", "backend-0", map[string]string{"app.kubernetes.io/name": "backend"}, 8080, 9090)
	// An annotated workload's pod with the same operator label belongs to
	// its own component: never selected by the LocalNetworkConfig.
	annotated := lncPod("shop", "web-1", map[string]string{"app.kubernetes.io/name": "backend", LabelComponent: "web"}, 8080)
	cases := []struct {
		from, to Endpoint
		port     int32
		allowed  bool
	}{
		{front, back, 8080, true},
		{front, back, 9090, false},
		{back, front, 8080, false},
		{front, annotated, 8080, false},
		{annotated, back, 8080, false},
	}
	for _, c := range cases {
		v := ev.Reach(c.from, c.to, Port{Number: c.port})
		if v.Allowed != c.allowed {
			t.Errorf("%s -> %s:%d allowed=%v, want %v (%s)", c.from.Name, c.to.Name, c.port, v.Allowed, c.allowed, v.Reason())
		}
	}
}

func TestGenerateLocalResolvesTargetsThroughTheIndex(t *testing.T) {
	l := LocalConfig{Namespace: "shop", Name: "edge", Components: []LocalComponent{
		{Name: "gateway", PodSelector: lncSelector("app", "gw"), DependsOn: []LocalDependency{
			{Component: "db", Port: portOf("5432")},
			{Component: "api", Port: portOf("8000-8010"), Protocol: "TCP"},
			{Component: "cache", Port: portOf("redis")},
		}},
	}}
	web := Workload{Kind: "Deployment", Namespace: "shop", Name: "api", Annotations: map[string]string{AnnotationComponent: "api"}}
	other := LocalConfig{Namespace: "shop", Name: "data", Components: []LocalComponent{{Name: "db", PodSelector: lncSelector("cnpg.io/cluster", "db")}}}
	nc := CollectComponents([]Workload{web}, []LocalConfig{other, l})
	gen, errs := GenerateLocal(l, nil, nc.Index)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	selects := map[string]metav1.LabelSelector{}
	for _, p := range gen.Policies {
		selects[p.Name] = p.Spec.PodSelector
	}
	if got := selects["netguard.gateway.to.db"]; got.MatchLabels["cnpg.io/cluster"] != "db" {
		t.Errorf("db (LocalNetworkConfig) selected by %v", got)
	}
	if got := selects["netguard.gateway.to.api"]; got.MatchLabels[LabelComponent] != "api" {
		t.Errorf("api (annotated) selected by %v", got)
	}
	if got := selects["netguard.gateway.to.cache"]; got.MatchLabels[LabelComponent] != "cache" {
		t.Errorf("cache (undeclared) selected by %v", got)
	}
	if len(gen.Warnings) != 1 || !strings.Contains(gen.Warnings[0], `component "cache" is not declared`) {
		t.Errorf("warnings %q", gen.Warnings)
	}
}

func TestValidateLocalConfig(t *testing.T) {
	cases := []struct {
		name string
		edit func(*LocalConfig)
		want string // substring of the error, "" for valid
	}{
		{"valid", func(*LocalConfig) {}, ""},
		{"empty selector", func(l *LocalConfig) { l.Components[1].PodSelector = &metav1.LabelSelector{} }, `spec.components[backend].podSelector: Required value: must select`},
		{"component label", func(l *LocalConfig) { l.Components[1].PodSelector = lncSelector(LabelComponent, "backend") }, `podSelector.matchLabels[netguard.io/component]`},
		{"overlap inside", func(l *LocalConfig) { l.Components[1].PodSelector = lncSelector("tier", "x") }, `overlaps the podSelector of component "backend"`},
		{"both kinds", func(l *LocalConfig) { l.Components[0].DependsOn[0].NetworkProfile = "dns" }, `set exactly one of component and networkProfile`},
		{"bad port", func(l *LocalConfig) { l.Components[0].DependsOn[0].Port = portOf("99999") }, `spec.components[frontend].dependsOn[0].port`},
		{"bad range", func(l *LocalConfig) { l.Components[0].DependsOn[0].Port = portOf("90-80") }, `ends before it starts`},
		{"bad protocol", func(l *LocalConfig) { l.Components[0].DependsOn[0].Protocol = "ICMP" }, `dependsOn[0].protocol`},
		{"no port", func(l *LocalConfig) { l.Components[0].DependsOn[0].Port = nil }, `dependsOn[0].port: Required value`},
		{"bad name", func(l *LocalConfig) { l.Components[1].Name = "Back_end" }, `spec.components[Back_end]`},
		{"bad namespace", func(l *LocalConfig) { l.Components[0].DependsOn[0].Namespace = "Kannika_System" }, `dependsOn[0].namespace: Invalid value`},
		{"empty exposeTo selector", func(l *LocalConfig) {
			l.Components[1].ExposeTo = []LocalExposure{{NamespaceSelector: &metav1.LabelSelector{}, Ports: []LocalExposedPort{{Port: intstr.FromInt32(8080)}}}}
		}, `spec.components[backend].exposeTo[0].namespaceSelector: Required value: must select the consumer namespaces by at least one label`},
		{"exposeTo without ports", func(l *LocalConfig) {
			l.Components[1].ExposeTo = []LocalExposure{{NamespaceSelector: lncSelector("team", "a")}}
		}, `exposeTo[0].ports: Required value`},
		{"exposeTo range on a name", func(l *LocalConfig) {
			end := int32(90)
			l.Components[1].ExposeTo = []LocalExposure{{NamespaceSelector: lncSelector("team", "a"), Ports: []LocalExposedPort{{Port: intstr.FromString("http"), EndPort: &end}}}}
		}, `exposeTo[0].ports[0].endPort: Invalid value: 90: needs a numeric port`},
		{"exposeTo range backwards", func(l *LocalConfig) {
			end := int32(80)
			l.Components[1].ExposeTo = []LocalExposure{{NamespaceSelector: lncSelector("team", "a"), Ports: []LocalExposedPort{{Port: intstr.FromInt32(90), EndPort: &end}}}}
		}, `exposeTo[0].ports[0].endPort: Invalid value: 80: must not be below port 90`},
		{"exposeTo bad protocol", func(l *LocalConfig) {
			l.Components[1].ExposeTo = []LocalExposure{{NamespaceSelector: lncSelector("team", "a"), Ports: []LocalExposedPort{{Port: intstr.FromInt32(90), Protocol: "ICMP"}}}}
		}, `exposeTo[0].ports[0].protocol`},
		{"exposeTo bad selector", func(l *LocalConfig) {
			l.Components[1].ExposeTo = []LocalExposure{{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Near"}}}, Ports: []LocalExposedPort{{Port: intstr.FromInt32(90)}}}}
		}, `exposeTo[0].namespaceSelector`},
		{"too many components", func(l *LocalConfig) {
			for i := 0; i < MaxLocalComponents; i++ {
				l.Components = append(l.Components, LocalComponent{Name: "c" + strings.Repeat("x", i%5) + string(rune('a'+i%26))})
			}
		}, `spec.components: Too many`},
		{"too many dependencies", func(l *LocalConfig) {
			for i := 0; i <= MaxLocalDependencies; i++ {
				l.Components[0].DependsOn = append(l.Components[0].DependsOn, LocalDependency{Component: "backend", Port: portOf("8080")})
			}
		}, `spec.components: Too many`},
		{"too many requirements", func(l *LocalConfig) {
			for i := 0; i <= MaxLocalSelectorRequirements; i++ {
				l.Components[1].PodSelector.MatchLabels["k"+strings.Repeat("x", i)] = "v"
			}
		}, `podSelector: Too many`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := shopLNC()
			c.edit(&l)
			_, errs := ValidateLocalConfig(l)
			got := errs.ToAggregate()
			switch {
			case c.want == "" && got != nil:
				t.Fatalf("unexpected errors: %v", got)
			case c.want != "" && (got == nil || !strings.Contains(got.Error(), c.want)):
				t.Fatalf("errors %v, want one containing %q", got, c.want)
			}
		})
	}
}

func TestLocalClaimErrors(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	first := shopLNC()
	first.Created = t0
	web := Workload{Kind: "Deployment", Namespace: "shop", Name: "web", Created: t0.Add(-time.Hour), Annotations: map[string]string{AnnotationDependsOn: "backend:8080"}}

	// Same name as a component another LocalNetworkConfig owns.
	dup := LocalConfig{Namespace: "shop", Name: "late", Created: t0.Add(time.Minute), Components: []LocalComponent{{Name: "backend", PodSelector: lncSelector("app", "other")}}}
	// Same name as an annotated workload's component.
	webToo := LocalConfig{Namespace: "shop", Name: "webtoo", Components: []LocalComponent{{Name: "web", PodSelector: lncSelector("app", "web")}}}
	// Overlapping selectors: "tier=api" may select a frontend pod.
	overlap := LocalConfig{Namespace: "shop", Name: "wide", Components: []LocalComponent{{Name: "api", PodSelector: lncSelector("tier", "api")}}}
	// Disjoint: the same key with another value.
	disjoint := LocalConfig{Namespace: "shop", Name: "narrow", Components: []LocalComponent{{Name: "cache", PodSelector: lncSelector("app.kubernetes.io/name", "cache")}}}

	nc := CollectComponents([]Workload{web}, []LocalConfig{first, dup, webToo, overlap, disjoint})
	check := func(l LocalConfig, want string) {
		t.Helper()
		got := LocalClaimErrors(l, nc).ToAggregate()
		switch {
		case want == "" && got != nil:
			t.Errorf("%s: unexpected %v", l.Name, got)
		case want != "" && (got == nil || !strings.Contains(got.Error(), want)):
			t.Errorf("%s: %v, want %q", l.Name, got, want)
		}
	}
	check(first, `overlaps the podSelector of component "api" (LocalNetworkConfig/wide)`)
	check(dup, `component "backend" is already declared by LocalNetworkConfig/platform`)
	check(webToo, `component "web" is already declared by Deployment/web`)
	check(overlap, `overlaps the podSelector of component "backend"`)
	// "tier=api" may also select cache's pods.
	check(disjoint, `overlaps the podSelector of component "api"`)
	nc = CollectComponents([]Workload{web}, []LocalConfig{first, disjoint})
	check(disjoint, "")
	check(first, "")
	// A workload claiming a LocalNetworkConfig's component loses to the
	// earlier claimant.
	late := Workload{Kind: "Deployment", Namespace: "shop", Name: "backend", Created: t0.Add(time.Hour), Annotations: map[string]string{AnnotationComponent: "backend"}}
	nc2 := CollectComponents([]Workload{late}, []LocalConfig{first})
	if o := nc2.Owners["backend"]; o.Kind != KindLocalNetworkConfig {
		t.Errorf("owner of backend is %s, want the LocalNetworkConfig", o.Ref())
	}
}

func TestSelectorDisjoint(t *testing.T) {
	req := func(k string, op metav1.LabelSelectorOperator, v ...string) metav1.LabelSelectorRequirement {
		return metav1.LabelSelectorRequirement{Key: k, Operator: op, Values: v}
	}
	cases := []struct {
		a, b     metav1.LabelSelector
		disjoint bool
	}{
		{metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}}, metav1.LabelSelector{MatchLabels: map[string]string{"app": "b"}}, true},
		{metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}}, metav1.LabelSelector{MatchLabels: map[string]string{"tier": "b"}}, false},
		{metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}}, metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{req("app", metav1.LabelSelectorOpNotIn, "a", "b")}}, true},
		{metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}}, metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{req("app", metav1.LabelSelectorOpNotIn, "b")}}, false},
		{metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{req("app", metav1.LabelSelectorOpExists)}}, metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{req("app", metav1.LabelSelectorOpDoesNotExist)}}, true},
		{metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{req("app", metav1.LabelSelectorOpNotIn, "x")}}, metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{req("app", metav1.LabelSelectorOpDoesNotExist)}}, false},
		{metav1.LabelSelector{}, metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}}, false},
	}
	for i, c := range cases {
		a, _ := NormalizeSelector(&c.a, nil)
		b, _ := NormalizeSelector(&c.b, nil)
		if got := a.Disjoint(b); got != c.disjoint || b.Disjoint(a) != c.disjoint {
			t.Errorf("case %d: %s disjoint %s = %v, want %v", i, a, b, got, c.disjoint)
		}
	}
}

func TestLocalGeneratedViolations(t *testing.T) {
	l := shopLNC()
	l.Components[0].DependsOn[0].Port = portOf("1-65535")
	gen, errs := GenerateLocal(l, dnsProfile(), nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	vs := LocalGeneratedViolations(gen, LevelRestricted, LatestVersion())
	if len(vs) == 0 {
		t.Fatal("every port to backend passes restricted")
	}
	for _, v := range vs {
		if v.Field != "spec.components[frontend].dependsOn" {
			t.Errorf("violation field %q", v.Field)
		}
	}
	if vs := LocalGeneratedViolations(gen, LevelPrivileged, LatestVersion()); len(vs) != 0 {
		t.Errorf("privileged: %v", vs)
	}
}

func TestAnnotatedWorkloadResolvesLocalComponents(t *testing.T) {
	web := Workload{Kind: "Deployment", Namespace: "shop", Name: "web", Annotations: map[string]string{AnnotationDependsOn: "backend:8080, api:80"}}
	api := Workload{Kind: "Deployment", Namespace: "shop", Name: "api", Annotations: map[string]string{AnnotationComponent: "api"}}
	nc := CollectComponents([]Workload{web, api}, []LocalConfig{shopLNC()})
	deps, _, _ := ParseDependsOn(web.Annotations[AnnotationDependsOn], nil)
	web.Components = nc.Index.ForDependencies(deps)
	if len(web.Components) != 1 || web.Components["backend"] == nil {
		t.Fatalf("index for web %v, want backend only (api is annotated)", web.Components)
	}
	g, errs := Generate(web, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	ev, err := NewEvaluator(append(g.Policies, NamespaceBaseline("shop", BaselineOptions{})...))
	if err != nil {
		t.Fatal(err)
	}
	webPod := lncPod("shop", "web-1", map[string]string{LabelComponent: "web"})
	backend := lncPod("shop", "backend-0", map[string]string{"app.kubernetes.io/name": "backend"}, 8080)
	apiPod := lncPod("shop", "api-0", map[string]string{LabelComponent: "api"}, 80)
	if v := ev.Reach(webPod, backend, Port{Number: 8080}); !v.Allowed {
		t.Errorf("web -> backend: %s", v.Reason())
	}
	if v := ev.Reach(webPod, apiPod, Port{Number: 80}); !v.Allowed {
		t.Errorf("web -> api: %s", v.Reason())
	}
	if v := ev.Reach(webPod, backend, Port{Number: 80}); v.Allowed {
		t.Errorf("web -> backend:80 allowed")
	}
}

// The seed's Kannika Armory, with the backup pods made by the platform and
// selected by a LocalNetworkConfig in kannika-data: its component depends
// on kannika-system's event-gateway (an annotated Deployment) and exposes
// its metrics port to kannika-system's api (a component of a
// LocalNetworkConfig there). Consent opens exactly the agreed paths, each
// side's policy in its own namespace, and a stranger namespace that
// declares the same dependency gets nothing.
func TestLocalNetworkConfigConsent(t *testing.T) {
	ws := []Workload{{Kind: "Deployment", Namespace: "kannika-system", Name: "event-gateway", Annotations: map[string]string{
		AnnotationExposeTo: "kubernetes.io/metadata.name=kannika-data:8082",
	}}, {Kind: "Deployment", Namespace: "intruder", Name: "backup", Annotations: map[string]string{
		AnnotationDependsOn: "kannika-system/event-gateway:8082",
	}}}
	data := LocalConfig{Namespace: "kannika-data", Name: "armory", Components: []LocalComponent{{
		Name: "backup", PodSelector: lncSelector("app.kubernetes.io/part-of", "kannika-backup"),
		DependsOn: []LocalDependency{{Namespace: "kannika-system", Component: "event-gateway", Port: portOf("8082")}, {Namespace: "kannika-system", Component: "api", Port: portOf("8080")}},
		ExposeTo:  []LocalExposure{{NamespaceSelector: lncSelector("kubernetes.io/metadata.name", "kannika-system"), Ports: []LocalExposedPort{{Port: intstr.FromInt32(9000)}}}},
	}}}
	system := LocalConfig{Namespace: "kannika-system", Name: "armory", Components: []LocalComponent{{
		Name: "api", PodSelector: lncSelector("app.kubernetes.io/name", "kannika-api"),
		DependsOn: []LocalDependency{{Namespace: "kannika-data", Component: "backup", Port: portOf("9000")}},
	}}}
	locals := []LocalConfig{data, system}
	wc, lc := ResolveConsentWithLocals(ws, locals, CrossNamespaceConfig{}, func(string, map[string]string) Level { return LevelBaseline })
	var all []*networkingv1.NetworkPolicy
	var warnings []string
	for i, w := range ws {
		w.Consent = wc[i]
		g, errs := Generate(w, nil)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		all = append(all, g.Policies...)
		warnings = append(warnings, g.Warnings...)
	}
	for i, l := range locals {
		for j := range l.Components {
			l.Components[j].Consent = lc[i][j]
		}
		g, errs := GenerateLocal(l, nil, nil)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		all = append(all, g.Policies...)
		warnings = append(warnings, g.Warnings...)
	}
	names := map[string]bool{}
	for _, p := range all {
		names[p.Namespace+"/"+p.Name] = true
	}
	for _, want := range []string{
		"kannika-data/netguard.backup.cross-namespace-egress", "kannika-data/netguard.backup.cross-namespace-ingress",
		"kannika-system/netguard.event-gateway.cross-namespace-ingress", "kannika-system/netguard.api.cross-namespace-egress",
	} {
		if !names[want] {
			t.Errorf("missing %s; have %v", want, names)
		}
	}
	for _, ns := range []string{"kannika-system", "kannika-data", "intruder"} {
		all = append(all, NamespaceBaseline(ns, BaselineOptions{})...)
	}
	ev, err := NewEvaluator(all)
	if err != nil {
		t.Fatal(err)
	}
	gw := Endpoint{Namespace: "kannika-system", Name: "event-gateway", Labels: map[string]string{LabelComponent: "event-gateway"}}
	api := Endpoint{Namespace: "kannika-system", Name: "api", Labels: map[string]string{"app.kubernetes.io/name": "kannika-api"}}
	backup := Endpoint{Namespace: "kannika-data", Name: "backup-job-x", Labels: map[string]string{"app.kubernetes.io/part-of": "kannika-backup"}}
	intruder := Endpoint{Namespace: "intruder", Name: "backup", Labels: map[string]string{LabelComponent: "backup"}}
	// A pod of kannika-data that the component does not select.
	other := Endpoint{Namespace: "kannika-data", Name: "other", Labels: map[string]string{"app.kubernetes.io/part-of": "something-else"}}
	endpoints := []Endpoint{gw, api, backup, intruder, other}
	open := map[string]bool{
		"kannika-data/backup-job-x -> kannika-system/event-gateway 8082": true,
		"kannika-system/api -> kannika-data/backup-job-x 9000":           true,
	}
	for _, from := range endpoints {
		for _, to := range endpoints {
			if from.Namespace == to.Namespace && from.Name == to.Name {
				continue
			}
			for _, n := range []int32{8080, 8082, 9000} {
				key := fmt.Sprintf("%s/%s -> %s/%s %d", from.Namespace, from.Name, to.Namespace, to.Name, n)
				if got := ev.Reach(from, to, Port{Number: n}).Allowed; got != open[key] {
					t.Errorf("%s: allowed=%v, want %v", key, got, open[key])
				}
			}
		}
	}
	joined := strings.Join(warnings, "\n")
	for _, want := range []string{
		// api exposes nothing, so backup's dependency on it is one-sided.
		`spec.components[backup].dependsOn: "kannika-system/api:8080" is one-sided and opens nothing: LocalNetworkConfig/armory in namespace "kannika-system" does not expose port 8080 to namespace "kannika-data" (exposeTo)`,
		`netguard.io/depends-on: "kannika-system/event-gateway:8082" is one-sided and opens nothing: Deployment/event-gateway in namespace "kannika-system" does not expose port 8082 to namespace "intruder"`,
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings %q lack %q", warnings, want)
		}
	}
}
