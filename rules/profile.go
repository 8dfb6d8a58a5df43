package rules

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Profile is a NetworkProfile as the generator sees it: a named, reusable set
// of NetworkPolicy rules the platform team owns and workloads opt into with
// the netguard.io/profiles annotation. The API type (api/v1alpha1) converts to
// it, so this package needs nothing from the API server.
//
// The rules apply to the pods of every component that references the profile.
// A peer with only a podSelector means pods in that component's namespace, as
// in any NetworkPolicy; a profile that reaches into another namespace says so
// with a namespaceSelector.
type Profile struct {
	Name        string
	Description string
	Ingress     []networkingv1.NetworkPolicyIngressRule
	Egress      []networkingv1.NetworkPolicyEgressRule
	// NamespaceSelector selects the namespaces whose workloads may use the
	// profile. Nil offers it to every namespace (see ProfileOffered).
	NamespaceSelector *metav1.LabelSelector
}

// ProfileOffered reports whether p may be used by workloads of namespace,
// whose labels are nsLabels (nil: unknown, only the
// kubernetes.io/metadata.name label that every namespace carries is assumed).
//
// A profile without a namespaceSelector is offered to every namespace: that
// is what a profile meant before the field existed, and a profile that must
// not be used everywhere says so with a selector. An empty selector ({})
// offers it to every namespace too, as in a NetworkPolicy. A selector that
// does not parse offers it to none.
func ProfileOffered(p Profile, namespace string, nsLabels map[string]string) bool {
	if p.NamespaceSelector == nil {
		return true
	}
	sel, err := metav1.LabelSelectorAsSelector(p.NamespaceSelector)
	if err != nil {
		return false
	}
	set := labels.Set(nsLabels)
	if nsLabels == nil {
		set = labels.Set{corev1.LabelMetadataName: namespace}
	} else if _, ok := nsLabels[corev1.LabelMetadataName]; !ok {
		set = make(labels.Set, len(nsLabels)+1)
		for k, v := range nsLabels {
			set[k] = v
		}
		set[corev1.LabelMetadataName] = namespace
	}
	return sel.Matches(set)
}

// profileScopeError is the error for w naming p when p is not offered to
// w's namespace, or nil.
func profileScopeError(p Profile, w Workload, path *field.Path) *field.Error {
	if ProfileOffered(p, w.Namespace, w.NamespaceLabels) {
		return nil
	}
	return field.Forbidden(path, fmt.Sprintf("NetworkProfile %q is not offered to namespace %q: its spec.namespaceSelector does not select this namespace; ask the platform team to offer it here, or remove it from the annotation", p.Name, w.Namespace))
}
