package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// check and generate stop on SIGINT and SIGTERM (main turns them into a
// cancelled context): exit code 130 and a message that the output is
// incomplete, never a report that reads as complete.
func TestCheckAndGenerateStopWhenInterrupted(t *testing.T) {
	const input = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: team-a}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{port: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: team-a
  annotations: {netguard.io/depends-on: "db:5432"}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web}]}
`
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, cmd := range []string{"check", "generate"} {
		var out, errOut bytes.Buffer
		code := runContext(ctx, []string{cmd, "-f", "-"}, ioStreams{In: strings.NewReader(input), Out: &out, ErrOut: &errOut})
		if code != 130 {
			t.Errorf("%s: exit code %d, want 130\nstdout: %s\nstderr: %s", cmd, code, out.String(), errOut.String())
		}
		if !strings.Contains(errOut.String(), "interrupted") || !strings.Contains(errOut.String(), "incomplete") {
			t.Errorf("%s: stderr %q does not say the run was interrupted", cmd, errOut.String())
		}
		if out.Len() != 0 {
			t.Errorf("%s: wrote a report although interrupted: %s", cmd, out.String())
		}
	}
}
