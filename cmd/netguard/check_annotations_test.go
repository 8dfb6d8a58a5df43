package main

import (
	"bytes"
	"encoding/json"
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
	want := file + "#1: Deployment default/web has invalid netguard annotations\n  " + file + ":6:5: [invalidAnnotations] metadata.annotations[netguard.io/depends-on]: Invalid value: \"backend:80a\": port must be 1-65535"
	if !strings.Contains(out.String(), want) {
		t.Errorf("output %q lacks %q", out.String(), want)
	}
	if !strings.Contains(out.String(), "1 annotated workload, 1 with invalid netguard annotations") {
		t.Errorf("summary lacks the workload count: %q", out.String())
	}

	// JSON: the workload is a result like a policy.
	out.Reset()
	errOut.Reset()
	if code := run([]string{"check", "-f", file, "-o", "json"}, ioStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}); code != 1 {
		t.Fatalf("json: exit %d, want 1", code)
	}
	var report struct {
		Results []struct {
			Kind, Namespace, Name string
			Allowed               bool
			Violations            []struct{ Rule, Field, Message string }
		}
	}
	if err := json.Unmarshal(out.Bytes(), &report); err != nil {
		t.Fatalf("json: %v\n%s", err, out.String())
	}
	if len(report.Results) != 1 || report.Results[0].Kind != "Deployment" || report.Results[0].Allowed ||
		len(report.Results[0].Violations) != 1 || report.Results[0].Violations[0].Rule != "invalidAnnotations" ||
		report.Results[0].Violations[0].Field != "metadata.annotations[netguard.io/depends-on]" {
		t.Errorf("json results: %+v", report.Results)
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
