package main

import (
	"context"
	"fmt"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netguard/netguard/hack/loadgen/load"
)

type scaleResult struct {
	Namespaces, Profiles, Policies int
	// Time to create each kind through the API server.
	NamespacesTime, ProfilesTime, PoliciesTime time.Duration
	Concurrency                                int
	// Ready is from starting netguard to /readyz answering 200 (caches synced).
	Ready time.Duration
	// Memory right after ready and after the load runs.
	RSSReady, HeapReady, RSSAfter, HeapAfter float64
	// LiveReady and LiveAfter are go_gc_heap_live_bytes: the heap the last
	// GC found live, without the garbage heap_inuse still counts.
	LiveReady, LiveAfter float64
	// Load at scale, against the same floor.
	Rate       pair
	Saturation pair
	// Empty is the same measurements before the objects were created.
	EmptyRate, EmptySaturation *pair
	// The same again with netguard started with GOMEMLIMIT=MemLimit, a
	// deployment setting (not a code change) that trades GC work for RSS.
	MemLimit                                string
	LimitReady                              time.Duration
	LimitRSSReady, LimitRSSAfter, LimitLive float64
	LimitRate, LimitSaturation              pair
}

// memLimit is the GOMEMLIMIT of the second scale measurement: below the
// 300 MiB target with room for what the Go runtime does not count.
const memLimit = "250MiB"

func scaleNamespace(i int) string { return fmt.Sprintf("scale-%05d", i) }

func runScale(ctx context.Context, e *benchEnv, s settings, empty *loadResult) (*scaleResult, error) {
	res := &scaleResult{Namespaces: s.ScaleNamespaces, Profiles: s.ScaleProfiles, Policies: s.ScalePolicies, Concurrency: s.LoadConcurrency}
	// netguard's webhooks are taken away while the objects are created: the
	// point is a loaded cache, not 60,000 more admissions.
	if err := e.stopNetguard(ctx); err != nil {
		return nil, err
	}
	t := time.Now()
	err := runJobs(ctx, s.ScaleNamespaces, s.LoadConcurrency, func(ctx context.Context, i int) error {
		return e.createNamespace(ctx, scaleNamespace(i), map[string]string{"team": fmt.Sprintf("team-%d", i%100)})
	})
	if err != nil {
		return nil, err
	}
	res.NamespacesTime = time.Since(t)
	progress("  %d namespaces in %s", s.ScaleNamespaces, res.NamespacesTime.Round(time.Millisecond))
	t = time.Now()
	base := load.Profiles()
	err = runJobs(ctx, s.ScaleProfiles, s.LoadConcurrency, func(ctx context.Context, i int) error {
		p := base[i%len(base)].DeepCopy()
		p.Name = fmt.Sprintf("scale-profile-%04d", i)
		p.Spec.Description = "generated for the scale benchmark"
		if err := e.cl.Create(ctx, p); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.ProfilesTime = time.Since(t)
	progress("  %d NetworkProfiles in %s", s.ScaleProfiles, res.ProfilesTime.Round(time.Millisecond))
	t = time.Now()
	perNS := max(1, s.ScalePolicies/max(1, s.ScaleNamespaces))
	err = runJobs(ctx, s.ScalePolicies, s.LoadConcurrency, func(ctx context.Context, i int) error {
		ns := scaleNamespace((i / perNS) % s.ScaleNamespaces)
		np := load.AllowedPolicy(ns, fmt.Sprintf("np-%d", i), i)
		if _, err := e.cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		if i > 0 && i%10000 == 0 {
			progress("  ... %d policies", i)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.PoliciesTime = time.Since(t)
	progress("  %d NetworkPolicies in %s", s.ScalePolicies, res.PoliciesTime.Round(time.Millisecond))

	if err := e.startNetguard(ctx); err != nil {
		return nil, err
	}
	res.Ready = e.ngReady
	progress("  netguard ready in %s", res.Ready.Round(time.Millisecond))
	res.RSSReady, _ = rssBytes(e.ngPID)
	res.HeapReady, _ = metricValue(e.ng.MetricsURL, "go_memstats_heap_inuse_bytes")
	res.LiveReady, _ = metricValue(e.ng.MetricsURL, "go_gc_heap_live_bytes")
	e.saveProfile(ctx, "heap", "heap-at-scale-ready.pprof")

	// The same load as on the empty cluster, in namespaces among the 10,000.
	namespaces := []string{scaleNamespace(1), scaleNamespace(s.ScaleNamespaces / 3), scaleNamespace(2 * s.ScaleNamespaces / 3), scaleNamespace(s.ScaleNamespaces - 1)}
	ts, err := e.targets(namespaces, s)
	if err != nil {
		return nil, err
	}
	if err := warmUp(ctx, ts); err != nil {
		return nil, err
	}
	progress("  1000 req/s and saturation at scale ...")
	if res.Rate, err = measure(ctx, ts, false, e.profiled("at-scale-1000", openLoop(1000))); err != nil {
		return nil, err
	}
	res.Rate.Rate = 1000
	if res.Saturation, err = measure(ctx, ts, true, closedLoop(s.Workers)); err != nil {
		return nil, err
	}
	res.Saturation.Workers = s.Workers
	res.RSSAfter, _ = rssBytes(e.ngPID)
	res.HeapAfter, _ = metricValue(e.ng.MetricsURL, "go_memstats_heap_inuse_bytes")
	res.LiveAfter, _ = metricValue(e.ng.MetricsURL, "go_gc_heap_live_bytes")
	// Again with a soft memory limit.
	if err := e.stopNetguard(ctx); err != nil {
		return nil, err
	}
	os.Setenv("GOMEMLIMIT", memLimit) // inherited by the netguard process only; this one read it at start
	err = e.startNetguard(ctx)
	os.Unsetenv("GOMEMLIMIT")
	if err != nil {
		return nil, err
	}
	res.MemLimit, res.LimitReady = memLimit, e.ngReady
	progress("  netguard with GOMEMLIMIT=%s ready in %s", memLimit, res.LimitReady.Round(time.Millisecond))
	res.LimitRSSReady, _ = rssBytes(e.ngPID)
	if ts, err = e.targets(namespaces, s); err != nil {
		return nil, err
	}
	if err := warmUp(ctx, ts); err != nil {
		return nil, err
	}
	if res.LimitRate, err = measure(ctx, ts, false, openLoop(1000)); err != nil {
		return nil, err
	}
	res.LimitRate.Rate = 1000
	if res.LimitSaturation, err = measure(ctx, ts, true, closedLoop(s.Workers)); err != nil {
		return nil, err
	}
	res.LimitSaturation.Workers = s.Workers
	res.LimitRSSAfter, _ = rssBytes(e.ngPID)
	res.LimitLive, _ = metricValue(e.ng.MetricsURL, "go_gc_heap_live_bytes")

	if empty != nil {
		for i := range empty.Rates {
			if empty.Rates[i].Rate == 1000 {
				res.EmptyRate = &empty.Rates[i]
			}
		}
		if len(empty.Saturation) > 0 {
			res.EmptySaturation = &empty.Saturation[0]
		}
	}
	return res, nil
}
