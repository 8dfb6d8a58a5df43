package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Hard limits: whatever a caller asks for, one run never sends more than
// MaxRequests requests nor lasts longer than MaxDuration, and it only talks
// to loopback addresses.
const (
	MaxRequests = 2_000_000
	MaxDuration = 2 * time.Minute
)

// NewClient returns an HTTP/2 client that trusts caPEM, keeps its
// connections alive and never follows redirects, as the API server's
// webhook client does for a webhook URL on localhost.
func NewClient(caPEM []byte) (*http.Client, error) {
	return newClient(caPEM, true)
}

// NewClientHTTP1 is NewClient speaking HTTP/1.1 only, one request per
// connection at a time, as the API server calls a webhook behind a Service
// or at any URL not on localhost (k8s.io/apiserver/pkg/util/webhook,
// client.go: NextProtos http/1.1, so that concurrent calls spread over a
// Service's endpoints).
func NewClientHTTP1(caPEM []byte) (*http.Client, error) {
	return newClient(caPEM, false)
}

func newClient(caPEM []byte, h2 bool) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no CA certificate in the bundle")
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if !h2 {
		cfg.NextProtos = []string{"http/1.1"}
	}
	tr := &http.Transport{
		TLSClientConfig:     cfg,
		ForceAttemptHTTP2:   h2,
		MaxIdleConns:        100,
		MaxIdleConnsPerHost: 100,
		IdleConnTimeout:     90 * time.Second,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// CheckLoopback refuses a base URL whose host is not a loopback address:
// load runs must never leave the machine.
func CheckLoopback(base string) error {
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	if u.Scheme != "https" {
		return fmt.Errorf("%q: want an https URL", base)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q: load runs target loopback addresses only (127.0.0.0/8, ::1, localhost)", base)
	}
	return nil
}

// Result is one measured run.
type Result struct {
	Target string
	// Mode is "open" (fixed rate) or "closed" (saturation).
	Mode string
	// Rate is the offered rate of an open run; Workers the concurrency of a
	// closed one.
	Rate, Workers int
	Elapsed       time.Duration
	// Sent counts requests started, OK those answered with a well-formed
	// AdmissionReview echoing the UID, Errors the rest; Dropped counts open
	// run requests not sent because MaxInFlight were outstanding.
	Sent, OK, Errors, Dropped int
	// Unexpected counts answers whose verdict differs from Request.WantAllowed
	// (only meaningful for netguard; a floor allows everything).
	Unexpected int
	// HTTP2 reports that every answered request used HTTP/2.
	HTTP2 bool
	// Latencies of the OK requests, from sending the request to reading the
	// whole answer, sorted. An open run sends every request when it is due,
	// whether or not earlier ones were answered, so a slow server cannot hold
	// the load back (no coordinated omission).
	Latencies []time.Duration
	// Lag is how late the generator sent requests of an open run, sorted: if
	// its high quantiles are large the generator, not the server, fell behind.
	Lag []time.Duration
	// ByKind are the latencies by Request.Kind, sorted.
	ByKind map[string][]time.Duration
	// FirstErrors are up to five error messages.
	FirstErrors []string
}

// Throughput is OK answers per second.
func (r Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// Quantile returns the q-quantile (0..1) of the latencies, nearest rank.
func (r Result) Quantile(q float64) time.Duration { return quantile(r.Latencies, q) }

// KindQuantile is Quantile of one kind of request.
func (r Result) KindQuantile(kind string, q float64) time.Duration {
	return quantile(r.ByKind[kind], q)
}

// LagQuantile is Quantile of the generator's lag.
func (r Result) LagQuantile(q float64) time.Duration { return quantile(r.Lag, q) }

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Options bound a run.
type Options struct {
	// Target names the server in results.
	Target string
	// BaseURL is https://127.0.0.1:PORT.
	BaseURL string
	Client  *http.Client
	Corpus  Corpus
	// Duration of the run; capped at MaxDuration.
	Duration time.Duration
	// MaxRequests caps the requests of the run; capped at MaxRequests.
	MaxRequests int
	// MaxInFlight bounds outstanding requests of an open run (default 4096).
	MaxInFlight int
}

func (o *Options) check() error {
	if err := CheckLoopback(o.BaseURL); err != nil {
		return err
	}
	if len(o.Corpus) == 0 {
		return errors.New("empty corpus")
	}
	if o.Duration <= 0 || o.Duration > MaxDuration {
		o.Duration = min(max(o.Duration, time.Second), MaxDuration)
	}
	if o.MaxRequests <= 0 || o.MaxRequests > MaxRequests {
		o.MaxRequests = MaxRequests
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 4096
	}
	return nil
}

// recorder collects the outcome of requests from many goroutines.
type recorder struct {
	mu          sync.Mutex
	lat, lag    []time.Duration
	byKind      map[string][]time.Duration
	ok, errs    int
	unexpected  int
	notHTTP2    bool
	firstErrors []string
}

func (r *recorder) record(kind string, lat, lag time.Duration, err error, unexpected, http2 bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if lag >= 0 {
		r.lag = append(r.lag, lag)
	}
	if err != nil {
		r.errs++
		if len(r.firstErrors) < 5 {
			r.firstErrors = append(r.firstErrors, err.Error())
		}
		return
	}
	r.ok++
	r.lat = append(r.lat, lat)
	if r.byKind == nil {
		r.byKind = map[string][]time.Duration{}
	}
	r.byKind[kind] = append(r.byKind[kind], lat)
	if unexpected {
		r.unexpected++
	}
	if !http2 {
		r.notHTTP2 = true
	}
}

func (r *recorder) result(o Options, mode string, elapsed time.Duration, sent, dropped int) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	lat, lag := slices.Clone(r.lat), slices.Clone(r.lag)
	slices.Sort(lat)
	slices.Sort(lag)
	byKind := map[string][]time.Duration{}
	for k, v := range r.byKind {
		byKind[k] = slices.Sorted(slices.Values(v))
	}
	return Result{
		Target: o.Target, Mode: mode, Elapsed: elapsed, Sent: sent, OK: r.ok, Errors: r.errs, Dropped: dropped,
		Unexpected: r.unexpected, HTTP2: r.ok > 0 && !r.notHTTP2, Latencies: lat, Lag: lag, ByKind: byKind, FirstErrors: slices.Clone(r.firstErrors),
	}
}

var (
	allowedTrue = []byte(`"allowed":true`)
	uidKey      = []byte(`"uid":"`)
)

// send posts one review and checks the answer cheaply (the client shares the
// machine with the server, so it does not decode the JSON).
func send(ctx context.Context, c *http.Client, base string, r *Request) (allowed, http2 bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+r.Path, bytes.NewReader(r.Body))
	if err != nil {
		return false, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return false, false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return false, false, err
	}
	if resp.StatusCode != http.StatusOK {
		return false, false, fmt.Errorf("%s: HTTP %d: %.200s", r.Path, resp.StatusCode, body)
	}
	if !bytes.Contains(body, append(append(slices.Clone(uidKey), r.UID...), '"')) {
		return false, false, fmt.Errorf("%s: response does not echo uid %s: %.200s", r.Path, r.UID, body)
	}
	return bytes.Contains(body, allowedTrue), resp.ProtoMajor == 2, nil
}

// OpenLoop offers rate requests per second for the duration, whatever the
// server's latency: each request is due at start + i/rate and runs in its own
// goroutine, up to MaxInFlight outstanding.
func OpenLoop(ctx context.Context, o Options, rate int) (Result, error) {
	if err := o.check(); err != nil {
		return Result{}, err
	}
	if rate <= 0 {
		return Result{}, errors.New("rate must be positive")
	}
	n := min(int(float64(rate)*o.Duration.Seconds()), o.MaxRequests)
	ctx, cancel := context.WithTimeout(ctx, o.Duration+15*time.Second)
	defer cancel()
	rec := &recorder{lat: make([]time.Duration, 0, n), lag: make([]time.Duration, 0, n)}
	var (
		wg       sync.WaitGroup
		inflight atomic.Int64
		dropped  int
	)
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		if inflight.Load() >= int64(o.MaxInFlight) {
			dropped++
			continue
		}
		inflight.Add(1)
		wg.Add(1)
		r := &o.Corpus[i%len(o.Corpus)]
		go func() {
			defer wg.Done()
			defer inflight.Add(-1)
			t := time.Now()
			allowed, h2, err := send(ctx, o.Client, o.BaseURL, r)
			rec.record(r.Kind, time.Since(t), t.Sub(due), err, err == nil && allowed != r.WantAllowed, h2)
		}()
	}
	sentEnd := time.Now()
	wg.Wait()
	res := rec.result(o, "open", sentEnd.Sub(start), n-dropped, dropped)
	res.Rate = rate
	// Throughput over the sending window, the offered rate's window.
	if res.Elapsed < o.Duration/2 {
		res.Elapsed = o.Duration
	}
	return res, nil
}

// ClosedLoop runs workers that each send the next request as soon as the
// previous one is answered, for the duration: the server's saturation
// throughput at that concurrency.
func ClosedLoop(ctx context.Context, o Options, workers int) (Result, error) {
	if err := o.check(); err != nil {
		return Result{}, err
	}
	if workers <= 0 {
		return Result{}, errors.New("workers must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration+15*time.Second)
	defer cancel()
	rec := &recorder{}
	var (
		wg   sync.WaitGroup
		next atomic.Int64
	)
	start := time.Now()
	deadline := start.Add(o.Duration)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := next.Add(1) - 1
				if i >= int64(o.MaxRequests) {
					return
				}
				r := &o.Corpus[int(i)%len(o.Corpus)]
				t := time.Now()
				allowed, h2, err := send(ctx, o.Client, o.BaseURL, r)
				rec.record(r.Kind, time.Since(t), -1, err, err == nil && allowed != r.WantAllowed, h2)
			}
		}()
	}
	wg.Wait()
	res := rec.result(o, "closed", time.Since(start), int(min(next.Load(), int64(o.MaxRequests))), 0)
	res.Workers = workers
	return res, nil
}
