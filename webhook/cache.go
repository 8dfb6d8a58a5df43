package webhook

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/netguard/netguard/rules"
)

// CacheOptions are the informer cache settings `netguard serve` gives its
// manager. Every cached object is trimmed by trimForCache.
func CacheOptions() cache.Options {
	// One transform for all: a ByObject entry would need the API server's
	// REST mapping to build the cache, and netguard starts without one.
	return cache.Options{DefaultTransform: trimForCache}
}

// trimPodForCache keeps of a Pod only what netguard reads, since a cluster
// has many more pods than workloads and every pod is cached: of a Pod
// without netguard.io/ annotations, which netguard never injects into, its
// name, namespace, UID and resource version (the informer needs those);
// of an annotated Pod, also its netguard.io/ annotations, its component
// label, its controller ownerReference (TemplateOwner) and its creation and
// deletion timestamps. docs/injection.md gives the cost.
// The metadata informer sets the kind on every object before the transform.
func trimPodForCache(p *metav1.PartialObjectMetadata) *metav1.PartialObjectMetadata {
	m := p.ObjectMeta
	out := &metav1.PartialObjectMetadata{TypeMeta: p.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
	}}
	if a := netguardAnnotations(m.Annotations); a != nil {
		out.Annotations = a
		out.CreationTimestamp = m.CreationTimestamp
		out.DeletionTimestamp = m.DeletionTimestamp
		if c, ok := m.Labels[rules.LabelComponent]; ok {
			out.Labels = map[string]string{rules.LabelComponent: c}
		}
		if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
			out.OwnerReferences = []metav1.OwnerReference{*ref}
		}
	}
	return out
}

// trimForCache drops what netguard never reads from an object before the
// informer cache stores it:
//
//   - managedFields, from every object: netguard writes with server-side
//     apply, which the API server resolves. They were the largest part of
//     each cached NetworkPolicy (BENCHMARKS.md, section 5).
//   - from objects cached as metadata only (namespaces, NetworkPolicies and
//     workloads), every annotation outside netguard.io/. kubectl apply's
//     kubectl.kubernetes.io/last-applied-configuration alone repeats the
//     whole object, pod template and all. netguard reads only its own
//     annotations, and when it patches a workload it names only its own
//     keys, so nothing else is lost.
//
// Labels are kept: namespace levels, the managed-by label and selectors are
// labels.
func trimForCache(obj any) (any, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return obj, nil
	}
	if m.GetManagedFields() != nil {
		m.SetManagedFields(nil)
	}
	if p, partial := obj.(*metav1.PartialObjectMetadata); partial {
		if p.Kind == "Pod" && p.APIVersion == "v1" {
			return trimPodForCache(p), nil
		}
		if a := m.GetAnnotations(); a != nil {
			m.SetAnnotations(netguardAnnotations(a))
		}
	}
	return obj, nil
}

// netguardAnnotations returns the netguard.io/ annotations of a, or nil.
// It returns a itself when nothing is dropped.
func netguardAnnotations(a map[string]string) map[string]string {
	n := 0
	for k := range a {
		if strings.HasPrefix(k, annotationPrefix) {
			n++
		}
	}
	switch n {
	case len(a):
		return a
	case 0:
		return nil
	}
	out := make(map[string]string, n)
	for k, v := range a {
		if strings.HasPrefix(k, annotationPrefix) {
			out[k] = v
		}
	}
	return out
}

// annotationPrefix is the prefix of every annotation netguard reads.
const annotationPrefix = "netguard.io/"
