// Command bench is `make bench`: it measures netguard against its floor and
// its alternatives and (re)writes BENCHMARKS.md. See docs/benchmarks.md.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "ab" {
		fs := flag.NewFlagSet("ab", flag.ExitOnError)
		oldBin := fs.String("old", "", "test binary built from the old code (go test -c)")
		newBin := fs.String("new", "", "test binary built from the new code")
		bench := fs.String("bench", ".", "benchmarks to run (-test.bench)")
		benchtime := fs.String("benchtime", "1s", "-test.benchtime of each run")
		count := fs.Int("count", 5, "runs of each binary, alternating")
		_ = fs.Parse(os.Args[2:])
		if err := runAB(os.Stdout, *oldBin, *newBin, *bench, *benchtime, *count); err != nil {
			fmt.Fprintln(os.Stderr, "bench ab:", err)
			os.Exit(1)
		}
		return
	}
	fmt.Fprintln(os.Stderr, "not yet")
}
