package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"
)

// ioStreams lets tests run subcommands against buffers.
type ioStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// subcommands is filled by each subcommand's file through registerSubcommand,
// so adding a subcommand never touches this file.
var subcommands = map[string]func(ioStreams) *cobra.Command{}

func registerSubcommand(name string, build func(ioStreams) *cobra.Command) {
	if _, dup := subcommands[name]; dup {
		panic("netguard: subcommand registered twice: " + name)
	}
	subcommands[name] = build
}

// exitError carries a process exit code. Commands return it for outcomes that
// are not failures of the tool itself, such as "violations found" (exit 1).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// usageError marks bad input or usage: exit code 2, one line on stderr.
func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// interrupted ends a command stopped by SIGINT or SIGTERM (its context is
// done) with exit code 130, as a shell reports an interrupted program, and
// says that its output is incomplete.
func interrupted(cause error) error {
	return &exitError{code: 130, err: fmt.Errorf("interrupted (%v): stopped before every object was processed; the output is incomplete", cause)}
}

// silentExit ends the process with code and prints nothing more; the command
// has already written its report.
func silentExit(code int) error { return &exitError{code: code} }

func newRootCommand(streams ioStreams) *cobra.Command {
	root := &cobra.Command{
		Use:   "netguard",
		Short: "Admission guard for Kubernetes NetworkPolicy in a default-deny cluster",
		Long: `netguard validates NetworkPolicies against default-deny guardrails and
generates the NetworkPolicies that annotated workloads declare. The same rules
run in the admission webhook (serve), in CI (check, generate, reach) and against
a live cluster (audit).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	asPlugin(root, programName()) // plugin.go
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: 2, err: err}
	})
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		root.AddCommand(subcommands[n](streams))
	}
	return root
}

// run executes the CLI and returns the process exit code. Errors are printed
// as a single line prefixed with "netguard: ".
func run(args []string, streams ioStreams) int {
	return runContext(context.Background(), args, streams)
}

// runContext is run with a context that ends on SIGINT or SIGTERM in main.
func runContext(ctx context.Context, args []string, streams ioStreams) int {
	root := newRootCommand(streams)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	code := 2
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			return code
		}
	}
	fmt.Fprintf(streams.ErrOut, "netguard: %s\n", oneLine(err.Error()))
	return code
}

func oneLine(s string) string {
	out := []rune{}
	for _, r := range s {
		if r == '\n' || r == '\r' {
			r = ' '
		}
		out = append(out, r)
	}
	return string(out)
}
