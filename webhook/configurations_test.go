package webhook

import (
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/netguard/netguard/rules"
)

func TestSelfWriteMatchCondition(t *testing.T) {
	opts := ConfigurationOptions{ClientConfig: func(string) admissionregistrationv1.WebhookClientConfig {
		return admissionregistrationv1.WebhookClientConfig{}
	}}
	// The not-decided-in-cel condition is never installed with the
	// configuration (TestNetworkPolicyMatchExpressionNegatesTheDecidedPart).
	if mc := ValidatingConfiguration(opts).Webhooks[0].MatchConditions; len(mc) != 0 {
		t.Fatalf("without a username: want no match condition, got %v", mc)
	}
	opts.SelfUsername = "system:serviceaccount:netguard-system:netguard"
	mc := ValidatingConfiguration(opts).Webhooks[0].MatchConditions
	if len(mc) != 1 {
		t.Fatalf("want one match condition, got %v", mc)
	}
	// The condition must skip exactly what the webhook allows for netguard
	// itself: rules.IsManagedPolicy's label, netguard's username.
	for _, want := range []string{"'" + opts.SelfUsername + "'", "'" + rules.LabelManagedBy + "'", "!= '" + rules.ManagedByValue + "'", "object == null"} {
		if !strings.Contains(mc[0].Expression, want) {
			t.Errorf("expression %q lacks %q", mc[0].Expression, want)
		}
	}
	opts.SelfUsername = "o'brien"
	if mc := ValidatingConfiguration(opts).Webhooks[0].MatchConditions; len(mc) != 0 {
		t.Fatalf("a username with a quote: want no match condition, got %v", mc)
	}
}
