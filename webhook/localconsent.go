package webhook

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
)

// Cross-namespace consent for LocalNetworkConfigs. A component of a
// LocalNetworkConfig takes part like an annotated workload: its
// dependsOn[].namespace entries make it a consumer, its exposeTo a provider
// (rules/consent.go). The other side is found from the informer cache: the
// owner of a NAMESPACE/COMPONENT by partyOf, which weighs workloads and
// LocalNetworkConfigs of that namespace, and the LocalNetworkConfigs that
// name a target by the field index below. When either side changes, the
// controllers reconcile the other (localConsentPeers, consentPeerRequests).

// indexLocalConsentTargets indexes LocalNetworkConfigs by the
// NAMESPACE/COMPONENT targets in other namespaces their components depend on.
const indexLocalConsentTargets = "netguard.io/local-consent-targets"

// localConsentTargets are the NAMESPACE/COMPONENT targets in other
// namespaces that l's components depend on, sorted.
func localConsentTargets(l *netguardv1alpha1.LocalNetworkConfig) []string {
	var out []string
	for _, c := range l.Spec.Components {
		for _, d := range c.DependsOn {
			if d.Namespace != "" && d.Namespace != l.Namespace && d.Component != "" {
				out = append(out, d.Namespace+"/"+d.Component)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// localExposed are the names of l's components that expose themselves.
func localExposed(l *netguardv1alpha1.LocalNetworkConfig) []string {
	var out []string
	for name, c := range l.Spec.Components {
		if len(c.ExposeTo) > 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// localComponentsTargeting are the components of l that depend on target.
func localComponentsTargeting(l *netguardv1alpha1.LocalNetworkConfig, target string) []string {
	var out []string
	for name, c := range l.Spec.Components {
		for _, d := range c.DependsOn {
			if d.Namespace+"/"+d.Component == target {
				out = append(out, name)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// localsTargeting lists the LocalNetworkConfigs of every namespace whose
// components depend on target, by the index when the controllers run, by a
// scan of the cache otherwise.
func (in *injector) localsTargeting(ctx context.Context, target string) ([]netguardv1alpha1.LocalNetworkConfig, error) {
	list := &netguardv1alpha1.LocalNetworkConfigList{}
	if in.indexed.Load() {
		if err := in.cache.List(ctx, list, client.MatchingFields{indexLocalConsentTargets: target}); err != nil {
			return nil, fmt.Errorf("list LocalNetworkConfigs by %s: %w", indexLocalConsentTargets, err)
		}
		return list.Items, nil
	}
	if err := in.cache.List(ctx, list); err != nil {
		return nil, fmt.Errorf("list LocalNetworkConfigs: %w", err)
	}
	var out []netguardv1alpha1.LocalNetworkConfig
	for i := range list.Items {
		if slices.Contains(localConsentTargets(&list.Items[i]), target) {
			out = append(out, list.Items[i])
		}
	}
	return out, nil
}

// withLocalConsent returns l with each of its components' Consent filled,
// for those that declare anything across namespaces.
func (in *injector) withLocalConsent(ctx context.Context, l rules.LocalConfig) (rules.LocalConfig, error) {
	declared, _ := rules.LocalConsentDeclarations(l)
	return l.WithConsent(func(_ int, c rules.LocalComponent) (*rules.Consent, error) {
		d, ok := declared[c.Name]
		if !ok || (len(d.Remote) == 0 && len(d.Exposures) == 0) {
			return nil, nil
		}
		return in.consentFor(ctx, l.Namespace, l.NamespaceLabels, c.Name, d.Remote, len(d.Exposures) > 0)
	})
}

// consentPeerRequests are the objects of kind (a workload kind, or
// LocalNetworkConfig) on the other side of cross-namespace declarations
// made in namespace ns: the owners' candidates of targets (NAMESPACE/
// COMPONENT) and the consumers of the exposed components.
func (in *injector) consentPeerRequests(ctx context.Context, kind, ns string, targets, exposed []string) []reconcile.Request {
	log := logf.FromContext(ctx)
	var reqs []reconcile.Request
	add := func(namespace, name string) {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: namespace, Name: name}})
	}
	if kind == rules.KindLocalNetworkConfig {
		for _, t := range targets {
			tns, comp, _ := cutTarget(t)
			list := &netguardv1alpha1.LocalNetworkConfigList{}
			if err := in.cache.List(ctx, list, client.InNamespace(tns)); err != nil {
				log.Error(err, "list the LocalNetworkConfigs of a provider's namespace", "target", t)
				continue
			}
			for i := range list.Items {
				if _, ok := list.Items[i].Spec.Components[comp]; ok {
					add(list.Items[i].Namespace, list.Items[i].Name)
				}
			}
		}
		for _, c := range exposed {
			items, err := in.localsTargeting(ctx, ns+"/"+c)
			if err != nil {
				log.Error(err, "list the LocalNetworkConfigs consuming an exposed component", "component", c)
				continue
			}
			for i := range items {
				add(items[i].Namespace, items[i].Name)
			}
		}
		return reqs
	}
	for _, t := range targets {
		tns, comp, _ := cutTarget(t)
		items, err := in.listIndexed(ctx, kind, tns, indexComponent, comp)
		if err != nil {
			log.Error(err, "list the providers of a cross-namespace dependency", "target", t)
			continue
		}
		for i := range items {
			add(items[i].Namespace, items[i].Name)
		}
	}
	for _, c := range exposed {
		items, err := in.listIndexed(ctx, kind, "", indexConsentTargets, ns+"/"+c)
		if err != nil {
			log.Error(err, "list the consumers of an exposed component", "component", c)
			continue
		}
		for i := range items {
			add(items[i].Namespace, items[i].Name)
		}
	}
	return reqs
}

// workloadConsentDeclarations are the cross-namespace targets and exposed
// components of a workload of kind.
func workloadConsentDeclarations(kind string, o client.Object) (targets, exposed []string) {
	if !rules.HasConsentDeclarations(o.GetAnnotations()) {
		return nil, nil
	}
	targets = consentTargetsIndexValue(o)
	if _, ok := o.GetAnnotations()[rules.AnnotationExposeTo]; ok {
		exposed = componentIndexValue(kind)(o)
	}
	return targets, exposed
}

// consentPeersHandler enqueues the objects of kind on the other side of
// the cross-namespace declarations of the watched objects, before and
// after an update; declarations reads them (nil, nil: none).
func (s *Server) consentPeersHandler(kind string, declarations func(client.Object) (targets, exposed []string)) handler.EventHandler {
	add := func(ctx context.Context, o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		if o == nil {
			return
		}
		targets, exposed := declarations(o)
		if len(targets) == 0 && len(exposed) == 0 {
			return
		}
		for _, req := range s.injector.consentPeerRequests(ctx, kind, o.GetNamespace(), targets, exposed) {
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

// localConsentDeclarations reads the declarations of a LocalNetworkConfig
// event's object.
func localConsentDeclarations(o client.Object) (targets, exposed []string) {
	l, ok := o.(*netguardv1alpha1.LocalNetworkConfig)
	if !ok {
		return nil, nil
	}
	return localConsentTargets(l), localExposed(l)
}

// namespaceLocalConsentPeers enqueues, when a namespace's labels change,
// the objects of kind on the other side of its LocalNetworkConfigs'
// cross-namespace declarations, and (for kind LocalNetworkConfig) those
// LocalNetworkConfigs themselves and the peers of its workloads.
func (s *Server) namespaceLocalConsentPeers(c client.Reader, kind string) handler.MapFunc {
	return func(ctx context.Context, ns client.Object) []reconcile.Request {
		var reqs []reconcile.Request
		list := &netguardv1alpha1.LocalNetworkConfigList{}
		if err := c.List(ctx, list, client.InNamespace(ns.GetName())); err != nil {
			logf.FromContext(ctx).Error(err, "list LocalNetworkConfigs of a relabelled namespace", "namespace", ns.GetName())
			return nil
		}
		for i := range list.Items {
			l := &list.Items[i]
			targets, exposed := localConsentTargets(l), localExposed(l)
			if len(targets) == 0 && len(exposed) == 0 {
				continue
			}
			if kind == rules.KindLocalNetworkConfig {
				reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: l.Namespace, Name: l.Name}})
			}
			reqs = append(reqs, s.injector.consentPeerRequests(ctx, kind, l.Namespace, targets, exposed)...)
		}
		if kind != rules.KindLocalNetworkConfig {
			return reqs
		}
		for _, wk := range workloadKinds {
			wl := workloadMetadataList(wk)
			if err := c.List(ctx, wl, client.InNamespace(ns.GetName())); err != nil {
				continue
			}
			for i := range wl.Items {
				targets, exposed := workloadConsentDeclarations(wk, &wl.Items[i])
				if len(targets) > 0 || len(exposed) > 0 {
					reqs = append(reqs, s.injector.consentPeerRequests(ctx, kind, ns.GetName(), targets, exposed)...)
				}
			}
		}
		return reqs
	}
}
