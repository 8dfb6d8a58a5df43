package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
)

// microResult is the median and the minimum of each metric of each
// benchmark.
type microResult struct {
	Command       string
	Medians, Mins map[string]map[string]float64
	Names         []string
}

// get is the minimum: other work on a shared machine only ever slows a
// benchmark down, so the fastest of several runs is the best estimate of
// what the code costs; the median shows how noisy the runs were.
func (m *microResult) get(name, unit string) (float64, bool) {
	if m == nil {
		return 0, false
	}
	v, ok := m.Mins[name][unit]
	return v, ok
}

func microCommand(s settings) []string {
	return []string{"go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-count", strconv.Itoa(s.BenchCount), "-benchtime", s.BenchTime, "./rules/", "./webhook/"}
}

func runMicro(ctx context.Context, repo string, s settings) (*microResult, error) {
	args := microCommand(s)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = repo
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("micro benchmarks: %w\n%s", err, out.String())
	}
	all := samples{}
	all.add(parseBench(&out))
	res := &microResult{Command: quoteArgs(args), Medians: map[string]map[string]float64{}, Mins: map[string]map[string]float64{}, Names: all.names()}
	for name, units := range all {
		res.Medians[name], res.Mins[name] = map[string]float64{}, map[string]float64{}
		for u, xs := range units {
			res.Medians[name][u] = median(xs)
			res.Mins[name][u] = slices.Min(xs)
		}
	}
	return res, nil
}

func quoteArgs(args []string) string {
	var b bytes.Buffer
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a == "" || bytes.ContainsAny([]byte(a), " ^$*") {
			b.WriteString("'" + a + "'")
		} else {
			b.WriteString(a)
		}
	}
	return b.String()
}
