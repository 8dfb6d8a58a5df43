package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// writeFiles creates files under dir; names may contain subdirectories.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// summary is "location kind/name" for each manifest, for compact assertions.
func summary(ms []manifest) []string {
	var out []string
	for _, m := range ms {
		name := ""
		if o, ok := m.Object.(interface{ GetName() string }); ok {
			name = o.GetName()
		}
		out = append(out, m.Location()+" "+kindOf(m.Object)+"/"+name)
	}
	return out
}

func kindOf(obj runtime.Object) string {
	switch obj.(type) {
	case *networkingv1.NetworkPolicy:
		return "NetworkPolicy"
	case *corev1.ConfigMap:
		return "ConfigMap"
	case *unstructured.Unstructured:
		return "unstructured:" + obj.GetObjectKind().GroupVersionKind().Kind
	default:
		return "other"
	}
}

func errorStrings(errs []error) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

const npYAML = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: %s
spec:
  podSelector: {}
`

func np(name string) string { return strings.Replace(npYAML, "%s", name, 1) }

func TestLoadManifestsDocuments(t *testing.T) {
	in := "# only a comment: not counted\n---\n" + np("a") + "---\n---\n# blank\n" +
		"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n" +
		"---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n" +
		"---\n- not\n- an object\n" +
		"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: typo}\nspec:\n  podSelector: {}\n  ingres: []\n" +
		"---\nkind: NetworkPolicy\nmetadata: {name: noversion}\n" +
		"---\nfoo: [\n" +
		"---\n" + np("last")
	ms, errs := loadManifests([]string{"-"}, strings.NewReader(in))
	wantMs := []string{
		"<stdin>#1 NetworkPolicy/a",
		"<stdin>#2 ConfigMap/cm",
		"<stdin>#3 unstructured:Widget/w",
		"<stdin>#8 NetworkPolicy/last",
	}
	if got := summary(ms); !reflect.DeepEqual(got, wantMs) {
		t.Errorf("manifests:\n got %q\nwant %q", got, wantMs)
	}
	wantErrs := []string{
		"<stdin>#4: document is an array, not a Kubernetes object",
		`<stdin>#5: networking.k8s.io/v1 NetworkPolicy: strict decoding error: unknown field "spec.ingres"`,
		`<stdin>#6: apiVersion is missing (kind "NetworkPolicy")`,
		"<stdin>#7: invalid YAML: yaml: line 1: did not find expected node content",
	}
	if got := errorStrings(errs); !reflect.DeepEqual(got, wantErrs) {
		t.Errorf("errors:\n got %q\nwant %q", got, wantErrs)
	}
	var me *manifestError
	if !errors.As(errs[0], &me) || me.Index != 4 || me.Location() != "<stdin>#4" {
		t.Errorf("errors[0] = %#v, want a *manifestError for document 4", errs[0])
	}
}

func TestLoadManifestsLists(t *testing.T) {
	in := `apiVersion: v1
kind: List
items:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: a}
  spec: {podSelector: {}}
- kind: NetworkPolicy
  metadata: {name: broken}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: cm}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicyList
items:
- metadata: {name: typed}
  spec: {podSelector: {}}
---
apiVersion: v1
kind: List
items: []
`
	ms, errs := loadManifests([]string{"-"}, strings.NewReader(in))
	wantMs := []string{
		"<stdin>#1.items[0] NetworkPolicy/a",
		"<stdin>#1.items[2] ConfigMap/cm",
		"<stdin>#2.items[0] NetworkPolicy/typed",
	}
	if got := summary(ms); !reflect.DeepEqual(got, wantMs) {
		t.Errorf("manifests:\n got %q\nwant %q", got, wantMs)
	}
	wantErrs := []string{`<stdin>#1.items[1]: apiVersion is missing (kind "NetworkPolicy")`}
	if got := errorStrings(errs); !reflect.DeepEqual(got, wantErrs) {
		t.Errorf("errors:\n got %q\nwant %q", got, wantErrs)
	}
}

func TestLoadManifestsJSON(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"one.json": `{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"j1"},"spec":{"podSelector":{}}}`,
		"stream.json": `{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"j2"},"spec":{"podSelector":{}}}
{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j3"}}
{"apiVersion": `,
	})
	ms, errs := loadManifests([]string{filepath.Join(dir, "one.json"), filepath.Join(dir, "stream.json")}, nil)
	wantMs := []string{
		filepath.Join(dir, "one.json") + "#1 NetworkPolicy/j1",
		filepath.Join(dir, "stream.json") + "#1 NetworkPolicy/j2",
		filepath.Join(dir, "stream.json") + "#2 ConfigMap/j3",
	}
	if got := summary(ms); !reflect.DeepEqual(got, wantMs) {
		t.Errorf("manifests:\n got %q\nwant %q", got, wantMs)
	}
	wantErrs := []string{filepath.Join(dir, "stream.json") + "#3: invalid JSON: unexpected EOF"}
	if got := errorStrings(errs); !reflect.DeepEqual(got, wantErrs) {
		t.Errorf("errors:\n got %q\nwant %q", got, wantErrs)
	}
}

func TestLoadManifestsDirectory(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"b.yaml":          np("b"),
		"a.yml":           np("a"),
		"sub/deep/c.json": `{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"c"},"spec":{"podSelector":{}}}`,
		"sub/README.md":   "not a manifest",
		"sub/notes.txt":   "apiVersion: nope",
		"sub/D.YAML":      np("d"),
	})
	if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	ms, errs := loadManifests([]string{dir}, nil)
	wantMs := []string{
		filepath.Join(dir, "a.yml") + "#1 NetworkPolicy/a",
		filepath.Join(dir, "b.yaml") + "#1 NetworkPolicy/b",
		filepath.Join(dir, "sub/D.YAML") + "#1 NetworkPolicy/d",
		filepath.Join(dir, "sub/deep/c.json") + "#1 NetworkPolicy/c",
	}
	if got := summary(ms); !reflect.DeepEqual(got, wantMs) {
		t.Errorf("manifests:\n got %q\nwant %q", got, wantMs)
	}
	if len(errs) != 0 {
		t.Errorf("errors: %q", errorStrings(errs))
	}

	// An explicitly named file is read whatever its extension.
	ms, errs = loadManifests([]string{filepath.Join(dir, "sub/notes.txt")}, nil)
	if len(ms) != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "notes.txt#1: kind is missing") {
		t.Errorf("notes.txt: manifests %q, errors %q", summary(ms), errorStrings(errs))
	}
}

func TestLoadManifestsPathErrors(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"ok.yaml": np("ok")})
	empty := filepath.Join(dir, "empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.yaml")
	ms, errs := loadManifests([]string{missing, empty, filepath.Join(dir, "ok.yaml"), "-", "-"}, strings.NewReader(np("in")))
	wantMs := []string{
		filepath.Join(dir, "ok.yaml") + "#1 NetworkPolicy/ok",
		"<stdin>#1 NetworkPolicy/in",
	}
	if got := summary(ms); !reflect.DeepEqual(got, wantMs) {
		t.Errorf("manifests:\n got %q\nwant %q", got, wantMs)
	}
	wantErrs := []string{
		missing + ": no such file or directory",
		empty + ": directory holds no .yaml, .yml, .json files",
		`<stdin>: "-" (stdin) given more than once`,
	}
	if got := errorStrings(errs); !reflect.DeepEqual(got, wantErrs) {
		t.Errorf("errors:\n got %q\nwant %q", got, wantErrs)
	}
}
