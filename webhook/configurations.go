package webhook

import (
	"strings"

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
	// SelfUsername is the username netguard writes as. When set, netguard's
	// own writes of managed NetworkPolicies (which the webhook always
	// allows) skip the NetworkPolicy webhook: see SelfWriteMatchExpression.
	SelfUsername string
}

// timeout is TimeoutSeconds, 5 when unset: the longest the API server waits.
func (o ConfigurationOptions) timeout() int32 {
	if o.TimeoutSeconds == 0 {
		return 5
	}
	return o.TimeoutSeconds
}

// ValidatingConfiguration is the desired ValidatingWebhookConfiguration. The
// Helm chart renders the same shape from values; a test keeps the two equal.
func ValidatingConfiguration(o ConfigurationOptions) *admissionregistrationv1.ValidatingWebhookConfiguration {
	fail := admissionregistrationv1.Fail
	ignore := admissionregistrationv1.Ignore
	none := admissionregistrationv1.SideEffectClassNone
	noneOnDryRun := admissionregistrationv1.SideEffectClassNoneOnDryRun
	equivalent := admissionregistrationv1.Equivalent
	timeout := o.timeout()
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
			MatchConditions:   networkPolicyMatchConditions(o.SelfUsername),
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete},
				Rule: admissionregistrationv1.Rule{
					APIGroups:   []string{"networking.k8s.io"},
					APIVersions: []string{"v1"},
					Resources:   []string{"networkpolicies"},
					Scope:       ptrScope(admissionregistrationv1.NamespacedScope),
				},
			}},
		}, {
			// Runs after mutation, when the workload has its UID, and writes
			// the generated policies. Fail open: the controller backfills.
			Name:                    "workloads.netguard.io",
			ClientConfig:            o.ClientConfig(PathValidateWorkload),
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             &noneOnDryRun,
			FailurePolicy:           &ignore,
			MatchPolicy:             &equivalent,
			TimeoutSeconds:          &timeout,
			NamespaceSelector:       namespaceSelector(o.ExcludedNamespaces),
			MatchConditions:         workloadMatchConditions(),
			Rules:                   workloadRules(),
		}, namespaceLabelWebhook(o)},
	}
}

// NamespaceLabelMatchExpression is the CEL condition that sends a namespace
// write to netguard: it adds or changes a netguard.io/ label. Every other
// namespace write, the great majority, never reaches netguard.
const NamespaceLabelMatchExpression = `has(object.metadata.labels) && object.metadata.labels.exists(k, k.startsWith('netguard.io/') && (oldObject == null || !has(oldObject.metadata.labels) || !(k in oldObject.metadata.labels) || oldObject.metadata.labels[k] != object.metadata.labels[k]))`

// namespaceLabelWebhook validates netguard.io/ namespace labels when they
// are written. It fails open and has no namespace selector: a netguard
// outage must never stop a namespace from being created or labelled, and a
// label written then is still treated as the strictest level and reported
// (docs/security.md). Deletes are not sent.
func namespaceLabelWebhook(o ConfigurationOptions) admissionregistrationv1.ValidatingWebhook {
	ignore := admissionregistrationv1.Ignore
	none := admissionregistrationv1.SideEffectClassNone
	equivalent := admissionregistrationv1.Equivalent
	timeout := o.timeout()
	return admissionregistrationv1.ValidatingWebhook{
		Name:                    "namespaces.netguard.io",
		ClientConfig:            o.ClientConfig(PathValidateNamespace),
		AdmissionReviewVersions: []string{"v1"},
		SideEffects:             &none,
		FailurePolicy:           &ignore,
		MatchPolicy:             &equivalent,
		TimeoutSeconds:          &timeout,
		MatchConditions:         []admissionregistrationv1.MatchCondition{{Name: "netguard-label-written", Expression: NamespaceLabelMatchExpression}},
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule: admissionregistrationv1.Rule{
				APIGroups:   []string{""},
				APIVersions: []string{"v1"},
				Resources:   []string{"namespaces"},
				Scope:       ptrScope(admissionregistrationv1.ClusterScope),
			},
		}},
	}
}

// MutatingConfiguration is the desired MutatingWebhookConfiguration: it labels
// annotated workloads' pod templates and records what is generated.
func MutatingConfiguration(o ConfigurationOptions) *admissionregistrationv1.MutatingWebhookConfiguration {
	ignore := admissionregistrationv1.Ignore
	noneOnDryRun := admissionregistrationv1.SideEffectClassNoneOnDryRun
	equivalent := admissionregistrationv1.Equivalent
	ifNeeded := admissionregistrationv1.IfNeededReinvocationPolicy
	timeout := o.timeout()
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: MutatingConfigurationName, Labels: map[string]string{"app.kubernetes.io/name": "netguard"}},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "workloads.netguard.io",
			ClientConfig:            o.ClientConfig(PathMutateWorkload),
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             &noneOnDryRun,
			// Fail open: a netguard outage never blocks deployments.
			FailurePolicy:      &ignore,
			MatchPolicy:        &equivalent,
			ReinvocationPolicy: &ifNeeded,
			TimeoutSeconds:     &timeout,
			NamespaceSelector:  namespaceSelector(o.ExcludedNamespaces),
			MatchConditions:    workloadMatchConditions(),
			Rules:              workloadRules(),
		}},
	}
}

func workloadRules() []admissionregistrationv1.RuleWithOperations {
	return []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule: admissionregistrationv1.Rule{
			APIGroups:   []string{"apps"},
			APIVersions: []string{"v1"},
			Resources:   []string{"deployments", "statefulsets", "daemonsets"},
			Scope:       ptrScope(admissionregistrationv1.NamespacedScope),
		},
	}}
}

// WorkloadMatchExpression is the CEL condition that sends a workload to
// netguard: it carries a netguard.io/ annotation now, or carried one before
// (so that removing the annotations is seen). Any key under netguard.io/
// counts, so that a misspelled one (netguard.io/depend-on) gets its warning.
const WorkloadMatchExpression = `(has(object.metadata.annotations) && object.metadata.annotations.exists(k, k.startsWith('netguard.io/'))) || (oldObject != null && has(oldObject.metadata.annotations) && oldObject.metadata.annotations.exists(k, k.startsWith('netguard.io/')))`

// SelfWriteMatchExpression is the CEL condition that sends a NetworkPolicy
// write to netguard unless netguard itself (the username replaces USERNAME)
// creates or updates a policy labelled app.kubernetes.io/managed-by=netguard.
// The webhook would allow exactly those (see docs/admission.md, managed
// policies), so skipping the call changes no verdict; it saves the API
// server a round trip for each policy netguard writes while a workload is
// admitted. Deletes, and every write by anyone else, still reach netguard.
const SelfWriteMatchExpression = `request.userInfo.username != 'USERNAME' || object == null || !has(object.metadata.labels) || !('app.kubernetes.io/managed-by' in object.metadata.labels) || object.metadata.labels['app.kubernetes.io/managed-by'] != 'netguard'`

// networkPolicyMatchConditions skips netguard's own managed writes when its
// username is known and needs no escaping in a CEL string.
// Every other write the admission policies decide completely skips it too
// (NetworkPolicyMatchExpression).
func networkPolicyMatchConditions(self string) []admissionregistrationv1.MatchCondition {
	decided := admissionregistrationv1.MatchCondition{Name: NotDecidedInCELCondition, Expression: NetworkPolicyMatchExpression()}
	if self == "" || strings.ContainsAny(self, `'\`+"\n\r") {
		return []admissionregistrationv1.MatchCondition{decided}
	}
	return []admissionregistrationv1.MatchCondition{{Name: "not-netguard-managed-write", Expression: strings.Replace(SelfWriteMatchExpression, "USERNAME", self, 1)}, decided}
}

// NotDecidedInCELCondition names the NetworkPolicy webhook's match condition
// that skips the writes the admission policies decide.
const NotDecidedInCELCondition = "not-decided-in-cel"

func workloadMatchConditions() []admissionregistrationv1.MatchCondition {
	return []admissionregistrationv1.MatchCondition{{Name: "netguard-annotated", Expression: WorkloadMatchExpression}}
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
