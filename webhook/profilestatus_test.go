package webhook

import (
	"context"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
)

// status.usedBy counts the workloads of every kind whose annotation lists
// the profile, and is written only when it changes.
func TestProfileUsageCountsUsers(t *testing.T) {
	ctx := context.Background()
	uses := func(o client.Object, profiles string) client.Object {
		o.SetAnnotations(map[string]string{rules.AnnotationProfiles: profiles})
		return o
	}
	c := fake.NewClientBuilder().WithScheme(NewScheme()).
		WithStatusSubresource(&netguardv1alpha1.NetworkProfile{}).
		WithIndex(&appsv1.Deployment{}, indexProfiles, func(o client.Object) []string { return listedProfiles(o) }).
		WithIndex(&appsv1.StatefulSet{}, indexProfiles, func(o client.Object) []string { return listedProfiles(o) }).
		WithIndex(&appsv1.DaemonSet{}, indexProfiles, func(o client.Object) []string { return listedProfiles(o) }).
		WithIndex(&batchv1.Job{}, indexProfiles, func(o client.Object) []string { return listedProfiles(o) }).
		WithIndex(&batchv1.CronJob{}, indexProfiles, func(o client.Object) []string { return listedProfiles(o) }).
		WithIndex(&corev1.Pod{}, indexProfiles, func(o client.Object) []string { return listedProfiles(o) }).
		WithIndex(&netguardv1alpha1.LocalNetworkConfig{}, indexLocalProfiles, localProfileNames).
		WithObjects(
			&netguardv1alpha1.NetworkProfile{ObjectMeta: metav1.ObjectMeta{Name: "dns", Generation: 3}},
			&netguardv1alpha1.NetworkProfile{ObjectMeta: metav1.ObjectMeta{Name: "unused", Generation: 1}},
			uses(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "web"}}, "dns, scrape"),
			uses(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "web"}}, "scrape"),
			uses(&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "db"}}, "dns"),
			uses(&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "c", Name: "agent"}}, "dns"),
			// Two components of a LocalNetworkConfig use it, a third does not.
			&netguardv1alpha1.LocalNetworkConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "d", Name: "platform"}, Spec: netguardv1alpha1.LocalNetworkConfigSpec{
				Components: map[string]netguardv1alpha1.LocalComponent{
					"manager":  {DependsOn: []netguardv1alpha1.LocalDependency{{NetworkProfile: "dns"}}},
					"instance": {DependsOn: []netguardv1alpha1.LocalDependency{{NetworkProfile: "dns"}, {NetworkProfile: "scrape"}}},
					"ui":       {DependsOn: []netguardv1alpha1.LocalDependency{{NetworkProfile: "scrape"}}},
				}}},
		).Build()
	r := &profileUsageReconciler{client: c}
	get := func(name string) *netguardv1alpha1.NetworkProfile {
		t.Helper()
		p := &netguardv1alpha1.NetworkProfile{}
		if err := c.Get(ctx, types.NamespacedName{Name: name}, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, name := range []string{"dns", "unused"} {
		if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Name: name}}); err != nil {
			t.Fatalf("reconcile %s: %v", name, err)
		}
	}
	dns := get("dns")
	if dns.Status.UsedBy != 5 || dns.Status.ObservedGeneration != 3 {
		t.Errorf("dns status = %+v, want usedBy 5 (a/web, b/db, c/agent, d/platform's manager and instance), observedGeneration 3", dns.Status)
	}
	if u := get("unused"); u.Status.UsedBy != 0 || u.Status.ObservedGeneration != 1 {
		t.Errorf("unused status = %+v, want usedBy 0, observedGeneration 1", u.Status)
	}
	// Nothing changed: no write.
	if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Name: "dns"}}); err != nil {
		t.Fatal(err)
	}
	if again := get("dns"); again.ResourceVersion != dns.ResourceVersion {
		t.Errorf("an unchanged count was written again: resourceVersion %s, then %s", dns.ResourceVersion, again.ResourceVersion)
	}
	// A user drops the profile.
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "a", Name: "web"}, d); err != nil {
		t.Fatal(err)
	}
	if err := c.Update(ctx, uses(d, "scrape")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Name: "dns"}}); err != nil {
		t.Fatal(err)
	}
	if got := get("dns").Status.UsedBy; got != 4 {
		t.Errorf("after a/web dropped the profile usedBy = %d, want 4", got)
	}
	// A profile that does not exist is not an error.
	if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Name: "gone"}}); err != nil {
		t.Errorf("reconcile of a missing profile: %v", err)
	}
}

// A workload write enqueues the profiles it lists before and after, and an
// update that leaves the annotation alone enqueues nothing.
func TestWorkloadProfilesEnqueuesOnlyAnnotationChanges(t *testing.T) {
	ctx := context.Background()
	meta := func(profiles string, replicas string) client.Object {
		o := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "web", Annotations: map[string]string{"deployment.kubernetes.io/revision": replicas}}}
		if profiles != "" {
			o.Annotations[rules.AnnotationProfiles] = profiles
		}
		return o
	}
	queued := func(f func(workqueue.TypedRateLimitingInterface[reconcile.Request])) []string {
		q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
		defer q.ShutDown()
		f(q)
		var out []string
		for q.Len() > 0 {
			r, _ := q.Get()
			out = append(out, r.Name)
			q.Done(r)
		}
		slices.Sort(out)
		return out
	}
	h := workloadProfiles()
	for _, tc := range []struct {
		name     string
		old, new client.Object
		want     []string
	}{
		{"profile swapped", meta("dns, scrape", "1"), meta("dns, egress", "1"), []string{"dns", "egress", "scrape"}},
		{"annotation removed", meta("dns", "1"), meta("", "1"), []string{"dns"}},
		{"other change", meta("dns", "1"), meta("dns", "2"), nil},
	} {
		got := queued(func(q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			h.Update(ctx, event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.new}, q)
		})
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: enqueued %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := queued(func(q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		h.Delete(ctx, event.DeleteEvent{Object: meta("dns", "1")}, q)
	}); !slices.Equal(got, []string{"dns"}) {
		t.Errorf("delete: enqueued %v, want [dns]", got)
	}
}
