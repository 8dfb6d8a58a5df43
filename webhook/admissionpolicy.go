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

// netguard decides in the API server what CEL can decide exactly, with
// three ValidatingAdmissionPolicies, each with a binding whose
// validationActions are the policy's (Deny or Warn). They match the
// NetworkPolicy writes rules.CELDecidedExpression accepts, read the levels
// from the namespace's labels and the configured defaults as the webhook
// does, and word their messages as the webhook does. The NetworkPolicy
// webhook skips exactly those writes (NetworkPolicyMatchExpression), so
// each write is judged by one of the two. serve applies the policies and
// bindings at start, before it is ready, from its own configuration; see
// docs/admission.md.
//
// Every policy costs the API server, on every write it matches, a
// conversion of the request for each of its match conditions, validations,
// message expressions and audit annotations (each is evaluated with its own
// variables), and every expression costs an evaluation. So:
//
//   - the enforce policy also carries the audit annotations: they are
//     published whatever the binding's validationActions, and it has the
//     NetworkPolicy webhook's name, which the API server puts before their
//     keys, so an audit pipeline reads one key whichever path decided;
//   - the warnings, one validation per possible violation, are in a policy
//     whose match condition skips every write that has no violation at
//     restricted: the common write costs it one condition, no validation.
//     The condition cannot read the namespace, and at managed every write
//     has a violation (rawNetworkPolicy), so a second warn policy, without
//     that condition, is bound to the namespaces whose warn level is
//     managed; each warn policy speaks only at its own levels, so that a
//     namespace both bindings select (a warn label that is not a level) is
//     warned once.

// Names of the ValidatingAdmissionPolicies and of their bindings (each
// binding has its policy's name).
const (
	// AdmissionPolicyEnforce denies and audits. It has the NetworkPolicy
	// webhook's name: the API server prefixes a policy's audit annotations
	// with its name.
	AdmissionPolicyEnforce = "networkpolicies.netguard.io"
	// AdmissionPolicyWarn warns, at privileged, baseline and restricted, on
	// the writes that have a violation at restricted.
	AdmissionPolicyWarn = "netguard-warn"
	// AdmissionPolicyWarnManaged warns at managed, on every write.
	AdmissionPolicyWarnManaged = "netguard-warn-managed"
)

// AdmissionPolicyNames are the policies, enforce first.
var AdmissionPolicyNames = []string{AdmissionPolicyEnforce, AdmissionPolicyWarn, AdmissionPolicyWarnManaged}

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
	// enforce reuses its answers, and the API server evaluates variables
	// lazily, once each per expression list.
	modeVars := func(mode string, def LevelVersion) []admissionregistrationv1.Variable {
		l := rules.CELLevelFor(labels, mode, def)
		rank := rules.CELRank("variables." + mode + "Level")
		return []admissionregistrationv1.Variable{
			{Name: mode + "Level", Expression: l.Level},
			{Name: mode + "Version", Expression: l.Version},
			{Name: mode + "Clean", Expression: fmt.Sprintf(`variables.%[1]sLevel == variables.enforceLevel ? variables.enforceClean : (%[2]s)`, mode, rules.CELCleanExpression(rank))},
			{Name: mode + "Violations", Expression: fmt.Sprintf(`variables.%[1]sLevel == variables.enforceLevel ? variables.enforceViolations : (%[2]s)`, mode, rules.CELViolationsExpression(rank, "request.namespace"))},
			lvOf(mode),
		}
	}
	forbidden := metav1.StatusReasonForbidden

	// Every expression asks first whether there is any violation (the
	// *Clean variables: a walk of the spec, no list, no string) and builds
	// the list only when there is: the API server evaluates the
	// validations, every message expression (whether its validation
	// failed or not) and the audit annotations each with their own
	// variables. No message expression indexes past the end of the list:
	// that would be an evaluation error, built and dropped on every write.
	enforcePolicy := newAdmissionPolicy(AdmissionPolicyEnforce, cfg, "", slices.Concat(common, []admissionregistrationv1.Variable{
		lvOf("enforce"),
		{Name: "labelNote", Expression: enforceLabelNote(labels, enforce)},
	}, modeVars("audit", cfg.Defaults.Audit)))
	enforcePolicy.Spec.Validations = []admissionregistrationv1.Validation{{
		Expression:        `variables.enforceClean || size(variables.enforceViolations) == 0`,
		MessageExpression: `variables.enforceClean ? '' : 'violates netguard "' + variables.enforceLevelVersion + '": ' + variables.enforceViolations.join('; ') + variables.labelNote`,
		Message:           "violates netguard: see the NetworkPolicy webhook's message",
		Reason:            &forbidden,
	}}
	// The audit annotations use the webhook's keys; an empty value is left
	// out, as the webhook leaves the key out.
	enforcePolicy.Spec.AuditAnnotations = []admissionregistrationv1.AuditAnnotation{
		{Key: AuditAnnotationEnforcePolicy, ValueExpression: `variables.enforceLevelVersion`},
		{Key: AuditAnnotationViolations, ValueExpression: `variables.auditClean || !variables.enforceClean ? '' : 'would violate netguard "' + variables.auditLevelVersion + '": ' + variables.auditViolations.join('; ')`},
	}

	// One validation per violation, as the webhook sends one warning per
	// violation; none when enforce denies, as the webhook sends none then.
	// Each warn policy speaks at its own levels only (speaks).
	warnPolicy := func(name, condition, speaks string) *admissionregistrationv1.ValidatingAdmissionPolicy {
		p := newAdmissionPolicy(name, cfg, condition, slices.Concat(common, modeVars("warn", cfg.Defaults.Warn)))
		for k := range rules.CELMaxSlots + 1 {
			p.Spec.Validations = append(p.Spec.Validations, admissionregistrationv1.Validation{
				Expression:        fmt.Sprintf(`!(%[2]s) || variables.warnClean || size(variables.warnViolations) <= %[1]d || !variables.enforceClean`, k, speaks),
				MessageExpression: fmt.Sprintf(`!(%[2]s) || variables.warnClean || size(variables.warnViolations) <= %[1]d ? '' : 'would violate netguard "' + variables.warnLevelVersion + '": ' + variables.warnViolations[%[1]d]`, k, speaks),
				Message:           "would violate netguard",
			})
		}
		return p
	}
	managed := strconv.Quote(string(rules.LevelManaged))
	// At privileged, baseline and restricted the violations are among
	// restricted's, so a write without any there has nothing to warn about.
	wouldWarn := "!(" + rules.CELCleanExpression(strconv.Itoa(rules.LevelRestricted.Rank())) + ")"
	warn := warnPolicy(AdmissionPolicyWarn, wouldWarn, "variables.warnLevel != "+managed)
	warnManaged := warnPolicy(AdmissionPolicyWarnManaged, "", "variables.warnLevel == "+managed)

	// The warn bindings split the namespaces by their warn label, as
	// CELLevelFor reads it: no label is the default, a label that is not a
	// level is managed.
	levels := []string{string(rules.LevelPrivileged), string(rules.LevelBaseline), string(rules.LevelRestricted)}
	isLevel := metav1.LabelSelectorRequirement{Key: rules.LabelWarn, Operator: metav1.LabelSelectorOpIn, Values: levels}
	notLevel := metav1.LabelSelectorRequirement{Key: rules.LabelWarn, Operator: metav1.LabelSelectorOpNotIn, Values: levels}
	warnWhere := []metav1.LabelSelectorRequirement{{Key: rules.LabelWarn, Operator: metav1.LabelSelectorOpNotIn, Values: []string{string(rules.LevelManaged)}}}
	managedWhere := []metav1.LabelSelectorRequirement{{Key: rules.LabelWarn, Operator: metav1.LabelSelectorOpExists}, notLevel}
	if cfg.Defaults.Warn.Level == rules.LevelManaged {
		warnWhere = []metav1.LabelSelectorRequirement{isLevel}
		managedWhere = []metav1.LabelSelectorRequirement{notLevel}
	}

	// A policy labelled as netguard's is never decided in CEL (the webhook
	// judges who may write it), so the bindings leave it out by label: the
	// API server then skips the policies before it converts the request,
	// which saves two conversions on each policy injection writes. An
	// UPDATE is matched when either object lacks the label, and then the
	// match condition decides, as before.
	notManaged := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: rules.LabelManagedBy, Operator: metav1.LabelSelectorOpNotIn, Values: []string{rules.ManagedByValue}}}}
	excluded := bindingExcluded(cfg, o)
	policies := []*admissionregistrationv1.ValidatingAdmissionPolicy{enforcePolicy, warn, warnManaged}
	actions := []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny, admissionregistrationv1.Warn, admissionregistrationv1.Warn}
	where := [][]metav1.LabelSelectorRequirement{nil, warnWhere, managedWhere}
	var bindings []*admissionregistrationv1.ValidatingAdmissionPolicyBinding
	for i, p := range policies {
		sel := namespaceSelector(excluded)
		sel.MatchExpressions = append(sel.MatchExpressions, where[i]...)
		bindings = append(bindings, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: admissionregistrationv1.SchemeGroupVersion.String(), Kind: "ValidatingAdmissionPolicyBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: p.Name, Labels: map[string]string{"app.kubernetes.io/name": "netguard"}},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
				PolicyName:        p.Name,
				ValidationActions: []admissionregistrationv1.ValidationAction{actions[i]},
				MatchResources:    &admissionregistrationv1.MatchResources{NamespaceSelector: sel, ObjectSelector: notManaged},
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

// newAdmissionPolicy is a policy for the writes CEL decides, and, when
// condition is set, for which condition holds too. The condition is in the
// same expression, after the decided part: CEL's && stops at a false left
// side, and a condition that failed on a shape outside that part would fail
// the policy, which denies.
func newAdmissionPolicy(name string, cfg *Config, condition string, vars []admissionregistrationv1.Variable) *admissionregistrationv1.ValidatingAdmissionPolicy {
	fail := admissionregistrationv1.Fail
	equivalent := admissionregistrationv1.Equivalent
	conds := []admissionregistrationv1.MatchCondition{{Name: "netguard-decides-in-cel", Expression: rules.CELDecidedExpression()}}
	if condition != "" {
		conds[0] = admissionregistrationv1.MatchCondition{Name: "netguard-decides-in-cel-and-would-warn", Expression: "(" + rules.CELDecidedExpression() + ") && " + condition}
	}
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
