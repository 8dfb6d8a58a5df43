package rules

import (
	"math/rand/v2"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// The hand-written name checks in names.go replace apimachinery's regular
// expressions on the admission path (a performance fix measured by the
// benchmarks); they must give the same answers on every input.

var nameSeeds = []string{
	"", "a", "A", "0", "-", "_", ".", "/", "a/", "/a", "a/b", "a/b/c", "app", "App", "app.kubernetes.io/name",
	"kubernetes.io/metadata.name", "netguard.io/component", "Example.com/x", "example.com/X_y.z", "a-", "-a", "a_", "a.b",
	"a..b", "a.-b", "a-.b", "ex_ample.com/x", ".example.com/x", "example.com./x", "a b", "ä", "a\x00b", "1.2.3.4/x",
	strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 253) + "/x", strings.Repeat("a.", 126) + "a/x",
	strings.Repeat("a", 62) + "-", "x/" + strings.Repeat("b", 63), "x/" + strings.Repeat("b", 64),
}

func randomNames(n int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "aZ09-_./ \xc3"
	out := append([]string(nil), nameSeeds...)
	for range n {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		out = append(out, string(b))
	}
	return out
}

func TestNameChecksMatchApimachinery(t *testing.T) {
	for _, s := range randomNames(50000) {
		if got, want := isLabelKey(s), len(validation.IsQualifiedName(s)) == 0; got != want {
			t.Errorf("isLabelKey(%q) = %v, apimachinery says %v", s, got, want)
		}
		if got, want := labelValueErrors(s) == nil, len(validation.IsValidLabelValue(s)) == 0; got != want {
			t.Errorf("labelValueErrors(%q) = nil: %v, apimachinery says valid: %v", s, got, want)
		}
		if got, want := isDNS1123Label(s), len(validation.IsDNS1123Label(s)) == 0; got != want {
			t.Errorf("isDNS1123Label(%q) = %v, apimachinery says %v", s, got, want)
		}
		if got, want := isDNS1123Subdomain(s), len(validation.IsDNS1123Subdomain(s)) == 0; got != want {
			t.Errorf("isDNS1123Subdomain(%q) = %v, apimachinery says %v", s, got, want)
		}
	}
}

func FuzzNameChecksMatchApimachinery(f *testing.F) {
	for _, s := range nameSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isLabelKey(s), len(validation.IsQualifiedName(s)) == 0; got != want {
			t.Errorf("isLabelKey(%q) = %v, apimachinery says %v", s, got, want)
		}
		if got, want := isLabelName(s) || s == "", len(validation.IsValidLabelValue(s)) == 0; got != want {
			t.Errorf("label value %q: %v, apimachinery says %v", s, got, want)
		}
		if got, want := isDNS1123Label(s), len(validation.IsDNS1123Label(s)) == 0; got != want {
			t.Errorf("isDNS1123Label(%q) = %v, apimachinery says %v", s, got, want)
		}
	})
}
