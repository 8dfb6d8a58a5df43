package webhook

import (
	"context"
	"fmt"
	"maps"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
)

// profileUsageReconciler keeps a NetworkProfile's status.usedBy: the number
// of workloads of the cached kinds whose netguard.io/profiles annotation
// lists it, plus the LocalNetworkConfig components that list it. It counts from the cache's profile index, and writes the status
// subresource only when the count or the observed generation changed.
type profileUsageReconciler struct {
	client client.Client
}

func (r *profileUsageReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	p := &netguardv1alpha1.NetworkProfile{}
	if err := r.client.Get(ctx, req.NamespacedName, p); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !p.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil
	}
	n, err := countProfileUsers(ctx, r.client, p.Name)
	if err != nil {
		return reconcile.Result{}, err
	}
	if p.Status.UsedBy == n && p.Status.ObservedGeneration == p.Generation {
		return reconcile.Result{}, nil
	}
	base := p.DeepCopy()
	p.Status.UsedBy = n
	p.Status.ObservedGeneration = p.Generation
	// The merge patch carries the resourceVersion: a count made from an
	// older profile is not written over a newer status.
	err = r.client.Status().Patch(ctx, p, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}), client.FieldOwner(FieldManager))
	switch {
	case apierrors.IsConflict(err):
		return reconcile.Result{Requeue: true}, nil
	case apierrors.IsNotFound(err):
		// The profile is gone, or its CRD predates the status subresource
		// (Helm does not upgrade CRDs; docs/install.md).
		logf.FromContext(ctx).V(1).Info("could not write the status of a NetworkProfile; is the CRD up to date?", "profile", p.Name, "error", err.Error())
		return reconcile.Result{}, nil
	}
	return reconcile.Result{}, err
}

// countProfileUsers counts the workloads of every cached kind that list
// profile in their netguard.io/profiles annotation, and the
// LocalNetworkConfig components that list it in their dependsOn.
func countProfileUsers(ctx context.Context, c client.Reader, profile string) (int32, error) {
	var n int32
	for _, kind := range workloadKinds {
		list := workloadMetadataList(kind)
		if err := c.List(ctx, list, client.MatchingFields{indexProfiles: profile}); err != nil {
			return 0, fmt.Errorf("list %ss using NetworkProfile %s: %w", kind, profile, err)
		}
		n += int32(len(list.Items))
	}
	locals := &netguardv1alpha1.LocalNetworkConfigList{}
	if err := c.List(ctx, locals, client.MatchingFields{indexLocalProfiles: profile}); err != nil {
		return 0, fmt.Errorf("list LocalNetworkConfigs using NetworkProfile %s: %w", profile, err)
	}
	for i := range locals.Items {
		for _, comp := range locals.Items[i].Spec.Components {
			if slices.ContainsFunc(comp.DependsOn, func(d netguardv1alpha1.LocalDependency) bool { return d.NetworkProfile == profile }) {
				n++
			}
		}
	}
	return n, nil
}

// localProfiles enqueues the profiles a LocalNetworkConfig's components
// list, before and after an update.
func localProfiles() handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		if _, ok := o.(*netguardv1alpha1.LocalNetworkConfig); !ok {
			return nil
		}
		var out []reconcile.Request
		for _, n := range localProfileNames(o) {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: n}})
		}
		return out
	})
}

// listedProfiles are the profile names a workload's annotation lists, as the
// index has them.
func listedProfiles(o client.Object) []string {
	if o == nil {
		return nil
	}
	v, ok := o.GetAnnotations()[rules.AnnotationProfiles]
	if !ok {
		return nil
	}
	names, _, _ := rules.ParseProfiles(v, field.NewPath("metadata"))
	return names
}

// workloadProfiles enqueues the profiles a workload lists, before and after
// an update, and nothing for an update that leaves the annotation alone (a
// Deployment's status changes often).
func workloadProfiles() handler.EventHandler {
	add := func(q workqueue.TypedRateLimitingInterface[reconcile.Request], objs ...client.Object) {
		names := map[string]bool{}
		for _, o := range objs {
			for _, n := range listedProfiles(o) {
				names[n] = true
			}
		}
		for _, n := range slices.Sorted(maps.Keys(names)) {
			q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Name: n}})
		}
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q, e.Object)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if e.ObjectOld == nil || e.ObjectNew == nil {
				return
			}
			before, hadBefore := e.ObjectOld.GetAnnotations()[rules.AnnotationProfiles]
			after, hasAfter := e.ObjectNew.GetAnnotations()[rules.AnnotationProfiles]
			if before == after && hadBefore == hasAfter {
				return
			}
			add(q, e.ObjectOld, e.ObjectNew)
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q, e.Object)
		},
		GenericFunc: func(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q, e.Object)
		},
	}
}

// setupProfileUsage adds the controller of status.usedBy. The workload
// informers and the profile index are the ones the workload controllers use.
func setupProfileUsage(mgr manager.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		Named("profile-usage").
		// Its own status writes do not change the generation.
		For(&netguardv1alpha1.NetworkProfile{}, builder.WithPredicates(predicate.GenerationChangedPredicate{}))
	for _, kind := range workloadKinds {
		meta := workloadMetadata(kind)
		b = b.Watches(meta, workloadProfiles(), builder.OnlyMetadata)
	}
	// EnqueueRequestsFromMapFunc maps both sides of an update.
	b = b.Watches(&netguardv1alpha1.LocalNetworkConfig{}, localProfiles(), builder.WithPredicates(predicate.GenerationChangedPredicate{}))
	if err := b.Complete(&profileUsageReconciler{client: mgr.GetClient()}); err != nil {
		return fmt.Errorf("profile-usage controller: %w", err)
	}
	return nil
}
