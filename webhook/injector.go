package webhook

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
)

// FieldManager is the server-side apply field manager of every object netguard writes.
const FieldManager = "netguard"

// injector generates a workload's policies from cached profiles and makes the
// cluster match. The admission handlers and the controller share it.
type injector struct {
	cache  client.Reader // informer cache: profiles and policies
	client client.Client // writes go straight to the API server
	// live confirms a cache miss: a profile applied together with the
	// workload that uses it may not have reached the cache yet.
	live client.Reader
	// generated, when set, skips generations whose inputs are unchanged.
	generated *generationCache
	// namespaces, when set, gives the namespace labels that decide which
	// NetworkProfiles a workload may use; without it only the namespace's
	// name is known.
	namespaces namespaceLabeler
	// defaults and crossNamespace decide whether a namespace may use
	// cross-namespace consent (consent.go).
	defaults       rules.NamespacePolicy
	crossNamespace rules.CrossNamespaceConfig
	// indexed is set once the controllers registered the consent field
	// indexes; before that (and on replicas without controllers) consent
	// lookups scan the cached metadata.
	indexed atomic.Bool
}

// generate resolves the workload's profiles from the cache and runs the pure
// generator. A field.ErrorList means the annotations are wrong; an error means
// netguard could not read what it needs.
//
// The result may be shared with other callers (generationCache): it must not
// be changed.
func (in *injector) generate(ctx context.Context, w rules.Workload) (generation, field.ErrorList, error) {
	if w.NamespaceLabels == nil && in.namespaces != nil && rules.IsAnnotated(w.Annotations) {
		labels, err := in.namespaces.NamespaceLabels(ctx, w.Namespace)
		if err != nil {
			return generation{}, nil, fmt.Errorf("read namespace %q: %w", w.Namespace, err)
		}
		w.NamespaceLabels = labels
	}
	if w.Components == nil && rules.IsAnnotated(w.Annotations) {
		idx, err := in.localIndex(ctx, w)
		if err != nil {
			return generation{}, nil, err
		}
		w.Components = idx
	}
	var key string
	// A generation that depends on other namespaces' declarations is not
	// cached: its inputs are more than the workload and its profiles.
	if in.generated != nil && rules.IsAnnotated(w.Annotations) && !rules.HasConsentDeclarations(w.Annotations) {
		key = generationKey(w)
		if gen, ok := in.generated.get(ctx, in.cache, key); ok {
			return gen, nil, nil
		}
	}
	ann, _, errs := rules.ParseAnnotations(w.Name, w.Annotations, field.NewPath("metadata"))
	if len(errs) > 0 {
		return generation{}, errs, nil
	}
	if w.Consent == nil {
		consent, err := in.consent(ctx, w, ann)
		if err != nil {
			return generation{}, nil, err
		}
		w.Consent = consent
	}
	profiles := make(map[string]rules.Profile, len(ann.Profiles))
	used := make([]profileVersion, 0, len(ann.Profiles))
	for _, name := range ann.Profiles {
		p := &netguardv1alpha1.NetworkProfile{}
		err := in.cache.Get(ctx, types.NamespacedName{Name: name}, p)
		if apierrors.IsNotFound(err) && in.live != nil {
			err = in.live.Get(ctx, types.NamespacedName{Name: name}, p)
		}
		if err != nil {
			if apierrors.IsNotFound(err) {
				continue // the generator reports it with the annotation's field path
			}
			return generation{}, nil, fmt.Errorf("read NetworkProfile %q: %w", name, err)
		}
		profiles[name] = ProfileToRules(p)
		used = append(used, profileVersion{name: name, resourceVersion: p.ResourceVersion, uid: p.UID})
	}
	gen, errs := rules.Generate(w, profiles)
	if key != "" && len(errs) == 0 && len(used) == len(ann.Profiles) {
		return in.generated.add(key, gen, used), nil, nil
	}
	return generation{Generated: gen}, errs, nil
}

// apply makes the cluster hold exactly gen's policies for w: each is applied
// with server-side apply (forcing netguard's ownership, so an edit is undone)
// and policies generated earlier for w that gen no longer contains are
// deleted. When w.UID is set, gen's policies carry an ownerReference to w.
func (in *injector) apply(ctx context.Context, w rules.Workload, gen rules.Generated) (applied, deleted []string, err error) {
	// The policies are independent, and the API server waits for them at
	// admission: apply a few at a time. Results keep gen's order.
	results := make([]error, len(gen.Policies))
	sem := make(chan struct{}, maxParallelApplies)
	var wg sync.WaitGroup
	for i, p := range gen.Policies {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = in.applyPolicy(ctx, p)
		}()
	}
	wg.Wait()
	var errs []error
	for i, p := range gen.Policies {
		if results[i] != nil {
			errs = append(errs, results[i])
			continue
		}
		applied = append(applied, p.Name)
	}
	keep := make([]string, 0, len(gen.Policies))
	for _, p := range gen.Policies {
		keep = append(keep, p.Name)
	}
	deleted, err = in.deleteGenerated(ctx, w, keep)
	errs = append(errs, err)
	return applied, deleted, errors.Join(errs...)
}

// maxParallelApplies bounds the server-side applies one workload has in
// flight.
const maxParallelApplies = 8

func (in *injector) applyPolicy(ctx context.Context, p *networkingv1.NetworkPolicy) error {
	u, err := policyUnstructured(p)
	if err != nil {
		return err
	}
	if err := in.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply NetworkPolicy %s/%s: %w", p.Namespace, p.Name, err)
	}
	// The apply answered with the stored object: a policy of this name that
	// someone else wrote first, or edited since, keeps their other fields.
	return in.replaceIfForeign(ctx, u, p)
}

// PolicyApplyConfiguration is a generated policy as netguard applies it
// with server-side apply: every field it sets, and no creationTimestamp or
// status, which it does not own.
func PolicyApplyConfiguration(p *networkingv1.NetworkPolicy) (runtime.ApplyConfiguration, error) {
	u, err := policyUnstructured(p)
	if err != nil {
		return nil, err
	}
	return client.ApplyConfigurationFromUnstructured(u), nil
}

func policyUnstructured(p *networkingv1.NetworkPolicy) (*unstructured.Unstructured, error) {
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetGroupVersionKind(networkPolicyGVK)
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	return u, nil
}

// deleteGenerated deletes the policies generated for w whose names are not in keep.
func (in *injector) deleteGenerated(ctx context.Context, w rules.Workload, keep []string) ([]string, error) {
	list := policyMetadataList()
	// Every generated policy of the namespace, read in place: a copy of
	// each cost about a millisecond per admission in a namespace of a
	// thousand (hack/bench/history.md, section 17). Only the policies to
	// delete are copied; the cache's objects are never written.
	if err := in.cache.List(ctx, list, client.InNamespace(w.Namespace), client.MatchingLabels{rules.LabelManagedBy: rules.ManagedByValue}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list generated policies: %w", err)
	}
	var deleted []string
	var errs []error
	for i := range list.Items {
		if list.Items[i].Annotations[rules.AnnotationWorkload] != w.Ref() || slices.Contains(keep, list.Items[i].Name) {
			continue
		}
		p := list.Items[i].DeepCopy()
		err := in.client.Delete(ctx, p, client.Preconditions{UID: &p.UID})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			errs = append(errs, fmt.Errorf("delete NetworkPolicy %s/%s: %w", p.Namespace, p.Name, err))
			continue
		}
		deleted = append(deleted, p.Name)
	}
	return deleted, errors.Join(errs...)
}

// workloadKinds are the kinds netguard injects into, by kind name
// (rules.WorkloadKinds).
var workloadKinds = func() []string {
	var out []string
	for _, k := range rules.WorkloadKinds() {
		out = append(out, k.Kind)
	}
	return out
}()

// workloadGVK is the GroupVersionKind of a kind of workloadKinds.
func workloadGVK(kind string) schema.GroupVersionKind {
	k, ok := rules.LookupWorkloadKind(kind)
	if !ok {
		panic("netguard: not a workload kind: " + kind)
	}
	return k.GroupVersionKind()
}

// toRulesWorkload reads a workload of kind. A Pod or Job that a workload
// controller made from a template netguard handles (rules.TemplateOwner)
// is read without annotations: netguard skips it, so it claims nothing.
func toRulesWorkload(kind string, o client.Object) rules.Workload {
	annotations := o.GetAnnotations()
	if _, owned := rules.TemplateOwner(kind, o.GetOwnerReferences()); owned {
		annotations = nil
	}
	return rules.Workload{Kind: kind, Namespace: o.GetNamespace(), Name: o.GetName(), UID: o.GetUID(), Annotations: annotations, Created: o.GetCreationTimestamp().Time}
}
