package webhook

import (
	"context"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"k8s.io/client-go/util/workqueue"

	"github.com/netguard/netguard/rules"
)

// Cross-namespace consent (rules/consent.go) needs the other side of every
// declaration: the owner of the component a consumer names, and the
// consumers that name a provider. Both are answered from the informer cache
// through two field indexes on workload metadata, so that neither admission
// nor the controller scans the cluster:
//
//	indexComponent      the component a workload claims           (provider lookup, namespaced)
//	indexConsentTargets the NAMESPACE/COMPONENT its depends-on names in other namespaces
//	                                                              (consumer lookup, cluster-wide)
//
// A replica that runs no controllers (--disable-controllers) registers no
// indexes and falls back to a scan of the cached metadata.
const (
	indexComponent      = "netguard.io/component"
	indexConsentTargets = "netguard.io/consent-targets"
)

func componentIndexValue(kind string) client.IndexerFunc {
	return func(o client.Object) []string {
		if c, ok := rules.ClaimedComponent(toRulesWorkload(kind, o)); ok {
			return []string{c}
		}
		return nil
	}
}

func consentTargetsIndexValue(o client.Object) []string {
	a := o.GetAnnotations()
	if !rules.HasConsentDeclarations(a) {
		return nil
	}
	deps, _, errs := rules.ParseDependsOn(a[rules.AnnotationDependsOn], field.NewPath("metadata"))
	if len(errs) > 0 {
		return nil
	}
	return rules.CrossNamespaceTargets(o.GetNamespace(), deps)
}

// listIndexed lists the workloads of kind (in namespace, "" for all) whose
// index holds value.
func (in *injector) listIndexed(ctx context.Context, kind, namespace, index, value string) ([]metav1.PartialObjectMetadata, error) {
	opts := []client.ListOption{client.UnsafeDisableDeepCopy}
	if namespace != "" {
		opts = append(opts, client.InNamespace(namespace))
	}
	list := workloadMetadataList(kind)
	if in.indexed.Load() {
		if err := in.cache.List(ctx, list, append(opts, client.MatchingFields{index: value})...); err != nil {
			return nil, fmt.Errorf("list %ss by %s: %w", kind, index, err)
		}
		return list.Items, nil
	}
	if err := in.cache.List(ctx, list, opts...); err != nil {
		return nil, fmt.Errorf("list %ss: %w", kind, err)
	}
	var extract client.IndexerFunc = consentTargetsIndexValue
	if index == indexComponent {
		extract = componentIndexValue(kind)
	}
	var out []metav1.PartialObjectMetadata
	for i := range list.Items {
		if slices.Contains(extract(&list.Items[i]), value) {
			out = append(out, list.Items[i])
		}
	}
	return out, nil
}

// namespaceLabels are ns's labels, nil when the injector has no namespace
// reader (only the name is known then).
func (in *injector) namespaceLabels(ctx context.Context, ns string) (map[string]string, error) {
	if in.namespaces == nil {
		return nil, nil
	}
	return in.namespaces.NamespaceLabels(ctx, ns)
}

// consentClosed is the platform's verdict on consent in namespace.
func (in *injector) consentClosed(namespace string, labels map[string]string) string {
	p, _ := rules.PolicyForNamespace(in.defaults, labels)
	return in.crossNamespace.Closed(namespace, p.Enforce.Level)
}

// consent finds what other namespaces declare towards w (ann are its parsed
// annotations), or nil when w declares nothing across namespaces.
func (in *injector) consent(ctx context.Context, w rules.Workload, ann rules.Annotations) (*rules.Consent, error) {
	targets := rules.CrossNamespaceTargets(w.Namespace, ann.DependsOn)
	if len(targets) == 0 && len(ann.ExposeTo) == 0 {
		return nil, nil
	}
	out := &rules.Consent{Closed: in.consentClosed(w.Namespace, w.NamespaceLabels), Providers: map[string]rules.Provider{}}
	if out.Closed != "" {
		return out, nil
	}
	for _, t := range targets {
		ns, component, _ := cutTarget(t)
		owner, err := in.componentOwnerIn(ctx, ns, component)
		if err != nil {
			return nil, err
		}
		if owner == nil {
			continue
		}
		pann, _, errs := rules.ParseAnnotations(owner.Name, owner.Annotations, field.NewPath("metadata"))
		if len(errs) > 0 {
			continue // the provider's own admission and audit report it
		}
		labels, err := in.namespaceLabels(ctx, ns)
		if err != nil {
			return nil, fmt.Errorf("read namespace %q: %w", ns, err)
		}
		out.Providers[t] = rules.Provider{Ref: owner.Ref(), Exposures: pann.ExposeTo, Closed: in.consentClosed(ns, labels)}
	}
	if len(ann.ExposeTo) > 0 {
		consumers, err := in.consumersOf(ctx, w.Namespace, ann.Component)
		if err != nil {
			return nil, err
		}
		out.Consumers = consumers
	}
	return out, nil
}

func cutTarget(t string) (namespace, component string, ok bool) {
	for i := 0; i < len(t); i++ {
		if t[i] == '/' {
			return t[:i], t[i+1:], true
		}
	}
	return "", t, false
}

// componentOwnerIn returns the live workload that owns component in
// namespace, or nil.
func (in *injector) componentOwnerIn(ctx context.Context, namespace, component string) (*rules.Workload, error) {
	var claimants []rules.Workload
	for _, kind := range workloadKinds {
		items, err := in.listIndexed(ctx, kind, namespace, indexComponent, component)
		if err != nil {
			return nil, err
		}
		for i := range items {
			if items[i].DeletionTimestamp.IsZero() {
				claimants = append(claimants, toRulesWorkload(kind, &items[i]))
			}
		}
	}
	if len(claimants) == 0 {
		return nil, nil
	}
	owner := claimants[rules.ComponentOwner(claimants)]
	return &owner, nil
}

// consumersOf returns the components of other namespaces whose depends-on
// names namespace/component, each with its namespace's labels. A workload
// that does not own its component in its namespace is left out: it gets no
// policies there either.
func (in *injector) consumersOf(ctx context.Context, namespace, component string) ([]rules.Consumer, error) {
	target := namespace + "/" + component
	var out []rules.Consumer
	labelsOf := map[string]map[string]string{}
	for _, kind := range workloadKinds {
		items, err := in.listIndexed(ctx, kind, "", indexConsentTargets, target)
		if err != nil {
			return nil, err
		}
		for i := range items {
			o := &items[i]
			if o.Namespace == namespace || !o.DeletionTimestamp.IsZero() {
				continue
			}
			cw := toRulesWorkload(kind, o)
			ann, _, errs := rules.ParseAnnotations(cw.Name, cw.Annotations, field.NewPath("metadata"))
			if len(errs) > 0 {
				continue
			}
			if owner, err := in.componentOwnerIn(ctx, o.Namespace, ann.Component); err != nil {
				return nil, err
			} else if owner != nil && owner.Ref() != cw.Ref() {
				continue
			}
			labels, seen := labelsOf[o.Namespace]
			if !seen {
				if labels, err = in.namespaceLabels(ctx, o.Namespace); err != nil {
					return nil, fmt.Errorf("read namespace %q: %w", o.Namespace, err)
				}
				labelsOf[o.Namespace] = labels
			}
			out = append(out, rules.Consumer{
				Namespace: o.Namespace, NamespaceLabels: labels, Component: ann.Component,
				Ref: cw.Ref(), DependsOn: ann.DependsOn, Closed: in.consentClosed(o.Namespace, labels),
			})
		}
	}
	return out, nil
}

// consentPeers enqueues, for a workload event of any kind, the workloads of
// kind on the other side of its cross-namespace declarations, before and
// after an update: the providers its depends-on names and, when it exposes
// itself, the consumers that name it. So a path opens or closes on the
// provider's side when a consumer appears, changes or goes, and the other
// way round, without a write by the user.
func (s *Server) consentPeers(kind, srcKind string) handler.EventHandler {
	add := func(ctx context.Context, o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		if o == nil || !rules.HasConsentDeclarations(o.GetAnnotations()) {
			return
		}
		for _, req := range s.injector.peerRequests(ctx, kind, srcKind, o) {
			q.Add(req)
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.ObjectOld, q)
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

// peerRequests are the workloads of kind on the other side of the
// cross-namespace declarations of o, a workload of srcKind.
func (in *injector) peerRequests(ctx context.Context, kind, srcKind string, o client.Object) []reconcile.Request {
	log := logf.FromContext(ctx)
	var reqs []reconcile.Request
	addAll := func(items []metav1.PartialObjectMetadata) {
		for i := range items {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: items[i].Namespace, Name: items[i].Name}})
		}
	}
	for _, t := range consentTargetsIndexValue(o) {
		ns, component, _ := cutTarget(t)
		items, err := in.listIndexed(ctx, kind, ns, indexComponent, component)
		if err != nil {
			log.Error(err, "list the providers of a cross-namespace dependency", "target", t)
			continue
		}
		addAll(items)
	}
	if _, ok := o.GetAnnotations()[rules.AnnotationExposeTo]; ok {
		for _, c := range componentIndexValue(srcKind)(o) {
			items, err := in.listIndexed(ctx, kind, "", indexConsentTargets, o.GetNamespace()+"/"+c)
			if err != nil {
				log.Error(err, "list the consumers of an exposed component", "component", c)
				continue
			}
			addAll(items)
		}
	}
	return reqs
}

// namespaceConsentPeers enqueues, when a namespace's labels change (which
// decide which exposures match it and its level), the workloads of kind in
// it that declare anything across namespaces, and their peers.
func (s *Server) namespaceConsentPeers(c client.Reader, kind string) handler.MapFunc {
	return func(ctx context.Context, ns client.Object) []reconcile.Request {
		list := workloadMetadataList(kind)
		if err := c.List(ctx, list, client.InNamespace(ns.GetName())); err != nil {
			logf.FromContext(ctx).Error(err, "list workloads of a relabelled namespace", "namespace", ns.GetName())
			return nil
		}
		var reqs []reconcile.Request
		for _, other := range workloadKinds {
			olist := list
			if other != kind {
				olist = workloadMetadataList(other)
				if err := c.List(ctx, olist, client.InNamespace(ns.GetName())); err != nil {
					continue
				}
			}
			for i := range olist.Items {
				o := &olist.Items[i]
				if !rules.HasConsentDeclarations(o.Annotations) {
					continue
				}
				if other == kind {
					reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.Namespace, Name: o.Name}})
				}
				reqs = append(reqs, s.injector.peerRequests(ctx, kind, other, o)...)
			}
		}
		return reqs
	}
}
