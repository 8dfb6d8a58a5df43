package webhook

import (
	"context"
	"fmt"
	"sort"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/pager"
	"sigs.k8s.io/controller-runtime/pkg/client"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
)

// AuditReader reads the audit's input from a cluster. `netguard audit` reads
// the API server through it and serve's background audit the manager's cache
// (and the API server for NetworkPolicy specs), so that the two read the same
// objects the same way: the same workload kinds in the same order
// (rules.WorkloadKinds), the same workloads left out, and a missing CRD
// treated alike. rules.AuditNamespace then judges them alike.
//
// It fails closed: any error reading a list is returned, never taken for an
// empty list, with one exception. A CRD that is not installed
// (NetworkProfile, LocalNetworkConfig) has no objects, so its list is empty;
// Profiles says so, and workloads that name a profile are then reported as
// unknownProfile rather than passed.
type AuditReader struct {
	// Metadata reads namespaces and workloads (as metadata), NetworkProfiles
	// and LocalNetworkConfigs.
	Metadata client.Reader
	// MetadataPageSize reads Metadata's lists in pages of this many objects
	// (Limit and Continue); 0 reads each list in one request, as a cache
	// must be read (controller-runtime's cache refuses a Continue).
	MetadataPageSize int64
	// Policies reads NetworkPolicies with their specs, in pages of
	// PolicyPageSize (serve's cache holds them as metadata only); nil means
	// Metadata, in pages of MetadataPageSize.
	Policies       client.Reader
	PolicyPageSize int64
	// Counter, when set, returns a function to call per object read of
	// what ("NetworkPolicies", "Deployments"): the command's progress line.
	Counter func(what string) func()
}

// AuditObjects are the objects the audit judges, by namespace.
type AuditObjects struct {
	Policies map[string][]*networkingv1.NetworkPolicy
	// Workloads are the annotated workloads of every kind netguard injects
	// into. A Pod or Job made from a template netguard handles is left out
	// (rules.TemplateOwner), as admission skips it.
	Workloads    map[string][]rules.Workload
	LocalConfigs map[string][]rules.LocalConfig
	// Read counts the NetworkPolicies and workloads read, annotated or not:
	// the work that AuditOptions.MaxObjectsPerCycle bounds.
	Read int
}

// Input is the audit's input for namespace ns, without consent, which each
// caller resolves its own way (AuditInput.Consent).
func (o *AuditObjects) Input(ns *metav1.PartialObjectMetadata, defaults rules.NamespacePolicy, profiles map[string]rules.Profile) rules.AuditInput {
	return rules.AuditInput{
		Namespace: ns.Name, Labels: ns.Labels, Defaults: defaults, Profiles: profiles,
		Policies: o.Policies[ns.Name], Workloads: o.Workloads[ns.Name], LocalConfigs: o.LocalConfigs[ns.Name],
	}
}

// Namespaces returns every namespace, sorted by name.
func (r AuditReader) Namespaces(ctx context.Context) ([]metav1.PartialObjectMetadata, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(namespaceGVK.GroupVersion().WithKind("NamespaceList"))
	var out []metav1.PartialObjectMetadata
	err := r.each(ctx, r.Metadata, r.MetadataPageSize, list, nil, "namespaces", func(obj runtime.Object) error {
		out = append(out, *obj.(*metav1.PartialObjectMetadata))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Namespace returns one namespace. A namespace that does not exist is an
// error for which apierrors.IsNotFound holds.
func (r AuditReader) Namespace(ctx context.Context, name string) (metav1.PartialObjectMetadata, error) {
	ns := namespaceMetadata()
	if err := r.Metadata.Get(ctx, client.ObjectKey{Name: name}, ns); err != nil {
		return metav1.PartialObjectMetadata{}, fmt.Errorf("get namespace %q: %w", name, err)
	}
	return *ns, nil
}

// Profiles returns every NetworkProfile by name, and whether the
// NetworkProfile API is installed. It is asked again at each call, so that
// a CRD installed later is found.
func (r AuditReader) Profiles(ctx context.Context) (map[string]rules.Profile, bool, error) {
	out := map[string]rules.Profile{}
	err := r.each(ctx, r.Metadata, r.MetadataPageSize, &netguardv1alpha1.NetworkProfileList{}, nil, "NetworkProfiles", func(obj runtime.Object) error {
		p := obj.(*netguardv1alpha1.NetworkProfile)
		out[p.Name] = ProfileToRules(p)
		return nil
	})
	switch {
	case notInstalled(err):
		return map[string]rules.Profile{}, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("list NetworkProfiles: %w", err)
	}
	return out, true, nil
}

// Objects reads the NetworkPolicies, workloads and LocalNetworkConfigs of
// namespace, or of every namespace when it is "".
func (r AuditReader) Objects(ctx context.Context, namespace string) (*AuditObjects, error) {
	out := &AuditObjects{Policies: map[string][]*networkingv1.NetworkPolicy{}, Workloads: map[string][]rules.Workload{}, LocalConfigs: map[string][]rules.LocalConfig{}}
	var scope []client.ListOption
	if namespace != "" {
		scope = []client.ListOption{client.InNamespace(namespace)}
	}
	policies, size := r.Policies, r.PolicyPageSize
	if policies == nil {
		policies, size = r.Metadata, r.MetadataPageSize
	}
	err := r.each(ctx, policies, size, &networkingv1.NetworkPolicyList{}, scope, "NetworkPolicies", func(obj runtime.Object) error {
		np := obj.(*networkingv1.NetworkPolicy)
		out.Policies[np.Namespace] = append(out.Policies[np.Namespace], np)
		out.Read++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list NetworkPolicies: %w", err)
	}
	for _, kind := range workloadKinds {
		err := r.each(ctx, r.Metadata, r.MetadataPageSize, workloadMetadataList(kind), scope, kind+"s", func(obj runtime.Object) error {
			out.Read++
			w := toRulesWorkload(kind, obj.(*metav1.PartialObjectMetadata))
			if rules.IsAnnotated(w.Annotations) {
				out.Workloads[w.Namespace] = append(out.Workloads[w.Namespace], w)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list %ss: %w", kind, err)
		}
	}
	err = r.each(ctx, r.Metadata, r.MetadataPageSize, &netguardv1alpha1.LocalNetworkConfigList{}, scope, "LocalNetworkConfigs", func(obj runtime.Object) error {
		l := obj.(*netguardv1alpha1.LocalNetworkConfig)
		out.LocalConfigs[l.Namespace] = append(out.LocalConfigs[l.Namespace], LocalConfigToRules(l, nil))
		return nil
	})
	if err != nil && !notInstalled(err) {
		return nil, fmt.Errorf("list LocalNetworkConfigs: %w", err)
	}
	return out, nil
}

// notInstalled reports whether err says the listed kind is not served: its
// CRD is not installed (no REST mapping) or was removed (404 on the list).
func notInstalled(err error) bool {
	return meta.IsNoMatchError(err) || apierrors.IsNotFound(err)
}

// each lists list with opts through c and calls fn per item. With size > 0
// it reads in pages of size with client-go's pager, which falls back to one
// whole list when a continue token expires; with 0, in one request, whose
// continue token it ignores (a cache sets one it cannot follow).
func (r AuditReader) each(ctx context.Context, c client.Reader, size int64, list client.ObjectList, opts []client.ListOption, what string, fn func(runtime.Object) error) error {
	count := func() {}
	if r.Counter != nil {
		count = r.Counter(what)
	}
	visit := func(obj runtime.Object) error {
		count()
		return fn(obj)
	}
	if size == 0 {
		if err := c.List(ctx, list, opts...); err != nil {
			return err
		}
		return meta.EachListItem(list, visit)
	}
	lp := pager.New(func(ctx context.Context, lo metav1.ListOptions) (runtime.Object, error) {
		page := list.DeepCopyObject().(client.ObjectList)
		o := append(append([]client.ListOption{}, opts...), client.Limit(lo.Limit), client.Continue(lo.Continue))
		if err := c.List(ctx, page, o...); err != nil {
			return nil, err
		}
		return page, nil
	})
	lp.PageSize = size
	return lp.EachListItem(ctx, metav1.ListOptions{}, visit)
}
