package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
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

// spread is the largest deviation from the median, as a fraction of it, as
// benchstat's ± column.
func spread(xs []float64) float64 {
	m := median(xs)
	d := 0.0
	for _, x := range xs {
		d = math.Max(d, math.Abs(x-m))
	}
	if m == 0 {
		return 0
	}
	return d / m
}

// runAB runs two test binaries alternately, count times each, so that both
// see the same drift of a shared machine, and prints a benchstat-style table
// of medians.
func runAB(w io.Writer, oldBin, newBin, bench, benchtime string, count int) error {
	old, cur := samples{}, samples{}
	for i := range count {
		for _, side := range []struct {
			bin string
			s   samples
		}{{oldBin, old}, {newBin, cur}} {
			bin, s := side.bin, side.s
			if i%2 == 1 { // alternate which goes first
				if bin == oldBin {
					bin, s = newBin, cur
				} else {
					bin, s = oldBin, old
				}
			}
			cmd := exec.Command(bin, "-test.run", "^$", "-test.bench", bench, "-test.benchtime", benchtime, "-test.benchmem")
			cmd.Stderr = os.Stderr
			outb, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("%s: %w\n%s", bin, err, outb)
			}
			s.add(parseBench(strings.NewReader(string(outb))))
		}
	}
	fmt.Fprintf(w, "| benchmark | old ns/op | new ns/op | delta | old allocs/op | new allocs/op |\n|---|---:|---:|---:|---:|---:|\n")
	for _, n := range old.names() {
		o, c := old[n], cur[n]
		if c == nil {
			continue
		}
		om, cm := median(o["ns/op"]), median(c["ns/op"])
		fmt.Fprintf(w, "| %s | %s ±%.0f%% | %s ±%.0f%% | %+.1f%% | %.0f | %.0f |\n", n, fmtNs(om), 100*spread(o["ns/op"]), fmtNs(cm), 100*spread(c["ns/op"]), 100*(cm-om)/om, median(o["allocs/op"]), median(c["allocs/op"]))
	}
	return nil
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
