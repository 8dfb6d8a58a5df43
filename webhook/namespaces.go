package webhook

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// namespaceLabeler returns a namespace's labels.
type namespaceLabeler interface {
	NamespaceLabels(ctx context.Context, name string) (map[string]string, error)
}

// cachedNamespaces reads namespace metadata from the manager's informer cache.
// A namespace created a moment before one of its objects may not have reached
// the cache yet; then it polls the cache briefly and, only on a miss, reads
// the namespace once from the API server.
type cachedNamespaces struct {
	cache  client.Reader
	live   client.Reader
	synced *atomic.Bool
	poll   time.Duration
}

// errNotSynced makes a request fail with a retryable error.
var errNotSynced = fmt.Errorf("netguard is starting and its caches are not synced yet; retry in a few seconds")

func (c *cachedNamespaces) NamespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	if c.synced != nil && !c.synced.Load() {
		return nil, errNotSynced
	}
	get := func(r client.Reader) (map[string]string, error) {
		ns := namespaceMetadata()
		if err := r.Get(ctx, types.NamespacedName{Name: name}, ns); err != nil {
			return nil, err
		}
		return ns.Labels, nil
	}
	deadline := time.Now().Add(c.poll)
	for {
		labels, err := get(c.cache)
		if err == nil {
			return labels, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("read namespace %q from cache: %w", name, err)
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	labels, err := get(c.live)
	if err != nil {
		return nil, fmt.Errorf("namespace %q: %w", name, err)
	}
	return labels, nil
}
