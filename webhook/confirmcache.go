package webhook

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// confirmationTTL is how long what a confirmation read from the API server
// answers the namespace's later confirmations.
const confirmationTTL = time.Second

// confirmationCacheSize bounds the namespaces confirmationCache holds. The
// rate limiter already bounds them to the confirmations of one TTL (about
// 15); this holds without it (tests, or a limiter made more generous).
const confirmationCacheSize = 256

// confirmationCache keeps, per namespace and for confirmationTTL, what the
// API server's lists said the namespace's workloads declare, and shares a
// confirmation in flight, so that a burst of annotated writes in one
// namespace where a dependency is truly missing costs one round of lists
// (one per workload kind) a second rather than one per write: each round was
// seven API round trips in the write's tail latency, and at 1000 writes a
// second it took p99 from 2.8 to 7.3 ms.
//
// It is asked only once the informer cache says a component is missing, so
// the price is this: a component declared less than confirmationTTL after
// the lists were read may still be reported missing for the rest of that
// TTL, and only while the informer has not seen it either (a few
// milliseconds, normally). A namespace with more than confirmListLimit
// objects of a kind is kept too, as nothing to say; a list that failed is
// not kept, and neither is a confirmation the rate limiter refused, so the
// next write tries again. An entry holds at most confirmListLimit names per
// kind.
//
// The zero value is ready to use.
type confirmationCache struct {
	// now is the clock; nil is time.Now.
	now func() time.Time

	mu      sync.Mutex
	entries map[string]confirmation
	flights singleflight.Group
}

// confirmation is one namespace's entry: its declarations, nil when there
// is nothing to say (too many objects to list).
type confirmation struct {
	decl    *declarations
	expires time.Time
}

// errConfirmationLimited is a confirmation the rate limiter refused.
var errConfirmationLimited = errors.New("dependency warning confirmations rate-limited")

var confirmationLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "netguard_dependency_confirmations_total",
	Help: "Dependency warnings confirmed with the API server, by result: hit (answered by the last second's lists), shared (answered by lists in flight for another write), listed (listed anew) or limited (not confirmed, hence not given: the rate was spent).",
}, []string{"result"})

func init() {
	metrics.Registry.MustRegister(confirmationLookups)
}

// declarations are ns's declarations as the API server has them: from the
// cache while fresh, else from the lists in flight for ns, else read anew
// when limiter (nil: no limit) allows it. nil is nothing to say.
//
// Lists in flight run with the context of the write that started them:
// when it ends first, the writes that joined get nothing, as that one does.
func (c *confirmationCache) declarations(ctx context.Context, ns string, limiter *rate.Limiter, read func(context.Context) (*declarations, error)) *declarations {
	if d, ok := c.lookup(ns); ok {
		confirmationLookups.WithLabelValues("hit").Inc()
		return d
	}
	ran := false
	flight := c.flights.DoChan(ns, func() (any, error) {
		ran = true
		// The flight this one follows may have stored ns just now.
		if d, ok := c.lookup(ns); ok {
			confirmationLookups.WithLabelValues("hit").Inc()
			return d, nil
		}
		if limiter != nil && !limiter.Allow() {
			confirmationLookups.WithLabelValues("limited").Inc()
			return nil, errConfirmationLimited
		}
		confirmationLookups.WithLabelValues("listed").Inc()
		d, err := read(ctx)
		if err == nil || errors.Is(err, errTooMany) {
			c.store(ns, d)
		}
		return d, err
	})
	select {
	case <-ctx.Done():
		return nil
	case r := <-flight:
		if !ran {
			// Read after the flight's answer, which the flight sends
			// once its function has returned.
			confirmationLookups.WithLabelValues("shared").Inc()
		}
		if r.Err != nil {
			if !errors.Is(r.Err, errConfirmationLimited) {
				logf.FromContext(ctx).V(1).Info("cannot list workloads for dependency warnings", "error", r.Err.Error())
			}
			return nil
		}
		return r.Val.(*declarations)
	}
}

// lookup is ns's entry if it is fresh. A stale one is dropped.
func (c *confirmationCache) lookup(ns string) (*declarations, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[ns]
	if !ok {
		return nil, false
	}
	if !c.clock().Before(e.expires) {
		delete(c.entries, ns)
		return nil, false
	}
	return e.decl, true
}

// store keeps d for ns. It drops the stale entries first, then, while the
// cache is full, the oldest: entries are only stored after a round of lists,
// so the scan costs nothing next to it.
func (c *confirmationCache) store(ns string, d *declarations) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock()
	if c.entries == nil {
		c.entries = map[string]confirmation{}
	}
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	for len(c.entries) >= confirmationCacheSize {
		var oldest string
		var first time.Time
		for k, e := range c.entries {
			if first.IsZero() || e.expires.Before(first) {
				oldest, first = k, e.expires
			}
		}
		delete(c.entries, oldest)
	}
	c.entries[ns] = confirmation{decl: d, expires: now.Add(confirmationTTL)}
}

func (c *confirmationCache) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}
