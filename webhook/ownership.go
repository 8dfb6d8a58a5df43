package webhook

import (
	"context"
	"fmt"
	"slices"

	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/netguard/netguard/rules"
)

// One owner per component (rules.ComponentOwner): admission refuses a
// workload that claims a component another live workload of its namespace
// owns, and the controller generates only for the owner. Both read the
// namespace's workloads and generated policies from the informer cache.

// otherClaimants returns the live workloads of w's namespace, other than w,
// that claim component, and the LocalNetworkConfigs that declare it (as
// claimants of kind LocalNetworkConfig). The cost is one pass over the
// namespace's cached workload metadata, reading one annotation of each, and
// one over its cached LocalNetworkConfigs.
func (in *injector) otherClaimants(ctx context.Context, w rules.Workload, component string) ([]rules.Workload, error) {
	var out []rules.Workload
	for _, kind := range workloadKinds {
		list := workloadMetadataList(kind)
		if err := in.cache.List(ctx, list, client.InNamespace(w.Namespace), client.UnsafeDisableDeepCopy); err != nil {
			return nil, fmt.Errorf("list %ss: %w", kind, err)
		}
		for i := range list.Items {
			o := &list.Items[i]
			if (kind == w.Kind && o.Name == w.Name) || !o.DeletionTimestamp.IsZero() {
				continue
			}
			other := toRulesWorkload(kind, o)
			if c, ok := rules.ClaimedComponent(other); ok && c == component {
				out = append(out, other)
			}
		}
	}
	// LocalNetworkConfigs claim components too.
	locals, err := in.localConfigs(ctx, w.Namespace, "")
	if err != nil {
		return nil, err
	}
	for _, l := range locals {
		if w.Kind == rules.KindLocalNetworkConfig && l.Name == w.Name {
			continue
		}
		if slices.Contains(l.ComponentNames(), component) {
			out = append(out, l.Claimant(component))
		}
	}
	return out, nil
}

// componentOwner returns the workload that owns component when it is not w,
// or nil when w may claim it. A newcomer (a workload being created, or one
// whose update changes its component) may claim a component only when no
// other live workload claims it, whatever their ages; otherwise the order of
// rules.ComponentOwner decides.
func (in *injector) componentOwner(ctx context.Context, w rules.Workload, component string, newcomer bool) (*rules.Workload, error) {
	others, err := in.otherClaimants(ctx, w, component)
	if err != nil {
		return nil, err
	}
	if component != w.Name {
		namesake, err := in.liveNamesake(ctx, w, component)
		if err != nil {
			return nil, err
		}
		if namesake != nil && !slices.ContainsFunc(others, func(o rules.Workload) bool { return o.Ref() == namesake.Ref() }) {
			others = append(others, *namesake)
		}
	}
	if len(others) == 0 {
		return nil, nil
	}
	owner := others[rules.ComponentOwner(others)]
	if newcomer || rules.ClaimsBefore(owner, w) {
		return &owner, nil
	}
	return nil, nil
}

// ownershipError is componentOwner as a field error for admission: nil when
// w may claim its component. A failure to read the cache is logged by the
// caller and admits the workload (workload admission fails open; the
// controller decides ownership again).
func (in *injector) ownershipError(ctx context.Context, w rules.Workload, component string, newcomer bool) (*field.Error, error) {
	owner, err := in.componentOwner(ctx, w, component, newcomer)
	if err != nil {
		return nil, err
	}
	if owner == nil {
		return nil, nil
	}
	return rules.DuplicateComponent(w, component, *owner), nil
}

// liveNamesake closes the informer's lag for the way a component is usually
// taken: a workload created a moment ago (not in the cache yet) owns the
// component of its own name, and another one names it in its
// netguard.io/component annotation. It asks the API server for a workload
// of each kind named component that claims it. Only workloads whose
// component is not their own name pay for it (one read per kind); a claimant
// whose own name differs from its component and that is younger than the
// cache's lag is seen a moment later, by the controller.
func (in *injector) liveNamesake(ctx context.Context, w rules.Workload, component string) (*rules.Workload, error) {
	if in.live == nil {
		return nil, nil
	}
	for _, kind := range workloadKinds {
		o := workloadMetadata(kind)
		err := in.live.Get(ctx, client.ObjectKey{Namespace: w.Namespace, Name: component}, o)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s %s/%s: %w", kind, w.Namespace, component, err)
		}
		other := toRulesWorkload(kind, o)
		if c, ok := rules.ClaimedComponent(other); ok && c == component && o.DeletionTimestamp.IsZero() {
			return &other, nil
		}
	}
	return nil, nil
}

// isNewcomer reports whether the request starts w's claim on component: a
// create, or an update whose old object claimed another component or none.
func isNewcomer(req admission.Request, component string) bool {
	if req.Operation != admissionv1.Update {
		return true
	}
	old, err := decodeWorkload(req, true)
	if err != nil {
		return true
	}
	c, ok := rules.ClaimedComponent(toRulesWorkload(req.Kind.Kind, old))
	return !ok || c != component
}

// checkOwnership is the admission side of ownership: a Duplicate error when
// w may not claim component. When the cache cannot be read it logs and
// returns nil: workload admission fails open, and the controller decides
// ownership again.
func (s *Server) checkOwnership(ctx context.Context, req admission.Request, w rules.Workload, component string) *field.Error {
	ferr, err := s.injector.ownershipError(ctx, w, component, isNewcomer(req, component))
	if err != nil {
		logf.FromContext(ctx).Info("cannot read the namespace's workloads to check the component's owner; admitting, the controller checks again", "error", err.Error())
		return nil
	}
	return ferr
}

// restoreOwners gives back to their owners the generated policies that name
// w but belong to a component another live workload owns: policies that a
// second claimant took over (before netguard refused second claimants, or
// in a race between two creates). It applies each such owner's policies,
// which rewrites their netguard.io/workload annotation, and returns the
// names applied, which releasing w must keep.
func (in *injector) restoreOwners(ctx context.Context, w rules.Workload) ([]string, error) {
	list := policyMetadataList()
	if err := in.cache.List(ctx, list, client.InNamespace(w.Namespace), client.MatchingLabels{rules.LabelManagedBy: rules.ManagedByValue}); err != nil {
		return nil, fmt.Errorf("list generated policies: %w", err)
	}
	var components []string
	for i := range list.Items {
		p := &list.Items[i]
		if c := p.Labels[rules.LabelComponent]; p.Annotations[rules.AnnotationWorkload] == w.Ref() && c != "" && !slices.Contains(components, c) {
			components = append(components, c)
		}
	}
	var kept []string
	for _, c := range components {
		others, err := in.otherClaimants(ctx, w, c)
		if err != nil {
			return kept, err
		}
		if len(others) == 0 {
			continue
		}
		owner := others[rules.ComponentOwner(others)]
		if owner.Kind == rules.KindLocalNetworkConfig {
			// Its controller restores its policies.
			continue
		}
		gen, ferrs, err := in.generate(ctx, owner)
		if err != nil {
			return kept, err
		}
		if len(ferrs) > 0 {
			continue
		}
		for _, p := range gen.Policies {
			kept = append(kept, p.Name)
		}
		if _, _, err := in.apply(ctx, owner, gen.Generated); err != nil {
			return kept, fmt.Errorf("restore the policies of %s, which owns component %q: %w", owner.Ref(), c, err)
		}
	}
	return kept, nil
}

// release deletes the policies generated for w, except those that belong to
// another workload's component, which restoreOwners gives back first.
func (in *injector) release(ctx context.Context, w rules.Workload) ([]string, error) {
	keep, err := in.restoreOwners(ctx, w)
	if err != nil {
		return nil, err
	}
	return in.deleteGenerated(ctx, w, keep)
}
