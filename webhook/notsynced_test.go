package webhook

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// notSyncedServer is a Server whose namespace reads go through the real
// cache wrapper, which refuses to answer before the caches are synced.
func notSyncedServer(c client.Client) *Server {
	s := newTestServer(false)
	s.namespaces = &cachedNamespaces{cache: c, live: c, synced: &s.synced}
	s.injector = &injector{cache: c, client: c, live: c}
	s.apiReader = c
	return s
}

func generatedPolicies(t *testing.T, c client.Client, ns string) []string {
	t.Helper()
	list := &networkingv1.NetworkPolicyList{}
	if err := c.List(context.Background(), list, client.InNamespace(ns), client.MatchingLabels{rules.LabelManagedBy: rules.ManagedByValue}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range list.Items {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return names
}

// Before the caches are synced the two failure modes part: a NetworkPolicy
// is denied with a retryable 503 (fail closed), a workload is admitted
// unchanged with a warning (fail open), and the controller generates its
// policies once netguard is ready.
func TestNotSyncedFailureModes(t *testing.T) {
	c := fakeClient(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}})
	s := notSyncedServer(c)
	h := startHTTPS(t, s)

	t.Run("NetworkPolicy: 503, retryable", func(t *testing.T) {
		r := h.postBytes(t, PathValidateNetworkPolicy, review(npRequest("team", npJSON(t, "team"))))
		if r.review == nil || r.review.Response.Allowed || r.review.Response.Result == nil {
			t.Fatalf("want a denial, got %s", r)
		}
		res := r.review.Response.Result
		if res.Code != http.StatusServiceUnavailable || !apierrors.IsServiceUnavailable(&apierrors.StatusError{ErrStatus: *res}) {
			t.Errorf("result %+v, want a 503 ServiceUnavailable that clients retry", res)
		}
	})

	d := webhooktest.Deployment("team", "web", map[string]string{rules.AnnotationDependsOn: "api:8080"})
	t.Run("workload mutation: admitted unchanged with a warning", func(t *testing.T) {
		r := h.postBytes(t, PathMutateWorkload, review(deployReview(t, d)))
		if r.review == nil || !r.review.Response.Allowed {
			t.Fatalf("want allowed, got %s", r)
		}
		if len(r.review.Response.Patch) != 0 {
			t.Errorf("patched before the caches are synced: %s", r.review.Response.Patch)
		}
		if !slices.Contains(r.review.Response.Warnings, notSyncedWarning) {
			t.Errorf("warnings %q, want %q", r.review.Response.Warnings, notSyncedWarning)
		}
	})
	t.Run("workload applier: admitted with a warning, nothing written", func(t *testing.T) {
		r := h.postBytes(t, PathValidateWorkload, review(deployReview(t, d)))
		if r.review == nil || !r.review.Response.Allowed || !slices.Contains(r.review.Response.Warnings, notSyncedWarning) {
			t.Fatalf("want allowed with %q, got %s", notSyncedWarning, r)
		}
		if got := generatedPolicies(t, c, "team"); len(got) != 0 {
			t.Errorf("policies written before the caches are synced: %v", got)
		}
	})
	t.Run("invalid annotations are not judged either", func(t *testing.T) {
		bad := webhooktest.Deployment("team", "bad", map[string]string{rules.AnnotationDependsOn: "api:99999"})
		r := h.postBytes(t, PathMutateWorkload, review(deployReview(t, bad)))
		if r.review == nil || !r.review.Response.Allowed {
			t.Fatalf("fail open means admitted; got %s", r)
		}
	})
	t.Run("annotations removed: the applier leaves the deletion to the controller", func(t *testing.T) {
		old := generatedPolicy("team", "netguard.gone.to.api", "Deployment/gone")
		if err := c.Create(context.Background(), old); err != nil {
			t.Fatal(err)
		}
		gone := webhooktest.Deployment("team", "gone", map[string]string{rules.AnnotationGenerated: "x"})
		gone.UID = "gone-uid"
		req := deployReview(t, gone)
		req.Operation = "UPDATE"
		req.OldObject = req.Object
		r := h.postBytes(t, PathValidateWorkload, review(req))
		if r.review == nil || !r.review.Response.Allowed {
			t.Fatalf("want allowed, got %s", r)
		}
		if got := generatedPolicies(t, c, "team"); !slices.Equal(got, []string{"netguard.gone.to.api"}) {
			t.Errorf("policies %v: the applier deleted before the caches are synced", got)
		}
		if err := c.Delete(context.Background(), old); err != nil {
			t.Fatal(err)
		}
	})

	// The workload was stored without netguard's mutation. Once synced, the
	// controller backfills what admission skipped.
	stored := d.DeepCopy()
	if err := c.Create(context.Background(), stored); err != nil {
		t.Fatal(err)
	}
	s.synced.Store(true)
	r := &workloadReconciler{s: s, kind: "Deployment", gvk: appsv1.SchemeGroupVersion.WithKind("Deployment"), client: c, recorder: events.NewFakeRecorder(10), orphanGrace: DefaultOrphanGrace}
	if _, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "team", Name: "web"}}); err != nil {
		t.Fatalf("backfill: %v", err)
	}
	if got, want := generatedPolicies(t, c, "team"), []string{"netguard.web.depends-on", "netguard.web.to.api"}; !slices.Equal(got, want) {
		t.Errorf("backfilled policies %v, want %v", got, want)
	}
	after := &appsv1.Deployment{}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(stored), after); err != nil {
		t.Fatal(err)
	}
	if after.Annotations[rules.AnnotationGenerated] == "" || after.Spec.Template.Labels[rules.LabelComponent] != "web" {
		t.Errorf("the workload was not given its record and component label: annotations %v, template labels %v", after.Annotations, after.Spec.Template.Labels)
	}

	// And the same requests are now served normally.
	resp := h.postBytes(t, PathValidateNetworkPolicy, review(npRequest("team", npJSON(t, "team"))))
	if resp.review == nil || !resp.review.Response.Allowed {
		t.Errorf("after sync a good NetworkPolicy: %s", resp)
	}
	resp = h.postBytes(t, PathMutateWorkload, review(deployReview(t, d)))
	if resp.review == nil || !resp.review.Response.Allowed || len(resp.review.Response.Patch) == 0 {
		t.Errorf("after sync an annotated Deployment is mutated: %s", resp)
	}
}

func generatedPolicy(ns, name, workload string) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{
		Namespace: ns, Name: name,
		Labels:      map[string]string{rules.LabelManagedBy: rules.ManagedByValue},
		Annotations: map[string]string{rules.AnnotationWorkload: workload},
	}}
}

// The retries against an unreachable API server never give up: past the
// backoff's cap they go on at the cap (wait.ExponentialBackoff would stop
// there, about a minute into an outage, and take the manager down).
func TestRetryForeverOutlastsTheCap(t *testing.T) {
	b := APIBackoff()
	b.Duration, b.Cap = time.Microsecond, 10*time.Microsecond
	calls := 0
	err := RetryForever(context.Background(), b, func(context.Context) (bool, error) {
		calls++
		return calls == 200, nil
	})
	if err != nil || calls != 200 {
		t.Fatalf("gave up after %d calls: %v", calls, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := RetryForever(ctx, b, func(context.Context) (bool, error) { return false, nil }); err == nil {
		t.Error("a cancelled context did not end the retries")
	}
}
