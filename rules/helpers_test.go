package rules_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/netguard/netguard/rules"
)

// testNamespace is the namespace of test policies that do not name one.
const testNamespace = "team-a"

// decodePolicy decodes one NetworkPolicy from YAML or JSON, rejecting unknown
// fields so that a typo in a test cannot pass unnoticed.
func decodePolicy(t testing.TB, doc []byte) *networkingv1.NetworkPolicy {
	t.Helper()
	j, err := utilyaml.ToJSON(doc)
	if err != nil {
		t.Fatalf("invalid YAML: %v\n%s", err, doc)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	np := &networkingv1.NetworkPolicy{}
	if err := dec.Decode(np); err != nil {
		t.Fatalf("not a NetworkPolicy: %v\n%s", err, doc)
	}
	if np.Namespace == "" {
		np.Namespace = testNamespace
	}
	return np
}

// specPolicy builds a policy in testNamespace from the YAML of its spec.
func specPolicy(t testing.TB, spec string) *networkingv1.NetworkPolicy {
	t.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: test\nspec:\n")
	for _, line := range strings.Split(strings.Trim(spec, "\n"), "\n") {
		b.WriteString("  " + line + "\n")
	}
	return decodePolicy(t, []byte(b.String()))
}

// violationStrings renders violations as Violation.String does.
func violationStrings(vs []rules.Violation) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, v.String())
	}
	return out
}

// checkCase is a table entry for one check: a policy spec and the exact
// violations of that check, as "[id] field: message".
type checkCase struct {
	name string
	spec string
	// namespace overrides testNamespace when set.
	namespace string
	want      []string
}

// runCheckCases evaluates each case at the check's level and compares the
// violations of that check only.
func runCheckCases(t *testing.T, id string, cases []checkCase) {
	t.Helper()
	var check *rules.Check
	for _, c := range rules.Checks() {
		if c.ID == id {
			check = &c
		}
	}
	if check == nil {
		t.Fatalf("no check %q", id)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			np := specPolicy(t, tc.spec)
			if tc.namespace != "" {
				np.Namespace = tc.namespace
			}
			var got []rules.Violation
			for _, v := range rules.Evaluate(check.Level, rules.LatestVersion(), np) {
				if v.Rule == id {
					got = append(got, v)
				}
			}
			gotS := violationStrings(got)
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if strings.Join(gotS, "\n") != strings.Join(want, "\n") {
				t.Errorf("violations of %s:\n got:\n  %s\nwant:\n  %s", id, strings.Join(gotS, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}
