package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// benchResult is one line of `go test -bench` output: the metrics by unit
// ("ns/op", "B/op", "allocs/op", "ns/rule", ...).
type benchResult struct {
	Name    string
	Metrics map[string]float64
}

// parseBench reads `go test -bench` output. The -N GOMAXPROCS suffix is
// dropped from names.
func parseBench(r io.Reader) []benchResult {
	var out []benchResult
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := f[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		res := benchResult{Name: strings.TrimPrefix(name, "Benchmark"), Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			res.Metrics[f[i+1]] = v
		}
		out = append(out, res)
	}
	return out
}

// samples groups repeated results by benchmark name and unit.
type samples map[string]map[string][]float64

func (s samples) add(rs []benchResult) {
	for _, r := range rs {
		if s[r.Name] == nil {
			s[r.Name] = map[string][]float64{}
		}
		for u, v := range r.Metrics {
			s[r.Name][u] = append(s[r.Name][u], v)
		}
	}
}

func (s samples) names() []string {
	var out []string
	for n := range s {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// abOptions is one `go run ./hack/bench ab` comparison.
type abOptions struct {
	Old, New  string // test binaries (go test -c)
	Bench     string // -test.bench
	Benchtime string // -test.benchtime of each run
	Count     int    // rounds; each runs both binaries once
	Dir       string // where old.txt and new.txt are written
	Benchstat []string
	ToolsDir  string // hack/tools, for `go tool benchstat`
}

// runAB runs the two test binaries interleaved, old and new once each per
// round with -test.count 1 and the order swapped every round, so that both
// see the same drift of a shared machine. It writes their outputs to
// Dir/old.txt and Dir/new.txt and prints benchstat's comparison of them
// (medians, confidence intervals, p-values and the geomean).
func runAB(w io.Writer, o abOptions) error {
	if o.Old == "" || o.New == "" {
		return errors.New("-old and -new are required: test binaries built with go test -c")
	}
	files := map[string]*os.File{}
	for _, side := range []string{"old", "new"} {
		f, err := os.Create(filepath.Join(o.Dir, side+".txt"))
		if err != nil {
			return err
		}
		defer f.Close()
		files[side] = f
	}
	bins := map[string]string{"old": o.Old, "new": o.New}
	for i := range o.Count {
		order := []string{"old", "new"}
		if i%2 == 1 {
			order = []string{"new", "old"}
		}
		for _, side := range order {
			progress("ab: round %d/%d, %s", i+1, o.Count, side)
			args := []string{"-test.run", "^$", "-test.bench", o.Bench, "-test.benchtime", o.Benchtime, "-test.benchmem", "-test.count", "1"}
			cmd := exec.Command(bins[side], args...)
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("%s: %w\n%s", bins[side], err, out)
			}
			if i > 0 {
				// benchstat reads the goos/goarch/pkg/cpu header lines as
				// configuration; once per file is enough.
				out = benchLines(out)
			}
			if _, err := files[side].Write(out); err != nil {
				return err
			}
		}
	}
	for _, f := range files {
		if err := f.Close(); err != nil {
			return err
		}
	}
	bs := o.Benchstat
	if len(bs) == 0 {
		bs = []string{"go", "-C", o.ToolsDir, "tool", "benchstat"}
	}
	// label=path names the columns old and new rather than by path.
	cmd := exec.Command(bs[0], append(bs[1:], "old="+filepath.Join(o.Dir, "old.txt"), "new="+filepath.Join(o.Dir, "new.txt"))...)
	cmd.Stdout, cmd.Stderr = w, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("benchstat: %w", err)
	}
	return nil
}

// benchLines keeps the Benchmark result lines of `go test -bench` output.
func benchLines(out []byte) []byte {
	var b []byte
	for line := range strings.Lines(string(out)) {
		if strings.HasPrefix(line, "Benchmark") {
			b = append(b, line...)
		}
	}
	return b
}

// toolsDir finds hack/tools (the module that pins benchstat) from the
// working directory up.
func toolsDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		t := filepath.Join(dir, "hack", "tools")
		if _, err := os.Stat(filepath.Join(t, "go.mod")); err == nil {
			return t, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("hack/tools/go.mod not found above the working directory: run from the netguard repository, or pass -benchstat")
		}
		dir = parent
	}
}

// fmtNs renders nanoseconds with a readable unit.
func fmtNs(ns float64) string {
	switch {
	case math.IsNaN(ns):
		return "n/a"
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}
