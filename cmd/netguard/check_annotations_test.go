package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `netguard check` fails (exit 1) on a workload whose netguard annotations are
// wrong, as it does on a policy violation, and says which token is wrong.
func TestCheckReportsWorkloadAnnotationErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "web.yaml")
	manifest := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    netguard.io/depends-on: "backend:80a"
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: registry.example/web:1}]}
`
	if err := os.WriteFile(file, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := run([]string{"check", "-f", file}, ioStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, errOut.String())
	}
	want := file + `#1: Deployment "web": metadata.annotations[netguard.io/depends-on]: Invalid value: "backend:80a": port must be 1-65535`
	if !strings.Contains(errOut.String(), want) {
		t.Errorf("stderr %q lacks %q", errOut.String(), want)
	}

	good := strings.Replace(manifest, "backend:80a", "backend:8080", 1)
	if err := os.WriteFile(file, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"check", "-f", file}, ioStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}); code != 0 {
		t.Fatalf("exit %d for a good workload, want 0; stderr %s", code, errOut.String())
	}
}
