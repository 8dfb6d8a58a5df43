package webhook

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// CacheOptions are the informer cache settings `netguard serve` gives its
// manager. Every cached object is trimmed by trimForCache.
func CacheOptions() cache.Options {
	return cache.Options{DefaultTransform: trimForCache}
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
	if _, partial := obj.(*metav1.PartialObjectMetadata); partial {
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
