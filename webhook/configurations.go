package webhook

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Names of the webhook configurations netguard installs and keeps its caBundle in.
const (
	ValidatingConfigurationName = "netguard-validating"
	MutatingConfigurationName   = "netguard-mutating"
	// LabelIgnore on a namespace keeps every netguard webhook away from it.
	LabelIgnore = "netguard.io/ignore"
)

// ConfigurationOptions describe how the API server reaches netguard.
type ConfigurationOptions struct {
	// ClientConfig returns how to reach the handler at path: a URL for local
	// runs, a Service reference in a cluster.
	ClientConfig func(path string) admissionregistrationv1.WebhookClientConfig
	// ExcludedNamespaces never reach the webhooks (kube-system, netguard's own).
	ExcludedNamespaces []string
	TimeoutSeconds     int32
}

// ValidatingConfiguration is the desired ValidatingWebhookConfiguration. The
// Helm chart renders the same shape from values; a test keeps the two equal.
func ValidatingConfiguration(o ConfigurationOptions) *admissionregistrationv1.ValidatingWebhookConfiguration {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	equivalent := admissionregistrationv1.Equivalent
	timeout := o.TimeoutSeconds
	if timeout == 0 {
		timeout = 5
	}
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: ValidatingConfigurationName, Labels: map[string]string{"app.kubernetes.io/name": "netguard"}},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "networkpolicies.netguard.io",
			ClientConfig:            o.ClientConfig(PathValidateNetworkPolicy),
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             &none,
			// Security first: when netguard is down, NetworkPolicy writes stop.
			FailurePolicy:     &fail,
			MatchPolicy:       &equivalent,
			TimeoutSeconds:    &timeout,
			NamespaceSelector: namespaceSelector(o.ExcludedNamespaces),
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete},
				Rule: admissionregistrationv1.Rule{
					APIGroups:   []string{"networking.k8s.io"},
					APIVersions: []string{"v1"},
					Resources:   []string{"networkpolicies"},
					Scope:       ptrScope(admissionregistrationv1.NamespacedScope),
				},
			}},
		}},
	}
}

func namespaceSelector(excluded []string) *metav1.LabelSelector {
	sel := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: LabelIgnore, Operator: metav1.LabelSelectorOpDoesNotExist},
	}}
	if len(excluded) > 0 {
		sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: excluded,
		})
	}
	return sel
}

func ptrScope(s admissionregistrationv1.ScopeType) *admissionregistrationv1.ScopeType { return &s }
