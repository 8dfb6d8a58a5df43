package webhook

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/flowcontrol"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	configv1alpha1 "github.com/netguard/netguard/api/config/v1alpha1"
	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
)

func auditScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(netguardv1alpha1.AddToScheme(s))
	return s
}

func auditNamespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

// fromAnywhere violates baseline (ingressFromAnywhere).
func fromAnywhere(ns, name string) *networkingv1.NetworkPolicy {
	tcp := corev1.ProtocolTCP
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name)},
		Spec: networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp}}}},
		},
	}
}

func namespaceDefaultDeny(ns string) *networkingv1.NetworkPolicy {
	return rules.NamespaceBaseline(ns, rules.BaselineOptions{})[1]
}

var auditTestDefaults = rules.NamespacePolicy{
	Enforce: rules.LevelVersion{Level: rules.LevelBaseline, Version: rules.LatestVersion()},
	Audit:   rules.LevelVersion{Level: rules.LevelRestricted, Version: rules.LatestVersion()},
	Warn:    rules.LevelVersion{Level: rules.LevelRestricted, Version: rules.LatestVersion()},
}

func testAuditor(t *testing.T, c client.Reader, o AuditOptions) (*auditor, *events.FakeRecorder) {
	t.Helper()
	auditViolations.Reset()
	auditEnforceLevel.Reset()
	t.Cleanup(func() { auditViolations.Reset(); auditEnforceLevel.Reset() })
	if o.Interval == 0 {
		o.Interval = time.Minute
	}
	o.Defaults = auditTestDefaults
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	rec := events.NewFakeRecorder(100)
	return newAuditor(c, rec, o, logr.Discard()), rec
}

// gauge returns every netguard_audit_violations series as
// "namespace level rule" -> value.
func gauge(t *testing.T) map[string]float64 { return collect(t, auditViolations) }

// collect returns every series of g as its label values, in label name
// order, joined by spaces -> value.
func collect(t *testing.T, g *prometheus.GaugeVec) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(g)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			key := l["namespace"] + " " + l["level"]
			if r, ok := l["rule"]; ok {
				key += " " + r
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}

func drain(rec *events.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			sort.Strings(out)
			return out
		}
	}
}

func TestAuditGaugeFollowsTheCluster(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().WithScheme(auditScheme(t)).WithObjects(
		auditNamespace("shop", nil),
		auditNamespace("tools", map[string]string{rules.LabelEnforce: "privileged"}),
		auditNamespace("kube-system", nil),
		auditNamespace("legacy", map[string]string{LabelIgnore: ""}),
		fromAnywhere("shop", "open-a"), fromAnywhere("shop", "open-b"), namespaceDefaultDeny("shop"),
		fromAnywhere("tools", "open"),
		fromAnywhere("kube-system", "open"), fromAnywhere("legacy", "open"),
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "uid-web",
			Annotations: map[string]string{rules.AnnotationProfiles: "nope"}}},
	).Build()
	a, _ := testAuditor(t, c, AuditOptions{ExemptNamespaces: []string{"kube-system"}})
	if err := a.cycle(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"shop baseline ingressFromAnywhere":    2,
		"shop baseline unknownProfile":         1,
		"shop baseline missingGeneratedPolicy": 1, // netguard-allow-dns
		"shop restricted ingressFromAnywhere":  2,
		"shop restricted ingressAllPorts":      2,
		"shop managed ingressFromAnywhere":     2,
		"shop managed ingressAllPorts":         2,
		"shop managed rawNetworkPolicy":        2,
		"tools baseline ingressFromAnywhere":   1,
		"tools restricted ingressFromAnywhere": 1,
		"tools restricted ingressAllPorts":     1,
		"tools managed ingressFromAnywhere":    1,
		"tools managed ingressAllPorts":        1,
		"tools managed rawNetworkPolicy":       1,
	}
	if got := gauge(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("gauge after the first pass:\n got %v\nwant %v", got, want)
	}
	if got, want := collect(t, auditEnforceLevel), map[string]float64{"shop baseline": 1, "tools privileged": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("enforce levels: %v, want %v", got, want)
	}

	// Fixing one policy lowers the count; fixing the other clears the
	// series; a deleted namespace's series go at the end of the pass.
	if err := c.Delete(ctx, fromAnywhere("shop", "open-a")); err != nil {
		t.Fatal(err)
	}
	if err := a.cycle(ctx); err != nil {
		t.Fatal(err)
	}
	if got := gauge(t)["shop baseline ingressFromAnywhere"]; got != 1 {
		t.Errorf("after fixing one policy: %v, want 1", got)
	}
	if err := c.Delete(ctx, fromAnywhere("shop", "open-b")); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, auditNamespace("tools", nil)); err != nil {
		t.Fatal(err)
	}
	if err := a.cycle(ctx); err != nil {
		t.Fatal(err)
	}
	want = map[string]float64{"shop baseline unknownProfile": 1, "shop baseline missingGeneratedPolicy": 1}
	if got := gauge(t); !reflect.DeepEqual(got, want) {
		t.Errorf("gauge after the fixes:\n got %v\nwant %v", got, want)
	}

	// A namespace's new enforce level replaces the old one.
	shop := auditNamespace("shop", map[string]string{rules.LabelEnforce: "restricted"})
	if err := c.Update(ctx, shop); err != nil {
		t.Fatal(err)
	}
	if err := a.cycle(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := collect(t, auditEnforceLevel), map[string]float64{"shop restricted": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("enforce levels after relabelling: %v, want %v", got, want)
	}
}

func TestAuditCycleIsBounded(t *testing.T) {
	ctx := context.Background()
	b := fake.NewClientBuilder().WithScheme(auditScheme(t))
	for _, ns := range []string{"a", "b", "c", "d"} {
		b.WithObjects(auditNamespace(ns, nil), namespaceDefaultDeny(ns), fromAnywhere(ns, "open"))
	}
	c := b.Build()
	a, _ := testAuditor(t, c, AuditOptions{MaxObjectsPerCycle: 3})

	namespaces := func() []string {
		set := map[string]bool{}
		for k := range gauge(t) {
			set[strings.Fields(k)[0]] = true
		}
		var out []string
		for ns := range set {
			out = append(out, ns)
		}
		sort.Strings(out)
		return out
	}
	// Each namespace holds two objects: a cycle of 3 stops after the
	// second namespace, the next one finishes the pass.
	steps := []struct {
		namespaces []string
		cursor     string
	}{
		{[]string{"a", "b"}, "b"},
		{[]string{"a", "b", "c", "d"}, ""},
		{[]string{"a", "b", "c", "d"}, "b"},
	}
	for i, s := range steps {
		if err := a.cycle(ctx); err != nil {
			t.Fatal(err)
		}
		if got := namespaces(); !reflect.DeepEqual(got, s.namespaces) {
			t.Errorf("cycle %d: namespaces in the gauge %q, want %q", i+1, got, s.namespaces)
		}
		if a.cursor != s.cursor {
			t.Errorf("cycle %d: cursor %q, want %q", i+1, a.cursor, s.cursor)
		}
	}
	// A namespace deleted after this pass audited it is cleared when the
	// next pass completes.
	if err := c.Delete(ctx, auditNamespace("a", nil)); err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]string{{"a", "b", "c", "d"}, {"a", "b", "c", "d"}, {"b", "c", "d"}} {
		if err := a.cycle(ctx); err != nil {
			t.Fatal(err)
		}
		if got := namespaces(); !reflect.DeepEqual(got, want) {
			t.Errorf("cycle %d after deleting a: namespaces %q, want %q", i+1, got, want)
		}
	}
}

func TestAuditEventsAreRateLimited(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().WithScheme(auditScheme(t)).WithObjects(
		auditNamespace("shop", nil), namespaceDefaultDeny("shop"),
		fromAnywhere("shop", "open-a"), fromAnywhere("shop", "open-b"),
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db", UID: "uid-db",
			Annotations: map[string]string{rules.AnnotationDependsOn: "nowhere"}}},
	).Build()
	a, rec := testAuditor(t, c, AuditOptions{EventBurst: 2, EventQPS: 1e-9})
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return clock }

	if err := a.cycle(ctx); err != nil {
		t.Fatal(err)
	}
	got := drain(rec)
	want := []string{
		`Warning NetguardViolation violates netguard "baseline": [ingressFromAnywhere] spec.ingress[0]: ` + anywhereMessage(t),
		`Warning NetguardViolation violates netguard "baseline": [ingressFromAnywhere] spec.ingress[0]: ` + anywhereMessage(t),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("first pass, a bucket of 2:\n got %q\nwant %q", got, want)
	}

	// The bucket is empty: nothing, although the StatefulSet has had none.
	if err := a.cycle(ctx); err != nil {
		t.Fatal(err)
	}
	if got := drain(rec); len(got) != 0 {
		t.Errorf("with an empty bucket: %q", got)
	}

	// A full bucket: the StatefulSet gets its Event; the policies, warned
	// a moment ago, do not.
	a.bucket = flowcontrol.NewTokenBucketPassiveRateLimiter(1e-9, 2)
	clock = clock.Add(time.Minute)
	if err := a.cycle(ctx); err != nil {
		t.Fatal(err)
	}
	got = drain(rec)
	if len(got) != 1 || !strings.HasPrefix(got[0], "Warning NetguardViolation netguard audit: [invalidAnnotations] metadata.annotations[netguard.io/depends-on]: ") {
		t.Errorf("after a minute with a full bucket: %q", got)
	}

	// An hour later every offending object is warned again.
	a.bucket = flowcontrol.NewTokenBucketPassiveRateLimiter(1e-9, 10)
	clock = clock.Add(time.Hour)
	if err := a.cycle(ctx); err != nil {
		t.Fatal(err)
	}
	if got := drain(rec); len(got) != 3 {
		t.Errorf("an hour later: %d Events, want 3: %q", len(got), got)
	}
}

func anywhereMessage(t *testing.T) string {
	t.Helper()
	vs := rules.Evaluate(rules.LevelBaseline, rules.LatestVersion(), fromAnywhere("shop", "x"))
	if len(vs) != 1 {
		t.Fatalf("fromAnywhere: %v", vs)
	}
	return vs[0].Message
}

func TestAuditEventNoteIsBounded(t *testing.T) {
	long := strings.Repeat("é", 1000)
	got := truncate(long, maxEventNote)
	if len(got) > maxEventNote || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "éé") {
		t.Errorf("truncate: %d bytes, ends %q", len(got), got[len(got)-8:])
	}
	if got := truncate("short", maxEventNote); got != "short" {
		t.Errorf("truncate(short) = %q", got)
	}
}

func TestAuditRunsOnTheLeaderOnly(t *testing.T) {
	var r manager.Runnable = &auditor{}
	le, ok := r.(manager.LeaderElectionRunnable)
	if !ok || !le.NeedLeaderElection() {
		t.Error("the audit must need leader election: only the leader emits the gauge and Events")
	}
}

func TestAuditOptions(t *testing.T) {
	for _, tc := range []struct {
		o    AuditOptions
		want string
	}{
		{AuditOptions{}, "audit interval 0s: must be greater than 0"},
		{AuditOptions{Interval: -time.Second}, "audit interval -1s: must be greater than 0"},
		{AuditOptions{Interval: time.Second, MaxObjectsPerCycle: -1}, "audit maxObjectsPerCycle -1: must not be negative"},
	} {
		err := tc.o.defaults()
		if fmt.Sprint(err) != tc.want {
			t.Errorf("%+v: %v, want %s", tc.o, err, tc.want)
		}
	}
	o := AuditOptions{Interval: time.Second}
	if err := o.defaults(); err != nil || o.MaxObjectsPerCycle != configv1alpha1.DefaultAuditMaxObjectsPerCycle || o.EventInterval != time.Hour {
		t.Errorf("defaults: %+v, %v", o, err)
	}
}

func TestAuditExempt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		labels map[string]string
		exempt bool
		why    string
	}{
		{"kube-system", nil, true, "exemptions.namespaces"},
		{"legacy", map[string]string{LabelIgnore: "true"}, true, "label netguard.io/ignore"},
		{"shop", map[string]string{rules.LabelEnforce: "privileged"}, false, ""},
	} {
		exempt, why := AuditExempt([]string{"kube-system"}, tc.name, tc.labels)
		if exempt != tc.exempt || why != tc.why {
			t.Errorf("%s: %v %q, want %v %q", tc.name, exempt, why, tc.exempt, tc.why)
		}
	}
}

// The background audit resolves consent across namespaces: an agreed path
// is no finding, a one-sided one is oneSidedConsent.
func TestAuditOneSidedConsent(t *testing.T) {
	ctx := context.Background()
	dep := func(ns, name string, ann map[string]string) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name), Annotations: ann}}
	}
	c := fake.NewClientBuilder().WithScheme(auditScheme(t)).WithObjects(
		auditNamespace("kannika-system", nil), auditNamespace("kannika-data", nil), auditNamespace("elsewhere", nil),
		dep("kannika-system", "event-gateway", map[string]string{rules.AnnotationExposeTo: "kubernetes.io/metadata.name=kannika-data:8082"}),
		dep("kannika-data", "backup", map[string]string{rules.AnnotationDependsOn: "kannika-system/event-gateway:8082"}),
		dep("elsewhere", "backup", map[string]string{rules.AnnotationDependsOn: "kannika-system/event-gateway:8082"}),
	).Build()
	a, _ := testAuditor(t, c, AuditOptions{})
	if err := a.cycle(ctx); err != nil {
		t.Fatal(err)
	}
	got := gauge(t)
	if got["elsewhere baseline oneSidedConsent"] != 1 {
		t.Errorf("elsewhere: gauge %v, want one oneSidedConsent", got)
	}
	for _, ns := range []string{"kannika-system", "kannika-data"} {
		if v := got[ns+" baseline oneSidedConsent"]; v != 0 {
			t.Errorf("%s: %v oneSidedConsent findings for an agreed path", ns, v)
		}
	}
}
