package rules

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCheckRegistryIsValid(t *testing.T) {
	checks := Checks()
	if err := validateChecks(checks); err != nil {
		t.Fatal(err)
	}
	if !slices.IsSortedFunc(checks, func(a, b Check) int { return strings.Compare(a.ID, b.ID) }) {
		t.Error("Checks() is not sorted by ID")
	}
	for _, c := range checks {
		if c.Level == LevelPrivileged || !c.Level.Valid() {
			t.Errorf("check %s: level %q", c.ID, c.Level)
		}
	}
}

// TestCheckFiles keeps one file per check: check_<id>.go defines the check
// with that ID and opens with a doc comment naming it, and every
// check_*.go file belongs to a registered check.
func TestCheckFiles(t *testing.T) {
	ids := map[string]bool{}
	for _, c := range Checks() {
		ids[c.ID] = true
		name := "check_" + c.ID + ".go"
		src, err := os.ReadFile(name)
		if err != nil {
			t.Errorf("check %s: %v", c.ID, err)
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Comments) == 0 || !strings.HasPrefix(strings.TrimSpace(strings.TrimPrefix(f.Comments[0].Text(), "\n")), c.ID+":") {
			t.Errorf("%s: must open with a doc comment starting %q", name, c.ID+":")
		}
		text := ""
		if len(f.Comments) > 0 {
			text = f.Comments[0].Text()
		}
		for _, want := range []string{"Inspects:", "Allowed:"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: doc comment lacks %q", name, want)
			}
		}
		if !strings.Contains(string(src), `ID:    "`+c.ID+`"`) {
			t.Errorf("%s: does not define the check %q", name, c.ID)
		}
	}
	files, err := filepath.Glob("check_*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		id := strings.TrimSuffix(strings.TrimPrefix(f, "check_"), ".go")
		if !ids[id] {
			t.Errorf("%s: no registered check %q; add it to checkConstructors", f, id)
		}
	}
}

func TestValidateChecksRejects(t *testing.T) {
	f := func(*Analysis) []Violation { return nil }
	v10 := []VersionedCheck{{MinimumVersion: MajorMinorVersion(1, 0), Func: f}}
	cases := []struct {
		name   string
		checks []Check
		want   string
	}{
		{"duplicate", []Check{{ID: "a", Level: LevelBaseline, Versions: v10}, {ID: "a", Level: LevelBaseline, Versions: v10}}, `check "a": registered twice`},
		{"unsorted", []Check{{ID: "b", Level: LevelBaseline, Versions: v10}, {ID: "a", Level: LevelBaseline, Versions: v10}}, `check "a": registry not sorted by ID (after "b")`},
		{"privileged", []Check{{ID: "a", Level: LevelPrivileged, Versions: v10}}, `check "a": invalid level "privileged"`},
		{"unknown level", []Check{{ID: "a", Level: "strict", Versions: v10}}, `check "a": invalid level "strict"`},
		{"not lowerCamel", []Check{{ID: "Bad-ID", Level: LevelBaseline, Versions: v10}}, `check "Bad-ID": ID must be lowerCamel`},
		{"no versions", []Check{{ID: "a", Level: LevelBaseline}}, `check "a": no versions`},
		{"latest", []Check{{ID: "a", Level: LevelBaseline, Versions: []VersionedCheck{{MinimumVersion: LatestVersion(), Func: f}}}}, `check "a": version 0: MinimumVersion must be a numbered version, not latest`},
		{"no func", []Check{{ID: "a", Level: LevelBaseline, Versions: []VersionedCheck{{MinimumVersion: MajorMinorVersion(1, 0)}}}}, `check "a": version v1.0: no function`},
		{"duplicate version", []Check{{ID: "a", Level: LevelBaseline, Versions: []VersionedCheck{
			{MinimumVersion: MajorMinorVersion(1, 0), Func: f}, {MinimumVersion: MajorMinorVersion(1, 0), Func: f}}}}, `check "a": versions must be strictly increasing (v1.0 after v1.0)`},
		{"decreasing versions", []Check{{ID: "a", Level: LevelBaseline, Versions: []VersionedCheck{
			{MinimumVersion: MajorMinorVersion(1, 2), Func: f}, {MinimumVersion: MajorMinorVersion(1, 1), Func: f}}}}, `check "a": versions must be strictly increasing (v1.1 after v1.2)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := validateChecks(tc.checks)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v, want %s", err, tc.want)
			}
			defer func() {
				if recover() == nil {
					t.Error("mustBuildRegistry did not panic")
				}
			}()
			ctors := []func() Check{}
			for _, c := range tc.checks {
				ctors = append(ctors, func() Check { return c })
			}
			mustBuildRegistry(ctors)
		})
	}
}

func TestCheckVersionSelection(t *testing.T) {
	calls := []string{}
	mk := func(name string) CheckFunc {
		return func(*Analysis) []Violation { calls = append(calls, name); return nil }
	}
	c := Check{ID: "x", Level: LevelBaseline, Versions: []VersionedCheck{
		{MinimumVersion: MajorMinorVersion(1, 0), Func: mk("1.0")},
		{MinimumVersion: MajorMinorVersion(1, 3), Func: mk("1.3")},
	}}
	for _, v := range []string{"v1.0", "v1.2", "v1.3", "v1.9", "v2.0", "latest"} {
		ver, err := ParseVersion(v)
		if err != nil {
			t.Fatal(err)
		}
		c.forVersion(ver)(nil)
	}
	want := []string{"1.0", "1.0", "1.3", "1.3", "1.3", "1.3"}
	if !slices.Equal(calls, want) {
		t.Errorf("got %v, want %v", calls, want)
	}
	if c.forVersion(Version{major: 0, minor: 9, set: true}) != nil {
		t.Error("a version before the check's first must not run it")
	}
}

func TestRunCheckRecoversPanics(t *testing.T) {
	vs := runCheck("boom", func(*Analysis) []Violation { panic("kaput") }, Analyze(nil))
	if len(vs) != 1 || !strings.Contains(vs[0].Message, `internal error in check "boom": kaput`) {
		t.Errorf("got %v", vs)
	}
}

func TestCompareFieldPaths(t *testing.T) {
	paths := []string{
		"spec.ingress[10]",
		"spec.egress[0].to[1]",
		"spec.ingress[2].from[0]",
		"",
		"spec.ingress[2]",
		"spec.ingress[2].from[10].ipBlock",
		"spec.ingress[2].from[9]",
		"metadata.namespace",
	}
	slices.SortFunc(paths, compareFieldPaths)
	want := []string{
		"",
		"metadata.namespace",
		"spec.egress[0].to[1]",
		"spec.ingress[2]",
		"spec.ingress[2].from[0]",
		"spec.ingress[2].from[9]",
		"spec.ingress[2].from[10].ipBlock",
		"spec.ingress[10]",
	}
	if !slices.Equal(paths, want) {
		t.Errorf("got\n%q\nwant\n%q", paths, want)
	}
}

// TestImportsArePure keeps rules importable by the webhook, the CLI and the
// audit alike: non-test files import only the standard library, k8s.io/api
// and k8s.io/apimachinery.
func TestImportsArePure(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	seen := 0
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		seen++
		for _, imp := range f.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			if !allowedImport(path) {
				t.Errorf("%s imports %q; rules may import only the standard library, k8s.io/api and k8s.io/apimachinery", name, path)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no Go files found")
	}
}

func allowedImport(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	if !strings.Contains(first, ".") {
		return true // standard library
	}
	for _, prefix := range []string{"k8s.io/api/", "k8s.io/apimachinery/"} {
		if strings.HasPrefix(path, prefix) {
			return true
		}
	}
	return false
}

func TestAllowedImport(t *testing.T) {
	for path, want := range map[string]bool{
		"net/netip":                true,
		"k8s.io/api/networking/v1": true,
		"k8s.io/apimachinery/pkg/util/validation/field":        true,
		"k8s.io/client-go/kubernetes":                          false,
		"sigs.k8s.io/yaml":                                     false,
		"sigs.k8s.io/controller-runtime/pkg/webhook/admission": false,
		"k8s.io/apiserver/pkg/admission":                       false,
		"go.uber.org/zap":                                      false,
		"k8s.io/apimachineryx/foo":                             false,
		"github.com/netguard/netguard/api/v1alpha1":            false,
	} {
		if got := allowedImport(path); got != want {
			t.Errorf("allowedImport(%q) = %v, want %v", path, got, want)
		}
	}
}
