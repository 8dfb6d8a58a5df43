package rules

// Keys under netguard.io/ that netguard does not know are almost always
// typos (netguard.io/depend-on, netguard.io/enforce-level): netguard would
// ignore them silently and the user would wonder why nothing happens. The
// functions here name them, suggest the key that was probably meant, and
// validate the values of the namespace labels, as Pod Security Admission does
// for its own labels. docs/annotations.md and docs/admission.md list the
// messages.

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// KeyPrefix is the prefix of every label and annotation netguard reads.
const KeyPrefix = "netguard.io/"

// WorkloadAnnotationKeys are the netguard.io/ annotations netguard reads or
// writes on a workload.
func WorkloadAnnotationKeys() []string {
	return []string{AnnotationComponent, AnnotationDependsOn, AnnotationExposeTo, AnnotationGenerated, AnnotationProfiles}
}

// namespaceLevelLabels are the mode and version labels of a namespace.
var namespaceLevelLabels = []string{LabelAudit, LabelAuditVersion, LabelEnforce, LabelEnforceVersion, LabelWarn, LabelWarnVersion}

// UnknownWorkloadAnnotations warns about each netguard.io/ annotation of a
// workload that netguard does not read, in key order.
func UnknownWorkloadAnnotations(annotations map[string]string, fldPath *field.Path) []string {
	return unknownKeys(annotations, WorkloadAnnotationKeys(), fldPath.Child("annotations"), "annotation", "workloads")
}

// ValidateNamespaceLabels checks the netguard.io/ labels of a namespace: a
// mode label must name a level and a version label a version (errors), and a
// key netguard does not know is a warning. otherKeys are further labels the
// caller reads (netguard.io/ignore, whose value does not matter). fldPath is
// the namespace's metadata.
func ValidateNamespaceLabels(labels map[string]string, fldPath *field.Path, otherKeys ...string) (field.ErrorList, []string) {
	var errs field.ErrorList
	path := fldPath.Child("labels")
	for _, k := range namespaceLevelLabels {
		v, ok := labels[k]
		if !ok {
			continue
		}
		// The details are the parsers' messages, which the audit and the
		// logs repeat for a label that got past this check.
		if strings.HasSuffix(k, "-version") {
			if _, err := ParseVersion(v); err != nil {
				errs = append(errs, field.Invalid(path.Key(k), shown(v), err.Error()))
			}
			continue
		}
		if _, err := ParseLevel(v); err != nil {
			detail := err.Error()
			if l := Level(strings.ToLower(strings.TrimSpace(v))); l.Valid() {
				detail += fmt.Sprintf("; did you mean %q?", l)
			}
			errs = append(errs, field.Invalid(path.Key(k), shown(v), detail))
		}
	}
	known := append(append([]string(nil), namespaceLevelLabels...), otherKeys...)
	return errs, unknownKeys(labels, known, path, "label", "namespaces")
}

// unknownKeys warns about the keys of m under KeyPrefix that are not in known.
func unknownKeys(m map[string]string, known []string, path *field.Path, what, on string) []string {
	var unknown []string
	for k := range m {
		if !strings.HasPrefix(k, KeyPrefix) || contains(known, k) {
			continue
		}
		unknown = append(unknown, k)
	}
	sort.Strings(unknown)
	out := make([]string, 0, len(unknown))
	for _, k := range unknown {
		msg := fmt.Sprintf("%s: netguard does not read this %s on %s and ignores it", path.Key(shown(k)), what, on)
		if s := closestKey(k, known); s != "" {
			msg += fmt.Sprintf("; did you mean %s?", s)
		} else {
			sorted := append([]string(nil), known...)
			sort.Strings(sorted)
			msg += "; netguard reads " + strings.Join(sorted, ", ")
		}
		out = append(out, msg)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// closestKey is the known key within a small edit distance of k, or "".
// Keys are short (an annotation key's name part is at most 63 characters),
// so the distance is cheap; longer keys are not compared at all.
func closestKey(k string, known []string) string {
	const maxCompared = 80
	if len(k) > maxCompared {
		return ""
	}
	lower := strings.ToLower(k)
	best, bestDist := "", 3 // at most two edits
	for _, c := range known {
		if d := editDistance(lower, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best != "" {
		return best
	}
	// A known key with something added (netguard.io/enforce-level).
	for _, c := range known {
		if strings.HasPrefix(lower, c) && len(c) > len(best) {
			best = c
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// MissingProfile is the error for a netguard.io/profiles entry naming a
// NetworkProfile that does not exist. The webhook, the controller's events,
// the audit and the CLI all use it, so the mistake reads the same everywhere.
func MissingProfile(fldPath *field.Path, name string) *field.Error {
	e := field.NotFound(fldPath, name)
	e.Detail = MissingProfileDetail(name)
	return e
}

// MissingProfileDetail says that a NetworkProfile is missing and who owns it.
func MissingProfileDetail(name string) string {
	return fmt.Sprintf("NetworkProfile %q does not exist; NetworkProfiles are cluster-scoped and owned by the platform team: fix the name, or ask the platform team to create it", name)
}

// IsMissingProfile reports whether e is a MissingProfile error.
func IsMissingProfile(e *field.Error) bool {
	return e != nil && e.Type == field.ErrorTypeNotFound && strings.HasSuffix(e.Field, "["+AnnotationProfiles+"]")
}

// MissingProfiles returns the names of the missing profiles in errs, and
// whether errs holds nothing else.
func MissingProfiles(errs field.ErrorList) ([]string, bool) {
	var names []string
	for _, e := range errs {
		if !IsMissingProfile(e) {
			return nil, false
		}
		names = append(names, fmt.Sprint(e.BadValue))
	}
	return names, len(names) > 0
}
