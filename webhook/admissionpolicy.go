package webhook

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/netguard/netguard/rules"
)

// netguard decides in the API server what CEL can decide exactly: three
// ValidatingAdmissionPolicies, one per mode, each with a binding whose
// validationActions are the mode's (enforce: Deny, warn: Warn, audit:
// Audit; the audit policy writes the webhook's audit annotations). They match the NetworkPolicy writes rules.CELDecidedExpression
// accepts, read the level from the namespace's labels and the configured
// defaults as the webhook does, and word their messages as the webhook
// does. The NetworkPolicy webhook skips exactly those writes
// (NetworkPolicyMatchExpression), so each write is judged by one of the two.
// serve applies the policies and bindings at start, before it is ready,
// from its own configuration; see docs/admission.md.

// Names of the ValidatingAdmissionPolicies and of their bindings (each
// binding has its policy's name).
const (
	AdmissionPolicyEnforce = "netguard-enforce"
	// AdmissionPolicyWarnAudit warns and audits. It has the NetworkPolicy
	// webhook's name: the API server prefixes a policy's audit annotations
	// with its name. Warn and audit are one policy because every policy
	// costs the API server a conversion of the request and an evaluation of
	// its match conditions and of the enforce level on each write; a
	// policy's audit annotations are published whatever its binding's
	// validationActions, so the binding's Warn serves both.
	AdmissionPolicyWarnAudit = "networkpolicies.netguard.io"
)

// AdmissionPolicyNames are the policies, enforce first.
var AdmissionPolicyNames = []string{AdmissionPolicyEnforce, AdmissionPolicyWarnAudit}

// AdmissionPolicyOptions say where the policies apply.
type AdmissionPolicyOptions struct {
	// ExcludedNamespaces are the namespaces the webhook configurations
	// exclude (kube-system, netguard's own, the chart's
	// webhooks.excludedNamespaces): the bindings exclude them too.
	ExcludedNamespaces []string
}

// NetworkPolicyMatchExpression is the CEL condition that sends a
// NetworkPolicy write to the webhook: every write the admission policies do
// not decide completely. A DELETE goes to the webhook only for a managed
// policy: deleting any other is always allowed.
func NetworkPolicyMatchExpression() string {
	return `!(request.operation == 'DELETE' ? (oldObject != null && !` + rules.CELManagedExpression("oldObject") + `) : (` + rules.CELDecidedExpression() + `))`
}

// AdmissionPolicies returns the desired policies and bindings for cfg.
func AdmissionPolicies(cfg *Config, o AdmissionPolicyOptions) ([]*admissionregistrationv1.ValidatingAdmissionPolicy, []*admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
	labels := "variables.labels"
	enforce := rules.CELLevelFor(labels, "enforce", cfg.Defaults.Enforce)
	common := []admissionregistrationv1.Variable{
		{Name: "labels", Expression: `has(namespaceObject.metadata.labels) ? namespaceObject.metadata.labels : {}`},
		{Name: "enforceLevel", Expression: enforce.Level},
		{Name: "enforceVersion", Expression: enforce.Version},
		{Name: "enforceClean", Expression: rules.CELCleanExpression(rules.CELRank("variables.enforceLevel"))},
		{Name: "enforceViolations", Expression: rules.CELViolationsExpression(rules.CELRank("variables.enforceLevel"), "request.namespace")},
	}
	lvOf := func(mode string) admissionregistrationv1.Variable {
		return admissionregistrationv1.Variable{Name: mode + "LevelVersion", Expression: fmt.Sprintf(`variables.%[1]sVersion == 'latest' ? variables.%[1]sLevel : variables.%[1]sLevel + ':' + variables.%[1]sVersion`, mode)}
	}
	// The violations depend on the level alone (rules/cel.go: no check's
	// versions differ in the part CEL decides), so a mode at the level of
	// an earlier one reuses its list: the warn and audit defaults are one
	// level, and the API server evaluates variables lazily, once each.
	modeVars := func(mode string, def LevelVersion, earlier ...string) []admissionregistrationv1.Variable {
		l := rules.CELLevelFor(labels, mode, def)
		rank := rules.CELRank("variables." + mode + "Level")
		clean, violations := rules.CELCleanExpression(rank), rules.CELViolationsExpression(rank, "request.namespace")
		for _, e := range earlier {
			clean = fmt.Sprintf(`variables.%[1]sLevel == variables.%[2]sLevel ? variables.%[2]sClean : (%[3]s)`, mode, e, clean)
			violations = fmt.Sprintf(`variables.%[1]sLevel == variables.%[2]sLevel ? variables.%[2]sViolations : (%[3]s)`, mode, e, violations)
		}
		return []admissionregistrationv1.Variable{
			{Name: mode + "Level", Expression: l.Level},
			{Name: mode + "Version", Expression: l.Version},
			{Name: mode + "Clean", Expression: clean},
			{Name: mode + "Violations", Expression: violations},
			lvOf(mode),
		}
	}
	forbidden := metav1.StatusReasonForbidden

	enforcePolicy := newAdmissionPolicy(AdmissionPolicyEnforce, cfg, append(common,
		lvOf("enforce"),
		admissionregistrationv1.Variable{Name: "labelNote", Expression: enforceLabelNote(labels, enforce)},
	))
	enforcePolicy.Spec.Validations = []admissionregistrationv1.Validation{{
		Expression:        `variables.enforceClean || size(variables.enforceViolations) == 0`,
		MessageExpression: `variables.enforceClean ? '' : 'violates netguard "' + variables.enforceLevelVersion + '": ' + variables.enforceViolations.join('; ') + variables.labelNote`,
		Message:           "violates netguard: see the NetworkPolicy webhook's message",
		Reason:            &forbidden,
	}}

	// One validation per violation, as the webhook sends one warning per
	// violation; none when enforce denies, as the webhook sends none then.
	//
	// The API server evaluates a policy's validations, every message
	// expression (whether its validation failed or not) and the audit
	// annotations each with its own variables, so each would build the
	// list of violations again. Every expression asks first whether there
	// is any (the *Clean variables: a walk of the spec, no list, no
	// string), and the warn and audit ones before the enforce one: CEL's
	// || stops at a true left side, so a write with nothing to say (the
	// common case) never builds a list and evaluates no other level. No
	// message expression indexes past the end of the list: that would be
	// an evaluation error, built and discarded for every validation.
	// The audit annotations use the webhook's keys: the API server
	// prefixes them with the policy's name, which is the webhook's, so an
	// audit pipeline reads one key whichever path decided; an empty value
	// is left out, as the webhook leaves the key out.
	warnAudit := newAdmissionPolicy(AdmissionPolicyWarnAudit, cfg, slices.Concat(common, modeVars("warn", cfg.Defaults.Warn, "enforce"), modeVars("audit", cfg.Defaults.Audit, "warn", "enforce"), []admissionregistrationv1.Variable{lvOf("enforce")}))
	for k := range rules.CELMaxSlots + 1 {
		warnAudit.Spec.Validations = append(warnAudit.Spec.Validations, admissionregistrationv1.Validation{
			Expression:        fmt.Sprintf(`variables.warnClean || size(variables.warnViolations) <= %[1]d || !variables.enforceClean`, k),
			MessageExpression: fmt.Sprintf(`variables.warnClean || size(variables.warnViolations) <= %[1]d ? '' : 'would violate netguard "' + variables.warnLevelVersion + '": ' + variables.warnViolations[%[1]d]`, k),
			Message:           "would violate netguard",
		})
	}
	warnAudit.Spec.AuditAnnotations = []admissionregistrationv1.AuditAnnotation{
		{Key: AuditAnnotationEnforcePolicy, ValueExpression: `variables.enforceLevelVersion`},
		{Key: AuditAnnotationViolations, ValueExpression: `variables.auditClean || !variables.enforceClean ? '' : 'would violate netguard "' + variables.auditLevelVersion + '": ' + variables.auditViolations.join('; ')`},
	}

	excluded := bindingExcluded(cfg, o)
	policies := []*admissionregistrationv1.ValidatingAdmissionPolicy{enforcePolicy, warnAudit}
	actions := [][]admissionregistrationv1.ValidationAction{{admissionregistrationv1.Deny}, {admissionregistrationv1.Warn}}
	var bindings []*admissionregistrationv1.ValidatingAdmissionPolicyBinding
	for i, p := range policies {
		bindings = append(bindings, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: admissionregistrationv1.SchemeGroupVersion.String(), Kind: "ValidatingAdmissionPolicyBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: p.Name, Labels: map[string]string{"app.kubernetes.io/name": "netguard"}},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
				PolicyName:        p.Name,
				ValidationActions: actions[i],
				MatchResources:    &admissionregistrationv1.MatchResources{NamespaceSelector: namespaceSelector(excluded)},
			},
		})
	}
	return policies, bindings
}

// bindingExcluded are the namespaces the bindings skip, sorted: kube-system,
// the options' excluded namespaces and the exempt ones.
func bindingExcluded(cfg *Config, o AdmissionPolicyOptions) []string {
	excluded := slices.Concat([]string{metav1.NamespaceSystem}, o.ExcludedNamespaces, cfg.ExemptNamespaces)
	slices.Sort(excluded)
	return slices.Compact(excluded)
}

func newAdmissionPolicy(name string, cfg *Config, vars []admissionregistrationv1.Variable) *admissionregistrationv1.ValidatingAdmissionPolicy {
	fail := admissionregistrationv1.Fail
	equivalent := admissionregistrationv1.Equivalent
	conds := []admissionregistrationv1.MatchCondition{{Name: "netguard-decides-in-cel", Expression: rules.CELDecidedExpression()}}
	if e := exemptUsersExpression(cfg); e != "" {
		conds = append(conds, admissionregistrationv1.MatchCondition{Name: "not-exempt-or-platform", Expression: e})
	}
	return &admissionregistrationv1.ValidatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: admissionregistrationv1.SchemeGroupVersion.String(), Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app.kubernetes.io/name": "netguard"}},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			// An expression that cannot be evaluated denies, as the webhook
			// fails closed.
			FailurePolicy: &fail,
			MatchConstraints: &admissionregistrationv1.MatchResources{
				MatchPolicy: &equivalent,
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
						Rule: admissionregistrationv1.Rule{
							APIGroups:   []string{"networking.k8s.io"},
							APIVersions: []string{"v1"},
							Resources:   []string{"networkpolicies"},
							Scope:       ptrScope(admissionregistrationv1.NamespacedScope),
						},
					},
				}},
			},
			MatchConditions: conds,
			Variables:       vars,
		},
	}
}

// exemptUsersExpression is true unless the request comes from an exempt or
// platform identity, which the webhook allows without evaluation.
func exemptUsersExpression(cfg *Config) string {
	users := slices.Concat(cfg.ExemptUsernames, cfg.PlatformUsernames)
	groups := slices.Concat(cfg.ExemptGroups, cfg.PlatformGroups)
	var parts []string
	if len(users) > 0 {
		parts = append(parts, `!(request.userInfo.username in `+celList(users)+`)`)
	}
	if len(groups) > 0 {
		parts = append(parts, `!(has(request.userInfo.groups) && request.userInfo.groups.exists(g, g in `+celList(groups)+`))`)
	}
	return strings.Join(parts, " && ")
}

func celList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// celLabelPlaceholder stands for a label's value in the note's template.
const celLabelPlaceholder = "cel-label-placeholder"

// enforceLabelNote is labelErrorNote for the enforce mode, in CEL: its
// wording is taken from labelErrorNote and the rules' parse errors.
func enforceLabelNote(labels string, l rules.CELLevel) string {
	_, levelErr := rules.ParseLevel(celLabelPlaceholder)
	_, versionErr := rules.ParseVersion(celLabelPlaceholder)
	one := func(label string, err error) string {
		note := labelErrorNote([]rules.LabelError{{Mode: "enforce", Label: label, Value: celLabelPlaceholder, Err: err}}, "enforce")
		note = strings.TrimPrefix(note, "; ")
		body, _, _ := strings.Cut(note, ", so netguard applies")
		return celTemplate(body, celLabelPlaceholder, labels+"["+strconv.Quote(label)+"]")
	}
	note := labelErrorNote([]rules.LabelError{{Mode: "enforce", Label: rules.LabelEnforce, Value: "v", Err: levelErr}}, "enforce")
	_, tail, _ := strings.Cut(note, ")")
	return fmt.Sprintf(`(%[1]s || %[2]s) ? '; ' + [%[1]s ? %[3]s : '', %[2]s ? %[4]s : ''].filter(s, s != '').join('; ') + %[5]s : ''`,
		l.LevelInvalid, l.VersionInvalid, one(rules.LabelEnforce, levelErr), one(rules.LabelEnforceVersion, versionErr), strconv.Quote(tail))
}

// celTemplate is s as a CEL string expression, with every placeholder
// replaced by the CEL expression expr.
func celTemplate(s, placeholder, expr string) string {
	parts := strings.Split(s, placeholder)
	q := make([]string, len(parts))
	for i, p := range parts {
		q[i] = strconv.Quote(p)
	}
	return "(" + strings.Join(q, " + "+expr+" + ") + ")"
}

// ApplyAdmissionPolicies writes the policies and bindings with server-side
// apply, policies first, so that a binding never names a policy that does
// not exist yet.
func ApplyAdmissionPolicies(ctx context.Context, c client.Client, cfg *Config, o AdmissionPolicyOptions) error {
	policies, bindings := AdmissionPolicies(cfg, o)
	var objs []runtime.Object
	for _, p := range policies {
		objs = append(objs, p)
	}
	for _, b := range bindings {
		objs = append(objs, b)
	}
	var errs []error
	for _, obj := range objs {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return err
		}
		u := &unstructured.Unstructured{Object: m}
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(u.Object, "status")
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
			errs = append(errs, fmt.Errorf("apply %s %q: %w", u.GetKind(), u.GetName(), err))
		}
	}
	return errors.Join(errs...)
}
