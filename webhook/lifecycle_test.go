package webhook

import (
	"context"
	"slices"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// lifecycleServer is a synced Server whose reads and writes all go to c.
func lifecycleServer(c client.Client) *Server {
	s := newTestServer(true)
	s.injector = &injector{cache: c, client: c, live: c}
	s.apiReader = c
	return s
}

// The baseline follows the namespace's effective enforce level both ways,
// and only netguard's own baseline is removed.
func TestNamespaceBaselineFollowsTheLevel(t *testing.T) {
	ns := func(name string, labels map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	}
	baseline := func(namespace string) []client.Object {
		var out []client.Object
		for _, p := range rules.NamespaceBaseline(namespace, rules.BaselineOptions{}) {
			out = append(out, p)
		}
		return out
	}
	platformDeny := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "platform-kept", Name: rules.DefaultDenyPolicyName}}
	objs := []client.Object{
		ns("legacy", map[string]string{rules.LabelEnforce: "privileged"}),
		ns("ignored", map[string]string{LabelIgnore: ""}),
		ns("exempt", nil),
		ns("team", nil),
		ns("platform-kept", map[string]string{rules.LabelEnforce: "privileged"}),
		platformDeny,
	}
	for _, n := range []string{"legacy", "ignored", "exempt"} {
		objs = append(objs, baseline(n)...)
	}
	c := fakeClient(objs...)
	s := lifecycleServer(c)
	s.cfg.ExemptNamespaces = append(s.cfg.ExemptNamespaces, "exempt")
	r := &namespaceReconciler{s: s, client: c}
	for _, tc := range []struct {
		ns   string
		want []string
	}{
		{"legacy", nil},
		{"ignored", nil},
		{"exempt", nil},
		{"team", []string{rules.AllowDNSPolicyName, rules.DefaultDenyPolicyName}},
	} {
		if _, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Name: tc.ns}}); err != nil {
			t.Fatalf("%s: %v", tc.ns, err)
		}
		if got := generatedPolicies(t, c, tc.ns); !slices.Equal(got, tc.want) {
			t.Errorf("namespace %s: baseline %v, want %v", tc.ns, got, tc.want)
		}
	}
	if _, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Name: "platform-kept"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(platformDeny), &networkingv1.NetworkPolicy{}); err != nil {
		t.Errorf("a netguard-default-deny without netguard's label was removed: %v", err)
	}
}

// Policies orphaned from a deleted workload stay while pods of its
// component run, and go when none does.
func TestOrphanedPoliciesStayWhilePodsRun(t *testing.T) {
	orphan := generatedPolicy("team", "netguard.web.to.api", "Deployment/web")
	orphan.Labels[rules.LabelComponent] = "web"
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "web-abc", Labels: map[string]string{rules.LabelComponent: "web"}}}
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "elsewhere", Name: "web-xyz", Labels: map[string]string{rules.LabelComponent: "web"}}}
	c := fakeClient(orphan, pod, other)
	s := lifecycleServer(c)
	r := &workloadReconciler{s: s, kind: "Deployment", gvk: appsv1.SchemeGroupVersion.WithKind("Deployment"), client: c, recorder: events.NewFakeRecorder(10), orphanGrace: DefaultOrphanGrace}
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "team", Name: "web"}}

	res, err := r.Reconcile(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := generatedPolicies(t, c, "team"); !slices.Equal(got, []string{"netguard.web.to.api"}) {
		t.Errorf("with pods of web running, policies %v", got)
	}
	if res.RequeueAfter <= 0 {
		t.Errorf("kept orphans are not looked at again: %+v", res)
	}

	if err := c.Delete(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if got := generatedPolicies(t, c, "team"); len(got) != 0 {
		t.Errorf("with no pod of web left (a pod of that component in another namespace does not count), policies %v", got)
	}
}

// A workload being deleted gets no patch and no policies: the garbage
// collector's removal of its finalizer must not undo its work.
func TestWorkloadBeingDeletedIsLeftAlone(t *testing.T) {
	c := fakeClient()
	s := lifecycleServer(c)
	d := webhooktest.Deployment("team", "web", map[string]string{rules.AnnotationDependsOn: "api:8080"})
	d.UID = "web-uid"
	now := metav1.Now()
	d.DeletionTimestamp = &now
	d.Finalizers = []string{metav1.FinalizerOrphanDependents}
	req := deployReview(t, d)
	req.Operation = admissionv1.Update
	req.UID = "review-1"
	req.OldObject = runtime.RawExtension{Raw: req.Object.Raw}

	m := (&workloadMutator{s: s}).Handle(context.Background(), admission.Request{AdmissionRequest: req})
	if !m.Allowed || len(m.Patches) != 0 {
		t.Errorf("mutating: allowed %v, patches %v; want allowed, none", m.Allowed, m.Patches)
	}
	a := (&workloadApplier{s: s}).Handle(context.Background(), admission.Request{AdmissionRequest: req})
	if !a.Allowed {
		t.Errorf("validating: %+v", a.Result)
	}
	if got := generatedPolicies(t, c, "team"); len(got) != 0 {
		t.Errorf("policies written for a workload being deleted: %v", got)
	}
}
