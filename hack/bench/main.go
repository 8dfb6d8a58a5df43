// Command bench is `make bench`: it measures netguard against its floor and
// its alternatives and (re)writes BENCHMARKS.md. See docs/benchmarks.md.
//
// Every comparison runs side by side in one session and is reported as a
// ratio, because absolute times on a shared machine drift. Load runs target
// loopback addresses only, are bounded in requests and time, and stop by
// themselves.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// settings are the sizes of one run; -quick shrinks them for developers.
type settings struct {
	Quick bool
	// Micro benchmarks.
	BenchCount int
	BenchTime  string
	// Load against the webhook port.
	Rates          []int
	RunDuration    time.Duration
	Workers        int
	SatRounds      int
	MaxRunRequests int
	// Through the API server.
	APIPolicies, APIConcurrency, Deployments int
	// Scale.
	ScaleNamespaces, ScaleProfiles, ScalePolicies, LoadConcurrency int
	// NetguardBinary, when set, is measured instead of a fresh build.
	NetguardBinary string
	// PprofDir, when set, receives netguard's CPU profile of the first
	// saturation run and its heap profiles (-pprof).
	PprofDir string
}

func fullSettings() settings {
	return settings{
		BenchCount: 6, BenchTime: "500ms",
		Rates: []int{500, 1000, 2000, 4000}, RunDuration: 10 * time.Second, Workers: 64, SatRounds: 2, MaxRunRequests: 40000,
		APIPolicies: 2000, APIConcurrency: 2, Deployments: 200,
		ScaleNamespaces: 10000, ScaleProfiles: 1000, ScalePolicies: 50000, LoadConcurrency: 32,
	}
}

func quickSettings() settings {
	return settings{
		Quick:      true,
		BenchCount: 1, BenchTime: "200ms",
		Rates: []int{500, 1000, 2000, 4000}, RunDuration: 2 * time.Second, Workers: 64, SatRounds: 1, MaxRunRequests: 16000,
		APIPolicies: 200, APIConcurrency: 2, Deployments: 20,
		ScaleNamespaces: 500, ScaleProfiles: 50, ScalePolicies: 2500, LoadConcurrency: 16,
	}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "ab" {
		abMain(os.Args[2:])
		return
	}
	var (
		quick  = flag.Bool("quick", false, "small counts and short runs (make bench-quick)")
		out    = flag.String("out", "BENCHMARKS.md", "report to (re)write")
		assets = flag.String("assets", "bin/k8s", "directory with etcd and kube-apiserver")
		skip   = flag.String("skip", "", "comma-separated sections to skip: micro, load, apiserver, scale")
		limit  = flag.Duration("timeout", 45*time.Minute, "give up after this long")
		ngBin  = flag.String("netguard", "", "a netguard binary to measure instead of building ./cmd/netguard (to compare two builds)")
		deps   = flag.Int("deployments", 0, "override the number of Deployments of each kind in section 3")
		pols   = flag.Int("api-policies", 0, "override the number of NetworkPolicies per mode in section 3")
		pprof  = flag.String("pprof", "", "directory for netguard's profiles: CPU during the first saturation run and the first 5 s of section 3's Deployments, heap after the load runs (netguard runs with --pprof-bind-address)")
	)
	flag.Parse()
	// envtest logs through controller-runtime; the report is the output.
	ctrllog.SetLogger(logr.Discard())
	s := fullSettings()
	if *quick {
		s = quickSettings()
	}
	if *deps > 0 {
		s.Deployments = *deps
	}
	if *pols > 0 {
		s.APIPolicies = *pols
	}
	s.NetguardBinary = *ngBin
	if *pprof != "" {
		dir, err := filepath.Abs(*pprof)
		if err == nil {
			err = os.MkdirAll(dir, 0o755)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: -pprof:", err)
			os.Exit(1)
		}
		s.PprofDir = dir
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *limit)
	defer cancel()
	if err := run(ctx, s, *out, *assets, *skip); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func abMain(args []string) {
	fs := flag.NewFlagSet("ab", flag.ExitOnError)
	o := abOptions{}
	fs.StringVar(&o.Old, "old", "", "test binary built from the old code (go test -c)")
	fs.StringVar(&o.New, "new", "", "test binary built from the new code")
	fs.StringVar(&o.Bench, "bench", ".", "benchmarks to run (-test.bench)")
	fs.StringVar(&o.Benchtime, "benchtime", "300ms", "-test.benchtime of each run")
	fs.IntVar(&o.Count, "count", 10, "rounds; each runs old and new once (-test.count 1), alternating which goes first")
	fs.StringVar(&o.Dir, "o", "", "directory for old.txt and new.txt (default: a new temporary directory, kept)")
	benchstat := fs.String("benchstat", "", "benchstat command (default: go -C hack/tools tool benchstat, the pinned version)")
	_ = fs.Parse(args)
	err := func() error {
		if *benchstat != "" {
			o.Benchstat = strings.Fields(*benchstat)
		} else {
			dir, err := toolsDir()
			if err != nil {
				return err
			}
			o.ToolsDir = dir
		}
		if o.Dir == "" {
			dir, err := os.MkdirTemp("", "netguard-ab-")
			if err != nil {
				return err
			}
			o.Dir = dir
		}
		progress("ab: raw results in %s (old.txt, new.txt)", o.Dir)
		return runAB(os.Stdout, o)
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench ab:", err)
		os.Exit(1)
	}
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, s settings, out, assets, skip string) error {
	start := time.Now()
	repo, err := os.Getwd()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(repo, "go.mod")); err != nil {
		return errors.New("run from the repository root (make bench does)")
	}
	assets, _ = filepath.Abs(assets)
	if _, err := os.Stat(filepath.Join(assets, "kube-apiserver")); err != nil {
		return fmt.Errorf("control plane binaries missing in %s: run `make envtest-assets`", assets)
	}
	skipped := map[string]bool{}
	for _, x := range strings.Split(skip, ",") {
		if x = strings.TrimSpace(x); x != "" {
			skipped[x] = true
		}
	}
	work, err := os.MkdirTemp("", "netguard-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	r := &report{Settings: s, Machine: describeMachine(), Versions: describeVersions(repo, assets), Started: start, OutPath: out, Repo: repo}
	progress("machine: %d CPUs, %s, %s, load %s", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.MemTotal, r.Machine.LoadAvg)
	write := func() {
		r.Elapsed = time.Since(start)
		r.LoadAvgEnd = loadAvg()
		if err := r.write(out); err != nil {
			progress("cannot write %s: %v", out, err)
		}
	}

	if !skipped["micro"] {
		progress("micro benchmarks (go test -bench) ...")
		if r.Micro, err = runMicro(ctx, repo, s); err != nil {
			return err
		}
		write()
	}
	if skipped["load"] && skipped["apiserver"] && skipped["scale"] {
		return nil
	}

	progress("building netguard and the floor server ...")
	bins := filepath.Join(work, "bin")
	netguardBin, floorBin := filepath.Join(bins, "netguard"), filepath.Join(bins, "floor")
	if s.NetguardBinary != "" {
		if netguardBin, err = filepath.Abs(s.NetguardBinary); err != nil {
			return err
		}
		r.Versions.Netguard = "binary " + netguardBin + " (not built from this tree)"
	} else if err := build(ctx, repo, "./cmd/netguard", netguardBin); err != nil {
		return err
	}
	if err := build(ctx, repo, "./hack/loadgen/floor", floorBin); err != nil {
		return err
	}
	env, err := startEnv(ctx, repo, assets, work, netguardBin, floorBin, s.PprofDir)
	if err != nil {
		return err
	}
	defer env.stop()

	if !skipped["load"] {
		progress("load: netguard vs floor on the webhook port ...")
		if r.Load, err = runLoad(ctx, env, s); err != nil {
			return err
		}
		write()
	}
	if !skipped["apiserver"] {
		progress("through the API server: none vs ValidatingAdmissionPolicy vs netguard ...")
		if r.API, err = runAPIServer(ctx, env, s); err != nil {
			return err
		}
		write()
	}
	if !skipped["scale"] {
		progress("scale: %d namespaces, %d profiles, %d policies ...", s.ScaleNamespaces, s.ScaleProfiles, s.ScalePolicies)
		if r.Scale, err = runScale(ctx, env, s, r.Load); err != nil {
			return err
		}
		write()
	}
	write()
	progress("wrote %s in %s", out, time.Since(start).Round(time.Second))
	return nil
}
