package webhook

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// confirmingLists counts the workload metadata lists a confirmation makes
// of the API server, by namespace. fail, when set, answers a list instead
// of the API server.
type confirmingLists struct {
	mu   sync.Mutex
	byNS map[string]int
	fail func(list *metav1.PartialObjectMetadataList) error
}

func (l *confirmingLists) count(ns string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byNS[ns]
}

// confirmingServer is testServer whose informer cache holds cached and whose
// API server holds live as well: a workload in live alone was written a
// moment ago. Its confirmation clock is the returned one.
func confirmingServer(t *testing.T, cached []client.Object, live ...client.Object) (*Server, *confirmingLists, *testClock, client.Client) {
	t.Helper()
	s, informer := testServer(t, cached...)
	api := fake.NewClientBuilder().WithScheme(NewScheme()).WithObjects(append(slices.Clone(cached), live...)...).Build()
	lists := &confirmingLists{byNS: map[string]int{}}
	s.apiReader = interceptor.NewClient(api, interceptor.Funcs{List: func(ctx context.Context, cl client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
		if l, ok := list.(*metav1.PartialObjectMetadataList); ok {
			ns := (&client.ListOptions{}).ApplyOptions(opts).Namespace
			lists.mu.Lock()
			lists.byNS[ns]++
			fail := lists.fail
			lists.mu.Unlock()
			if fail != nil {
				if err := fail(l); err != nil {
					return err
				}
				if l.Continue != "" {
					return nil
				}
			}
		}
		return cl.List(ctx, list, opts...)
	}})
	clock := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s.confirmed.now = clock.now
	return s, lists, clock, informer
}

func dependent(ns, name, deps string) rules.Workload {
	return rules.Workload{Kind: "Deployment", Namespace: ns, Name: name, Annotations: map[string]string{rules.AnnotationDependsOn: deps}}
}

func warnsAbout(warnings []string, component string) bool {
	return slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, fmt.Sprintf("component %q", component)) })
}

func declaring(ns, name, component string) *appsv1.Deployment {
	return webhooktest.Deployment(ns, name, map[string]string{rules.AnnotationComponent: component})
}

// Confirmations in one namespace within confirmationTTL read the API
// server once, one list per kind; after it they read it again. A component
// declared after that read is reported until the TTL is over, and only
// because the informer has not seen it either.
func TestDependencyConfirmationReusedWithinTTL(t *testing.T) {
	s, lists, clock, informer := confirmingServer(t, nil, declaring("team", "api", "api"))
	ctx := context.Background()
	w := dependent("team", "web", "api:80 ghost:80 late:80")
	hits := func() float64 { return testutil.ToFloat64(confirmationLookups.WithLabelValues("hit")) }
	before := hits()
	for i := range 3 {
		got := s.dependencyWarnings(ctx, w)
		if warnsAbout(got, "api") || !warnsAbout(got, "ghost") || !warnsAbout(got, "late") {
			t.Errorf("call %d: warnings %q, want ghost and late only (api is in the API server, not yet in the informer)", i, got)
		}
	}
	if n := lists.count("team"); n != len(workloadKinds) {
		t.Errorf("%d lists for 3 confirmations within the TTL, want one per kind (%d)", n, len(workloadKinds))
	}
	if d := hits() - before; d != 2 {
		t.Errorf("%v cache hits counted, want 2", d)
	}

	// Declared in the API server after the lists: reported within the
	// TTL, as the informer has not seen it, and not after it.
	if err := s.apiReader.(client.Client).Create(ctx, declaring("team", "late", "late")); err != nil {
		t.Fatal(err)
	}
	clock.advance(confirmationTTL - time.Millisecond)
	if got := s.dependencyWarnings(ctx, w); !warnsAbout(got, "late") {
		t.Errorf("within the TTL: warnings %q, want late still reported", got)
	}
	clock.advance(time.Millisecond)
	if got := s.dependencyWarnings(ctx, w); warnsAbout(got, "late") || !warnsAbout(got, "ghost") {
		t.Errorf("after the TTL: warnings %q, want ghost only", got)
	}
	if n := lists.count("team"); n != 2*len(workloadKinds) {
		t.Errorf("%d lists after the TTL, want a second round (%d)", n, 2*len(workloadKinds))
	}

	// Once the informer has it, no confirmation is asked for at all.
	if err := informer.Create(ctx, declaring("team", "ghost", "ghost")); err != nil {
		t.Fatal(err)
	}
	w = dependent("team", "web", "ghost:80")
	if got := s.dependencyWarnings(ctx, w); len(got) != 0 {
		t.Errorf("declared in the informer: warnings %q", got)
	}
}

// A confirmation the cache answers reads nothing and spends none of the
// rate; one that would read when the rate is spent says nothing.
func TestDependencyConfirmationHitSpendsNoRate(t *testing.T) {
	s, lists, clock, _ := confirmingServer(t, nil)
	s.confirmations = rate.NewLimiter(0, 1) // one confirmation, never more
	w := dependent("team", "web", "ghost:80")
	for i := range 5 {
		if got := s.dependencyWarnings(context.Background(), w); !warnsAbout(got, "ghost") {
			t.Errorf("call %d: warnings %q, want ghost", i, got)
		}
	}
	clock.advance(confirmationTTL)
	if got := s.dependencyWarnings(context.Background(), w); len(got) != 0 {
		t.Errorf("rate spent: warnings %q, want none", got)
	}
	if n := lists.count("team"); n != len(workloadKinds) {
		t.Errorf("%d lists, want one round (%d)", n, len(workloadKinds))
	}
}

// Namespaces do not share confirmations.
func TestDependencyConfirmationPerNamespace(t *testing.T) {
	s, lists, _, _ := confirmingServer(t, nil, declaring("shop", "api", "api"))
	team := s.dependencyWarnings(context.Background(), dependent("team", "web", "api:80"))
	shop := s.dependencyWarnings(context.Background(), dependent("shop", "web", "api:80"))
	if !warnsAbout(team, "api") || len(shop) != 0 {
		t.Errorf("team warnings %q (want api), shop warnings %q (want none)", team, shop)
	}
	if lists.count("team") != len(workloadKinds) || lists.count("shop") != len(workloadKinds) {
		t.Errorf("lists by namespace %v, want one round each", lists.byNS)
	}
}

// A failed list says nothing and is not kept: the next confirmation lists
// again. A namespace with more objects of a kind than a list holds says
// nothing either, and that is kept for the TTL: listing it again at once
// would cost the most and say the same.
func TestDependencyConfirmationFailedOrTruncated(t *testing.T) {
	w := dependent("team", "web", "ghost:80")
	t.Run("failed", func(t *testing.T) {
		s, lists, _, _ := confirmingServer(t, nil)
		lists.fail = func(*metav1.PartialObjectMetadataList) error { return errors.New("etcdserver: request timed out") }
		if got := s.dependencyWarnings(context.Background(), w); len(got) != 0 {
			t.Errorf("failed list: warnings %q, want none", got)
		}
		lists.fail = nil
		if got := s.dependencyWarnings(context.Background(), w); !warnsAbout(got, "ghost") {
			t.Errorf("after a failed list: warnings %q, want ghost", got)
		}
		if n := lists.count("team"); n != 2*len(workloadKinds) {
			t.Errorf("%d lists, want two rounds (%d): a failure is not kept", n, 2*len(workloadKinds))
		}
	})
	t.Run("truncated", func(t *testing.T) {
		s, lists, clock, _ := confirmingServer(t, nil)
		lists.fail = func(l *metav1.PartialObjectMetadataList) error {
			if l.GroupVersionKind().Kind == "PodList" {
				l.Continue = "more"
			}
			return nil
		}
		for i := range 2 {
			if got := s.dependencyWarnings(context.Background(), w); len(got) != 0 {
				t.Errorf("call %d: truncated list: warnings %q, want none", i, got)
			}
		}
		if n := lists.count("team"); n != len(workloadKinds) {
			t.Errorf("%d lists, want one round (%d)", n, len(workloadKinds))
		}
		lists.fail = nil
		clock.advance(confirmationTTL)
		if got := s.dependencyWarnings(context.Background(), w); !warnsAbout(got, "ghost") {
			t.Errorf("after the TTL: warnings %q, want ghost", got)
		}
	})
}

// holdLists makes every list of lists wait until release is closed;
// entered is closed when the first list starts.
func holdLists(lists *confirmingLists) (entered, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	lists.fail = func(*metav1.PartialObjectMetadataList) error {
		once.Do(func() { close(entered) })
		<-release
		return nil
	}
	return entered, release
}

// Concurrent confirmations in a namespace share one round of lists: the
// ones that arrive while it is in flight wait for it, the later ones find
// it in the cache.
func TestDependencyConfirmationConcurrentShareLists(t *testing.T) {
	s, lists, _, _ := confirmingServer(t, nil)
	entered, release := holdLists(lists)
	const callers = 20
	results := make([][]string, callers)
	var wg sync.WaitGroup
	wg.Go(func() { results[0] = s.dependencyWarnings(context.Background(), dependent("team", "web", "ghost:80")) })
	<-entered
	for i := 1; i < callers; i++ {
		wg.Go(func() {
			results[i] = s.dependencyWarnings(context.Background(), dependent("team", fmt.Sprintf("web-%d", i), "ghost:80"))
		})
	}
	close(release)
	wg.Wait()
	for i, got := range results {
		if !warnsAbout(got, "ghost") {
			t.Errorf("caller %d: warnings %q, want ghost", i, got)
		}
	}
	if n := lists.count("team"); n != len(workloadKinds) {
		t.Errorf("%d lists for %d concurrent confirmations, want one round (%d)", n, callers, len(workloadKinds))
	}
}

// A caller whose request ends while the lists are in flight gets nothing
// at once, rather than wait for them.
func TestDependencyConfirmationCallerGone(t *testing.T) {
	s, lists, _, _ := confirmingServer(t, nil)
	entered, release := holdLists(lists)
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan []string)
	go func() { done <- s.dependencyWarnings(ctx, dependent("team", "web", "ghost:80")) }()
	<-entered
	cancel()
	if got := <-done; len(got) != 0 {
		t.Errorf("caller gone: warnings %q, want none", got)
	}
}

// The cache holds at most confirmationCacheSize namespaces, dropping the
// stale ones and then the oldest.
func TestConfirmationCacheBounded(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := &confirmationCache{now: clock.now}
	c.store("stale", &declarations{})
	clock.advance(confirmationTTL)
	for i := range confirmationCacheSize + 1 {
		c.store(fmt.Sprintf("ns-%d", i), &declarations{})
		clock.advance(time.Microsecond)
	}
	if len(c.entries) != confirmationCacheSize {
		t.Errorf("%d entries, want %d", len(c.entries), confirmationCacheSize)
	}
	for _, ns := range []string{"stale", "ns-0"} {
		if _, ok := c.entries[ns]; ok {
			t.Errorf("%s is still held", ns)
		}
	}
	if _, ok := c.lookup(fmt.Sprintf("ns-%d", confirmationCacheSize)); !ok {
		t.Error("the newest entry is not found")
	}
}

// The request's own workload, as stored, declares nothing for it: the
// request's version counts. Another workload declaring the same component
// does.
func TestDependencyDeclarationsLeaveOutTheRequest(t *testing.T) {
	ctx := context.Background()
	stale := declaring("team", "web", "api") // web declared api before this write
	for _, tc := range []struct {
		name  string
		objs  []client.Object
		warns bool
	}{
		{"only the stored self", []client.Object{stale}, true},
		{"the stored self and another", []client.Object{stale, declaring("team", "api", "api")}, false},
		{"another", []client.Object{declaring("team", "api", "api")}, false},
	} {
		c := fake.NewClientBuilder().WithScheme(NewScheme()).WithObjects(tc.objs...).Build()
		d, err := readDeclarations(ctx, c, "team", confirmListLimit)
		if err != nil {
			t.Fatal(err)
		}
		w := dependent("team", "web", "api:80")
		w.Annotations[rules.AnnotationComponent] = "web"
		ann, _, errs := rules.ParseAnnotations(w.Name, w.Annotations, field.NewPath("metadata"))
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		if got := d.undeclared(w, ann); warnsAbout(got, "api") != tc.warns {
			t.Errorf("%s: warnings %q, want a warning about api: %v", tc.name, got, tc.warns)
		}
	}
}
