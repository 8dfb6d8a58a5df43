package rules

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// NormalizedSelector is a label selector reduced to a canonical conjunction of
// requirements: matchLabels become In requirements with one value, values are
// sorted and deduplicated, requirements are sorted and deduplicated. Two
// spellings of the same selector normalize to the same value.
//
// Requirements the API server would reject (unknown operator, invalid key or
// value, In without values, Exists with values) are dropped and reported:
// dropping a requirement of a conjunction can only widen what the selector
// matches, so a malformed selector is never read as narrower than it could be.
//
// A selector without requirements matches everything.
type NormalizedSelector struct {
	Requirements []SelectorRequirement
}

// SelectorRequirement is one requirement of a NormalizedSelector. Values is
// empty for Exists and DoesNotExist.
type SelectorRequirement struct {
	Key      string
	Operator metav1.LabelSelectorOperator
	Values   []string
}

// NormalizeSelector normalizes sel; nil matches everything. path names sel in
// the reported problems.
func NormalizeSelector(sel *metav1.LabelSelector, path *field.Path) (NormalizedSelector, field.ErrorList) {
	return normalizeSelector(sel, func() *field.Path { return path })
}

// normalizeSelector is NormalizeSelector with the path built only when there
// is a problem to report: paths are strings built element by element, and a
// valid selector, the usual case at admission, needs none.
func normalizeSelector(sel *metav1.LabelSelector, path func() *field.Path) (NormalizedSelector, field.ErrorList) {
	var (
		out  NormalizedSelector
		errs field.ErrorList
	)
	if sel == nil {
		return out, nil
	}
	n := len(sel.MatchLabels) + len(sel.MatchExpressions)
	if n > 0 {
		out.Requirements = make([]SelectorRequirement, 0, n)
	}
	if len(sel.MatchLabels) == 1 {
		// The common case needs no sorting.
		for k, v := range sel.MatchLabels {
			if err := matchLabelError(k, v, path); err != nil {
				errs = append(errs, err)
				break
			}
			out.Requirements = append(out.Requirements, SelectorRequirement{Key: k, Operator: metav1.LabelSelectorOpIn, Values: []string{v}})
		}
	} else if len(sel.MatchLabels) > 1 {
		keys := make([]string, 0, len(sel.MatchLabels))
		for k := range sel.MatchLabels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v := sel.MatchLabels[k]
			if err := matchLabelError(k, v, path); err != nil {
				errs = append(errs, err)
				continue
			}
			out.Requirements = append(out.Requirements, SelectorRequirement{Key: k, Operator: metav1.LabelSelectorOpIn, Values: []string{v}})
		}
	}
	for i, e := range sel.MatchExpressions {
		r, err := normalizeRequirement(e, func() *field.Path { return path().Child("matchExpressions").Index(i) })
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out.Requirements = append(out.Requirements, r)
	}
	if len(out.Requirements) > 1 {
		slices.SortFunc(out.Requirements, compareRequirements)
		out.Requirements = slices.CompactFunc(out.Requirements, func(a, b SelectorRequirement) bool { return compareRequirements(a, b) == 0 })
	}
	if len(out.Requirements) == 0 {
		out.Requirements = nil
	}
	return out, errs
}

// matchLabelError reports an invalid matchLabels entry, nil for a valid one.
func matchLabelError(k, v string, path func() *field.Path) *field.Error {
	if msgs := labelKeyErrors(k); len(msgs) > 0 {
		return field.Invalid(path().Child("matchLabels").Key(k), k, "invalid label key: "+strings.Join(msgs, "; ")+"; ignored, so the selector matches more")
	}
	if msgs := labelValueErrors(v); len(msgs) > 0 {
		return field.Invalid(path().Child("matchLabels").Key(k), v, "invalid label value: "+strings.Join(msgs, "; ")+"; ignored, so the selector matches more")
	}
	return nil
}

const ignoredRequirement = "; this requirement is ignored, so the selector matches more"

func normalizeRequirement(e metav1.LabelSelectorRequirement, path func() *field.Path) (SelectorRequirement, *field.Error) {
	if msgs := labelKeyErrors(e.Key); len(msgs) > 0 {
		return SelectorRequirement{}, field.Invalid(path().Child("key"), e.Key, "invalid label key: "+strings.Join(msgs, "; ")+ignoredRequirement)
	}
	r := SelectorRequirement{Key: e.Key, Operator: e.Operator}
	switch e.Operator {
	case metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn:
		if len(e.Values) == 0 {
			return r, field.Required(path().Child("values"), fmt.Sprintf("operator %s needs at least one value%s", e.Operator, ignoredRequirement))
		}
		for j, v := range e.Values {
			if msgs := labelValueErrors(v); len(msgs) > 0 {
				return r, field.Invalid(path().Child("values").Index(j), v, "invalid label value: "+strings.Join(msgs, "; ")+ignoredRequirement)
			}
		}
		r.Values = slices.Compact(slices.Sorted(slices.Values(e.Values)))
	case metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist:
		if len(e.Values) > 0 {
			return r, field.Forbidden(path().Child("values"), fmt.Sprintf("operator %s takes no values%s", e.Operator, ignoredRequirement))
		}
	default:
		return r, field.NotSupported(path().Child("operator"), e.Operator, []string{
			string(metav1.LabelSelectorOpIn), string(metav1.LabelSelectorOpNotIn),
			string(metav1.LabelSelectorOpExists), string(metav1.LabelSelectorOpDoesNotExist),
		})
	}
	return r, nil
}

func compareRequirements(a, b SelectorRequirement) int {
	if c := strings.Compare(a.Key, b.Key); c != 0 {
		return c
	}
	if c := strings.Compare(string(a.Operator), string(b.Operator)); c != 0 {
		return c
	}
	return slices.Compare(a.Values, b.Values)
}

// MatchesAll reports whether the selector has no requirement, so it matches
// every object.
func (s NormalizedSelector) MatchesAll() bool { return len(s.Requirements) == 0 }

// Matches reports whether an object with these labels is selected.
func (s NormalizedSelector) Matches(labels map[string]string) bool {
	for _, r := range s.Requirements {
		if !r.Matches(labels) {
			return false
		}
	}
	return true
}

// Matches reports whether an object with these labels meets the requirement.
func (r SelectorRequirement) Matches(labels map[string]string) bool {
	v, ok := labels[r.Key]
	switch r.Operator {
	case metav1.LabelSelectorOpIn:
		return ok && containsSorted(r.Values, v)
	case metav1.LabelSelectorOpNotIn:
		return !ok || !containsSorted(r.Values, v)
	case metav1.LabelSelectorOpExists:
		return ok
	case metav1.LabelSelectorOpDoesNotExist:
		return !ok
	}
	return false
}

// Implies reports whether every object s matches is also matched by o, as far
// as it can be told requirement by requirement. A false answer may be
// conservative: it is used to merge what a peer may reach, where missing a
// merge only means reporting less, never allowing more.
func (s NormalizedSelector) Implies(o NormalizedSelector) bool {
	for _, q := range o.Requirements {
		implied := false
		for _, p := range s.Requirements {
			if p.Key == q.Key && requirementImplies(p, q) {
				implied = true
				break
			}
		}
		if !implied {
			return false
		}
	}
	return true
}

// requirementImplies reports whether p (on the same key) implies q. Values
// are sorted (normalized), so the set comparisons are merges, linear in the
// values: a user can make a list long.
func requirementImplies(p, q SelectorRequirement) bool {
	switch q.Operator {
	case metav1.LabelSelectorOpExists:
		return p.Operator == metav1.LabelSelectorOpIn || p.Operator == metav1.LabelSelectorOpExists
	case metav1.LabelSelectorOpDoesNotExist:
		return p.Operator == metav1.LabelSelectorOpDoesNotExist
	case metav1.LabelSelectorOpIn:
		return p.Operator == metav1.LabelSelectorOpIn && subsetSorted(p.Values, q.Values)
	case metav1.LabelSelectorOpNotIn:
		switch p.Operator {
		case metav1.LabelSelectorOpIn:
			return disjointSorted(p.Values, q.Values)
		case metav1.LabelSelectorOpNotIn:
			return subsetSorted(q.Values, p.Values)
		case metav1.LabelSelectorOpDoesNotExist:
			return true
		}
	}
	return false
}

// containsSorted reports whether the sorted list a holds v.
func containsSorted(a []string, v string) bool {
	_, ok := slices.BinarySearch(a, v)
	return ok
}

// subsetSorted reports whether every value of the sorted list a is in the
// sorted list b.
func subsetSorted(a, b []string) bool {
	if len(a) > len(b) {
		return false
	}
	j := 0
	for _, v := range a {
		for j < len(b) && b[j] < v {
			j++
		}
		if j == len(b) || b[j] != v {
			return false
		}
		j++
	}
	return true
}

// disjointSorted reports whether the sorted lists a and b share no value.
func disjointSorted(a, b []string) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			return false
		}
	}
	return true
}

// intersectSorted returns the values of the sorted list a that are in the
// sorted list b, reusing a's storage.
func intersectSorted(a, b []string) []string {
	out := a[:0]
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// String renders the selector in kubectl's selector syntax, "{}" when it
// matches everything: app=web,tier in (a,b),!legacy.
func (s NormalizedSelector) String() string {
	if s.MatchesAll() {
		return "{}"
	}
	parts := make([]string, len(s.Requirements))
	for i, r := range s.Requirements {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

func (r SelectorRequirement) String() string {
	switch r.Operator {
	case metav1.LabelSelectorOpIn:
		if len(r.Values) == 1 {
			return r.Key + "=" + r.Values[0]
		}
		return r.Key + " in (" + strings.Join(r.Values, ",") + ")"
	case metav1.LabelSelectorOpNotIn:
		if len(r.Values) == 1 {
			return r.Key + "!=" + r.Values[0]
		}
		return r.Key + " notin (" + strings.Join(r.Values, ",") + ")"
	case metav1.LabelSelectorOpExists:
		return r.Key
	case metav1.LabelSelectorOpDoesNotExist:
		return "!" + r.Key
	}
	return r.Key + " " + string(r.Operator)
}

// namespaceScope says which namespaces a namespaceSelector can match, seen
// from a policy in namespace own. In lists are sorted, so intersecting them
// is linear in their values.
//
//   - PeerOwnNamespace only when a requirement pins kubernetes.io/metadata.name
//     to own (matchLabels, or In with own as the only value; In lists are
//     intersected): whatever else the selector says, it cannot match another
//     namespace. An own namespace that is not a valid name never matches.
//   - PeerAllNamespaces when every requirement holds for every namespace: the
//     empty selector, or kubernetes.io/metadata.name Exists (the API server
//     sets that label on every namespace).
//   - PeerOtherNamespaces otherwise: NotIn, Exists, DoesNotExist, pins to
//     other names and other labels can all match a namespace other than own.
func namespaceScope(s NormalizedSelector, own string) PeerClass {
	var pinned []string
	pinnedSeen := false
	for _, r := range s.Requirements {
		if r.Key != corev1.LabelMetadataName || r.Operator != metav1.LabelSelectorOpIn {
			continue
		}
		if !pinnedSeen {
			pinned, pinnedSeen = slices.Clone(r.Values), true
			continue
		}
		pinned = intersectSorted(pinned, r.Values)
	}
	if pinnedSeen && validNamespaceName(own) {
		onlyOwn := true
		for _, v := range pinned {
			if v != own {
				onlyOwn = false
			}
		}
		if onlyOwn {
			return PeerOwnNamespace
		}
	}
	for _, r := range s.Requirements {
		if r.Key != corev1.LabelMetadataName || r.Operator != metav1.LabelSelectorOpExists {
			return PeerOtherNamespaces
		}
	}
	return PeerAllNamespaces
}

// matchesNamespaceByName reports whether s certainly matches the namespace
// named own: every requirement is on kubernetes.io/metadata.name, whose value
// is known, and holds.
func (s NormalizedSelector) matchesNamespaceByName(own string) bool {
	if !validNamespaceName(own) {
		return false
	}
	for _, r := range s.Requirements {
		if r.Key != corev1.LabelMetadataName {
			return false
		}
	}
	return s.Matches(map[string]string{corev1.LabelMetadataName: own})
}

func validNamespaceName(ns string) bool {
	return ns != "" && isDNS1123Label(ns)
}

// matchesUnlabeled reports whether s matches a pod without labels: it has no
// In and no Exists requirement.
func matchesUnlabeled(s NormalizedSelector) bool {
	for _, r := range s.Requirements {
		if r.Operator != metav1.LabelSelectorOpDoesNotExist && r.Operator != metav1.LabelSelectorOpNotIn {
			return false
		}
	}
	return true
}

// selectorsMayOverlap reports whether some object may match both s and t:
// false only when a key both constrain has no value (or absence) that meets
// all their requirements on it. Requirements are sorted by key, so the
// selectors are walked once.
func selectorsMayOverlap(s, t NormalizedSelector) bool {
	rs, rt := s.Requirements, t.Requirements
	var buf [8]SelectorRequirement
	i, j := 0, 0
	for i < len(rs) && j < len(rt) {
		switch k := rs[i].Key; {
		case k < rt[j].Key:
			i++
		case k > rt[j].Key:
			j++
		default:
			reqs := buf[:0]
			for ; i < len(rs) && rs[i].Key == k; i++ {
				reqs = append(reqs, rs[i])
			}
			for ; j < len(rt) && rt[j].Key == k; j++ {
				reqs = append(reqs, rt[j])
			}
			if !satisfiable(reqs) {
				return false
			}
		}
	}
	return true
}

// satisfiable reports whether one label (present with some value, or
// absent) meets every requirement of reqs, all on that label. Values are
// sorted; the work is linear in the shortest In list times the lists.
func satisfiable(reqs []SelectorRequirement) bool {
	var shortest []string
	exists, absent, ins := false, false, 0
	for _, r := range reqs {
		switch r.Operator {
		case metav1.LabelSelectorOpIn:
			exists = true
			ins++
			if shortest == nil || len(r.Values) < len(shortest) {
				shortest = r.Values
			}
		case metav1.LabelSelectorOpExists:
			exists = true
		case metav1.LabelSelectorOpDoesNotExist:
			absent = true
		}
	}
	if absent {
		return !exists
	}
	if ins == 0 {
		return true // NotIn and Exists leave infinitely many values
	}
candidates:
	for _, v := range shortest {
		for _, r := range reqs {
			switch r.Operator {
			case metav1.LabelSelectorOpIn:
				if !containsSorted(r.Values, v) {
					continue candidates
				}
			case metav1.LabelSelectorOpNotIn:
				if containsSorted(r.Values, v) {
					continue candidates
				}
			}
		}
		return true
	}
	return false
}

// Disjoint reports whether no object can match both s and o. A false answer
// means they may overlap: it is used to refuse components whose pods might
// be the same, where a missed contradiction only refuses more.
func (s NormalizedSelector) Disjoint(o NormalizedSelector) bool {
	return !selectorsMayOverlap(s, o)
}
