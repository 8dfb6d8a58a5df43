package rules

import (
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// One owner per component. The pods of a component carry the label
// netguard.io/component: NAME, and every path granted to NAME (its own
// dependencies, other components' dependencies on it, its profiles) selects
// pods by that label. A second workload that claimed NAME would receive all
// of them, and its generated policies would take over the first one's names.
// So a component has one owner in its namespace, decided the same way by
// admission, the controller and the audit: the claimant with the earliest
// creationTimestamp (a workload being created has none yet and comes last);
// within the same second (the timestamp's resolution), the workload whose
// own name is the component, which claims it without naming it; then by
// kind, then by name, so that the order is total.
//
// Admission adds one rule of its own: a workload that starts to claim a
// component (a create, or an update that changes its component) is refused
// while any other live workload of the namespace claims it, whatever their
// ages, so that an old workload cannot take a component over by changing its
// annotation. Who holds the generated policies is deliberately not part of
// the order: a workload that took a component over (before netguard refused
// it, or in a race) holds them, and would keep them.

// ClaimedComponent returns the component w claims: its netguard.io/component
// annotation, or its name when the annotation is absent. It returns false for
// a workload without netguard annotations or whose claim is not a valid
// component name. Only the claim is read, not the other annotations: a
// workload whose dependencies do not parse still declares its component.
func ClaimedComponent(w Workload) (string, bool) {
	if !IsAnnotated(w.Annotations) {
		return "", false
	}
	if v, ok := w.Annotations[AnnotationComponent]; ok {
		c, errs := ParseComponent(v, field.NewPath("metadata", "annotations").Key(AnnotationComponent))
		return c, len(errs) == 0
	}
	if !isDNS1123Label(w.Name) {
		return "", false
	}
	return w.Name, true
}

// ClaimsBefore reports whether a's claim on a component comes before b's
// (see the order above).
func ClaimsBefore(a, b Workload) bool {
	az, bz := a.Created.IsZero(), b.Created.IsZero()
	switch {
	case az != bz:
		return bz
	case !a.Created.Equal(b.Created):
		return a.Created.Before(b.Created)
	}
	an, bn := isOwnName(a), isOwnName(b)
	switch {
	case an != bn:
		return an
	case a.Kind != b.Kind:
		return a.Kind < b.Kind
	}
	return a.Name < b.Name
}

// ComponentOwner returns the index of the owner among claimants, which all
// claim one component; -1 when there are none.
func ComponentOwner(claimants []Workload) int {
	owner := -1
	for i, w := range claimants {
		if owner < 0 || ClaimsBefore(w, claimants[owner]) {
			owner = i
		}
	}
	return owner
}

// DuplicateComponent is the error for w, which claims component although
// owner, another workload of its namespace, owns it. The path is the
// annotation when w sets one, else its name.
func DuplicateComponent(w Workload, component string, owner Workload) *field.Error {
	path := field.NewPath("metadata", "name")
	if _, ok := w.Annotations[AnnotationComponent]; ok {
		path = field.NewPath("metadata", "annotations").Key(AnnotationComponent)
	}
	err := field.Duplicate(path, component)
	err.Detail = fmt.Sprintf("component %q is already declared by %s in namespace %q; give each workload its own component", component, owner.Ref(), w.Namespace)
	return err
}

// componentConflicts returns, for every workload of ws that claims a
// component another one of its namespace owns, its index and the owner's.
func componentConflicts(ws []Workload) map[int]int {
	type key struct{ namespace, component string }
	groups := map[key][]int{}
	var keys []key
	for i, w := range ws {
		c, ok := ClaimedComponent(w)
		if !ok {
			continue
		}
		k := key{w.Namespace, c}
		if groups[k] == nil {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], i)
	}
	out := map[int]int{}
	for _, k := range keys {
		idx := groups[k]
		if len(idx) < 2 {
			continue
		}
		claimants := make([]Workload, len(idx))
		for j, i := range idx {
			claimants[j] = ws[i]
		}
		owner := idx[ComponentOwner(claimants)]
		for _, i := range idx {
			if i != owner {
				out[i] = owner
			}
		}
	}
	return out
}

// conflictIndexes returns the conflicting indexes in order.
func conflictIndexes(m map[int]int) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// isOwnName reports whether w claims the component of its own name.
func isOwnName(w Workload) bool {
	c, ok := ClaimedComponent(w)
	return ok && c == w.Name
}

// ForeignComponentLabel is the error for an object of kind k, which is not
// the owner of component, whose pods would carry the label
// netguard.io/component: component although netguard did not put it there
// (a hand-written label on a Pod, or on the pod template of a workload
// without netguard annotations). The label would give those pods every path
// granted to owner's component.
func ForeignComponentLabel(k WorkloadKind, namespace, component string, owner Workload) *field.Error {
	return field.Forbidden(k.PodLabelsPath().Key(LabelComponent), fmt.Sprintf("component %q is declared by %s in namespace %q, and only netguard sets this label, on the pods of a component's owner; remove the label, or declare a component of this %s's own with the %s annotation", component, owner.Ref(), namespace, k.Kind, AnnotationComponent))
}
