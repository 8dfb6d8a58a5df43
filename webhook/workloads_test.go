package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// testServer is a Server whose caches are a fake client holding objs, with
// namespace "team" at the defaults and "lax" enforcing privileged.
func testServer(t *testing.T, objs ...client.Object) (*Server, client.Client) {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(NewScheme()).WithObjects(objs...).
		WithInterceptorFuncs(interceptor.Funcs{Apply: emulateApply}).Build()
	s := &Server{cfg: testConfig()}
	s.synced.Store(true)
	s.namespaces = &fakeNamespaces{labels: map[string]map[string]string{
		"team": {},
		"lax":  {rules.LabelEnforce: "privileged"},
	}}
	s.injector = &injector{cache: c, client: c, live: c}
	s.apiReader = c
	return s, c
}

// emulateApply stands in for server-side apply, which the fake client cannot
// merge for these objects: create, or replace the spec, labels, annotations
// and ownerReferences. e2e tests cover the real apply.
func emulateApply(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, _ ...client.ApplyOption) error {
	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	np := &networkingv1.NetworkPolicy{}
	if err := json.Unmarshal(b, np); err != nil {
		return err
	}
	cur := &networkingv1.NetworkPolicy{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(np), cur); err != nil {
		if client.IgnoreNotFound(err) != nil {
			return err
		}
		return c.Create(ctx, np)
	}
	cur.Spec, cur.Labels, cur.Annotations = np.Spec, np.Labels, np.Annotations
	if len(np.OwnerReferences) > 0 {
		cur.OwnerReferences = np.OwnerReferences
	}
	return c.Update(ctx, cur)
}

func workloadRequest(t *testing.T, op admissionv1.Operation, obj, old runtime.Object, dryRun bool) admission.Request {
	t.Helper()
	raw := func(o runtime.Object) runtime.RawExtension {
		if o == nil {
			return runtime.RawExtension{}
		}
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return runtime.RawExtension{Raw: b}
	}
	m := obj.(metav1.Object)
	gvk := obj.GetObjectKind().GroupVersionKind()
	kind, group := gvk.Kind, gvk.Group
	if gvk.Version == "" {
		group = "apps"
	}
	uidCounter++
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       types.UID("w-" + strings.Repeat("x", uidCounter%3)),
		Kind:      metav1.GroupVersionKind{Group: group, Version: "v1", Kind: kind},
		Resource:  metav1.GroupVersionResource{Group: group, Version: "v1", Resource: strings.ToLower(kind) + "s"},
		Name:      m.GetName(),
		Namespace: m.GetNamespace(),
		Operation: op,
		DryRun:    &dryRun,
		Object:    raw(obj),
		OldObject: raw(old),
	}}
}

// applyPatch applies a mutating response to obj and returns the result.
func applyPatch[T any](t *testing.T, obj *T, resp admission.Response) *T {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := json.Marshal(resp.Patches)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jsonpatch.DecodePatch(ops)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Apply(b)
	if err != nil {
		t.Fatal(err)
	}
	res := new(T)
	if err := json.Unmarshal(out, res); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestMutatorPatchesLabelAndRecordIdempotently(t *testing.T) {
	s, _ := testServer(t)
	m := &workloadMutator{s: s}
	d := webhooktest.Deployment("team", "web", map[string]string{rules.AnnotationDependsOn: "api:8080, cache:6379/TCP"})
	resp := m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, d, nil, false))
	if !resp.Allowed || len(resp.Patches) == 0 {
		t.Fatalf("want an allowed patch, got %+v", resp.AdmissionResponse)
	}
	patched := applyPatch(t, d, resp)
	if got := patched.Spec.Template.Labels[rules.LabelComponent]; got != "web" {
		t.Errorf("template label %q, want web", got)
	}
	if got := patched.Spec.Template.Labels["app"]; got != "web" {
		t.Errorf("existing template label lost: %v", patched.Spec.Template.Labels)
	}
	rec, err := rules.ParseGeneratedRecord(patched.Annotations[rules.AnnotationGenerated])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"netguard.web.depends-on", "netguard.web.to.api", "netguard.web.to.cache"}
	if !slices.Equal(rec.Policies, want) || rec.Digest == "" {
		t.Errorf("record %+v, want policies %v and a digest", rec, want)
	}
	// Reinvocation on the patched object changes nothing.
	again := m.Handle(context.Background(), workloadRequest(t, admissionv1.Update, patched, patched, false))
	if !again.Allowed || len(again.Patches) != 0 {
		t.Errorf("reinvocation patched again: %+v", again.Patches)
	}
}

func TestMutatorAllWorkloadKinds(t *testing.T) {
	s, _ := testServer(t)
	m := &workloadMutator{s: s}
	ann := map[string]string{rules.AnnotationComponent: "node-agent", rules.AnnotationDependsOn: "node-agent:7946/UDP"}
	sts := &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "team", Annotations: ann},
	}
	ds := &appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "team", Annotations: ann},
	}
	if got := applyPatch(t, sts, m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, sts, nil, false))); got.Spec.Template.Labels[rules.LabelComponent] != "node-agent" {
		t.Errorf("StatefulSet template labels %v", got.Spec.Template.Labels)
	}
	if got := applyPatch(t, ds, m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, ds, nil, false))); got.Spec.Template.Labels[rules.LabelComponent] != "node-agent" {
		t.Errorf("DaemonSet template labels %v", got.Spec.Template.Labels)
	}
}

func TestMutatorBadAnnotations(t *testing.T) {
	s, _ := testServer(t)
	m := &workloadMutator{s: s}
	bad := map[string]string{rules.AnnotationDependsOn: "backend:80a"}

	resp := m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, webhooktest.Deployment("team", "web", bad), nil, false))
	if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusUnprocessableEntity {
		t.Fatalf("enforce baseline: want 422, got %+v", resp.AdmissionResponse)
	}
	want := `Deployment.apps "web" is invalid: metadata.annotations[netguard.io/depends-on]: Invalid value: "backend:80a": port must be 1-65535`
	if !strings.Contains(resp.Result.Message, want) {
		t.Errorf("message %q lacks %q", resp.Result.Message, want)
	}

	resp = m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, webhooktest.Deployment("lax", "web", bad), nil, false))
	if !resp.Allowed || len(resp.Patches) != 0 || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], `"backend:80a": port must be 1-65535`) {
		t.Errorf("enforce privileged: want allowed with one warning and no patch, got %+v", resp.AdmissionResponse)
	}

	resp = m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, webhooktest.Deployment("team", "web", map[string]string{rules.AnnotationProfiles: "no-such-profile"}), nil, false))
	if resp.Allowed || resp.Result == nil || !strings.Contains(resp.Result.Message, `metadata.annotations[netguard.io/profiles]: Not found: "no-such-profile"`) {
		t.Errorf("unknown profile: want 422 naming it, got %+v", resp.AdmissionResponse)
	}
}

func TestMutatorFailsOpen(t *testing.T) {
	s, _ := testServer(t)
	s.synced.Store(false)
	m := &workloadMutator{s: s}
	resp := m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, webhooktest.Deployment("team", "web", map[string]string{rules.AnnotationDependsOn: "api:8080"}), nil, false))
	if !resp.Allowed || len(resp.Patches) != 0 || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "caches are not synced") {
		t.Errorf("not synced: want allowed with a warning and no patch, got %+v", resp.AdmissionResponse)
	}
}

func TestMutatorLeavesOthersAlone(t *testing.T) {
	s, _ := testServer(t)
	m := &workloadMutator{s: s}
	plain := webhooktest.Deployment("team", "plain", map[string]string{"team": "a"})
	if resp := m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, plain, nil, false)); !resp.Allowed || len(resp.Patches) != 0 {
		t.Errorf("unannotated workload patched: %+v", resp.AdmissionResponse)
	}
	exempt := webhooktest.Deployment("kube-system", "dns", map[string]string{rules.AnnotationDependsOn: "api:80a"})
	if resp := m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, exempt, nil, false)); !resp.Allowed || len(resp.Patches) != 0 {
		t.Errorf("exempt namespace touched: %+v", resp.AdmissionResponse)
	}
	// Annotations removed: the record goes too.
	was := webhooktest.Deployment("team", "web", map[string]string{rules.AnnotationGenerated: `{"digest":"x","policies":["netguard.web.depends-on"]}`})
	got := applyPatch(t, was, m.Handle(context.Background(), workloadRequest(t, admissionv1.Update, was, was, false)))
	if _, ok := got.Annotations[rules.AnnotationGenerated]; ok {
		t.Errorf("record kept after the annotations were removed: %v", got.Annotations)
	}
	// The wrong kind for the path.
	np := &networkingv1.NetworkPolicy{TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"}, ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "team"}}
	req := workloadRequest(t, admissionv1.Create, np, nil, false)
	req.Kind.Group = "networking.k8s.io"
	if resp := m.Handle(context.Background(), req); resp.Allowed || resp.Result.Code != http.StatusBadRequest {
		t.Errorf("wrong kind: want 400, got %+v", resp.AdmissionResponse)
	}
}

func TestApplierDryRunListsAndCreatesNothing(t *testing.T) {
	s, c := testServer(t)
	a := &workloadApplier{s: s}
	d := webhooktest.Deployment("team", "web", map[string]string{rules.AnnotationDependsOn: "api:8080"})
	resp := a.Handle(context.Background(), workloadRequest(t, admissionv1.Create, d, nil, true))
	want := []string{
		`netguard: netguard.io/depends-on: no workload in namespace "team" declares component "api", so "api:8080" reaches no pods`,
		"netguard (dry run): would generate NetworkPolicy netguard.web.depends-on", "netguard (dry run): would generate NetworkPolicy netguard.web.to.api",
	}
	if !resp.Allowed || !slices.Equal(resp.Warnings, want) {
		t.Errorf("dry run: got %+v, want warnings %v", resp.AdmissionResponse, want)
	}
	list := &networkingv1.NetworkPolicyList{}
	if err := c.List(context.Background(), list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Errorf("dry run created %d policies", len(list.Items))
	}
}

func TestApplierWritesPoliciesAndPrunes(t *testing.T) {
	tcp := corev1.ProtocolTCP
	port := intstr.FromInt32(9090)
	prof := &netguardv1alpha1.NetworkProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "scrape"},
		Spec: netguardv1alpha1.NetworkProfileSpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "monitoring"}}}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
		}}},
	}
	api := webhooktest.Deployment("team", "api", map[string]string{rules.AnnotationProfiles: "scrape"})
	db := webhooktest.Deployment("team", "db", map[string]string{rules.AnnotationProfiles: "scrape"})
	s, c := testServer(t, prof, api, db)
	a := &workloadApplier{s: s}
	ctx := context.Background()
	d := webhooktest.Deployment("team", "web", map[string]string{rules.AnnotationDependsOn: "api:8080", rules.AnnotationProfiles: "scrape"})
	d.UID = "uid-web"
	if resp := a.Handle(ctx, workloadRequest(t, admissionv1.Create, d, nil, false)); !resp.Allowed || len(resp.Warnings) != 0 {
		t.Fatalf("create: %+v", resp.AdmissionResponse)
	}
	names := func() map[string]int {
		list := &networkingv1.NetworkPolicyList{}
		if err := c.List(ctx, list); err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, p := range list.Items {
			out[p.Name] = len(p.OwnerReferences)
		}
		return out
	}
	// On CREATE the workload is not stored yet: no ownerReference.
	got := names()
	for _, n := range []string{"netguard.web.depends-on", "netguard.web.to.api", "netguard.web.profile.scrape"} {
		if refs, ok := got[n]; !ok || refs != 0 {
			t.Errorf("after create: %s present=%v ownerReferences=%d; want present without ownerReferences (%v)", n, ok, refs, got)
		}
	}
	// An UPDATE that drops the profile and changes the dependency.
	upd := d.DeepCopy()
	upd.Annotations = map[string]string{rules.AnnotationDependsOn: "db:5432"}
	if resp := a.Handle(ctx, workloadRequest(t, admissionv1.Update, upd, d, false)); !resp.Allowed || len(resp.Warnings) != 0 {
		t.Fatalf("update: %+v", resp.AdmissionResponse)
	}
	got = names()
	if len(got) != 2 || got["netguard.web.depends-on"] != 1 || got["netguard.web.to.db"] != 1 {
		t.Errorf("after update: %v; want only depends-on and to.db, each owned by the workload", got)
	}
}

// A profile created a moment before the workload that uses it is found even
// when the informer cache has not seen it yet.
func TestProfileCacheMissIsConfirmedLive(t *testing.T) {
	s, _ := testServer(t)
	prof := &netguardv1alpha1.NetworkProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "fresh"},
		Spec: netguardv1alpha1.NetworkProfileSpec{Egress: []networkingv1.NetworkPolicyEgressRule{{
			To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "192.0.2.10/32"}}},
		}}},
	}
	live := fake.NewClientBuilder().WithScheme(NewScheme()).WithObjects(prof).Build()
	s.injector.live = live
	m := &workloadMutator{s: s}
	resp := m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, webhooktest.Deployment("team", "web", map[string]string{rules.AnnotationProfiles: "fresh"}), nil, false))
	if !resp.Allowed || len(resp.Patches) == 0 {
		t.Fatalf("want the profile found live and the workload patched, got %+v", resp.AdmissionResponse)
	}
}

// While netguard drains, every answer closes its connection, so that no
// client holds an idle keep-alive connection when the server stops.
func TestDrainingClosesConnections(t *testing.T) {
	s, _ := testServer(t)
	h := s.handlers()[PathValidateNetworkPolicy]
	answer := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, PathValidateNetworkPolicy, strings.NewReader(`{}`)))
		return rec
	}
	if got := answer().Header().Get("Connection"); got != "" {
		t.Errorf("before draining: Connection %q, want none", got)
	}
	s.StartDraining()
	if got := answer().Header().Get("Connection"); got != "close" {
		t.Errorf("while draining: Connection %q, want close", got)
	}
}

// A generated policy's events reach the workload's reconciler only after the
// settle delay, so a reconcile never runs on the workload as it was before
// the update whose admission wrote the policy. The queue runs on the
// bubble's clock: "not before the delay" and "at the delay" are exact.
func TestPolicyEventsAreSettled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = 300 * time.Millisecond
		q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
		defer q.ShutDown()
		h := settled(policyOwner("Deployment"), delay)
		np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "netguard.web.to.api", Namespace: "team", Annotations: map[string]string{rules.AnnotationWorkload: "Deployment/web"}}}
		h.Create(context.Background(), event.CreateEvent{Object: np}, q)
		synctest.Wait()
		if q.Len() != 0 {
			t.Fatal("enqueued at once")
		}
		time.Sleep(delay - time.Millisecond)
		synctest.Wait()
		if q.Len() != 0 {
			t.Fatal("enqueued before the settle delay")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if q.Len() != 1 {
			t.Fatalf("queue length %d at the delay, want 1", q.Len())
		}
		req, _ := q.Get()
		if req.Namespace != "team" || req.Name != "web" {
			t.Errorf("request %v, want team/web", req)
		}
	})
}
