package webhook

import (
	"context"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

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
	remote := rules.RemoteDependencies(w.Namespace, ann.DependsOn)
	if len(remote) == 0 && len(ann.ExposeTo) == 0 {
		return nil, nil
	}
	return in.consentFor(ctx, w.Namespace, w.NamespaceLabels, ann.Component, remote, len(ann.ExposeTo) > 0)
}

// consentFor finds the other sides of component's cross-namespace
// declarations in namespace: the owners of the components its remote
// dependencies name and, when it exposes itself, its consumers. Annotated
// workloads and LocalNetworkConfig components are found alike.
func (in *injector) consentFor(ctx context.Context, namespace string, nsLabels map[string]string, component string, remote []rules.Dependency, exposes bool) (*rules.Consent, error) {
	out := &rules.Consent{Closed: in.consentClosed(namespace, nsLabels), Providers: map[string]rules.Provider{}}
	if out.Closed != "" {
		return out, nil
	}
	for _, d := range remote {
		t := d.Target()
		if _, done := out.Providers[t]; done {
			continue
		}
		p, err := in.partyOf(ctx, d.Namespace, d.Component)
		if err != nil {
			return nil, err
		}
		if p == nil || !p.valid {
			continue // no owner; or its own admission and audit report it
		}
		labels, err := in.namespaceLabels(ctx, d.Namespace)
		if err != nil {
			return nil, fmt.Errorf("read namespace %q: %w", d.Namespace, err)
		}
		out.Providers[t] = rules.Provider{Ref: p.ref, Exposures: p.exposures, Closed: in.consentClosed(d.Namespace, labels), Selector: p.selector}
	}
	if exposes {
		consumers, err := in.consumersOf(ctx, namespace, component)
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

// party is the owner of a component of a namespace, as consent sees it:
// an annotated workload or a LocalNetworkConfig's component.
type party struct {
	ref string
	// valid is false when the owner's declarations do not parse: it
	// declares nothing then.
	valid     bool
	remote    []rules.Dependency
	exposures []rules.Exposure
	// selector selects its pods; nil for an annotated workload's
	// (netguard.io/component).
	selector *metav1.LabelSelector
}

// partyOf returns the live owner of component in namespace, or nil. The
// owner is chosen among annotated workloads and LocalNetworkConfigs by
// rules.ComponentOwner, as everywhere else.
func (in *injector) partyOf(ctx context.Context, namespace, component string) (*party, error) {
	return in.partyOfWith(ctx, namespace, component, nil)
}

// partyOfWith is partyOf reading the namespace's LocalNetworkConfigs through
// locals, a per-call memo by namespace (nil: no memo), so that resolving
// many consumers of one namespace lists its LocalNetworkConfigs once.
func (in *injector) partyOfWith(ctx context.Context, namespace, component string, locals map[string][]rules.LocalConfig) (*party, error) {
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
	ls, cached := locals[namespace]
	if !cached {
		var err error
		if ls, err = in.localConfigs(ctx, namespace, ""); err != nil {
			return nil, err
		}
		if locals != nil {
			locals[namespace] = ls
		}
	}
	byRef := map[string]rules.LocalConfig{}
	for _, l := range ls {
		if slices.Contains(l.ComponentNames(), component) {
			claimants = append(claimants, l.Claimant(component))
			byRef[l.Ref()] = l
		}
	}
	if len(claimants) == 0 {
		return nil, nil
	}
	owner := claimants[rules.ComponentOwner(claimants)]
	if owner.Kind == rules.KindLocalNetworkConfig {
		declared, ok := rules.LocalConsentDeclarations(byRef[owner.Ref()])
		d := declared[component]
		return &party{ref: owner.Ref(), valid: ok, remote: d.Remote, exposures: d.Exposures, selector: d.Selector}, nil
	}
	ann, _, errs := rules.ParseAnnotations(owner.Name, owner.Annotations, field.NewPath("metadata"))
	if len(errs) > 0 {
		return &party{ref: owner.Ref()}, nil
	}
	return &party{ref: owner.Ref(), valid: true, remote: rules.RemoteDependencies(namespace, ann.DependsOn), exposures: ann.ExposeTo}, nil
}

// consumersOf returns the components of other namespaces whose
// dependencies name namespace/component, annotated workloads and
// LocalNetworkConfig components alike, each with its namespace's labels. A
// declarer that does not own its component in its namespace is left out:
// it gets no policies there either.
func (in *injector) consumersOf(ctx context.Context, namespace, component string) ([]rules.Consumer, error) {
	target := namespace + "/" + component
	var out []rules.Consumer
	labelsOf := map[string]map[string]string{}
	locals := map[string][]rules.LocalConfig{}
	// Each NAMESPACE/COMPONENT is resolved once: several claimants of one
	// component name the same owner.
	owners := map[string]*party{}
	add := func(ns, comp, ref string) error {
		key := ns + "/" + comp
		owner, seen := owners[key]
		if !seen {
			var err error
			if owner, err = in.partyOfWith(ctx, ns, comp, locals); err != nil {
				return err
			}
			owners[key] = owner
		}
		if owner == nil || owner.ref != ref || !owner.valid {
			return nil
		}
		labels, seen := labelsOf[ns]
		if !seen {
			var err error
			if labels, err = in.namespaceLabels(ctx, ns); err != nil {
				return fmt.Errorf("read namespace %q: %w", ns, err)
			}
			labelsOf[ns] = labels
		}
		out = append(out, rules.Consumer{
			Namespace: ns, NamespaceLabels: labels, Component: comp, Ref: ref,
			DependsOn: owner.remote, Closed: in.consentClosed(ns, labels), Selector: owner.selector,
		})
		return nil
	}
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
			c, ok := rules.ClaimedComponent(cw)
			if !ok {
				continue
			}
			if err := add(o.Namespace, c, cw.Ref()); err != nil {
				return nil, err
			}
		}
	}
	consumers, err := in.localsTargeting(ctx, target)
	if err != nil {
		return nil, err
	}
	for i := range consumers {
		o := &consumers[i]
		if o.Namespace == namespace || !o.DeletionTimestamp.IsZero() {
			continue
		}
		for _, comp := range localComponentsTargeting(o, target) {
			if err := add(o.Namespace, comp, rules.KindLocalNetworkConfig+"/"+o.Name); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// consentPeers enqueues, for a workload event of srcKind, the workloads of
// kind on the other side of its cross-namespace declarations, before and
// after an update: the providers its depends-on names and, when it exposes
// itself, the consumers that name it. So a path opens or closes on the
// provider's side when a consumer appears, changes or goes, and the other
// way round, without a write by the user.
func (s *Server) consentPeers(kind, srcKind string) handler.EventHandler {
	return s.consentPeersHandler(kind, func(o client.Object) ([]string, []string) {
		return workloadConsentDeclarations(srcKind, o)
	})
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
				targets, exposed := workloadConsentDeclarations(other, o)
				reqs = append(reqs, s.injector.consentPeerRequests(ctx, kind, o.Namespace, targets, exposed)...)
			}
		}
		return reqs
	}
}
