package rules

import (
	"fmt"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Generated policies obey the namespace's level. What a workload declares in
// netguard.io/depends-on is the tenant's own choice, exactly as if it wrote
// the policies itself, so the policies it generates are judged by the checks
// of the namespace's level like any raw NetworkPolicy: "api:1-65535" opens
// every port and fails restricted. The consent policies (consent.go) are
// judged the same way, except by the two checks that keep traffic inside the
// namespace: consent is the grant for that, as a profile is. The checks of level managed are left out:
// that level forbids writing policies by hand, which generated policies are
// the alternative to. The rules a NetworkProfile contributes are the
// platform's grant: they are judged by the profile's namespaceSelector (see
// ProfileOffered), not by the level.

// GeneratedViolations judges the policies that gen, Generate's result for w,
// holds from w's netguard.io/depends-on at level and version. Each violation
// names the depends-on entry that caused it:
//
//	[ingressAllPorts] metadata.annotations[netguard.io/depends-on]: entry "api:1-65535": NetworkPolicy "netguard.web.to.api" spec.ingress[0].ports[0]: ...
//
// Entries are judged one at a time only when the policies together fail, so
// a workload that passes costs one evaluation per policy.
func GeneratedViolations(w Workload, gen Generated, level Level, version Version) []Violation {
	if level.Rank() > LevelRestricted.Rank() || !level.Valid() {
		level = LevelRestricted
	}
	if level == LevelPrivileged || gen.Component == "" {
		return nil
	}
	own := dependencyPolicies(gen)
	if !anyViolation(own, gen.Component, level, version) {
		return nil
	}
	path := field.NewPath("metadata", "annotations").Key(AnnotationDependsOn).String()
	ann, _, errs := ParseAnnotations(w.Name, w.Annotations, field.NewPath("metadata"))
	if len(errs) > 0 {
		return nil // Generate reports them
	}
	var out, cross []Violation
	// Consent policies are judged as generated: the ports in them are the
	// agreed ones, which both sides' declarations decide.
	for _, p := range own {
		if !IsCrossNamespacePolicy(p.Name, gen.Component) {
			continue
		}
		at := path
		if p.Name == crossNamespaceIngressName(gen.Component) {
			at = field.NewPath("metadata", "annotations").Key(AnnotationExposeTo).String()
		}
		for _, v := range policyViolations(p, gen.Component, level, version) {
			cross = append(cross, Violation{Rule: v.Rule, Field: at, Message: describePolicyViolation(p.Name, v)})
		}
	}
	local, _ := splitDependencies(w.Namespace, ann.DependsOn)
	for _, d := range local {
		one := Workload{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name, Components: w.Components, Annotations: map[string]string{
			AnnotationComponent: ann.Component, AnnotationDependsOn: d.String(),
		}}
		g, errs := Generate(one, nil)
		if len(errs) > 0 {
			continue
		}
		for _, p := range dependencyPolicies(g) {
			for _, v := range policyViolations(p, gen.Component, level, version) {
				out = append(out, Violation{Rule: v.Rule, Field: path,
					Message: fmt.Sprintf("entry %q: %s", d.String(), describePolicyViolation(p.Name, v))})
			}
		}
	}
	if len(out) == 0 {
		// Only the entries together fail: report the policies.
		for _, p := range own {
			if IsCrossNamespacePolicy(p.Name, gen.Component) {
				continue
			}
			for _, v := range policyViolations(p, gen.Component, level, version) {
				out = append(out, Violation{Rule: v.Rule, Field: path, Message: describePolicyViolation(p.Name, v)})
			}
		}
	}
	return append(out, cross...)
}

// dependencyPolicies are gen's policies that come from netguard.io/depends-on
// (not from a profile).
func dependencyPolicies(gen Generated) []*networkingv1.NetworkPolicy {
	profilePrefix := GeneratedPolicyPrefix + gen.Component + ".profile."
	out := make([]*networkingv1.NetworkPolicy, 0, len(gen.Policies))
	for _, p := range gen.Policies {
		if !strings.HasPrefix(p.Name, profilePrefix) {
			out = append(out, p)
		}
	}
	return out
}

func anyViolation(ps []*networkingv1.NetworkPolicy, component string, level Level, version Version) bool {
	for _, p := range ps {
		if len(policyViolations(p, component, level, version)) > 0 {
			return true
		}
	}
	return false
}

// policyViolations evaluates a generated policy of component, leaving out
// the checks of level managed. The consent policies of component leave out
// egressToOtherNamespaces and ingressFromOtherNamespaces too: their peers are
// one named namespace's component that agreed, which is what those checks
// keep raw policies from assuming, and the platform grants consent by level
// in its configuration (CrossNamespaceConfig) instead.
func policyViolations(p *networkingv1.NetworkPolicy, component string, level Level, version Version) []Violation {
	vs := Evaluate(level, version, p)
	cross := IsCrossNamespacePolicy(p.Name, component)
	out := vs[:0:0]
	for _, v := range vs {
		if v.Rule == checkRawNetworkPolicy().ID {
			continue
		}
		if cross && (v.Rule == checkEgressToOtherNamespaces().ID || v.Rule == checkIngressFromOtherNamespaces().ID) {
			continue
		}
		out = append(out, v)
	}
	return out
}

func describePolicyViolation(policy string, v Violation) string {
	if v.Field == "" {
		return fmt.Sprintf("NetworkPolicy %q: %s", policy, v.Message)
	}
	return fmt.Sprintf("NetworkPolicy %q %s: %s", policy, v.Field, v.Message)
}
