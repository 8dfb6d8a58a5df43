package main

import (
	"fmt"
	"github.com/netguard/netguard/webhook"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// historyFile is the record of hot spots found and fixed, written by hand
// from `go run ./hack/bench ab` runs; every report carries it.
const historyFile = "hack/bench/history.md"

type report struct {
	Settings   settings
	Machine    machine
	Versions   versions
	Started    time.Time
	Elapsed    time.Duration
	LoadAvgEnd string
	OutPath    string
	Repo       string

	Micro *microResult
	Load  *loadResult
	API   *apiResult
	Scale *scaleResult
}

// check is one target: what was measured against what was promised.
type check struct {
	What, Target, Measured string
	Met                    *bool
}

func verdict(c check) string {
	switch {
	case c.Met == nil:
		return "not measured"
	case *c.Met:
		return "**met**"
	}
	return "**not met**"
}

func boolp(b bool) *bool { return &b }

func ms(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	return fmt.Sprintf("%.2f ms", float64(d)/1e6)
}

func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// mixedLabel names section 3's mixed corpus in the targets.
const mixedLabel = "mixed corpus (6 of 10 decided in CEL, 4 need the webhook)"

func (r *report) checks() []check {
	var cs []check
	if v, ok := r.Micro.get("EvaluateTypical", "ns/op"); ok {
		cs = append(cs, check{"typical policy: Evaluate at restricted (analysis + 15 checks), fastest of the runs", "<= 10 µs", fmtNs(v), boolp(v <= 10_000)})
	}
	if v, ok := r.Micro.get("EvaluateTypicalBaseline", "ns/op"); ok {
		cs = append(cs, check{"typical policy: Evaluate at baseline, fastest of the runs", "<= 10 µs", fmtNs(v), boolp(v <= 10_000)})
	}
	if name, v, ok := r.worstCase(); ok {
		cs = append(cs, check{"worst case up to 3 MiB (rules/cost_test.go): Evaluate at restricted, slowest case, fastest of the runs (" + name + ")", "<= 50 ms", fmtNs(v), boolp(v <= 50_000_000)})
	}
	if lo, hi, ok := r.nsPerRuleSpread(); ok {
		cs = append(cs, check{"cost linear in rules: largest / smallest ns per rule over 50-400 rules", "<= 2x", fmt.Sprintf("%.2fx", hi/lo), boolp(hi/lo <= 2)})
	}
	if l := r.Load; l != nil {
		if len(l.Saturation) > 0 {
			ng, fl := 0.0, 0.0
			for _, p := range l.Saturation {
				ng += p.Netguard.Throughput
				fl += p.Floor.Throughput
			}
			cs = append(cs, check{"saturation throughput, netguard / controller-runtime floor", ">= 0.8x", fmt.Sprintf("%.2fx (%.0f vs %.0f req/s)", ng/fl, ng/float64(len(l.Saturation)), fl/float64(len(l.Saturation))), boolp(ng/fl >= 0.8)})
			hn := 0.0
			for _, p := range l.Saturation {
				hn += p.Honest.Throughput
			}
			if hn > 0 {
				cs = append(cs, check{"saturation throughput, netguard / honest floor (no-op: decode the uid, answer allowed)", ">= 0.8x", fmt.Sprintf("%.2fx (%.0f vs %.0f req/s)", ng/hn, ng/float64(len(l.Saturation)), hn/float64(len(l.Saturation))), boolp(ng/hn >= 0.8)})
			}
		}
		if p := l.SaturationHTTP1; p != nil && p.Honest.Throughput > 0 {
			ng, hn := p.Netguard.Throughput, p.Honest.Throughput
			cs = append(cs, check{"saturation throughput over HTTP/1.1 (as the API server calls a webhook behind a Service), netguard / honest floor", ">= 0.8x", fmt.Sprintf("%.2fx (%.0f vs %.0f req/s)", ng/hn, ng, hn), boolp(ng/hn >= 0.8)})
		}
		for _, p := range l.Rates {
			if p.Rate != 1000 {
				continue
			}
			cs = append(cs, check{"p99 at 1000 req/s, netguard", "<= 2 ms", ms(p.Netguard.P99), boolp(p.Netguard.P99 <= 2*time.Millisecond)})
			q := float64(p.Netguard.P99) / float64(p.Floor.P99)
			cs = append(cs, check{"p99 at 1000 req/s, netguard / floor", "<= 1.5x", fmt.Sprintf("%.2fx (floor %s)", q, ms(p.Floor.P99)), boolp(q <= 1.5)})
		}
	}
	if a := r.API; a != nil {
		for _, op := range []struct {
			name   string
			m      map[string]latencies
			target float64
		}{
			{"CREATE, typical team policy", a.Create, 1.05},
			{"CREATE, " + mixedLabel, a.CreateMixed, 1.15},
			{"UPDATE, typical team policy", a.Update, 1.05},
			{"UPDATE, " + mixedLabel, a.UpdateMixed, 1.15},
		} {
			if len(op.m[modeNetguard]) == 0 || len(op.m[modeVAP]) == 0 {
				continue
			}
			for _, q := range []struct {
				name string
				q    float64
			}{{"median", .5}, {"p99", .99}} {
				c, b := op.m[modeNetguard].q(q.q), op.m[modeVAP].q(q.q)
				x := float64(c) / float64(b)
				cs = append(cs, check{fmt.Sprintf("NetworkPolicy %s, through the API server, %s: netguard / ValidatingAdmissionPolicy", op.name, q.name), fmt.Sprintf("<= %.2fx", op.target), fmt.Sprintf("%.2fx (%s vs %s)", x, ms(c), ms(b)), boolp(x <= op.target)})
			}
		}
		added := a.DeployInjct.q(.99) - a.DeployPlain.q(.99)
		what := "Deployment CREATE with 5 dependencies and 2 profiles: p99 added by injection (with minus without annotations) / p99 of the same writes without netguard (the generated NetworkPolicies applied by the benchmark 8 at a time, as netguard's webhook applies them, in a namespace no webhook sees)"
		if len(a.ApplyBatch) == 0 {
			cs = append(cs, check{what, "<= 1.15x", "no apply batches measured", nil})
		} else {
			base := a.ApplyBatch.q(.99)
			x := float64(added) / float64(base)
			cs = append(cs, check{what, "<= 1.15x", fmt.Sprintf("%.2fx (%s vs %s)", x, ms(added), ms(base)), boolp(x <= 1.15)})
		}
	}
	if s := r.Scale; s != nil {
		label := fmt.Sprintf("netguard RSS with %d namespaces, %d profiles, %d policies in its caches", s.Namespaces, s.Profiles, s.Policies)
		cs = append(cs, check{label, "<= 300 MiB", fmt.Sprintf("%s (Go heap in use %s, live %s)", mib(max(s.RSSReady, s.RSSAfter)), mib(max(s.HeapReady, s.HeapAfter)), mib(max(s.LiveReady, s.LiveAfter))), boolp(max(s.RSSReady, s.RSSAfter) <= 300*1024*1024)})
		if s.MemLimit != "" {
			rss := max(s.LimitRSSReady, s.LimitRSSAfter)
			cost := ""
			if s.Saturation.Netguard.Throughput > 0 {
				cost = fmt.Sprintf("; but saturation throughput %.2fx of the run without the limit", s.LimitSaturation.Netguard.Throughput/s.Saturation.Netguard.Throughput)
			}
			cs = append(cs, check{label + ", run with GOMEMLIMIT=" + s.MemLimit + " (a deployment setting)", "<= 300 MiB", fmt.Sprintf("%s (live heap %s%s)", mib(rss), mib(s.LimitLive), cost), boolp(rss <= 300*1024*1024)})
		}
		if s.EmptyRate != nil {
			empty := float64(s.EmptyRate.Netguard.P99) / float64(s.EmptyRate.Floor.P99)
			full := float64(s.Rate.Netguard.P99) / float64(s.Rate.Floor.P99)
			cs = append(cs, check{"p99 at 1000 req/s stays flat at scale: (netguard/floor at scale) / (netguard/floor empty)", "<= 1.2x", fmt.Sprintf("%.2fx (%.2fx vs %.2fx)", full/empty, full, empty), boolp(full/empty <= 1.2)})
		}
	}
	return cs
}

// worstCase is the slowest of the EvaluateWorstCase benchmarks, by its
// fastest run.
func (r *report) worstCase() (string, float64, bool) {
	if r.Micro == nil {
		return "", 0, false
	}
	var (
		name  string
		worst float64
	)
	for n, units := range r.Micro.Mins {
		if v, ok := units["ns/op"]; ok && strings.HasPrefix(n, "EvaluateWorstCase/") && v > worst {
			name, worst = strings.TrimPrefix(n, "EvaluateWorstCase/"), v
		}
	}
	return name, worst, name != ""
}

// nsPerRuleSpread is the smallest and largest ns/rule of EvaluateRules.
func (r *report) nsPerRuleSpread() (lo, hi float64, ok bool) {
	lo = math.Inf(1)
	for _, n := range []int{50, 100, 200, 400} {
		v, found := r.Micro.get(fmt.Sprintf("EvaluateRules/rules=%d", n), "ns/rule")
		if !found {
			return 0, 0, false
		}
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return lo, hi, true
}

func (r *report) write(path string) error {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	mode := "full (`make bench`)"
	if r.Settings.Quick {
		mode = "quick (`make bench-quick`): small counts, not the reference numbers"
	}
	w("# netguard benchmarks\n\n")
	w("Written by `hack/bench` on %s, run %s, in %s. Do not edit by hand: run `make bench` again. ", r.Started.UTC().Format("2006-01-02 15:04 MST"), mode, r.Elapsed.Round(time.Second))
	w("How to run and read it: [docs/benchmarks.md](docs/benchmarks.md).\n\n")
	w("Every comparison below was measured side by side in this one run, alternating the two sides, and is given as a ratio: absolute times on a shared 2-core machine drift from minute to minute (load average %s at the start, %s at the end).\n\n", r.Machine.LoadAvg, r.LoadAvgEnd)

	w("## Targets\n\n| what | target | measured | |\n|---|---|---|---|\n")
	for _, c := range r.checks() {
		w("| %s | %s | %s | %s |\n", c.What, c.Target, c.Measured, verdict(c))
	}

	w("\n## Machine and versions\n\n")
	w("| | |\n|---|---|\n| CPUs (nproc) | %d |\n| CPU model | %s |\n| memory | %s |\n| kernel | %s |\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.MemTotal, r.Machine.Kernel)
	w("| Go | %s |\n| kube-apiserver | %s |\n| etcd | %s |\n| client-go | %s |\n| controller-runtime | %s |\n| netguard commit | %s |\n\n", r.Versions.Go, r.Versions.KubeAPIServer, r.Versions.Etcd, r.Versions.ClientGo, r.Versions.ControllerRuntime, r.Versions.Netguard)

	w("## How to reproduce\n\n```sh\nmake bench          # this report, full counts (about 10-15 minutes)\nmake bench-quick    # small counts, a few minutes\n")
	w("go run ./hack/bench [-quick] [-skip micro,load,apiserver,scale] [-out BENCHMARKS.md]\n")
	if r.Micro != nil {
		w("%s   # section 1 alone\n", r.Micro.Command)
	}
	w("go run ./hack/loadgen -url https://127.0.0.1:PORT -ca CA.crt -namespaces NS   # the load generator by hand\n")
	w("go test -c -o old.test ./rules/   # at the old commit, then new.test at the new one\ngo run ./hack/bench ab -old ./old.test -new ./new.test -bench Typical -count 6\n```\n\n")

	r.writeMicro(w)
	r.writeLoad(w)
	r.writeAPI(w)
	r.writeScale(w)
	history, err := os.ReadFile(filepath.Join(r.Repo, historyFile))
	if err != nil {
		history = []byte("(" + historyFile + " is missing)\n")
	}
	w("## 5. Hot spots found and fixed\n\n%s", history)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func (r *report) writeMicro(w func(string, ...any)) {
	m := r.Micro
	w("## 1. Micro benchmarks\n\n")
	if m == nil {
		w("Not run.\n\n")
		return
	}
	w("`%s`: %d runs of each. The fastest run is the estimate of what the code costs (other work on a shared machine only ever slows a run down) and the one the targets use; the median shows how much the machine got in the way. Evaluate runs every check of the level on the analysis (the webhook evaluates enforce, warn and audit, sharing one analysis since the fix in section 5). The `Serve*` benchmarks post one AdmissionReview into an httptest recorder through the handler chain `serve` registers: netguard reads and decodes the body once, controller-runtime's `admission.Webhook.Handle` runs netguard's handler, and netguard encodes the answer; fakes stand in for namespace labels and the profile cache. `ServeFloor` alone posts through controller-runtime's own `admission.Webhook.ServeHTTP`, with a handler that allows everything. `ServeOnNewGoroutines` serves each request on a new goroutine, as the HTTP/2 server does; the others reuse the benchmark's goroutine. `ServeNetworkPolicy` runs the documented default configuration (enforce baseline, warn and audit restricted).\n\n", m.Command, r.Settings.BenchCount)
	w("| benchmark | time/op, fastest | time/op, median | B/op | allocs/op | ns/rule, fastest |\n|---|---:|---:|---:|---:|---:|\n")
	for _, n := range m.Names {
		v, med := m.Mins[n], m.Medians[n]
		perRule := ""
		if x, ok := v["ns/rule"]; ok {
			perRule = fmt.Sprintf("%.0f", x)
		}
		w("| %s | %s | %s | %.0f | %.0f | %s |\n", n, fmtNs(v["ns/op"]), fmtNs(med["ns/op"]), v["B/op"], v["allocs/op"], perRule)
	}
	w("\n`EvaluateRules/rules=N` is a policy of N ingress rules (two peers each, one or two ports) and N/4 egress rules; ns/rule divides by all N+N/4 rules. Past 512 peers in one direction (rules=400 has 800) the port checks stop merging ports peer by peer and assume every peer gets every rule's ports: more findings, never fewer, and bounded work; so rules=400 runs that cheaper path.\n\n")
	w("`EvaluateWorstCase/<case>/<version>` are the worst policies we know of up to the 3 MiB the API server stores (`rules/cost_test.go`): In lists of 40,000 to 300,000 values and namespace In lists of 2x80,000 (over the limits of `rules/limits.go`, denied by policySize before analysis), and policies just within the limits: 500 peers on one label with disjoint values, and 500 peers on labels of their own that all overlap. Before the fix the 40,000-value list took seconds and the larger ones minutes.\n\n")
}

func statRow(w func(string, ...any), name string, s stat, cpu time.Duration) {
	w("| %s | %s | %s | %s | %s | %.0f | %d | %d | %v | %s | %s |\n", name, ms(s.P50), ms(s.P90), ms(s.P99), ms(s.P999), s.Throughput, s.Errors+s.Dropped, s.Unexpected, s.HTTP2, ms(s.LagP99), fmtNs(float64(cpu)))
}

const statHeader = "| run | p50 | p90 | p99 | p99.9 | answered req/s | errors | unexpected verdicts | HTTP/2 | generator lag p99 | server CPU per request |\n|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n"

func (r *report) writeLoad(w func(string, ...any)) {
	l := r.Load
	w("## 2. Load on the webhook port: netguard vs the floor\n\n")
	if l == nil {
		w("Not run.\n\n")
		return
	}
	w("netguard (`netguard serve --disable-controllers`, caches synced against the envtest control plane) the floor (`hack/loadgen/floor`: a controller-runtime webhook server with netguard's TLS settings and paths, whose handlers allow everything) and the honest floor (`hack/loadgen/floor -minimal`: net/http with the same TLS settings, reading only request.uid and answering allowed, the fastest no-op a webhook can be) served the same requests from `hack/loadgen/load`, over HTTP/2 connections kept alive and TLS trusting the local CA, at 127.0.0.1, as the API server calls a webhook URL on localhost (one more saturation run is over HTTP/1.1, as it calls a webhook behind a Service or at any other URL: a connection per request in flight). Requests: %s.\n\n", l.Corpus)
	w("Open loop: requests are sent when due at the fixed rate, each in its own goroutine, whether or not earlier ones were answered; latency is from sending to reading the whole answer. Each run lasts %s; the two servers alternate which goes first. Saturation: %d closed-loop workers for %s. 'unexpected verdicts' counts answers that differ from netguard's expected verdict (the floor allows the denied policies too, so its count is the denied share). Server CPU per request is from /proc/PID/stat. The load generator shares the 2 cores with the server it measures.\n\n", l.Duration, r.Settings.Workers, l.Duration)
	w(statHeader)
	for _, p := range l.Rates {
		statRow(w, fmt.Sprintf("netguard @ %d/s", p.Rate), p.Netguard, p.NetguardCPU)
		statRow(w, fmt.Sprintf("floor @ %d/s", p.Rate), p.Floor, p.FloorCPU)
		statRow(w, fmt.Sprintf("honest floor @ %d/s", p.Rate), p.Honest, p.HonestCPU)
	}
	for i, p := range l.Saturation {
		statRow(w, fmt.Sprintf("netguard, saturation %d", i+1), p.Netguard, p.NetguardCPU)
		statRow(w, fmt.Sprintf("floor, saturation %d", i+1), p.Floor, p.FloorCPU)
		statRow(w, fmt.Sprintf("honest floor, saturation %d", i+1), p.Honest, p.HonestCPU)
	}
	if p := l.SaturationHTTP1; p != nil {
		statRow(w, "netguard, saturation over HTTP/1.1", p.Netguard, p.NetguardCPU)
		statRow(w, "floor, saturation over HTTP/1.1", p.Floor, p.FloorCPU)
		statRow(w, "honest floor, saturation over HTTP/1.1", p.Honest, p.HonestCPU)
	}
	w("\nRatios netguard / floor:\n\n| run | p50 | p99 | p99.9 | throughput | CPU per request |\n|---|---:|---:|---:|---:|---:|\n")
	for _, p := range l.Rates {
		w("| %d/s | %s | %s | %s | %s | %s |\n", p.Rate, ratio(float64(p.Netguard.P50), float64(p.Floor.P50)), ratio(float64(p.Netguard.P99), float64(p.Floor.P99)), ratio(float64(p.Netguard.P999), float64(p.Floor.P999)), ratio(p.Netguard.Throughput, p.Floor.Throughput), ratio(float64(p.NetguardCPU), float64(p.FloorCPU)))
	}
	if p := l.SaturationHTTP1; p != nil {
		w("| saturation over HTTP/1.1 | %s | %s | %s | %s | %s |\n", ratio(float64(p.Netguard.P50), float64(p.Floor.P50)), ratio(float64(p.Netguard.P99), float64(p.Floor.P99)), ratio(float64(p.Netguard.P999), float64(p.Floor.P999)), ratio(p.Netguard.Throughput, p.Floor.Throughput), ratio(float64(p.NetguardCPU), float64(p.FloorCPU)))
	}
	for i, p := range l.Saturation {
		w("| saturation %d | %s | %s | %s | %s | %s |\n", i+1, ratio(float64(p.Netguard.P50), float64(p.Floor.P50)), ratio(float64(p.Netguard.P99), float64(p.Floor.P99)), ratio(float64(p.Netguard.P999), float64(p.Floor.P999)), ratio(p.Netguard.Throughput, p.Floor.Throughput), ratio(float64(p.NetguardCPU), float64(p.FloorCPU)))
	}
	for _, p := range l.Rates {
		if p.Rate != 1000 {
			continue
		}
		w("\nBy kind of request at 1000/s (the floor does the same work for every kind):\n\n| request | netguard p50 | netguard p99 | floor p50 | floor p99 |\n|---|---:|---:|---:|---:|\n")
		for _, k := range []string{"np-allowed", "np-denied", "deploy-mutate", "deploy-validate"} {
			n, f := p.Netguard.Kinds[k], p.Floor.Kinds[k]
			w("| %s | %s | %s | %s | %s |\n", k, ms(n[0]), ms(n[1]), ms(f[0]), ms(f[1]))
		}
	}
	w("\nMemory after these runs: netguard RSS %s (Go heap in use %s, live %s), floor RSS %s.\n\n", mib(l.NetguardRSS), mib(l.NetguardHeap), mib(l.NetguardLive), mib(l.FloorRSS))
	for _, p := range append(append([]pair{}, l.Rates...), l.Saturation...) {
		for _, e := range append(p.Netguard.FirstErrors, p.Floor.FirstErrors...) {
			w("- error: `%s`\n", e)
		}
	}
}

func (r *report) writeAPI(w func(string, ...any)) {
	a := r.API
	w("## 3. Through the API server: no admission vs ValidatingAdmissionPolicy vs a no-op webhook vs netguard\n\n")
	if a == nil {
		w("Not run.\n\n")
		return
	}
	w("%d NetworkPolicies of each corpus (the typical team policy, then the mixed corpus) created and then updated in each of %d namespaces of one kube-apiserver, requests of all modes interleaved (%d at a time), so that drift hits them alike. The UPDATE moves the first ingress port (and its endPort along, if any), which keeps each policy's shape:\n\n", a.Policies, len(apiModes), a.Concurrency)
	w("- **none**: a namespace labelled `netguard.io/ignore`, outside netguard's webhooks and the VAP binding;\n")
	w("- **vap**: the same plus the label the `ValidatingAdmissionPolicy` binding selects: an in-tree CEL policy with the baseline checks CEL can express (every rule names its peers, no ipBlock, a namespaceSelector only when it pins kubernetes.io/metadata.name to the own namespace; see `hack/bench/apiserver.go`);\n")
	w("- **floor**: a namespace outside netguard's webhooks, sent to the honest floor of section 2 by a webhook registered like netguard's (same TLS, URL on 127.0.0.1, failurePolicy Fail): a webhook that allows everything, so what any admission webhook costs the API server before the webhook does any work;\n")
	w("- **netguard**: a namespace at enforce baseline (warn and audit restricted, the defaults), as installed: netguard's ValidatingAdmissionPolicies decide the policies CEL decides exactly, its validating webhook is called for the rest.\n\n")
	w("The selectors cost every request a label match, so 'none' is not quite zero admission. Before timing, each mode was sent three bad policies (dry run) and five good ones, which all must allow (the typical policy and one of each shape of the mixed corpus the webhook judges):\n\n")
	for _, v := range a.Verified {
		w("- %s\n", v)
	}
	for _, c := range []struct {
		title          string
		create, update map[string]latencies
		reviewed       int
	}{
		{"Typical team policy (`load.AllowedPolicy`: podSelector peers with matchLabels, no endPort, 6 of the 12 slots; netguard's admission policies decide every write in CEL, its webhook is not called)", a.Create, a.Update, a.Reviewed},
		{"Mixed corpus (`load.MixedPolicy`): 6 of 10 decided in CEL, 4 need the webhook (a namespaceSelector pinned to the own namespace, matchExpressions, an endPort range, 16 slots); all allowed at baseline and by the VAP", a.CreateMixed, a.UpdateMixed, a.ReviewedMixed},
	} {
		if len(c.create) == 0 {
			continue
		}
		w("\n**%s.** netguard's webhook answered %d of netguard's %d writes (its `netguard_admission_decisions_total`); the admission policies decided the rest in the API server.\n", c.title, c.reviewed, len(c.create[modeNetguard])+len(c.update[modeNetguard]))
		w("\n| mode | CREATE median | CREATE p90 | CREATE p99 | UPDATE median | UPDATE p90 | UPDATE p99 |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, m := range apiModes {
			w("| %s | %s | %s | %s | %s | %s | %s |\n", m, ms(c.create[m].q(.5)), ms(c.create[m].q(.9)), ms(c.create[m].q(.99)), ms(c.update[m].q(.5)), ms(c.update[m].q(.9)), ms(c.update[m].q(.99)))
		}
		w("\n| ratio | CREATE median | CREATE p99 | UPDATE median | UPDATE p99 |\n|---|---:|---:|---:|---:|\n")
		for _, r := range []struct{ name, x, y string }{{"vap / none", modeVAP, modeNone}, {"floor / none", modeFloor, modeNone}, {"netguard / none", modeNetguard, modeNone}, {"floor / vap", modeFloor, modeVAP}, {"netguard / vap", modeNetguard, modeVAP}, {"netguard / floor", modeNetguard, modeFloor}} {
			w("| %s | %s | %s | %s | %s |\n", r.name,
				ratio(float64(c.create[r.x].q(.5)), float64(c.create[r.y].q(.5))), ratio(float64(c.create[r.x].q(.99)), float64(c.create[r.y].q(.99))),
				ratio(float64(c.update[r.x].q(.5)), float64(c.update[r.y].q(.5))), ratio(float64(c.update[r.x].q(.99)), float64(c.update[r.y].q(.99))))
		}
	}
	w("\n**Injection.** %d Deployments with 5 dependencies and 2 profiles (netguard's mutating webhook labels the pod template; its validating webhook writes the generated NetworkPolicies with server-side apply before the Deployment is stored: %d for the first one) and %d identical Deployments without annotations (no webhook is called: the webhooks' CEL match conditions skip them), created one at a time, alternating:\n\n", a.Deployments, a.InjectedPolicies, a.Deployments)
	w("| Deployment CREATE | median | p90 | p99 | max |\n|---|---:|---:|---:|---:|\n")
	w("| without annotations | %s | %s | %s | %s |\n", ms(a.DeployPlain.q(.5)), ms(a.DeployPlain.q(.9)), ms(a.DeployPlain.q(.99)), ms(a.DeployPlain.q(1)))
	w("| with injection | %s | %s | %s | %s |\n", ms(a.DeployInjct.q(.5)), ms(a.DeployInjct.q(.9)), ms(a.DeployInjct.q(.99)), ms(a.DeployInjct.q(1)))
	w("| added | %s | %s | %s | |\n", ms(a.DeployInjct.q(.5)-a.DeployPlain.q(.5)), ms(a.DeployInjct.q(.9)-a.DeployPlain.q(.9)), ms(a.DeployInjct.q(.99)-a.DeployPlain.q(.99)))
	if len(a.ApplyBatch) > 0 {
		w("| the same policies, applied by the benchmark 8 at a time, no webhook called | %s | %s | %s | %s |\n", ms(a.ApplyBatch.q(.5)), ms(a.ApplyBatch.q(.9)), ms(a.ApplyBatch.q(.99)), ms(a.ApplyBatch.q(1)))
	}
	if len(a.HandlerMean) > 0 {
		w("\nInside netguard, per call while these Deployments were created (its handler, from `controller_runtime_webhook_latency_seconds`; the rest of the added time is the API server's calls to the webhooks and the policies' writes): mutating webhook %s over %d calls, validating webhook (judges, writes the policies, confirms dependency warnings) %s over %d calls, against a mean of %s for the benchmark's own writes of the same policies (the last row).\n", ms(a.HandlerMean[webhook.PathMutateWorkload]), a.HandlerCalls[webhook.PathMutateWorkload], ms(a.HandlerMean[webhook.PathValidateWorkload]), a.HandlerCalls[webhook.PathValidateWorkload], ms(a.ApplyBatch.mean()))
	}
	w("\nThe last row is the API server's and etcd's share of injection: the writes injection must finish before the Deployment is stored, so that no pod starts without its policies, timed without netguard in the way (interleaved with the Deployments above). The injection target divides the added p99 by its p99.\n\n")
	w("Section 3 took %s.\n\n", a.Elapsed.Round(time.Second))
}

func (r *report) writeScale(w func(string, ...any)) {
	s := r.Scale
	w("## 4. Scale and memory\n\n")
	if s == nil {
		w("Not run.\n\n")
		return
	}
	w("With netguard stopped, %d namespaces, %d NetworkProfiles and %d NetworkPolicies were created through the API server, %d at a time; then netguard started and filled its informer caches: namespaces and NetworkPolicies as metadata only (netguard reads the policy under review from the request, and the background audit reads specs from the API server a namespace at a time), NetworkProfiles as full objects; managedFields and annotations outside netguard.io/ are dropped before caching.\n\n", s.Namespaces, s.Profiles, s.Policies, s.Concurrency)
	w("| step | time |\n|---|---:|\n| create %d namespaces | %s |\n| create %d NetworkProfiles | %s |\n| create %d NetworkPolicies | %s |\n| start netguard until /readyz (caches synced) | %s |\n\n",
		s.Namespaces, s.NamespacesTime.Round(time.Millisecond), s.Profiles, s.ProfilesTime.Round(time.Millisecond), s.Policies, s.PoliciesTime.Round(time.Millisecond), s.Ready.Round(time.Millisecond))
	w("| netguard memory | VmRSS (/proc/PID/status) | go_memstats_heap_inuse_bytes | go_gc_heap_live_bytes |\n|---|---:|---:|---:|\n")
	w("| when ready | %s | %s | %s |\n| after the load runs below | %s | %s | %s |\n", mib(s.RSSReady), mib(s.HeapReady), mib(s.LiveReady), mib(s.RSSAfter), mib(s.HeapAfter), mib(s.LiveAfter))
	if r.Load != nil {
		w("| empty cluster, after section 2 | %s | %s | %s |\n", mib(r.Load.NetguardRSS), mib(r.Load.NetguardHeap), mib(r.Load.NetguardLive))
	}
	if s.MemLimit != "" {
		w("| with GOMEMLIMIT=%s, when ready | %s | | |\n| with GOMEMLIMIT=%s, after the load runs | %s | | %s |\n", s.MemLimit, mib(s.LimitRSSReady), s.MemLimit, mib(s.LimitRSSAfter), mib(s.LimitLive))
	}
	w("\nheap_inuse counts garbage not yet collected; heap_live is what the last GC found live. With the default GOGC=100 the heap may grow to twice the live heap before the next collection, which is most of the distance between live heap and RSS.\n")
	w("\nAdmission latency at this scale, same requests in namespaces among the %d, against the same floor:\n\n", s.Namespaces)
	w(statHeader)
	statRow(w, "netguard @ 1000/s, at scale", s.Rate.Netguard, s.Rate.NetguardCPU)
	statRow(w, "floor @ 1000/s, at scale", s.Rate.Floor, s.Rate.FloorCPU)
	statRow(w, "netguard, saturation, at scale", s.Saturation.Netguard, s.Saturation.NetguardCPU)
	statRow(w, "floor, saturation, at scale", s.Saturation.Floor, s.Saturation.FloorCPU)
	if s.MemLimit != "" {
		statRow(w, "netguard @ 1000/s, at scale, GOMEMLIMIT="+s.MemLimit, s.LimitRate.Netguard, s.LimitRate.NetguardCPU)
		statRow(w, "floor @ 1000/s (same run)", s.LimitRate.Floor, s.LimitRate.FloorCPU)
		statRow(w, "netguard, saturation, at scale, GOMEMLIMIT="+s.MemLimit, s.LimitSaturation.Netguard, s.LimitSaturation.NetguardCPU)
		statRow(w, "floor, saturation (same run)", s.LimitSaturation.Floor, s.LimitSaturation.FloorCPU)
	}
	w("\nGOMEMLIMIT is a setting of the deployment, not of the code: the Go runtime then collects more often as the heap nears the limit, trading CPU for memory. The rows with it show what that costs here.\n\n")
	if s.EmptyRate != nil && s.EmptySaturation != nil {
		e, f := s.EmptyRate, s.Rate
		w("\n| netguard / floor | p50 @ 1000/s | p99 @ 1000/s | saturation throughput |\n|---|---:|---:|---:|\n")
		w("| empty | %s | %s | %s |\n", ratio(float64(e.Netguard.P50), float64(e.Floor.P50)), ratio(float64(e.Netguard.P99), float64(e.Floor.P99)), ratio(s.EmptySaturation.Netguard.Throughput, s.EmptySaturation.Floor.Throughput))
		w("| at scale | %s | %s | %s |\n\n", ratio(float64(f.Netguard.P50), float64(f.Floor.P50)), ratio(float64(f.Netguard.P99), float64(f.Floor.P99)), ratio(s.Saturation.Netguard.Throughput, s.Saturation.Floor.Throughput))
	}
}
