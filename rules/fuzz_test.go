package rules_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/netguard/netguard/rules"
)

// FuzzAnalyze feeds NetworkPolicies as JSON to the analyzer and the checks.
// It requires: no panic (not even one the evaluator would catch), a verdict
// that survives re-encoding the policy to JSON and decoding it again, the
// same answer twice, registered rule IDs only, and levels that only add
// violations.
//
// The seed corpus is every level and seed fixture plus the entries in
// testdata/fuzz/FuzzAnalyze, which hold past crashers as regression tests.
func FuzzAnalyze(f *testing.F) {
	var dirs []string
	for _, level := range rules.Levels() {
		dirs = append(dirs, filepath.Join(fixtureDir, string(level), fixturePass), filepath.Join(fixtureDir, string(level), fixtureFail))
	}
	dirs = append(dirs, filepath.Join(fixtureDir, seedFixtureDir))
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, p := range files {
			data, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			for _, doc := range splitYAML(f, data) {
				j, err := utilyaml.ToJSON(doc)
				if err != nil {
					f.Fatalf("%s: %v", p, err)
				}
				f.Add(j)
			}
		}
	}
	for _, s := range []string{
		`null`,
		`{}`,
		`{"spec":{"podSelector":{},"ingress":[{"from":[{}]}]}}`,
		`{"metadata":{"namespace":"a"},"spec":{"podSelector":{},"egress":[{"to":[{"ipBlock":{"cidr":"::/0","except":["::/1","x"]}}],"ports":[{"port":"http","endPort":3},{"port":0,"protocol":"ICMP"}]}]}}`,
		`{"metadata":{"namespace":"a"},"spec":{"podSelector":{"matchExpressions":[{"key":"k","operator":"NotIn"}]},"policyTypes":["Egress","x"],"ingress":[{"from":[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"a"},"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"In","values":["a","b"]}]}}],"ports":[{"port":65535,"endPort":1}]}]}}`,
	} {
		f.Add([]byte(s))
	}
	ids := map[string]bool{}
	for _, c := range rules.Checks() {
		ids[c.ID] = true
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var np networkingv1.NetworkPolicy
		if err := json.Unmarshal(data, &np); err != nil {
			return
		}
		a := rules.Analyze(&np)
		for _, d := range a.Directions() {
			for _, r := range d.Rules {
				if len(r.Peers) == 0 {
					t.Fatalf("%s: a rule without peers in the analysis", r.Field)
				}
				_ = r.Ports.String()
				for _, p := range r.Peers {
					_ = p.Addresses.String()
				}
			}
		}
		first := evaluateAll(t, &np, ids)
		if again := evaluateAll(t, &np, ids); !reflect.DeepEqual(first, again) {
			t.Fatalf("two evaluations differ:\n%v\n%v", first, again)
		}

		reencoded, err := json.Marshal(&np)
		if err != nil {
			return // an IntOrString of an unknown type cannot be encoded
		}
		var np2 networkingv1.NetworkPolicy
		if err := json.Unmarshal(reencoded, &np2); err != nil {
			t.Fatalf("re-encoded policy does not decode: %v\n%s", err, reencoded)
		}
		if second := evaluateAll(t, &np2, ids); !reflect.DeepEqual(first, second) {
			t.Fatalf("verdict changed by re-encoding:\nbefore %v\nafter  %v\n%s", first, second, reencoded)
		}
	})
}

// evaluateAll evaluates np at every level and checks the invariants that do
// not need a second policy.
func evaluateAll(t *testing.T, np *networkingv1.NetworkPolicy, ids map[string]bool) map[rules.Level][]rules.Violation {
	t.Helper()
	out := map[rules.Level][]rules.Violation{}
	var lower []rules.Violation
	for _, level := range rules.Levels() {
		vs := rules.Evaluate(level, rules.LatestVersion(), np)
		for _, v := range vs {
			if !ids[v.Rule] {
				t.Fatalf("unregistered rule %q", v.Rule)
			}
			if strings.Contains(v.Message, "internal error") {
				t.Fatalf("a check panicked: %s", v)
			}
		}
		for _, v := range lower {
			if !slices.Contains(vs, v) {
				t.Fatalf("level %s lost %s", level, v)
			}
		}
		if level == rules.LevelPrivileged && len(vs) != 0 {
			t.Fatalf("privileged reported %v", vs)
		}
		out[level], lower = vs, vs
	}
	return out
}
