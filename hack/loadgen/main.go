// Command loadgen sends AdmissionReviews to a netguard (or floor) webhook
// server on a loopback address, at fixed rates and then closed-loop, and
// prints latency percentiles and throughput. `make bench` runs the same
// code (package load) against netguard and the floor side by side; this
// command is for poking at one server by hand:
//
//	go run ./hack/loadgen -url https://127.0.0.1:9443 -ca certs/ca.crt -namespaces team-a -rates 500,1000 -duration 5s
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/netguard/netguard/hack/loadgen/load"
)

func main() {
	var (
		base       = flag.String("url", "https://127.0.0.1:9443", "webhook server base URL (loopback only)")
		caFile     = flag.String("ca", "", "PEM file of the CA that signed the server's certificate")
		namespaces = flag.String("namespaces", "default", "comma-separated namespaces the requests are in (they must exist for netguard)")
		rates      = flag.String("rates", "500,1000,2000,4000", "comma-separated open-loop rates, requests per second")
		duration   = flag.Duration("duration", 5*time.Second, "length of each run (at most 2m)")
		workers    = flag.Int("workers", 64, "closed-loop workers for the saturation run; 0 skips it")
		maxReqs    = flag.Int("max-requests", 100000, "hard cap on the requests of each run")
	)
	flag.Parse()
	if err := run(*base, *caFile, *namespaces, *rates, *duration, *workers, *maxReqs); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(base, caFile, namespaces, rates string, duration time.Duration, workers, maxReqs int) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	client, err := load.NewClient(ca)
	if err != nil {
		return err
	}
	corpus, err := load.NewCorpus(strings.Split(namespaces, ","), 200, load.DefaultMix)
	if err != nil {
		return err
	}
	o := load.Options{Target: base, BaseURL: base, Client: client, Corpus: corpus, Duration: duration, MaxRequests: maxReqs}
	fmt.Printf("%-12s %8s %8s %8s %8s %8s %10s %7s %7s %5s %9s\n", "run", "p50", "p90", "p99", "p99.9", "max", "req/s", "errors", "verdict", "h2", "lag p99")
	print := func(name string, r load.Result) {
		fmt.Printf("%-12s %8s %8s %8s %8s %8s %10.0f %7d %7d %5v %9s\n", name, ms(r.Quantile(.5)), ms(r.Quantile(.9)), ms(r.Quantile(.99)), ms(r.Quantile(.999)), ms(r.Quantile(1)), r.Throughput(), r.Errors+r.Dropped, r.Unexpected, r.HTTP2, ms(r.LagQuantile(.99)))
		for _, e := range r.FirstErrors {
			fmt.Println("  error:", e)
		}
	}
	for _, s := range strings.Split(rates, ",") {
		if s == "" {
			continue
		}
		rate, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("-rates: %q is not a number", s)
		}
		r, err := load.OpenLoop(ctx, o, rate)
		if err != nil {
			return err
		}
		print(fmt.Sprintf("%d/s", rate), r)
	}
	if workers > 0 {
		r, err := load.ClosedLoop(ctx, o, workers)
		if err != nil {
			return err
		}
		print(fmt.Sprintf("closed x%d", workers), r)
	}
	return nil
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + "ms" }
