package webhook

import (
	"context"
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// consentServer knows Kannika Armory's two namespaces, a third one, and a
// restricted one; objs are in its caches.
func consentServer(t *testing.T, cross rules.CrossNamespaceConfig, objs ...client.Object) (*Server, client.Client) {
	t.Helper()
	c := fakeClient(objs...)
	s := &Server{cfg: testConfig()}
	s.cfg.CrossNamespace = cross
	s.synced.Store(true)
	s.namespaces = &fakeNamespaces{labels: map[string]map[string]string{
		"kannika-system": {},
		"kannika-data":   {},
		"intruder":       {},
		"strict":         {rules.LabelEnforce: "restricted"},
	}}
	s.injector = &injector{cache: c, client: c, live: c, namespaces: s.namespaces, defaults: s.cfg.Defaults, crossNamespace: cross}
	s.apiReader = c
	return s, c
}

func gateway() *appsv1.Deployment {
	d := webhooktest.Deployment("kannika-system", "event-gateway", map[string]string{
		rules.AnnotationExposeTo: "kubernetes.io/metadata.name=kannika-data:8082",
	})
	d.UID = "uid-gw"
	return d
}

func backup(ns string) *appsv1.Deployment {
	d := webhooktest.Deployment(ns, "backup", map[string]string{
		rules.AnnotationDependsOn: "kannika-system/event-gateway:8082",
	})
	d.UID = types.UID("uid-backup-" + ns)
	return d
}

func policyIn(t *testing.T, c client.Client, ns, name string) *networkingv1.NetworkPolicy {
	t.Helper()
	p := &networkingv1.NetworkPolicy{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, p); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil
		}
		t.Fatal(err)
	}
	return p
}

func TestConsentConsumerAfterProvider(t *testing.T) {
	s, c := consentServer(t, rules.CrossNamespaceConfig{}, gateway())
	ctx := context.Background()
	d := backup("kannika-data")
	resp := (&workloadMutator{s: s}).Handle(ctx, workloadRequest(t, admissionv1.Create, d, nil, false))
	if !resp.Allowed {
		t.Fatalf("consumer denied: %+v", resp.Result)
	}
	for _, w := range resp.Warnings {
		if strings.Contains(w, "one-sided") || strings.Contains(w, "no workload in namespace") {
			t.Errorf("agreed dependency warned: %q", w)
		}
	}
	if resp := (&workloadApplier{s: s}).Handle(ctx, workloadRequest(t, admissionv1.Create, d, nil, false)); !resp.Allowed {
		t.Fatalf("applier: %+v", resp.Result)
	}
	eg := policyIn(t, c, "kannika-data", "netguard.backup.cross-namespace-egress")
	if eg == nil {
		t.Fatal("no egress policy in kannika-data")
	}
	to := eg.Spec.Egress[0].To[0]
	if to.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "kannika-system" || to.PodSelector.MatchLabels[rules.LabelComponent] != "event-gateway" || eg.Spec.Egress[0].Ports[0].Port.IntVal != 8082 {
		t.Errorf("egress %+v", eg.Spec.Egress)
	}
	// The provider's side is the provider's: admission of the consumer
	// writes nothing in kannika-system.
	if p := policyIn(t, c, "kannika-system", "netguard.event-gateway.cross-namespace-ingress"); p != nil {
		t.Errorf("consumer admission wrote the provider's policy: %+v", p)
	}
	// The controller's view of the provider, now that the consumer is stored.
	if err := c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	gen, ferrs, err := s.injector.generate(ctx, toRulesWorkload("Deployment", gateway()))
	if err != nil || len(ferrs) > 0 {
		t.Fatal(err, ferrs)
	}
	if got := gen.Record().Policies; !slices.Equal(got, []string{"netguard.event-gateway.cross-namespace-ingress"}) {
		t.Fatalf("provider policies %v (warnings %q)", got, gen.Warnings)
	}
	from := gen.Policies[0].Spec.Ingress
	if len(from) != 1 || from[0].From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "kannika-data" || from[0].From[0].PodSelector.MatchLabels[rules.LabelComponent] != "backup" {
		t.Errorf("provider ingress %+v", from)
	}
}

func TestConsentProviderAfterConsumerAndIntruder(t *testing.T) {
	s, c := consentServer(t, rules.CrossNamespaceConfig{}, backup("kannika-data"), backup("intruder"))
	ctx := context.Background()
	g := gateway()
	resp := (&workloadMutator{s: s}).Handle(ctx, workloadRequest(t, admissionv1.Create, g, nil, false))
	if !resp.Allowed {
		t.Fatalf("provider denied: %+v", resp.Result)
	}
	if resp := (&workloadApplier{s: s}).Handle(ctx, workloadRequest(t, admissionv1.Create, g, nil, false)); !resp.Allowed {
		t.Fatal(resp.Result)
	}
	in := policyIn(t, c, "kannika-system", "netguard.event-gateway.cross-namespace-ingress")
	if in == nil || len(in.Spec.Ingress) != 1 || in.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "kannika-data" {
		t.Fatalf("provider ingress: %+v", in)
	}
	// The intruder's dependency is one-sided: a warning, no egress.
	w := toRulesWorkload("Deployment", backup("intruder"))
	if err := c.Create(ctx, g); err != nil {
		t.Fatal(err)
	}
	gen, _, err := s.injector.generate(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if len(gen.Policies) != 0 || !strings.Contains(strings.Join(gen.Warnings, "\n"), `does not expose port 8082 to namespace "intruder"`) {
		t.Errorf("intruder: policies %v, warnings %q", gen.Record().Policies, gen.Warnings)
	}
}

func TestConsentOneSidedWarnsAtAdmission(t *testing.T) {
	s, c := consentServer(t, rules.CrossNamespaceConfig{})
	ctx := context.Background()
	d := backup("kannika-data")
	resp := (&workloadMutator{s: s}).Handle(ctx, workloadRequest(t, admissionv1.Create, d, nil, false))
	if !resp.Allowed {
		t.Fatal(resp.Result)
	}
	want := `netguard: netguard.io/depends-on: "kannika-system/event-gateway:8082" is one-sided and opens nothing: no workload in namespace "kannika-system" declares component "event-gateway"`
	if !slices.ContainsFunc(resp.Warnings, func(w string) bool { return strings.HasPrefix(w, want) }) {
		t.Errorf("warnings %q lack %q", resp.Warnings, want)
	}
	for _, w := range resp.Warnings {
		if strings.Contains(w, "no workload in namespace \"kannika-data\"") {
			t.Errorf("a cross-namespace dependency was looked up in the own namespace: %q", w)
		}
	}
	(&workloadApplier{s: s}).Handle(ctx, workloadRequest(t, admissionv1.Create, d, nil, false))
	list := &networkingv1.NetworkPolicyList{}
	if err := c.List(ctx, list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Errorf("a one-sided dependency wrote policies: %d", len(list.Items))
	}
}

func TestConsentClosedByConfiguration(t *testing.T) {
	s, c := consentServer(t, rules.CrossNamespaceConfig{MaxLevel: rules.LevelPrivileged}, gateway())
	ctx := context.Background()
	d := backup("kannika-data")
	resp := (&workloadMutator{s: s}).Handle(ctx, workloadRequest(t, admissionv1.Create, d, nil, false))
	if !resp.Allowed || !slices.ContainsFunc(resp.Warnings, func(w string) bool { return strings.Contains(w, "crossNamespace.maxLevel") }) {
		t.Fatalf("want allowed with a maxLevel warning: %+v", resp.AdmissionResponse)
	}
	(&workloadApplier{s: s}).Handle(ctx, workloadRequest(t, admissionv1.Create, d, nil, false))
	if p := policyIn(t, c, "kannika-data", "netguard.backup.cross-namespace-egress"); p != nil {
		t.Error("consent closed by the platform still opened egress")
	}
}

func TestConsentJudgedByLevelWithoutOtherNamespaceChecks(t *testing.T) {
	exposed := webhooktest.Deployment("kannika-system", "event-gateway", map[string]string{
		rules.AnnotationExposeTo: "kubernetes.io/metadata.name=strict:8082",
	})
	s, _ := consentServer(t, rules.CrossNamespaceConfig{}, exposed)
	ctx := context.Background()
	d := backup("strict")
	resp := (&workloadMutator{s: s}).Handle(ctx, workloadRequest(t, admissionv1.Create, d, nil, false))
	if !resp.Allowed {
		t.Fatalf("a narrow consent egress was denied at restricted: %+v", resp.Result)
	}
	wide := webhooktest.Deployment("strict", "scan", map[string]string{
		rules.AnnotationDependsOn: "kannika-system/event-gateway:1-65535",
	})
	exposed.Annotations[rules.AnnotationExposeTo] = "kubernetes.io/metadata.name=strict:1-65535"
	s, _ = consentServer(t, rules.CrossNamespaceConfig{}, exposed)
	resp = (&workloadMutator{s: s}).Handle(ctx, workloadRequest(t, admissionv1.Create, wide, nil, false))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "netguard.scan.cross-namespace-egress") || strings.Contains(resp.Result.Message, "egressToOtherNamespaces") {
		t.Errorf("wide consent egress at restricted: %+v", resp.AdmissionResponse)
	}
}

func TestConsentPeerRequests(t *testing.T) {
	lnc := armoryLNC()
	s, _ := consentServer(t, rules.CrossNamespaceConfig{}, gateway(), backup("kannika-data"), backup("intruder"), lnc)
	ctx := context.Background()
	names := func(reqs []reconcile.Request) []string {
		var out []string
		for _, r := range reqs {
			out = append(out, r.String())
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	peers := func(kind, src string, o client.Object) []string {
		targets, exposed := workloadConsentDeclarations(src, o)
		return names(s.injector.consentPeerRequests(ctx, kind, o.GetNamespace(), targets, exposed))
	}
	if got := peers("Deployment", "Deployment", backup("kannika-data")); !slices.Equal(got, []string{"kannika-system/event-gateway"}) {
		t.Errorf("a consumer's event enqueues %v, want its provider", got)
	}
	if got := peers("Deployment", "Deployment", gateway()); !slices.Equal(got, []string{"intruder/backup", "kannika-data/backup"}) {
		t.Errorf("a provider's event enqueues %v, want the workloads that name it", got)
	}
	if got := peers("StatefulSet", "Deployment", gateway()); len(got) != 0 {
		t.Errorf("StatefulSet controller enqueues %v", got)
	}
	// LocalNetworkConfigs on either side.
	if got := peers(rules.KindLocalNetworkConfig, "Deployment", gateway()); !slices.Equal(got, []string{"kannika-data/armory"}) {
		t.Errorf("a provider's event enqueues LocalNetworkConfigs %v, want the one whose component names it", got)
	}
	targets, exposed := localConsentDeclarations(lnc)
	if got := names(s.injector.consentPeerRequests(ctx, "Deployment", lnc.Namespace, targets, exposed)); !slices.Equal(got, []string{"kannika-system/event-gateway"}) {
		t.Errorf("a LocalNetworkConfig's event enqueues %v, want its provider", got)
	}
}

// armoryLNC selects kannika-data's backup pods, which the platform makes,
// and depends on kannika-system's event-gateway.
func armoryLNC() *netguardv1alpha1.LocalNetworkConfig {
	p := intstr.FromInt32(8082)
	return &netguardv1alpha1.LocalNetworkConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kannika-data", Name: "armory", UID: "uid-armory"},
		Spec: netguardv1alpha1.LocalNetworkConfigSpec{Components: map[string]netguardv1alpha1.LocalComponent{
			"backup-job": {
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/part-of": "kannika-backup"}},
				DependsOn:   []netguardv1alpha1.LocalDependency{{Namespace: "kannika-system", Component: "event-gateway", Port: &p}},
			},
		}},
	}
}

// A LocalNetworkConfig component consumes an annotated provider: its
// egress goes to the provider's pods, and the provider's ingress admits
// exactly the component's pods (its podSelector, never a label it could
// not carry).
func TestConsentLocalNetworkConfigConsumer(t *testing.T) {
	lnc := armoryLNC()
	s, _ := consentServer(t, rules.CrossNamespaceConfig{}, gateway(), lnc)
	ctx := context.Background()
	res, err := s.injector.generateLocal(ctx, LocalConfigToRules(lnc, nil), nil)
	if err != nil || len(res.errs) > 0 {
		t.Fatal(err, res.errs)
	}
	if len(res.gen.OneSided) > 0 {
		t.Errorf("agreed dependency reported one-sided: %v", res.gen.OneSided)
	}
	var eg *networkingv1.NetworkPolicy
	for _, p := range res.gen.Policies {
		if p.Name == "netguard.backup-job.cross-namespace-egress" {
			eg = p
		}
	}
	if eg == nil {
		t.Fatalf("no egress policy; got %v (warnings %q)", res.gen.Policies, res.gen.Warnings)
	}
	if eg.Spec.PodSelector.MatchLabels["app.kubernetes.io/part-of"] != "kannika-backup" || eg.Spec.Egress[0].To[0].PodSelector.MatchLabels[rules.LabelComponent] != "event-gateway" {
		t.Errorf("egress %+v", eg.Spec)
	}
	gen, ferrs, err := s.injector.generate(ctx, toRulesWorkload("Deployment", gateway()))
	if err != nil || len(ferrs) > 0 {
		t.Fatal(err, ferrs)
	}
	if got := gen.Record().Policies; !slices.Equal(got, []string{"netguard.event-gateway.cross-namespace-ingress"}) {
		t.Fatalf("provider policies %v (warnings %q)", got, gen.Warnings)
	}
	from := gen.Policies[0].Spec.Ingress[0].From[0]
	if from.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "kannika-data" || from.PodSelector.MatchLabels["app.kubernetes.io/part-of"] != "kannika-backup" || len(from.PodSelector.MatchExpressions) != 1 {
		t.Errorf("provider ingress from %+v", from)
	}
	// The provider withdraws: the component's dependency is one-sided.
	s2, _ := consentServer(t, rules.CrossNamespaceConfig{}, webhooktest.Deployment("kannika-system", "event-gateway", map[string]string{rules.AnnotationComponent: "event-gateway"}), lnc)
	res, err = s2.injector.generateLocal(ctx, LocalConfigToRules(lnc, nil), nil)
	if err != nil || len(res.errs) > 0 {
		t.Fatal(err, res.errs)
	}
	if len(res.gen.Policies) != 0 || len(res.gen.OneSided) != 1 || !strings.Contains(res.gen.OneSided[0].Message, `spec.components[backup-job].dependsOn: "kannika-system/event-gateway:8082" is one-sided and opens nothing: Deployment/event-gateway in namespace "kannika-system" does not expose port 8082`) {
		t.Errorf("one-sided: policies %v, findings %v", res.gen.Policies, res.gen.OneSided)
	}
}
