package webhook

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// countingReader is a client.Reader over namespace metadata that counts Gets.
type countingReader struct {
	mu     sync.Mutex
	labels map[string]map[string]string
	gets   int
}

func (r *countingReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gets++
	l, ok := r.labels[key.Name]
	if !ok {
		return apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, key.Name)
	}
	obj.(*metav1.PartialObjectMetadata).Labels = l
	return nil
}

func (r *countingReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return errors.New("not implemented")
}

func (r *countingReader) set(name string, labels map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.labels[name] = labels
}

func (r *countingReader) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gets
}

func synced(b bool) *atomic.Bool {
	var a atomic.Bool
	a.Store(b)
	return &a
}

// Labels come from the informer cache: however many requests, the API
// server is not asked while the cache knows the namespace.
func TestNamespaceLabelsComeFromTheCache(t *testing.T) {
	want := map[string]string{"netguard.io/enforce": "restricted"}
	cache := &countingReader{labels: map[string]map[string]string{"team": want}}
	live := &countingReader{labels: map[string]map[string]string{"team": {"netguard.io/enforce": "privileged"}}}
	c := &cachedNamespaces{cache: cache, live: live, synced: synced(true), poll: time.Second}
	for range 100 {
		got, err := c.NamespaceLabels(context.Background(), "team")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("labels %v, want the cache's %v", got, want)
		}
	}
	if live.count() != 0 {
		t.Errorf("%d live GETs for 100 requests, want 0", live.count())
	}
}

// A namespace created a moment before its first policy may not be in the
// cache yet: the cache is polled first, and the API server asked once only
// when the namespace never shows up.
func TestNamespaceLabelsCacheMiss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cache := &countingReader{labels: map[string]map[string]string{}}
		live := &countingReader{labels: map[string]map[string]string{"new": {"netguard.io/enforce": "baseline"}}}
		c := &cachedNamespaces{cache: cache, live: live, synced: synced(true), poll: 2 * time.Second}

		go func() {
			time.Sleep(100 * time.Millisecond)
			cache.set("new", map[string]string{"netguard.io/enforce": "restricted"})
		}()
		got, err := c.NamespaceLabels(context.Background(), "new")
		if err != nil {
			t.Fatal(err)
		}
		if got["netguard.io/enforce"] != "restricted" || live.count() != 0 {
			t.Errorf("labels %v with %d live GETs; want the cache's labels once the informer caught up, no live GET", got, live.count())
		}

		c.poll = 100 * time.Millisecond
		cache = &countingReader{labels: map[string]map[string]string{}}
		c.cache = cache
		got, err = c.NamespaceLabels(context.Background(), "new")
		if err != nil {
			t.Fatal(err)
		}
		if got["netguard.io/enforce"] != "baseline" || live.count() != 1 {
			t.Errorf("labels %v with %d live GETs; want the API server's labels from one GET", got, live.count())
		}

		if _, err := c.NamespaceLabels(context.Background(), "missing"); !apierrors.IsNotFound(errors.Unwrap(err)) {
			t.Errorf("a namespace that exists nowhere: %v, want a not-found error", err)
		}
	})
}

// Until the cache has synced, nothing is read and the caller gets
// errNotSynced, which the validator turns into a 503.
func TestNamespaceLabelsNotSynced(t *testing.T) {
	cache := &countingReader{labels: map[string]map[string]string{"team": nil}}
	live := &countingReader{labels: map[string]map[string]string{"team": nil}}
	c := &cachedNamespaces{cache: cache, live: live, synced: synced(false), poll: time.Second}
	if _, err := c.NamespaceLabels(context.Background(), "team"); !errors.Is(err, errNotSynced) {
		t.Fatalf("err %v, want errNotSynced", err)
	}
	if cache.count()+live.count() != 0 {
		t.Errorf("read the namespace %d times before sync", cache.count()+live.count())
	}
}
