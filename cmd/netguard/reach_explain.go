package main

import (
	"strings"

	"github.com/spf13/pflag"

	"github.com/netguard/netguard/rules"
)

// The --explain and -o flags of reach: a trace of one connection in the
// order the dataplane decides it (rules.Explain). docs/generate.md, "reach
// --explain", documents the output.

func (o *reachOptions) addExplainFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.Explain, "explain", false, "trace the connection: which policies select the source for egress and the destination for ingress, and which rule, peer and port allowed it, or why none did")
	fs.StringVarP(&o.Output, "output", "o", "text", "output format of one answer: text, or json (the --explain trace)")
}

func (o *reachOptions) validateExplain() error {
	switch o.Output {
	case "text", "json":
	default:
		return usageError("--output %q is not supported; use text or json", o.Output)
	}
	if o.Matrix && (o.Explain || o.Output == "json") {
		return usageError("--explain and -o json trace one connection; leave out --matrix")
	}
	return nil
}

func printExplanation(streams ioStreams, o *reachOptions, x rules.Explanation) error {
	if o.Output == "json" {
		return writeJSON(streams.Out, x)
	}
	var b strings.Builder
	x.Write(&b)
	_, err := streams.Out.Write([]byte(b.String()))
	return err
}
