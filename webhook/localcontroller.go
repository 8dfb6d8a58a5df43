package webhook

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
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

// The LocalNetworkConfig controller keeps each object's policies true and
// reports in its status what it generated and what stops it. A
// LocalNetworkConfig's policies depend on other objects of its namespace:
// the selectors of the components it depends on, and who owns the
// components it declares. So a change to any LocalNetworkConfig or annotated
// workload re-reconciles the LocalNetworkConfigs that declare or depend on
// the components it declares (indexLocalComponents), and a NetworkProfile
// change those that use it (indexLocalProfiles).

const (
	// indexLocalComponents indexes LocalNetworkConfigs by the components
	// they declare and depend on.
	indexLocalComponents = "netguard.io/local-components"
	// indexLocalProfiles indexes LocalNetworkConfigs by the NetworkProfiles
	// they use.
	indexLocalProfiles = "netguard.io/local-profiles"

	// ConditionReady is the LocalNetworkConfig condition netguard writes.
	ConditionReady = "Ready"

	// maxStatusProblems bounds status.problems.
	maxStatusProblems = 20
)

type localReconciler struct {
	s           *Server
	client      client.Client
	orphanGrace time.Duration
}

func (r *localReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if r.s.cfg.namespaceExempt(req.Namespace) || r.s.namespaceIgnored(ctx, req.Namespace) {
		return reconcile.Result{}, nil
	}
	o := &netguardv1alpha1.LocalNetworkConfig{}
	if err := r.client.Get(ctx, req.NamespacedName, o); err != nil {
		if apierrors.IsNotFound(err) {
			return r.removeOrphans(ctx, req)
		}
		return reconcile.Result{}, err
	}
	if !o.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil
	}
	l := LocalConfigToRules(o, nil)
	res, err := r.s.injector.generateLocal(ctx, l, nil)
	if err != nil {
		return reconcile.Result{}, err
	}
	var problems []string
	blocking := false
	for _, e := range res.errs {
		problems = append(problems, e.Error())
		if e.Type != field.ErrorTypeDuplicate {
			blocking = true
		}
	}
	reason := "Generated"
	switch {
	case blocking:
		// Keep what exists, as for workloads: a profile that vanished for
		// a moment must not cut running pods off. The status says why.
		reason = "Invalid"
	case len(problems) > 0:
		reason = "ComponentConflict"
	case len(res.gen.OneSided) > 0:
		reason = "OneSidedConsent"
		for _, v := range res.gen.OneSided {
			problems = append(problems, v.Message)
		}
	}
	if !blocking {
		verdict, err := r.s.judgeLocal(ctx, l.Namespace, res.gen)
		if err != nil {
			return reconcile.Result{}, err
		}
		if len(verdict.denied) > 0 {
			blocking, reason = true, "LevelViolation"
			for _, v := range verdict.denied {
				problems = append(problems, "violates netguard "+quote(verdict.enforce)+": "+v.String())
			}
		}
	}
	var policies []string
	var applyErr error
	if !blocking {
		_, _, applyErr = r.s.injector.apply(ctx, localWorkload(l), rules.Generated{Policies: res.gen.Policies})
		if applyErr != nil {
			reason = "ApplyFailed"
			problems = append(problems, "could not write NetworkPolicies: "+applyErr.Error())
		}
		for _, p := range res.gen.Policies {
			policies = append(policies, p.Name)
		}
	} else {
		policies = r.heldPolicies(ctx, l)
	}
	if err := r.writeStatus(ctx, o, policies, problems, reason); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{}, applyErr
}

// heldPolicies names the policies l holds now.
func (r *localReconciler) heldPolicies(ctx context.Context, l rules.LocalConfig) []string {
	list := policyMetadataList()
	if err := r.client.List(ctx, list, client.InNamespace(l.Namespace), client.MatchingLabels{rules.LabelManagedBy: rules.ManagedByValue}); err != nil {
		return nil
	}
	var out []string
	for i := range list.Items {
		if list.Items[i].Annotations[rules.AnnotationWorkload] == l.Ref() {
			out = append(out, list.Items[i].Name)
		}
	}
	sort.Strings(out)
	return out
}

// writeStatus records the outcome, writing only when it changed.
func (r *localReconciler) writeStatus(ctx context.Context, o *netguardv1alpha1.LocalNetworkConfig, policies, problems []string, reason string) error {
	st := o.Status.DeepCopy()
	st.ObservedGeneration = o.Generation
	st.Policies = policies
	st.PolicyCount = int32(len(policies))
	all := len(problems)
	if len(problems) > maxStatusProblems {
		problems = problems[:maxStatusProblems]
	}
	st.Problems = problems
	cond := metav1.Condition{Type: ConditionReady, Status: metav1.ConditionTrue, Reason: reason, ObservedGeneration: o.Generation,
		Message: fmt.Sprintf("%d NetworkPolicies generated", len(policies))}
	if all > 0 {
		cond.Status = metav1.ConditionFalse
		cond.Message = fmt.Sprintf("%d problems (see status.problems); %d NetworkPolicies held", all, len(policies))
	}
	apimeta.SetStatusCondition(&st.Conditions, cond)
	if apiequality.Semantic.DeepEqual(*st, o.Status) {
		return nil
	}
	o.Status = *st
	err := r.client.Status().Update(ctx, o, client.FieldOwner(FieldManager))
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // a newer version is on its way
	}
	return err
}

// removeOrphans deletes the policies of a LocalNetworkConfig that does not
// exist and that carry no ownerReference (the garbage collector deletes the
// others): written at admission of a create that then failed. Policies
// younger than the grace wait: the object may be on its way.
func (r *localReconciler) removeOrphans(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	live := &netguardv1alpha1.LocalNetworkConfig{}
	if err := r.s.apiReader.Get(ctx, req.NamespacedName, live); err == nil {
		return reconcile.Result{RequeueAfter: time.Second}, nil // the cache is behind
	} else if !apierrors.IsNotFound(err) {
		return reconcile.Result{}, err
	}
	list := policyMetadataList()
	if err := r.client.List(ctx, list, client.InNamespace(req.Namespace), client.MatchingLabels{rules.LabelManagedBy: rules.ManagedByValue}); err != nil {
		return reconcile.Result{}, err
	}
	ref := rules.KindLocalNetworkConfig + "/" + req.Name
	var wait time.Duration
	for i := range list.Items {
		p := &list.Items[i]
		if p.Annotations[rules.AnnotationWorkload] != ref || len(p.OwnerReferences) > 0 {
			continue
		}
		if age := time.Since(p.CreationTimestamp.Time); age < r.orphanGrace {
			wait = max(wait, r.orphanGrace-age)
			continue
		}
		if err := r.client.Delete(ctx, p, client.Preconditions{UID: &p.UID}); client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
			return reconcile.Result{}, err
		}
		logf.FromContext(ctx).Info("deleted a generated policy whose LocalNetworkConfig does not exist", "policy", p.Name)
	}
	return reconcile.Result{RequeueAfter: wait}, nil
}

// localIndexValues are the component names o declares and depends on.
func localIndexValues(o *netguardv1alpha1.LocalNetworkConfig) []string {
	var out []string
	for name, c := range o.Spec.Components {
		out = append(out, name)
		for _, d := range c.DependsOn {
			if d.Component != "" && d.Namespace == "" {
				out = append(out, d.Component)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// relatedLocals enqueues the LocalNetworkConfigs of namespace that declare
// or depend on one of components, except skip.
func relatedLocals(ctx context.Context, c client.Reader, namespace string, components []string, skip string, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	seen := map[string]bool{skip: true}
	for _, comp := range components {
		list := &netguardv1alpha1.LocalNetworkConfigList{}
		if err := c.List(ctx, list, client.InNamespace(namespace), client.MatchingFields{indexLocalComponents: comp}); err != nil {
			logf.FromContext(ctx).Error(err, "list LocalNetworkConfigs by component", "component", comp)
			continue
		}
		for _, o := range list.Items {
			if !seen[o.Name] {
				seen[o.Name] = true
				q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: namespace, Name: o.Name}})
			}
		}
	}
}

// componentsHandler maps an object to the LocalNetworkConfigs its
// components concern, before and after an update. declared returns the
// components an object declares.
func componentsHandler(c client.Reader, declared func(client.Object) []string, self bool) handler.EventHandler {
	add := func(ctx context.Context, objs []client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		var comps []string
		var ns, skip string
		for _, o := range objs {
			if o == nil {
				continue
			}
			ns = o.GetNamespace()
			if self {
				skip = o.GetName()
			}
			comps = append(comps, declared(o)...)
		}
		slices.Sort(comps)
		relatedLocals(ctx, c, ns, slices.Compact(comps), skip, q)
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, []client.Object{e.Object}, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, []client.Object{e.ObjectOld, e.ObjectNew}, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, []client.Object{e.Object}, q)
		},
	}
}

// localDeclared are the components a LocalNetworkConfig declares.
func localDeclared(o client.Object) []string {
	l, ok := o.(*netguardv1alpha1.LocalNetworkConfig)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(l.Spec.Components))
	for name := range l.Spec.Components {
		out = append(out, name)
	}
	return out
}

// workloadDeclared is the component an annotated workload claims.
func workloadDeclared(kind string) func(client.Object) []string {
	return func(o client.Object) []string {
		if c, ok := rules.ClaimedComponent(toRulesWorkload(kind, o)); ok {
			return []string{c}
		}
		return nil
	}
}

// setupLocalController adds the LocalNetworkConfig controller.
func (s *Server) setupLocalController(mgr manager.Manager, grace time.Duration) error {
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &netguardv1alpha1.LocalNetworkConfig{}, indexLocalComponents, func(o client.Object) []string {
		return localIndexValues(o.(*netguardv1alpha1.LocalNetworkConfig))
	}); err != nil {
		return fmt.Errorf("index LocalNetworkConfigs by component: %w", err)
	}
	if err := idx.IndexField(ctx, &netguardv1alpha1.LocalNetworkConfig{}, indexLocalProfiles, localProfileNames); err != nil {
		return fmt.Errorf("index LocalNetworkConfigs by profile: %w", err)
	}
	if err := idx.IndexField(ctx, &netguardv1alpha1.LocalNetworkConfig{}, indexLocalConsentTargets, func(o client.Object) []string {
		return localConsentTargets(o.(*netguardv1alpha1.LocalNetworkConfig))
	}); err != nil {
		return fmt.Errorf("index LocalNetworkConfigs by cross-namespace dependency: %w", err)
	}
	c := mgr.GetClient()
	r := &localReconciler{s: s, client: c, orphanGrace: grace}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("localnetworkconfig").
		// Status writes do not change the generation and are not followed.
		For(&netguardv1alpha1.LocalNetworkConfig{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(policyMetadata(), settled(policyOwner(rules.KindLocalNetworkConfig), policySettle), builder.OnlyMetadata, builder.WithPredicates(managedPolicy())).
		Watches(&netguardv1alpha1.LocalNetworkConfig{}, componentsHandler(c, localDeclared, true), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&netguardv1alpha1.NetworkProfile{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			list := &netguardv1alpha1.LocalNetworkConfigList{}
			if err := c.List(ctx, list, client.MatchingFields{indexLocalProfiles: o.GetName()}); err != nil {
				logf.FromContext(ctx).Error(err, "list LocalNetworkConfigs using a profile", "profile", o.GetName())
				return nil
			}
			out := make([]reconcile.Request, 0, len(list.Items))
			for _, l := range list.Items {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: l.Namespace, Name: l.Name}})
			}
			return out
		}), builder.WithPredicates(predicate.GenerationChangedPredicate{}))
	for _, kind := range workloadKinds {
		meta := &metav1.PartialObjectMetadata{}
		meta.SetGroupVersionKind(workloadGVK(kind))
		b = b.Watches(meta, componentsHandler(c, workloadDeclared(kind), false), builder.OnlyMetadata, builder.WithPredicates(netguardWorkload()))
		// The other side of cross-namespace consent.
		b = b.Watches(workloadMetadata(kind), s.consentPeers(rules.KindLocalNetworkConfig, kind), builder.OnlyMetadata)
	}
	b = b.Watches(&netguardv1alpha1.LocalNetworkConfig{}, s.consentPeersHandler(rules.KindLocalNetworkConfig, localConsentDeclarations), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(namespaceMetadata(), handler.EnqueueRequestsFromMapFunc(s.namespaceLocalConsentPeers(c, rules.KindLocalNetworkConfig)), builder.OnlyMetadata, builder.WithPredicates(predicate.LabelChangedPredicate{}))
	return b.Complete(r)
}

// indexDependsOn indexes workloads by the components their
// netguard.io/depends-on names.
const indexDependsOn = "netguard.io/depends-on"

func dependsOnComponents(o client.Object) []string {
	v, ok := o.GetAnnotations()[rules.AnnotationDependsOn]
	if !ok {
		return nil
	}
	deps, _, _ := rules.ParseDependsOn(v, field.NewPath("metadata"))
	out := make([]string, 0, len(deps))
	for _, d := range deps {
		out = append(out, d.Component)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// localConsumers maps a LocalNetworkConfig (before and after an update) to
// the workloads of gvk that depend on a component it declares: the
// selector their policies use for it changed.
func localConsumers(c client.Reader, gvk schema.GroupVersionKind) handler.EventHandler {
	add := func(ctx context.Context, objs []client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		var comps []string
		ns := ""
		for _, o := range objs {
			if o != nil {
				ns = o.GetNamespace()
				comps = append(comps, localDeclared(o)...)
			}
		}
		slices.Sort(comps)
		seen := map[string]bool{}
		for _, comp := range slices.Compact(comps) {
			list := &metav1.PartialObjectMetadataList{}
			list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
			if err := c.List(ctx, list, client.InNamespace(ns), client.MatchingFields{indexDependsOn: comp}); err != nil {
				logf.FromContext(ctx).Error(err, "list workloads depending on a component", "component", comp)
				continue
			}
			for _, w := range list.Items {
				if !seen[w.Name] {
					seen[w.Name] = true
					q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: w.Name}})
				}
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, []client.Object{e.Object}, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, []client.Object{e.ObjectOld, e.ObjectNew}, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, []client.Object{e.Object}, q)
		},
	}
}

// localProfileNames are the NetworkProfiles a LocalNetworkConfig's
// components list, sorted (the indexLocalProfiles index).
func localProfileNames(o client.Object) []string {
	var out []string
	for _, c := range o.(*netguardv1alpha1.LocalNetworkConfig).Spec.Components {
		for _, d := range c.DependsOn {
			if d.NetworkProfile != "" {
				out = append(out, d.NetworkProfile)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
