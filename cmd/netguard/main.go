// Command netguard is the admission guard for Kubernetes NetworkPolicy in a
// default-deny cluster: it serves the webhooks and runs the same rules offline.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], ioStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}))
}
