package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/netguard/netguard/e2e/cluster"
	"github.com/netguard/netguard/hack/loadgen/load"
	"github.com/netguard/netguard/webhook"
)

// benchEnv is the control plane, netguard and the floor, shared by the
// sections that need them.
type benchEnv struct {
	repo, work            string
	netguardBin, floorBin string
	cluster               *cluster.Cluster
	cs                    *kubernetes.Clientset
	cl                    client.Client
	ng                    *cluster.Netguard
	ngPID                 int
	ngReady               time.Duration
	floor                 *floorServer
	// honest is the honest floor (hack/loadgen/floor -minimal): decode the
	// uid, answer allowed.
	honest *floorServer
	logs   *os.File
	// pprofDir and pprofURL: profiles, when -pprof is set.
	pprofDir, pprofURL string
}

// loadNamespaces hold the load generator's requests.
var loadNamespaces = []string{"loadgen-0", "loadgen-1", "loadgen-2", "loadgen-3"}

func startEnv(ctx context.Context, repo, assets, work, netguardBin, floorBin, pprofDir string) (*benchEnv, error) {
	e := &benchEnv{repo: repo, work: work, netguardBin: netguardBin, floorBin: floorBin, pprofDir: pprofDir}
	var err error
	if e.logs, err = os.Create(filepath.Join(work, "processes.log")); err != nil {
		return nil, err
	}
	progress("starting etcd and kube-apiserver ...")
	e.cluster, err = cluster.Start(ctx, cluster.Options{AssetsDir: assets, CRDDirs: []string{filepath.Join(repo, "charts", "netguard", "crds")}})
	if err != nil {
		return nil, err
	}
	cfg := rest.CopyConfig(e.cluster.Config)
	cfg.QPS, cfg.Burst = 5000, 10000 // the benchmark, not client-go, sets the pace
	if e.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		e.stop()
		return nil, err
	}
	if e.cl, err = client.New(cfg, client.Options{Scheme: webhook.NewScheme()}); err != nil {
		e.stop()
		return nil, err
	}
	for _, ns := range loadNamespaces {
		if err := e.createNamespace(ctx, ns, nil); err != nil {
			e.stop()
			return nil, err
		}
	}
	for _, p := range load.Profiles() {
		if err := e.cl.Create(ctx, p); err != nil && !apierrors.IsAlreadyExists(err) {
			e.stop()
			return nil, err
		}
	}
	if err := e.startNetguard(ctx); err != nil {
		e.stop()
		return nil, err
	}
	if e.floor, err = startFloor(ctx, floorBin, e.ng.CertDir, e.logs); err != nil {
		e.stop()
		return nil, err
	}
	if e.honest, err = startFloor(ctx, floorBin, e.ng.CertDir, e.logs, "-minimal"); err != nil {
		e.stop()
		return nil, err
	}
	return e, nil
}

func (e *benchEnv) createNamespace(ctx context.Context, name string, labels map[string]string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := e.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	return nil
}

// startNetguard runs netguard serve with its controllers off (admission
// only), waits until it is ready and its webhooks are registered, and
// records how long that took and its PID.
func (e *benchEnv) startNetguard(ctx context.Context) error {
	t0 := time.Now()
	args := []string{"--disable-controllers"}
	if e.pprofDir != "" {
		port, err := cluster.FreePort()
		if err != nil {
			return err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		args = append(args, "--pprof-bind-address="+addr)
		e.pprofURL = "http://" + addr + "/debug/pprof/"
	}
	ng, err := e.cluster.StartNetguard(ctx, cluster.NetguardOptions{Binary: e.netguardBin, Args: args, Log: e.logs})
	if err != nil {
		return fmt.Errorf("start netguard (log %s): %w", e.logs.Name(), err)
	}
	e.ng, e.ngReady = ng, time.Since(t0)
	u, _ := url.Parse(ng.WebhookURL)
	if e.ngPID, err = findPID(e.netguardBin, "--webhook-port="+u.Port()); err != nil {
		return err
	}
	return nil
}

func (e *benchEnv) stopNetguard(ctx context.Context) error {
	if e.ng == nil {
		return nil
	}
	err := e.ng.Stop(ctx)
	e.ng = nil
	return err
}

func (e *benchEnv) stop() {
	if e.honest != nil {
		e.honest.stop()
	}
	if e.floor != nil {
		e.floor.stop()
	}
	if e.ng != nil {
		_ = e.ng.Stop(context.Background())
	}
	if e.cluster != nil {
		if err := e.cluster.Stop(); err != nil {
			progress("stop control plane: %v", err)
		}
	}
	if e.logs != nil {
		e.logs.Close()
	}
}

// stat is a load.Result without the samples.
type stat struct {
	P50, P90, P99, P999, Max, LagP99 time.Duration
	Throughput                       float64
	OK, Errors, Dropped, Unexpected  int
	HTTP2                            bool
	FirstErrors                      []string
	// Kinds are p50 and p99 by kind of request.
	Kinds map[string][2]time.Duration
}

func summarize(r load.Result) stat {
	return stat{
		P50: r.Quantile(.5), P90: r.Quantile(.9), P99: r.Quantile(.99), P999: r.Quantile(.999), Max: r.Quantile(1), LagP99: r.LagQuantile(.99),
		Throughput: r.Throughput(), OK: r.OK, Errors: r.Errors, Dropped: r.Dropped, Unexpected: r.Unexpected, HTTP2: r.HTTP2, FirstErrors: r.FirstErrors,
		Kinds: kinds(r),
	}
}

func kinds(r load.Result) map[string][2]time.Duration {
	out := map[string][2]time.Duration{}
	for k := range r.ByKind {
		out[k] = [2]time.Duration{r.KindQuantile(k, .5), r.KindQuantile(k, .99)}
	}
	return out
}

// pair is netguard and the floors under the same load: Floor the
// controller-runtime one, Honest the fastest no-op webhook.
type pair struct {
	Rate, Workers           int
	Netguard, Floor, Honest stat
	// CPU per answered request, from /proc/PID/stat around the run.
	NetguardCPU, FloorCPU, HonestCPU time.Duration
}

type loadResult struct {
	Corpus     string
	Duration   time.Duration
	Rates      []pair
	Saturation []pair
	// SaturationHTTP1 is one saturation run over HTTP/1.1, as the API
	// server calls a webhook behind a Service.
	SaturationHTTP1 *pair
	NetguardRSS     float64
	NetguardHeap    float64
	NetguardLive    float64
	FloorRSS        float64
	HonestRSS       float64
}

// target is one server under load.
type target struct {
	name string
	pid  int
	opts load.Options
}

func (e *benchEnv) targets(namespaces []string, s settings) ([]*target, error) {
	corpus, err := load.NewCorpus(namespaces, 400, load.DefaultMix)
	if err != nil {
		return nil, err
	}
	var out []*target
	for _, t := range []struct {
		name, url string
		pid       int
	}{{"netguard", e.ng.WebhookURL, e.ngPID}, {"floor", e.floor.URL, e.floor.pid()}, {"honest", e.honest.URL, e.honest.pid()}} {
		c, err := load.NewClient(e.ng.CABundle)
		if err != nil {
			return nil, err
		}
		out = append(out, &target{name: t.name, pid: t.pid, opts: load.Options{
			Target: t.name, BaseURL: t.url, Client: c, Corpus: corpus, Duration: s.RunDuration, MaxRequests: s.MaxRunRequests,
		}})
	}
	return out, nil
}

// measure runs fn against every target, in reverse order when swap is
// set, and returns the pair.
func measure(ctx context.Context, ts []*target, swap bool, fn func(context.Context, load.Options) (load.Result, error)) (pair, error) {
	order := slices.Clone(ts)
	if swap {
		slices.Reverse(order)
	}
	var p pair
	for _, t := range order {
		cpu0, _ := cpuSeconds(t.pid)
		res, err := fn(ctx, t.opts)
		if err != nil {
			return p, fmt.Errorf("%s: %w", t.name, err)
		}
		cpu1, _ := cpuSeconds(t.pid)
		var perReq time.Duration
		if res.OK > 0 {
			perReq = time.Duration((cpu1 - cpu0) / float64(res.OK) * 1e9)
		}
		switch t.name {
		case "netguard":
			p.Netguard, p.NetguardCPU = summarize(res), perReq
		case "honest":
			p.Honest, p.HonestCPU = summarize(res), perReq
		default:
			p.Floor, p.FloorCPU = summarize(res), perReq
		}
		time.Sleep(500 * time.Millisecond) // let the other side's GC settle
	}
	return p, nil
}

func openLoop(rate int) func(context.Context, load.Options) (load.Result, error) {
	return func(ctx context.Context, o load.Options) (load.Result, error) { return load.OpenLoop(ctx, o, rate) }
}

func closedLoop(workers int) func(context.Context, load.Options) (load.Result, error) {
	return func(ctx context.Context, o load.Options) (load.Result, error) {
		return load.ClosedLoop(ctx, o, workers)
	}
}

// warmUp opens the connections and warms both servers' caches and heaps.
func warmUp(ctx context.Context, ts []*target) error {
	for _, t := range ts {
		o := t.opts
		o.Duration = time.Second
		r, err := load.OpenLoop(ctx, o, 500)
		if err != nil {
			return err
		}
		if r.Errors > 0 || !r.HTTP2 {
			return fmt.Errorf("%s warm-up: %d errors (%v), HTTP/2 %v", t.name, r.Errors, r.FirstErrors, r.HTTP2)
		}
	}
	return nil
}

func runLoad(ctx context.Context, e *benchEnv, s settings) (*loadResult, error) {
	ts, err := e.targets(loadNamespaces, s)
	if err != nil {
		return nil, err
	}
	if err := warmUp(ctx, ts); err != nil {
		return nil, err
	}
	res := &loadResult{Duration: s.RunDuration, Corpus: corpusDescription}
	for i, rate := range s.Rates {
		progress("  %d req/s for %s each ...", rate, s.RunDuration)
		p, err := measure(ctx, ts, i%2 == 1, openLoop(rate))
		if err != nil {
			return nil, err
		}
		p.Rate = rate
		res.Rates = append(res.Rates, p)
	}
	for i := range s.SatRounds {
		progress("  saturation, %d workers, %s each (round %d) ...", s.Workers, s.RunDuration, i+1)
		fn := closedLoop(s.Workers)
		if i == 0 {
			fn = e.profiled("saturation", fn)
		}
		p, err := measure(ctx, ts, i%2 == 1, fn)
		if err != nil {
			return nil, err
		}
		p.Workers = s.Workers
		res.Saturation = append(res.Saturation, p)
	}
	// Over HTTP/1.1, as the API server talks to a webhook that is not on
	// localhost: each connection's requests are served on that
	// connection's goroutine, one at a time.
	progress("  saturation over HTTP/1.1, %d workers, %s each ...", s.Workers, s.RunDuration)
	h1 := make([]*target, 0, len(ts))
	for _, t := range ts {
		c, err := load.NewClientHTTP1(e.ng.CABundle)
		if err != nil {
			return nil, err
		}
		t1 := *t
		t1.opts.Client = c
		h1 = append(h1, &t1)
	}
	p, err := measure(ctx, h1, false, closedLoop(s.Workers))
	if err != nil {
		return nil, fmt.Errorf("saturation over HTTP/1.1: %w", err)
	}
	for _, r := range []stat{p.Netguard, p.Floor, p.Honest} {
		if r.HTTP2 {
			return nil, errors.New("saturation over HTTP/1.1: a server answered over HTTP/2")
		}
	}
	p.Workers = s.Workers
	res.SaturationHTTP1 = &p
	res.NetguardRSS, _ = rssBytes(e.ngPID)
	res.FloorRSS, _ = rssBytes(e.floor.pid())
	res.HonestRSS, _ = rssBytes(e.honest.pid())
	res.NetguardHeap, _ = metricValue(e.ng.MetricsURL, "go_memstats_heap_inuse_bytes")
	res.NetguardLive, _ = metricValue(e.ng.MetricsURL, "go_gc_heap_live_bytes")
	e.saveProfile(ctx, "heap", "heap-after-load.pprof")
	return res, nil
}

// profiled wraps a run so that, with -pprof, netguard's CPU profile covers
// its run (not the floor's) and lands in the profile directory.
func (e *benchEnv) profiled(name string, fn func(context.Context, load.Options) (load.Result, error)) func(context.Context, load.Options) (load.Result, error) {
	if e.pprofURL == "" {
		return fn
	}
	return func(ctx context.Context, o load.Options) (load.Result, error) {
		if o.Target != "netguard" {
			return fn(ctx, o)
		}
		secs := max(1, int(o.Duration.Seconds())-1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			e.saveProfile(ctx, "profile?seconds="+strconv.Itoa(secs), "cpu-"+name+".pprof")
		}()
		res, err := fn(ctx, o)
		<-done
		return res, err
	}
}

// saveProfile fetches one of netguard's pprof endpoints into the profile
// directory; failures are reported, not fatal.
func (e *benchEnv) saveProfile(ctx context.Context, endpoint, file string) {
	if e.pprofURL == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.pprofURL+endpoint, nil)
	if err != nil {
		progress("pprof %s: %v", endpoint, err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		progress("pprof %s: %v", endpoint, err)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(e.pprofDir, file), b, 0o644)
	}
	if err != nil {
		progress("pprof %s: %v", endpoint, err)
		return
	}
	progress("  netguard profile: %s", filepath.Join(e.pprofDir, file))
}

// saveAPIServerProfile fetches a CPU profile of secs seconds from
// kube-apiserver's /debug/pprof (profiling is on by default; the bench's
// client is an administrator) into the profile directory; failures are
// reported, not fatal.
func (e *benchEnv) saveAPIServerProfile(ctx context.Context, secs int, file string) {
	if e.pprofDir == "" {
		return
	}
	b, err := e.cs.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", strconv.Itoa(secs)).DoRaw(ctx)
	if err == nil {
		err = os.WriteFile(filepath.Join(e.pprofDir, file), b, 0o644)
	}
	if err != nil {
		progress("kube-apiserver pprof: %v", err)
		return
	}
	progress("  kube-apiserver profile: %s", filepath.Join(e.pprofDir, file))
}

const corpusDescription = "per 10 requests: 4 allowed and 2 denied NetworkPolicy CREATEs to " + webhook.PathValidateNetworkPolicy +
	", 3 Deployments with 10 dependencies and 3 profiles to " + webhook.PathMutateWorkload + " and 1 to " + webhook.PathValidateWorkload +
	" (dryRun=true, so nothing is written); 400 distinct requests over 4 namespaces at the default levels (enforce baseline, warn and audit restricted)"
