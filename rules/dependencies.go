package rules

import "fmt"

// UndeclaredDependencies warns about each dependency in deps (of a workload
// in namespace) on a component that no workload of the namespace declares:
// its policies are generated but select no pods. declared reports whether a
// workload of the namespace declares a component; unannotated returns the
// reference (KIND/NAME) of a workload of the namespace with that name and no
// netguard annotations, or "". Such a workload is almost certainly the one
// meant: its pods lack the netguard.io/component label until it is annotated.
// One warning per component, in the order of deps.
func UndeclaredDependencies(namespace string, deps []Dependency, declared func(component string) bool, unannotated func(name string) string) []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range deps {
		if d.Namespace != "" && d.Namespace != namespace {
			continue // another namespace's component: see consent.go
		}
		if seen[d.Component] || declared(d.Component) {
			continue
		}
		seen[d.Component] = true
		if ref := unannotated(d.Component); ref != "" {
			out = append(out, fmt.Sprintf("%s: %s in namespace %q has no netguard annotations, so its pods lack the label %s=%s and %q reaches no pods; annotate it with %s (which restarts its pods)",
				AnnotationDependsOn, ref, namespace, LabelComponent, d.Component, d.String(), AnnotationComponent))
			continue
		}
		out = append(out, fmt.Sprintf("%s: no workload in namespace %q declares component %q, so %q reaches no pods", AnnotationDependsOn, namespace, d.Component, d.String()))
	}
	return out
}
