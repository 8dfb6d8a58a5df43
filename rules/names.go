package rules

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Label keys, label values and namespace names are checked for every peer of
// every policy at admission, component and profile names for every
// annotated workload. apimachinery's validators match regular
// expressions, which cost more than the rest of a typical policy's analysis,
// so the common case (a valid name) is decided here by hand, and only a name
// these functions reject goes to apimachinery for its exact messages. A test
// (bench_equivalence_test.go) holds the two to the same answers.

// labelKeyErrors is validation.IsQualifiedName.
func labelKeyErrors(k string) []string {
	if isLabelKey(k) {
		return nil
	}
	return validation.IsQualifiedName(k)
}

// labelValueErrors is validation.IsValidLabelValue.
func labelValueErrors(v string) []string {
	if v == "" || isLabelName(v) {
		return nil
	}
	return validation.IsValidLabelValue(v)
}

// isLabelKey reports whether k is a qualified name: [prefix/]name with a
// DNS-1123 subdomain prefix.
func isLabelKey(k string) bool {
	prefix, name, found := strings.Cut(k, "/")
	if !found {
		return isLabelName(k)
	}
	return prefix != "" && isDNS1123Subdomain(prefix) && isLabelName(name)
}

// isLabelName matches ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] in at most 63
// characters.
func isLabelName(s string) bool {
	if len(s) == 0 || len(s) > 63 || !isAlphanumeric(s[0]) || !isAlphanumeric(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; !isAlphanumeric(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// isDNS1123Subdomain matches dot-separated DNS-1123 labels in at most 253
// characters.
func isDNS1123Subdomain(s string) bool {
	if len(s) > validation.DNS1123SubdomainMaxLength {
		return false
	}
	for {
		label, rest, more := strings.Cut(s, ".")
		if !isDNS1123LabelChars(label) {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

// isDNS1123Label is validation.IsDNS1123Label reporting no error.
func isDNS1123Label(s string) bool {
	return len(s) <= validation.DNS1123LabelMaxLength && isDNS1123LabelChars(s)
}

// isDNS1123LabelChars matches [a-z0-9]([-a-z0-9]*[a-z0-9])?, of any length.
func isDNS1123LabelChars(s string) bool {
	if len(s) == 0 || !isLowerAlphanumeric(s[0]) || !isLowerAlphanumeric(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; !isLowerAlphanumeric(c) && c != '-' {
			return false
		}
	}
	return true
}

func isLowerAlphanumeric(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func isAlphanumeric(c byte) bool { return isLowerAlphanumeric(c) || c >= 'A' && c <= 'Z' }
