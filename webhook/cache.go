package webhook

import (
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// CacheOptions are the informer cache settings `netguard serve` gives its
// manager. Every cached object drops its managedFields: netguard never reads
// them (it writes with server-side apply, which the API server resolves),
// and they were the largest part of each cached NetworkPolicy, so most of
// the memory of a cluster with many of them (BENCHMARKS.md, section 4).
func CacheOptions() cache.Options {
	return cache.Options{DefaultTransform: cache.TransformStripManagedFields()}
}
