package webhook

import (
	"fmt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/netguard/netguard/rules"
)

// One policy per mode, each bound with its mode's action, skipping the
// namespaces the webhooks skip and the exempt ones, and the exempt and
// platform identities: what the webhook allows without evaluation.
func TestAdmissionPoliciesShape(t *testing.T) {
	cfg := &Config{
		Defaults:          Policy{Enforce: LevelVersion{Level: rules.LevelBaseline}, Warn: LevelVersion{Level: rules.LevelRestricted}, Audit: LevelVersion{Level: rules.LevelRestricted, Version: rules.MajorMinorVersion(1, 0)}},
		ExemptUsernames:   []string{"ci-bot"},
		ExemptGroups:      []string{"breakglass"},
		ExemptNamespaces:  []string{"sandbox"},
		PlatformUsernames: []string{"platform"},
		PlatformGroups:    []string{"platform-admins"},
	}
	policies, bindings := AdmissionPolicies(cfg, AdmissionPolicyOptions{ExcludedNamespaces: []string{"netguard-system"}})
	if len(policies) != 3 || len(bindings) != 3 {
		t.Fatalf("%d policies and %d bindings, want 3 and 3", len(policies), len(bindings))
	}
	// The enforce policy audits too: its audit annotations are published
	// whatever the binding's actions.
	wantActions := map[string]admissionregistrationv1.ValidationAction{AdmissionPolicyEnforce: admissionregistrationv1.Deny, AdmissionPolicyWarn: admissionregistrationv1.Warn, AdmissionPolicyWarnManaged: admissionregistrationv1.Warn}
	for i, p := range policies {
		b := bindings[i]
		if b.Spec.PolicyName != p.Name || !slices.Equal(b.Spec.ValidationActions, []admissionregistrationv1.ValidationAction{wantActions[p.Name]}) {
			t.Errorf("binding %s: policy %q actions %v", b.Name, b.Spec.PolicyName, b.Spec.ValidationActions)
		}
		var notIn []string
		for _, r := range b.Spec.MatchResources.NamespaceSelector.MatchExpressions {
			if r.Key == "kubernetes.io/metadata.name" {
				notIn = r.Values
			}
		}
		if want := []string{"kube-system", "netguard-system", "sandbox"}; !slices.Equal(notIn, want) {
			t.Errorf("binding %s skips %v, want %v", b.Name, notIn, want)
		}
		if sel := b.Spec.MatchResources.ObjectSelector; sel == nil || len(sel.MatchExpressions) != 1 || sel.MatchExpressions[0].Key != rules.LabelManagedBy || sel.MatchExpressions[0].Operator != metav1.LabelSelectorOpNotIn {
			t.Errorf("binding %s: objectSelector %+v, want managed-by NotIn [netguard]", b.Name, sel)
		}
		if *p.Spec.FailurePolicy != admissionregistrationv1.Fail {
			t.Errorf("policy %s: failurePolicy %s, want Fail", p.Name, *p.Spec.FailurePolicy)
		}
		conds := p.Spec.MatchConditions
		decided := conds[0].Expression == rules.CELDecidedExpression()
		if p.Name == AdmissionPolicyWarn {
			// Only the writes with a violation at restricted.
			decided = strings.HasPrefix(conds[0].Expression, "("+rules.CELDecidedExpression()+") && !(")
		}
		if len(conds) != 2 || !decided {
			t.Fatalf("policy %s: match conditions %+v", p.Name, conds)
		}
		for _, who := range []string{`"ci-bot"`, `"platform"`, `"breakglass"`, `"platform-admins"`} {
			if !strings.Contains(conds[1].Expression, who) {
				t.Errorf("policy %s: %s is not skipped: %s", p.Name, who, conds[1].Expression)
			}
		}
	}
	for _, p := range policies[1:] {
		if n := len(p.Spec.Validations); n != rules.CELMaxSlots+1 {
			t.Errorf("warn policy %s has %d validations, want one per possible violation (%d)", p.Name, n, rules.CELMaxSlots+1)
		}
	}
	if keys := []string{policies[0].Spec.AuditAnnotations[0].Key, policies[0].Spec.AuditAnnotations[1].Key}; !slices.Equal(keys, []string{AuditAnnotationEnforcePolicy, AuditAnnotationViolations}) {
		t.Errorf("audit annotations %v", keys)
	}
	// The warn bindings split the namespaces by their warn label: absent or
	// a level other than managed, and managed or not a level.
	for i, want := range []string{"netguard.io/warn NotIn [managed]", "netguard.io/warn Exists []; netguard.io/warn NotIn [privileged baseline restricted]"} {
		var got []string
		for _, r := range bindings[i+1].Spec.MatchResources.NamespaceSelector.MatchExpressions {
			if r.Key == rules.LabelWarn {
				got = append(got, fmt.Sprintf("%s %s %v", r.Key, r.Operator, r.Values))
			}
		}
		if strings.Join(got, "; ") != want {
			t.Errorf("binding %s selects warn labels %q, want %q", bindings[i+1].Name, got, want)
		}
	}
	// The audit default is pinned: its version is in the level's text.
	var auditVersion string
	for _, v := range policies[0].Spec.Variables {
		if v.Name == "auditVersion" {
			auditVersion = v.Expression
		}
	}
	if !strings.Contains(auditVersion, `"v1.0"`) {
		t.Errorf("auditVersion %s does not default to v1.0", auditVersion)
	}
}

// The webhook skips only what the policies decide, and every DELETE of an
// unmanaged policy; the configuration netguard installs does not skip them
// (serve adds the condition once the policies answer, EnableCELSkip), so
// that without the policies every write reaches the webhook.
func TestNetworkPolicyMatchExpressionNegatesTheDecidedPart(t *testing.T) {
	e := NetworkPolicyMatchExpression()
	if !strings.HasPrefix(e, "!(") || !strings.Contains(e, rules.CELDecidedExpression()) || !strings.Contains(e, rules.CELManagedExpression("oldObject")) {
		t.Errorf("expression %s", e)
	}
	if c := DecidedInCELCondition(); c.Name != NotDecidedInCELCondition || c.Expression != e {
		t.Errorf("condition %+v", c)
	}
	vwc := ValidatingConfiguration(ConfigurationOptions{ClientConfig: func(string) admissionregistrationv1.WebhookClientConfig {
		return admissionregistrationv1.WebhookClientConfig{}
	}, SelfUsername: "netguard"})
	for _, w := range vwc.Webhooks {
		for _, c := range w.MatchConditions {
			if c.Name == NotDecidedInCELCondition {
				t.Errorf("webhook %s is installed with %s", w.Name, c.Name)
			}
		}
	}
	if vwc.Webhooks[0].Name != networkPolicyWebhookName {
		t.Errorf("the NetworkPolicy webhook is %q, EnableCELSkip writes to %q", vwc.Webhooks[0].Name, networkPolicyWebhookName)
	}
}

// With managed as the warn default, a namespace without the label warns at
// managed: the managed warn policy is bound there, the other only where the
// label names another level.
func TestAdmissionPoliciesWarnDefaultManaged(t *testing.T) {
	cfg := &Config{Defaults: Policy{Enforce: LevelVersion{Level: rules.LevelBaseline}, Warn: LevelVersion{Level: rules.LevelManaged}, Audit: LevelVersion{Level: rules.LevelRestricted}}}
	_, bindings := AdmissionPolicies(cfg, AdmissionPolicyOptions{})
	want := map[string]string{
		AdmissionPolicyEnforce:     "",
		AdmissionPolicyWarn:        "netguard.io/warn In [privileged baseline restricted]",
		AdmissionPolicyWarnManaged: "netguard.io/warn NotIn [privileged baseline restricted]",
	}
	for _, b := range bindings {
		var got []string
		for _, r := range b.Spec.MatchResources.NamespaceSelector.MatchExpressions {
			if r.Key == rules.LabelWarn {
				got = append(got, fmt.Sprintf("%s %s %v", r.Key, r.Operator, r.Values))
			}
		}
		if strings.Join(got, "; ") != want[b.Name] {
			t.Errorf("binding %s selects warn labels %q, want %q", b.Name, got, want[b.Name])
		}
	}
}
