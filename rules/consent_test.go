package rules

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestParseExposeTo(t *testing.T) {
	path := field.NewPath("metadata", "annotations").Key(AnnotationExposeTo)
	ok := []struct {
		in   string
		want []string
	}{
		{"kubernetes.io/metadata.name=kannika-data:8082", []string{"kubernetes.io/metadata.name=kannika-data:8082"}},
		{"kubernetes.io/metadata.name in (kannika-data, kannika-test):9000, 8082", []string{"kubernetes.io/metadata.name in (kannika-data,kannika-test):8082,9000"}},
		{"team=payments:http/tcp;tier=batch:5432-5433/UDP\n", []string{"team=payments:http", "tier=batch:5432-5433/UDP"}},
		{"kubernetes.io/metadata.name:8082", []string{"kubernetes.io/metadata.name:8082"}},
	}
	for _, c := range ok {
		got, _, errs := ParseExposeTo(c.in, path)
		if len(errs) > 0 {
			t.Errorf("ParseExposeTo(%q): %v", c.in, errs)
			continue
		}
		var s []string
		for _, e := range got {
			s = append(s, e.String())
		}
		if !reflect.DeepEqual(s, c.want) {
			t.Errorf("ParseExposeTo(%q) = %q, want %q", c.in, s, c.want)
		}
	}
	bad := []struct{ in, want string }{
		{"", "must list at least one SELECTOR:PORTS entry"},
		{"kannika-data:8082", `selects every namespace that has a label named "kannika-data", which is probably not meant; to expose to the namespace "kannika-data" write kubernetes.io/metadata.name=kannika-data`},
		{"team=a", "must be SELECTOR:PORT[,PORT...]"},
		{":8082", "namespace selector is missing"},
		{"team=a:", "ports are missing"},
		{"team=a:99999", `port "99999": port must be 1-65535`},
		{"team=a:80/icmp", `port "80/icmp": protocol "icmp" must be TCP, UDP or SCTP`},
		{"team in (a:80", "does not parse"},
		{strings.Repeat("team=a:80;", MaxExposuresPerComponent+1), "must have at most 16 items"},
		{"team=a:" + strings.Repeat("1,", MaxPortsPerExposure+1), "netguard allows at most 32 per entry"},
	}
	for _, c := range bad {
		_, _, errs := ParseExposeTo(c.in, path)
		if len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), c.want) {
			t.Errorf("ParseExposeTo(%q) errors = %v, want one containing %q", c.in, errs, c.want)
		} else if !strings.HasPrefix(errs[0].Field, "metadata.annotations[netguard.io/expose-to]") {
			t.Errorf("ParseExposeTo(%q): field %q", c.in, errs[0].Field)
		}
	}
}

func TestParseDependsOnNamespace(t *testing.T) {
	path := field.NewPath("metadata", "annotations").Key(AnnotationDependsOn)
	deps, _, errs := ParseDependsOn("kannika-system/event-gateway:8082 db:5432 kannika-system/api:9000/udp", path)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var got []string
	for _, d := range deps {
		got = append(got, d.String())
	}
	want := []string{"db:5432", "kannika-system/api:9000/UDP", "kannika-system/event-gateway:8082"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for in, msg := range map[string]string{
		"/gw:80":            `namespace is missing before "/"`,
		"Kannika/gw:80":     `namespace "Kannika" must be a namespace name`,
		"ns/:80":            "component name is missing",
		"ns/a/b:80":         `component "a/b" must be a DNS-1123 label`,
		"ns/gw":             "must be NAMESPACE/COMPONENT:PORT[/PROTOCOL]",
		"ns/gw:80 ns/gw:80": "",
	} {
		_, _, errs := ParseDependsOn(in, path)
		if msg == "" {
			if len(errs) > 0 {
				t.Errorf("%q: %v", in, errs)
			}
			continue
		}
		if len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), msg) {
			t.Errorf("ParseDependsOn(%q) = %v, want %q", in, errs, msg)
		}
	}
	var many []string
	for i := range MaxCrossNamespaceTargets + 1 {
		many = append(many, fmt.Sprintf("ns%d/c:80", i))
	}
	if _, _, errs := ParseDependsOn(strings.Join(many, " "), path); len(errs) != 1 || !strings.Contains(errs[0].Detail, "at most 32 per workload") {
		t.Errorf("too many targets: %v", errs)
	}
}

func TestAgreedPorts(t *testing.T) {
	exp := func(s string) []Exposure {
		e, _, errs := ParseExposeTo(s, field.NewPath("x"))
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		return e
	}
	dep := func(s string) Dependency {
		d, msg := parseDependency(s)
		if msg != "" {
			t.Fatal(msg)
		}
		return d
	}
	ports := func(ps []networkingv1.NetworkPolicyPort) string {
		var s []string
		for _, p := range ps {
			s = append(s, portString(p))
		}
		return strings.Join(s, ",")
	}
	cases := []struct {
		ns, dep, exposures, want string
		labels                   map[string]string
	}{
		{"kannika-data", "s/gw:8082", "kubernetes.io/metadata.name=kannika-data:8082", "8082", nil},
		{"kannika-other", "s/gw:8082", "kubernetes.io/metadata.name=kannika-data:8082", "", nil},
		{"kannika-data", "s/gw:8083", "kubernetes.io/metadata.name=kannika-data:8082", "", nil},
		{"kannika-data", "s/gw:8082/UDP", "kubernetes.io/metadata.name=kannika-data:8082", "", nil},
		{"kannika-data", "s/gw:8000-9000", "kubernetes.io/metadata.name=kannika-data:8082,8500-9500", "8082,8500-9000", nil},
		{"kannika-data", "s/gw:8082", "kubernetes.io/metadata.name=kannika-data:8000-8100", "8082", nil},
		{"kannika-data", "s/gw:http", "kubernetes.io/metadata.name=kannika-data:http", "http", nil},
		{"kannika-data", "s/gw:http", "kubernetes.io/metadata.name=kannika-data:80", "", nil},
		{"a", "s/gw:80", "team=x:80;team=y:81", "80", map[string]string{"team": "x"}},
		{"a", "s/gw:80", "team=x:80", "", map[string]string{"team": "z"}},
	}
	for _, c := range cases {
		got := ports(AgreedPorts(c.ns, c.labels, dep(c.dep), exp(c.exposures)))
		if got != c.want {
			t.Errorf("AgreedPorts(%s %v, %s, %s) = %q, want %q", c.ns, c.labels, c.dep, c.exposures, got, c.want)
		}
	}
}

// armory is Kannika Armory split over its system and data namespaces: the
// backup pods push events to the event gateway (8082), the API server
// scrapes the backup pods' metrics (9000).
func armory() []Workload {
	return []Workload{
		{Kind: "Deployment", Namespace: "kannika-system", Name: "event-gateway", Annotations: map[string]string{
			AnnotationExposeTo: "kubernetes.io/metadata.name=kannika-data:8082",
		}},
		{Kind: "Deployment", Namespace: "kannika-system", Name: "api", Annotations: map[string]string{
			AnnotationDependsOn: "kannika-data/backup:9000",
		}},
		{Kind: "Deployment", Namespace: "kannika-data", Name: "backup", Annotations: map[string]string{
			AnnotationDependsOn: "kannika-system/event-gateway:8082",
			AnnotationExposeTo:  "kubernetes.io/metadata.name=kannika-system:9000",
		}},
	}
}

func generateSet(t *testing.T, ws []Workload, cfg CrossNamespaceConfig) ([]Generated, []*networkingv1.NetworkPolicy) {
	t.Helper()
	consents := ResolveConsent(ws, cfg, func(string, map[string]string) Level { return LevelRestricted })
	var (
		gens []Generated
		all  []*networkingv1.NetworkPolicy
	)
	namespaces := map[string]bool{}
	for i, w := range ws {
		w.Consent = consents[i]
		g, errs := Generate(w, nil)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", w.Ref(), errs)
		}
		gens = append(gens, g)
		all = append(all, g.Policies...)
		if !namespaces[w.Namespace] {
			namespaces[w.Namespace] = true
			all = append(all, NamespaceBaseline(w.Namespace, BaselineOptions{})...)
		}
	}
	return gens, all
}

func policyNamed(gen Generated, name string) *networkingv1.NetworkPolicy {
	for _, p := range gen.Policies {
		if p.Name == name {
			return p
		}
	}
	return nil
}

func TestConsentGeneratesBothSides(t *testing.T) {
	gens, _ := generateSet(t, armory(), CrossNamespaceConfig{})
	tcp := corev1.ProtocolTCP
	port := func(n int) []networkingv1.NetworkPolicyPort {
		p := intstrPort(n)
		return []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &p}}
	}
	peer := func(ns, c string) []networkingv1.NetworkPolicyPeer {
		return []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
			PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{LabelComponent: c}},
		}}
	}
	gw, api, backup := gens[0], gens[1], gens[2]
	if in := policyNamed(gw, "netguard.event-gateway.cross-namespace-ingress"); in == nil {
		t.Fatalf("event-gateway: no ingress policy; got %v (warnings %q)", gw.Record().Policies, gw.Warnings)
	} else if want := []networkingv1.NetworkPolicyIngressRule{{From: peer("kannika-data", "backup"), Ports: port(8082)}}; !reflect.DeepEqual(in.Spec.Ingress, want) || in.Namespace != "kannika-system" {
		t.Errorf("event-gateway ingress = %+v", in.Spec.Ingress)
	}
	if eg := policyNamed(backup, "netguard.backup.cross-namespace-egress"); eg == nil {
		t.Fatalf("backup: no egress policy; got %v (warnings %q)", backup.Record().Policies, backup.Warnings)
	} else if want := []networkingv1.NetworkPolicyEgressRule{{To: peer("kannika-system", "event-gateway"), Ports: port(8082)}}; !reflect.DeepEqual(eg.Spec.Egress, want) || eg.Namespace != "kannika-data" {
		t.Errorf("backup egress = %+v", eg.Spec.Egress)
	}
	if in := policyNamed(backup, "netguard.backup.cross-namespace-ingress"); in == nil || !reflect.DeepEqual(in.Spec.Ingress, []networkingv1.NetworkPolicyIngressRule{{From: peer("kannika-system", "api"), Ports: port(9000)}}) {
		t.Errorf("backup ingress = %+v", in)
	}
	if eg := policyNamed(api, "netguard.api.cross-namespace-egress"); eg == nil || !reflect.DeepEqual(eg.Spec.Egress, []networkingv1.NetworkPolicyEgressRule{{To: peer("kannika-data", "backup"), Ports: port(9000)}}) {
		t.Errorf("api egress = %+v", eg)
	}
	for _, g := range gens {
		if len(g.Warnings) > 0 {
			t.Errorf("%s: unexpected warnings %q", g.Component, g.Warnings)
		}
	}
}

func TestConsentReachesExactlyTheAgreedPaths(t *testing.T) {
	ws := append(armory(), Workload{Kind: "Deployment", Namespace: "intruder", Name: "backup", Annotations: map[string]string{
		AnnotationDependsOn: "kannika-system/event-gateway:8082 kannika-data/backup:9000",
		AnnotationExposeTo:  "kubernetes.io/metadata.name=kannika-system:9000",
	}})
	gens, all := generateSet(t, ws, CrossNamespaceConfig{})
	ev, err := NewEvaluator(all)
	if err != nil {
		t.Fatal(err)
	}
	pod := func(ns, c string) Endpoint {
		return Endpoint{Namespace: ns, Name: c, Labels: map[string]string{LabelComponent: c}}
	}
	gw, api, backup, intruder := pod("kannika-system", "event-gateway"), pod("kannika-system", "api"), pod("kannika-data", "backup"), pod("intruder", "backup")
	endpoints := []Endpoint{gw, api, backup, intruder}
	open := map[string]bool{
		"kannika-data/backup -> kannika-system/event-gateway 8082": true,
		"kannika-system/api -> kannika-data/backup 9000":           true,
	}
	for _, from := range endpoints {
		for _, to := range endpoints {
			for _, n := range []int32{8082, 9000} {
				key := fmt.Sprintf("%s/%s -> %s/%s %d", from.Namespace, from.Name, to.Namespace, to.Name, n)
				if got := ev.Reach(from, to, Port{Number: n}).Allowed; got != open[key] && from.Name+from.Namespace != to.Name+to.Namespace {
					t.Errorf("%s: allowed=%v, want %v", key, got, open[key])
				}
			}
		}
	}
	in := gens[3]
	if len(in.Policies) != 0 {
		t.Errorf("intruder got policies %v", in.Record().Policies)
	}
	joined := strings.Join(in.Warnings, "\n")
	for _, want := range []string{
		`"kannika-system/event-gateway:8082" is one-sided and opens nothing: Deployment/event-gateway in namespace "kannika-system" does not expose port 8082 to namespace "intruder"`,
		`"kannika-data/backup:9000" is one-sided and opens nothing: Deployment/backup in namespace "kannika-data" does not expose port 9000 to namespace "intruder"`,
		`netguard.io/expose-to: "kubernetes.io/metadata.name=kannika-system:9000" is one-sided and opens nothing yet`,
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("intruder warnings %q lack %q", in.Warnings, want)
		}
	}
}

func TestConsentOneSided(t *testing.T) {
	ws := armory()
	consumerOnly := []Workload{ws[2]}
	gens, _ := generateSet(t, consumerOnly, CrossNamespaceConfig{})
	if policyNamed(gens[0], "netguard.backup.cross-namespace-egress") != nil {
		t.Error("a dependency without a provider opened egress")
	}
	if !strings.Contains(strings.Join(gens[0].Warnings, "\n"), `"kannika-system/event-gateway:8082" is one-sided and opens nothing: no workload in namespace "kannika-system" declares component "event-gateway"`) {
		t.Errorf("warnings: %q", gens[0].Warnings)
	}
	providerOnly := []Workload{ws[0]}
	gens, _ = generateSet(t, providerOnly, CrossNamespaceConfig{})
	if len(gens[0].Policies) != 0 {
		t.Errorf("an exposure without consumers opened %v", gens[0].Record().Policies)
	}
	// The provider withdraws the port: both sides close.
	ws[0].Annotations = map[string]string{AnnotationExposeTo: "kubernetes.io/metadata.name=kannika-data:8083"}
	gens, _ = generateSet(t, ws, CrossNamespaceConfig{})
	if policyNamed(gens[0], "netguard.event-gateway.cross-namespace-ingress") != nil || policyNamed(gens[2], "netguard.backup.cross-namespace-egress") != nil {
		t.Error("a port the provider does not expose opened a path")
	}
	// Nothing known (nil Consent): nothing opens.
	g, _ := Generate(armory()[2], nil)
	if len(g.Policies) != 0 {
		t.Errorf("nil consent opened %v", g.Record().Policies)
	}
}

func TestConsentClosedByPlatform(t *testing.T) {
	for _, cfg := range []CrossNamespaceConfig{{Disabled: true}, {MaxLevel: LevelBaseline}} {
		gens, _ := generateSet(t, armory(), cfg)
		for _, g := range gens {
			if len(g.Policies) != 0 {
				t.Errorf("%+v: %s got %v", cfg, g.Component, g.Record().Policies)
			}
			if len(g.Warnings) == 0 || !strings.Contains(g.Warnings[0], "crossNamespace.") {
				t.Errorf("%+v: %s warnings %q", cfg, g.Component, g.Warnings)
			}
		}
	}
	if got := (CrossNamespaceConfig{MaxLevel: LevelRestricted}).Closed("a", LevelRestricted); got != "" {
		t.Errorf("restricted within maxLevel restricted: %q", got)
	}
}

func TestConsentConsumersBounded(t *testing.T) {
	ws := []Workload{{Kind: "Deployment", Namespace: "p", Name: "svc", Annotations: map[string]string{
		AnnotationExposeTo: "kubernetes.io/metadata.name:80",
	}}}
	for i := range MaxConsumersPerComponent + 5 {
		ws = append(ws, Workload{Kind: "Deployment", Namespace: fmt.Sprintf("c%03d", i), Name: "client", Annotations: map[string]string{
			AnnotationDependsOn: "p/svc:80",
		}})
	}
	gens, _ := generateSet(t, ws, CrossNamespaceConfig{})
	in := policyNamed(gens[0], "netguard.svc.cross-namespace-ingress")
	if in == nil || len(in.Spec.Ingress) != MaxConsumersPerComponent {
		t.Fatalf("ingress rules: %v", in)
	}
	if !strings.Contains(strings.Join(gens[0].Warnings, "\n"), "more than 128 components of other namespaces depend on") {
		t.Errorf("warnings: %q", gens[0].Warnings)
	}
	if got := in.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]; got != "c000" {
		t.Errorf("first consumer %q, want c000 (namespace order)", got)
	}
	if len(checkLimits(in)) != 0 {
		t.Errorf("a full ingress policy exceeds the judging limits: %v", checkLimits(in))
	}
}

func TestConsentSelectorNeverInPolicy(t *testing.T) {
	// A provider exposing to every namespace still admits only its consumers,
	// each by name: a tenant who creates a namespace gains nothing until it
	// declares the dependency itself.
	ws := []Workload{
		{Kind: "Deployment", Namespace: "p", Name: "svc", Annotations: map[string]string{AnnotationExposeTo: "kubernetes.io/metadata.name:80"}},
		{Kind: "Deployment", Namespace: "c", Name: "client", Annotations: map[string]string{AnnotationDependsOn: "p/svc:80"}},
	}
	gens, _ := generateSet(t, ws, CrossNamespaceConfig{})
	in := policyNamed(gens[0], "netguard.svc.cross-namespace-ingress")
	if in == nil || len(in.Spec.Ingress) != 1 || in.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "c" {
		t.Fatalf("ingress: %+v", in)
	}
	// Judged at restricted: the consent policies pass (no other-namespace
	// finding), while the ports checks still apply.
	for _, g := range gens {
		if vs := GeneratedViolations(ws[0], g, LevelRestricted, LatestVersion()); g.Component == "svc" && len(vs) > 0 {
			t.Errorf("svc: %v", vs)
		}
	}
	wide := []Workload{
		{Kind: "Deployment", Namespace: "p", Name: "svc", Annotations: map[string]string{AnnotationExposeTo: "kubernetes.io/metadata.name:1-65535"}},
		{Kind: "Deployment", Namespace: "c", Name: "client", Annotations: map[string]string{AnnotationDependsOn: "p/svc:1-65535"}},
	}
	gens, _ = generateSet(t, wide, CrossNamespaceConfig{})
	vs := GeneratedViolations(wide[0], gens[0], LevelRestricted, LatestVersion())
	if len(vs) == 0 || vs[0].Field != "metadata.annotations[netguard.io/expose-to]" {
		t.Errorf("wide exposure at restricted: %v", vs)
	}
	vs = GeneratedViolations(wide[1], gens[1], LevelRestricted, LatestVersion())
	if len(vs) == 0 || vs[0].Field != "metadata.annotations[netguard.io/depends-on]" {
		t.Errorf("wide dependency at restricted: %v", vs)
	}
	for _, v := range vs {
		if v.Rule == "egressToOtherNamespaces" {
			t.Errorf("consent egress judged by egressToOtherNamespaces: %v", v)
		}
	}
}

func intstrPort(n int) intstr.IntOrString { return intstr.FromInt32(int32(n)) }

func TestAuditOneSidedConsent(t *testing.T) {
	ws := armory()
	defaults := NamespacePolicy{Enforce: LevelVersion{LevelBaseline, LatestVersion()}, Audit: LevelVersion{LevelBaseline, LatestVersion()}, Warn: LevelVersion{LevelBaseline, LatestVersion()}}
	audit := func(consent map[string]*Consent) []Violation {
		a := AuditNamespace(AuditInput{Namespace: "kannika-data", Defaults: defaults, Workloads: []Workload{ws[2]}, Consent: consent})
		for _, r := range a.Results {
			if r.Kind == "Deployment" {
				return r.Violations
			}
		}
		t.Fatal("no result for the workload")
		return nil
	}
	rulesOf := func(vs []Violation) []string {
		var out []string
		for _, v := range vs {
			out = append(out, v.Rule+" "+v.Field)
		}
		return out
	}
	// Alone: both of backup's declarations are one-sided.
	got := rulesOf(audit(nil))
	for _, want := range []string{
		"oneSidedConsent metadata.annotations[netguard.io/depends-on]",
		"oneSidedConsent metadata.annotations[netguard.io/expose-to]",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("alone: findings %q lack %q", got, want)
		}
	}
	// With both providers and consumers in view: no one-sided finding, and
	// the cross-namespace policies are expected in the namespace.
	consents := ResolveConsent(ws, CrossNamespaceConfig{}, func(string, map[string]string) Level { return LevelBaseline })
	got = rulesOf(audit(map[string]*Consent{"Deployment/backup": consents[2]}))
	for _, g := range got {
		if strings.HasPrefix(g, AuditOneSidedConsent) {
			t.Errorf("agreed: unexpected finding %q", g)
		}
	}
	if !slices.Contains(AuditRules(), AuditOneSidedConsent) {
		t.Error("oneSidedConsent is not in AuditRules")
	}
}

// A protocol suffix is not a namespace: a workload whose dependencies stay
// in its namespace keeps the generation cache.
func TestHasConsentDeclarations(t *testing.T) {
	for value, want := range map[string]bool{
		"api:8080":                          false,
		"stream:10000-10100/UDP dns:53/udp": false,
		"api:8080, kannika-system/gw:8082":  true,
		"other/api":                         true,
		"a/b/c:80":                          true,
		"api:80\nns/db:5432/TCP":            true,
		"":                                  false,
	} {
		if got := HasConsentDeclarations(map[string]string{AnnotationDependsOn: value}); got != want {
			t.Errorf("depends-on %q: %v, want %v", value, got, want)
		}
	}
	if !HasConsentDeclarations(map[string]string{AnnotationExposeTo: "x"}) {
		t.Error("expose-to must count")
	}
}
