package rules_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/netguard/netguard/rules"
)

// Golden fixtures, in the manner of Pod Security Admission:
//
//	testdata/<level>/pass/*.yaml  allowed at <level> (and every level below)
//	testdata/<level>/fail/*.yaml  violate at <level>; each policy lists the
//	                              rule IDs it must violate there, exactly, in
//	                              the annotation netguard.io/test-expect
//	testdata/seeds/*.yaml         policies from vendor documentation, with
//	                              netguard.io/test-expect-<level> for baseline,
//	                              restricted and managed ("" = allowed)
//
// Every check needs at least one fail fixture at its own level.

const (
	expectAnnotation         = "netguard.io/test-expect"
	expectLevelAnnotation    = "netguard.io/test-expect-"
	fixtureDir               = "testdata"
	seedFixtureDir           = "seeds"
	fixturePass, fixtureFail = "pass", "fail"
)

type fixture struct {
	name   string // file#document
	policy *networkingv1.NetworkPolicy
}

// readFixtures returns the policies of every YAML file in dir.
func readFixtures(t *testing.T, dir string) []fixture {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []fixture
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitYAML(t, data) {
			out = append(out, fixture{name: f + "#" + itoa(i+1), policy: decodePolicy(t, doc)})
		}
	}
	return out
}

func splitYAML(t testing.TB, data []byte) [][]byte {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(stripComments(string(doc))) != "" {
			docs = append(docs, doc)
		}
	}
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

func itoa(i int) string { return strconv.Itoa(i) }

func parseExpect(s string) []string {
	out := []string{}
	for _, id := range strings.Split(s, ",") {
		if id = strings.TrimSpace(id); id != "" {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// TestFixtureLayout keeps the level directories to pass and fail. Other
// directories under testdata (seeds, fuzz, other tests' data) are not level
// fixtures; a misspelt level directory is caught by
// TestEveryCheckHasAFailFixture, which only looks in the right places.
func TestFixtureLayout(t *testing.T) {
	for _, level := range rules.Levels() {
		dir := filepath.Join(fixtureDir, string(level))
		sub, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if level == rules.LevelPrivileged {
			t.Errorf("%s: privileged has no checks, so no fixtures", dir)
		}
		for _, s := range sub {
			if s.Name() != fixturePass && s.Name() != fixtureFail {
				t.Errorf("%s/%s: want only pass and fail", dir, s.Name())
			}
		}
	}
}

func TestFixturesPass(t *testing.T) {
	for _, level := range rules.Levels() {
		for _, f := range readFixtures(t, filepath.Join(fixtureDir, string(level), fixturePass)) {
			if _, ok := f.policy.Annotations[expectAnnotation]; ok {
				t.Errorf("%s: pass fixtures expect nothing; drop %s", f.name, expectAnnotation)
			}
			for _, l := range rules.Levels()[:level.Rank()+1] {
				if vs := rules.Evaluate(l, rules.LatestVersion(), f.policy); len(vs) > 0 {
					t.Errorf("%s: want allowed at %s, got:\n  %s", f.name, l, strings.Join(violationStrings(vs), "\n  "))
				}
			}
		}
	}
}

func TestFixturesFail(t *testing.T) {
	for _, level := range rules.Levels() {
		for _, f := range readFixtures(t, filepath.Join(fixtureDir, string(level), fixtureFail)) {
			want, ok := f.policy.Annotations[expectAnnotation]
			if !ok || len(parseExpect(want)) == 0 {
				t.Errorf("%s: fail fixture without %s", f.name, expectAnnotation)
				continue
			}
			vs := rules.Evaluate(level, rules.LatestVersion(), f.policy)
			if got := ruleIDs(vs); !slices.Equal(got, parseExpect(want)) {
				t.Errorf("%s at %s: got rules %v, want %v:\n  %s", f.name, level, got, parseExpect(want), strings.Join(violationStrings(vs), "\n  "))
			}
		}
	}
}

func TestSeedFixtures(t *testing.T) {
	fixtures := readFixtures(t, filepath.Join(fixtureDir, seedFixtureDir))
	if len(fixtures) == 0 {
		t.Fatal("no seed fixtures")
	}
	for _, f := range fixtures {
		for _, level := range rules.Levels() {
			want := []string{}
			if level != rules.LevelPrivileged {
				s, ok := f.policy.Annotations[expectLevelAnnotation+string(level)]
				if !ok {
					t.Errorf("%s: missing %s%s", f.name, expectLevelAnnotation, level)
					continue
				}
				want = parseExpect(s)
			}
			vs := rules.Evaluate(level, rules.LatestVersion(), f.policy)
			if got := ruleIDs(vs); !slices.Equal(got, want) {
				t.Errorf("%s at %s: got rules %v, want %v:\n  %s", f.name, level, got, want, strings.Join(violationStrings(vs), "\n  "))
			}
		}
	}
}

// TestEveryCheckHasAFailFixture keeps the golden fixtures complete.
func TestEveryCheckHasAFailFixture(t *testing.T) {
	for _, c := range rules.Checks() {
		found := false
		for _, f := range readFixtures(t, filepath.Join(fixtureDir, string(c.Level), fixtureFail)) {
			if slices.Contains(parseExpect(f.policy.Annotations[expectAnnotation]), c.ID) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("check %s has no fail fixture in %s", c.ID, filepath.Join(fixtureDir, string(c.Level), fixtureFail))
		}
	}
}

// TestLevelsAreMonotonic: what a lower level reports, every higher level
// reports too, for every fixture.
func TestLevelsAreMonotonic(t *testing.T) {
	var all []fixture
	for _, level := range rules.Levels() {
		for _, kind := range []string{fixturePass, fixtureFail} {
			all = append(all, readFixtures(t, filepath.Join(fixtureDir, string(level), kind))...)
		}
	}
	all = append(all, readFixtures(t, filepath.Join(fixtureDir, seedFixtureDir))...)
	if len(all) < 20 {
		t.Fatalf("only %d fixtures found", len(all))
	}
	for _, f := range all {
		levels := rules.Levels()
		for i := 1; i < len(levels); i++ {
			lower := rules.Evaluate(levels[i-1], rules.LatestVersion(), f.policy)
			higher := rules.Evaluate(levels[i], rules.LatestVersion(), f.policy)
			for _, v := range lower {
				if !slices.Contains(higher, v) {
					t.Errorf("%s: %s reports %s, %s does not", f.name, levels[i-1], v, levels[i])
				}
			}
		}
	}
}
