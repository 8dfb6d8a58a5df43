package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
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

// NewScheme knows the built-in kinds, NetworkProfile and LocalNetworkConfig.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := netguardv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// indexProfiles indexes workloads by the NetworkProfiles they reference, so a
// profile change finds its workloads without a scan.
const indexProfiles = "netguard.io/profiles"

// workloadReconciler keeps one kind's generated policies true: it backfills
// workloads admitted while netguard was away, restores edited or deleted
// policies, follows profile changes and removes what is no longer declared.
// It reads workloads as metadata only: annotations are all it needs.
type workloadReconciler struct {
	s           *Server
	kind        string
	gvk         schema.GroupVersionKind
	client      client.Client
	recorder    events.EventRecorder
	orphanGrace time.Duration
}

func (r *workloadReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := logf.FromContext(ctx)
	if r.s.cfg.namespaceExempt(req.Namespace) || r.s.namespaceIgnored(ctx, req.Namespace) {
		return reconcile.Result{}, nil
	}
	o := &metav1.PartialObjectMetadata{}
	o.SetGroupVersionKind(r.gvk)
	if err := r.client.Get(ctx, req.NamespacedName, o); err != nil {
		if apierrors.IsNotFound(err) {
			return r.removeOrphans(ctx, req)
		}
		return reconcile.Result{}, err
	}
	if !o.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil
	}
	if _, owned := rules.TemplateOwner(r.kind, o.OwnerReferences); owned {
		// Made from a template netguard handled; annotations copied from
		// the template mean nothing here.
		return reconcile.Result{}, nil
	}
	w := toRulesWorkload(r.kind, o)
	if !rules.IsAnnotated(w.Annotations) {
		if _, err := r.s.injector.release(ctx, w); err != nil {
			return reconcile.Result{}, err
		}
		if _, ok := w.Annotations[rules.AnnotationGenerated]; ok {
			return reconcile.Result{}, r.patchWorkload(ctx, o, nil, "")
		}
		return reconcile.Result{}, nil
	}
	gen, ferrs, err := r.s.injector.generate(ctx, w)
	if err != nil {
		return reconcile.Result{}, err
	}
	if len(ferrs) > 0 {
		// Keep what exists: a profile that vanished for a moment must not cut
		// a running workload off. The event and the audit say why.
		r.recorder.Eventf(o, nil, corev1.EventTypeWarning, "GenerationFailed", "Generate", "netguard could not generate NetworkPolicies: %s", ferrs.ToAggregate().Error())
		return reconcile.Result{}, nil
	}
	owner, err := r.s.injector.componentOwner(ctx, w, gen.Component, false)
	if err != nil {
		return reconcile.Result{}, err
	}
	if owner != nil {
		return reconcile.Result{}, r.yieldComponent(ctx, o, w, gen.Component, *owner)
	}
	if verdict, err := r.s.judgeGenerated(ctx, w, gen); err != nil {
		return reconcile.Result{}, err
	} else if len(verdict.denied) > 0 {
		// As for errors: keep what exists, say why.
		r.recorder.Eventf(o, nil, corev1.EventTypeWarning, "GenerationFailed", "Generate", "netguard will not generate NetworkPolicies that violate netguard %s: %s", quote(verdict.enforce), joinViolations(verdict.denied))
		return reconcile.Result{}, nil
	}
	applied, deleted, err := r.s.injector.apply(ctx, w, gen.Generated)
	if err != nil {
		r.recorder.Eventf(o, nil, corev1.EventTypeWarning, "GenerationFailed", "Apply", "netguard could not write NetworkPolicies: %v", err)
		return reconcile.Result{}, err
	}
	record := gen.Record().String()
	if w.Annotations[rules.AnnotationGenerated] != record {
		if err := r.patchWorkload(ctx, o, &gen.Generated, record); err != nil {
			return reconcile.Result{}, err
		}
		r.recorder.Eventf(o, nil, corev1.EventTypeNormal, "PoliciesGenerated", "Generate", "netguard generated NetworkPolicies %s (digest %s)", strings.Join(applied, ", "), short(gen.Digest))
		log.Info("backfilled generated policies", "applied", applied, "deleted", deleted)
	} else if len(deleted) > 0 {
		r.recorder.Eventf(o, nil, corev1.EventTypeNormal, "PoliciesPruned", "Generate", "netguard deleted NetworkPolicies no longer declared: %s", strings.Join(deleted, ", "))
	}
	return reconcile.Result{}, nil
}

// DefaultOrphanGrace is how long policies written while a workload was being
// created may wait for it to be stored before they are taken for a failed create.
const DefaultOrphanGrace = 30 * time.Second

// removeOrphans handles a workload that is not there. Policies with an
// ownerReference are the garbage collector's to delete. Policies without one
// were either written while the workload was being created (if the create
// failed, nothing else will remove them), or orphaned by a `--cascade=orphan`
// deletion, whose pods live on and still need them: those are kept while
// pods of their component run (orphanClaimed), and adopted by a workload of
// the same name created later.
func (r *workloadReconciler) removeOrphans(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	live := &metav1.PartialObjectMetadata{}
	live.SetGroupVersionKind(r.gvk)
	if err := r.s.apiReader.Get(ctx, req.NamespacedName, live); err == nil {
		return reconcile.Result{RequeueAfter: time.Second}, nil // the cache is behind
	} else if !apierrors.IsNotFound(err) {
		return reconcile.Result{}, err
	}
	list := policyMetadataList()
	if err := r.client.List(ctx, list, client.InNamespace(req.Namespace), client.MatchingLabels{rules.LabelManagedBy: rules.ManagedByValue}); err != nil {
		return reconcile.Result{}, err
	}
	ref := r.kind + "/" + req.Name
	// Policies it had taken over from the owner of its component go back
	// to that owner instead.
	keep, err := r.s.injector.restoreOwners(ctx, rules.Workload{Kind: r.kind, Namespace: req.Namespace, Name: req.Name})
	if err != nil {
		return reconcile.Result{}, err
	}
	var wait time.Duration
	claimed := map[string]bool{} // by component: one pod list each
	for i := range list.Items {
		p := &list.Items[i]
		if p.Annotations[rules.AnnotationWorkload] != ref || len(p.OwnerReferences) > 0 || slices.Contains(keep, p.Name) {
			continue
		}
		if age := time.Since(p.CreationTimestamp.Time); age < r.orphanGrace {
			wait = max(wait, r.orphanGrace-age)
			continue
		}
		component := p.Labels[rules.LabelComponent]
		running, seen := claimed[component]
		if !seen {
			var err error
			if running, err = r.orphanClaimed(ctx, req.Namespace, component); err != nil {
				return reconcile.Result{}, err
			}
			claimed[component] = running
		}
		if running {
			// Looked at again until the pods are gone or a workload of
			// this name adopts the policies.
			logf.FromContext(ctx).V(1).Info("keeping generated policies whose workload was deleted: pods of their component still run", "policy", p.Name, "component", component)
			wait = max(wait, r.orphanGrace)
			continue
		}
		if err := r.client.Delete(ctx, p, client.Preconditions{UID: &p.UID}); client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
			return reconcile.Result{}, err
		}
		logf.FromContext(ctx).Info("deleted a generated policy whose workload does not exist and whose component has no pods", "policy", p.Name, "component", component)
	}
	return reconcile.Result{RequeueAfter: wait}, nil
}

func short(digest string) string {
	if len(digest) > 12 {
		return digest[:12]
	}
	return digest
}

// patchWorkload sets (or, with gen nil, removes) the generated record and the
// pod template's component label, as the mutating webhook would have.
func (r *workloadReconciler) patchWorkload(ctx context.Context, o *metav1.PartialObjectMetadata, gen *rules.Generated, record string) error {
	var patch map[string]any
	if gen == nil {
		patch = map[string]any{"metadata": map[string]any{"annotations": map[string]any{rules.AnnotationGenerated: nil}}}
	} else {
		patch = mergePatches(
			map[string]any{"metadata": map[string]any{"annotations": map[string]any{rules.AnnotationGenerated: record}}},
			podLabelsMergePatch(r.workloadKind(), map[string]any{rules.LabelComponent: gen.Component}))
	}
	target := &metav1.PartialObjectMetadata{}
	target.SetGroupVersionKind(r.gvk)
	target.SetNamespace(o.Namespace)
	target.SetName(o.Name)
	err := r.client.Patch(ctx, target, client.RawPatch(types.MergePatchType, encodePatch(patch)), client.FieldOwner(FieldManager))
	return client.IgnoreNotFound(err)
}

func (r *workloadReconciler) workloadKind() rules.WorkloadKind {
	k, _ := rules.LookupWorkloadKind(r.kind)
	return k
}

// mergePatches merges JSON merge patches b into a (maps merge, b wins).
func mergePatches(a, b map[string]any) map[string]any {
	for k, v := range b {
		am, aok := a[k].(map[string]any)
		bm, bok := v.(map[string]any)
		if aok && bok {
			a[k] = mergePatches(am, bm)
			continue
		}
		a[k] = v
	}
	return a
}

// encodePatch encodes a patch built from maps of strings, which always encodes.
func encodePatch(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("netguard: encode patch: %v", err))
	}
	return b
}

// namespaceReconciler gives every guarded namespace its baseline: the
// netguard-default-deny policy and the DNS allowance. A namespace is guarded
// when it is not exempt, not labelled netguard.io/ignore, and its enforce
// level is above privileged, so that an audit-only rollout changes no traffic.
// A namespace that stops being guarded loses the baseline netguard gave it,
// so that labelling a namespace privileged, in whichever order it happens,
// leaves default-deny.
type namespaceReconciler struct {
	s        *Server
	client   client.Client
	baseline rules.BaselineOptions
}

func (r *namespaceReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	ns := namespaceMetadata()
	if err := r.client.Get(ctx, types.NamespacedName{Name: req.Name}, ns); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !ns.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil
	}
	if why := r.unguarded(ns); why != "" {
		return reconcile.Result{}, r.removeBaseline(ctx, req.Name, why)
	}
	for _, np := range rules.NamespaceBaseline(req.Name, r.baseline) {
		if err := r.s.injector.applyPolicy(ctx, np); err != nil {
			if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
				// The namespace is being deleted.
				return reconcile.Result{RequeueAfter: 10 * time.Second}, nil
			}
			return reconcile.Result{}, err
		}
	}
	return reconcile.Result{}, nil
}

// ControllerOptions configure SetupControllers.
type ControllerOptions struct {
	Baseline rules.BaselineOptions
	// OrphanGrace defaults to DefaultOrphanGrace.
	OrphanGrace time.Duration
}

// SetupControllers adds the leader-elected controllers to mgr.
func (s *Server) SetupControllers(mgr manager.Manager, o ControllerOptions) error {
	ctx := context.Background()
	recorder := mgr.GetEventRecorder("netguard")
	for _, kind := range workloadKinds {
		gvk := workloadGVK(kind)
		meta := &metav1.PartialObjectMetadata{}
		meta.SetGroupVersionKind(gvk)
		if err := mgr.GetFieldIndexer().IndexField(ctx, meta, indexProfiles, func(o client.Object) []string {
			if _, owned := rules.TemplateOwner(kind, o.GetOwnerReferences()); owned {
				return nil // made from a template: not a user of its own
			}
			v, ok := o.GetAnnotations()[rules.AnnotationProfiles]
			if !ok {
				return nil
			}
			names, _, _ := rules.ParseProfiles(v, field.NewPath("metadata"))
			return names
		}); err != nil {
			return fmt.Errorf("index %s by profile: %w", kind, err)
		}
		if err := mgr.GetFieldIndexer().IndexField(ctx, meta, indexDependsOn, dependsOnComponents); err != nil {
			return fmt.Errorf("index %s by dependency: %w", kind, err)
		}
		if err := mgr.GetFieldIndexer().IndexField(ctx, meta, indexComponent, componentIndexValue(kind)); err != nil {
			return fmt.Errorf("index %s by component: %w", kind, err)
		}
		if err := mgr.GetFieldIndexer().IndexField(ctx, meta, indexConsentTargets, consentTargetsIndexValue); err != nil {
			return fmt.Errorf("index %s by cross-namespace dependency: %w", kind, err)
		}
		grace := o.OrphanGrace
		if grace <= 0 {
			grace = DefaultOrphanGrace
		}
		r := &workloadReconciler{s: s, kind: kind, gvk: gvk, client: mgr.GetClient(), recorder: recorder, orphanGrace: grace}
		b := ctrl.NewControllerManagedBy(mgr).
			Named("workload-"+strings.ToLower(kind)).
			For(meta, builder.OnlyMetadata, builder.WithPredicates(netguardWorkload()))
		// The other side of cross-namespace consent, of every kind, and
		// namespaces whose labels (selectors, levels) change.
		for _, src := range workloadKinds {
			b = b.WatchesMetadata(workloadMetadata(src), s.consentPeers(kind, src))
		}
		err := b.
			Watches(namespaceMetadata(), handler.EnqueueRequestsFromMapFunc(s.namespaceConsentPeers(mgr.GetClient(), kind)), builder.OnlyMetadata, builder.WithPredicates(predicate.LabelChangedPredicate{})).
			Watches(policyMetadata(), settled(policyOwner(kind), policySettle), builder.OnlyMetadata, builder.WithPredicates(managedPolicy())).
			// A change of a profile's rules changes its generation; the
			// status writes of profile-usage do not, and are not followed.
			Watches(&netguardv1alpha1.NetworkProfile{}, handler.EnqueueRequestsFromMapFunc(profileUsers(mgr.GetClient(), gvk)), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
			// A LocalNetworkConfig's components are selected by their
			// podSelector: its dependents follow it.
			Watches(&netguardv1alpha1.LocalNetworkConfig{}, localConsumers(mgr.GetClient(), gvk), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
			// And the other side of cross-namespace consent, when it is a
			// LocalNetworkConfig's component.
			Watches(&netguardv1alpha1.LocalNetworkConfig{}, s.consentPeersHandler(kind, localConsentDeclarations), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
			Watches(namespaceMetadata(), handler.EnqueueRequestsFromMapFunc(s.namespaceLocalConsentPeers(mgr.GetClient(), kind)), builder.OnlyMetadata, builder.WithPredicates(predicate.LabelChangedPredicate{})).
			Complete(r)
		if err != nil {
			return fmt.Errorf("%s controller: %w", kind, err)
		}
	}
	s.injector.indexed.Store(true)
	if err := setupProfileUsage(mgr); err != nil {
		return err
	}
	grace := o.OrphanGrace
	if grace <= 0 {
		grace = DefaultOrphanGrace
	}
	if err := s.setupLocalController(mgr, grace); err != nil {
		return err
	}
	nr := &namespaceReconciler{s: s, client: mgr.GetClient(), baseline: o.Baseline}
	return ctrl.NewControllerManagedBy(mgr).
		Named("namespace-baseline").
		For(namespaceMetadata(), builder.OnlyMetadata).
		Watches(policyMetadata(), handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			if o.GetName() != rules.DefaultDenyPolicyName && o.GetName() != rules.AllowDNSPolicyName {
				return nil
			}
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: o.GetNamespace()}}}
		}), builder.OnlyMetadata, builder.WithPredicates(managedPolicy())).
		Complete(nr)
}

// netguardWorkload passes workloads that carry netguard annotations or a
// generated record, before or after an update, so that removing the
// annotations is seen too.
func netguardWorkload() predicate.Predicate {
	has := func(o client.Object) bool { return o != nil && hasNetguardState(o.GetAnnotations()) }
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return has(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool { return has(e.ObjectOld) || has(e.ObjectNew) },
		// A deleted workload is looked at once more (removeOrphans):
		// policies an orphaning deletion left behind are kept or removed.
		DeleteFunc:  func(e event.DeleteEvent) bool { return has(e.Object) },
		GenericFunc: func(e event.GenericEvent) bool { return has(e.Object) },
	}
}

// policySettle delays reconciles caused by a generated policy's events. The
// validating workload webhook writes a workload's new policies before the
// updated workload is stored; reconciling on those writes at once would read
// the old workload from the cache and undo them (delete a just-created
// policy, restore a just-removed one). By the time the delay ends the
// updated workload is in the cache, and an edit by anyone else is still
// repaired, a moment later.
const policySettle = 2 * time.Second

// settled enqueues what mapFn returns after delay instead of at once.
func settled(mapFn handler.MapFunc, delay time.Duration) handler.EventHandler {
	add := func(ctx context.Context, o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		if o == nil {
			return
		}
		for _, req := range mapFn(ctx, o) {
			q.AddAfter(req, delay)
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.ObjectNew, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
	}
}

// managedPolicy passes only policies netguard generated.
func managedPolicy() predicate.Predicate {
	return predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetLabels()[rules.LabelManagedBy] == rules.ManagedByValue
	})
}

// policyOwner maps a generated policy to the workload of kind that owns it.
func policyOwner(kind string) handler.MapFunc {
	return func(_ context.Context, o client.Object) []reconcile.Request {
		ref := o.GetAnnotations()[rules.AnnotationWorkload]
		k, name, ok := strings.Cut(ref, "/")
		if !ok || k != kind || name == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
	}
}

// profileUsers maps a NetworkProfile to the workloads of gvk that reference it.
func profileUsers(c client.Client, gvk schema.GroupVersionKind) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.List(ctx, list, client.MatchingFields{indexProfiles: o.GetName()}); err != nil {
			logf.FromContext(ctx).Error(err, "list workloads using a profile", "profile", o.GetName())
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, w := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: w.Namespace, Name: w.Name}})
		}
		return reqs
	}
}

// yieldComponent handles w, which claims component although owner owns it:
// w gets nothing, the owner's policies are restored if w had taken them
// over, and what netguard had injected into w (its record and the pod
// template's component label, which would give its pods the owner's paths)
// is removed.
func (r *workloadReconciler) yieldComponent(ctx context.Context, o *metav1.PartialObjectMetadata, w rules.Workload, component string, owner rules.Workload) error {
	if _, err := r.s.injector.release(ctx, w); err != nil {
		return err
	}
	r.recorder.Eventf(o, nil, corev1.EventTypeWarning, "GenerationFailed", "Generate", "netguard generates nothing for this workload: component %q is already declared by %s; give each workload its own component", component, owner.Ref())
	if _, ok := w.Annotations[rules.AnnotationGenerated]; !ok {
		return nil
	}
	patch := mergePatches(
		map[string]any{"metadata": map[string]any{"annotations": map[string]any{rules.AnnotationGenerated: nil}}},
		podLabelsMergePatch(r.workloadKind(), map[string]any{rules.LabelComponent: nil}))
	target := &metav1.PartialObjectMetadata{}
	target.SetGroupVersionKind(r.gvk)
	target.SetNamespace(o.Namespace)
	target.SetName(o.Name)
	err := r.client.Patch(ctx, target, client.RawPatch(types.MergePatchType, encodePatch(patch)), client.FieldOwner(FieldManager))
	if apierrors.IsInvalid(err) {
		// The workload's own selector needs the label: leave the label,
		// drop the record, and say so.
		r.recorder.Eventf(o, nil, corev1.EventTypeWarning, "GenerationFailed", "Generate", "netguard could not remove the pod label %s=%s, which gives this workload's pods the paths of %s: %v", rules.LabelComponent, component, owner.Ref(), err)
		return r.patchWorkload(ctx, o, nil, "")
	}
	return client.IgnoreNotFound(err)
}
