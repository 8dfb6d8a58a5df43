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
			Name:                    networkPolicyWebhookName,
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
		}, {
			// Bare Pods: the same, for annotated Pods that no workload
			// controller made from a template.
			Name:                    "pods.netguard.io",
			ClientConfig:            o.ClientConfig(PathValidateWorkload),
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             &noneOnDryRun,
			FailurePolicy:           &ignore,
			MatchPolicy:             &equivalent,
			TimeoutSeconds:          &timeout,
			NamespaceSelector:       namespaceSelector(o.ExcludedNamespaces),
			MatchConditions:         []admissionregistrationv1.MatchCondition{{Name: "netguard-annotated-bare-pod", Expression: PodAnnotatedMatchExpression}},
			Rules:                   podRules(),
		}, namespaceLabelWebhook(o), localNetworkConfigWebhook(o)},
	}
}

// localNetworkConfigWebhook judges LocalNetworkConfigs and writes their
// policies (not on dry runs). It fails open like the workload webhooks: the
// controller judges every LocalNetworkConfig again before writing.
func localNetworkConfigWebhook(o ConfigurationOptions) admissionregistrationv1.ValidatingWebhook {
	ignore := admissionregistrationv1.Ignore
	noneOnDryRun := admissionregistrationv1.SideEffectClassNoneOnDryRun
	equivalent := admissionregistrationv1.Equivalent
	timeout := o.timeout()
	return admissionregistrationv1.ValidatingWebhook{
		Name:                    "localnetworkconfigs.netguard.io",
		ClientConfig:            o.ClientConfig(PathValidateLocalNetworkConfig),
		AdmissionReviewVersions: []string{"v1"},
		SideEffects:             &noneOnDryRun,
		FailurePolicy:           &ignore,
		MatchPolicy:             &equivalent,
		TimeoutSeconds:          &timeout,
		NamespaceSelector:       namespaceSelector(o.ExcludedNamespaces),
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule: admissionregistrationv1.Rule{
				APIGroups:   []string{"netguard.io"},
				APIVersions: []string{"v1alpha1"},
				Resources:   []string{"localnetworkconfigs"},
				Scope:       ptrScope(admissionregistrationv1.NamespacedScope),
			},
		}},
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
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: MutatingConfigurationName, Labels: map[string]string{"app.kubernetes.io/name": "netguard"}},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			mutating(o, "workloads.netguard.io", "netguard-annotated-or-labelled", TemplateMatchExpression, templateRules()),
			mutating(o, "cronjobs.netguard.io", "netguard-annotated-or-labelled", CronJobMatchExpression, cronJobRules()),
			mutating(o, "replicasets.netguard.io", "netguard-labelled", ReplicaSetMatchExpression, replicaSetRules()),
			mutating(o, "pods.netguard.io", "netguard-annotated-or-labelled", PodMatchExpression, podRules()),
		},
	}
}

// mutating is one of the mutating injection webhooks, which differ in the
// resources they match and their match condition (each kind keeps its pod
// labels elsewhere). All fail open: a netguard outage never blocks a
// workload, and the backfill controller catches up.
func mutating(o ConfigurationOptions, name, condition, expression string, rules []admissionregistrationv1.RuleWithOperations) admissionregistrationv1.MutatingWebhook {
	ignore := admissionregistrationv1.Ignore
	noneOnDryRun := admissionregistrationv1.SideEffectClassNoneOnDryRun
	equivalent := admissionregistrationv1.Equivalent
	ifNeeded := admissionregistrationv1.IfNeededReinvocationPolicy
	timeout := o.timeout()
	return admissionregistrationv1.MutatingWebhook{
		Name:                    name,
		ClientConfig:            o.ClientConfig(PathMutateWorkload),
		AdmissionReviewVersions: []string{"v1"},
		SideEffects:             &noneOnDryRun,
		FailurePolicy:           &ignore,
		MatchPolicy:             &equivalent,
		ReinvocationPolicy:      &ifNeeded,
		TimeoutSeconds:          &timeout,
		NamespaceSelector:       namespaceSelector(o.ExcludedNamespaces),
		MatchConditions:         []admissionregistrationv1.MatchCondition{{Name: condition, Expression: expression}},
		Rules:                   rules,
	}
}

// workloadRules are the kinds whose netguard.io annotations are on their
// own metadata (every kind but Pod, which has its own webhook).
func workloadRules() []admissionregistrationv1.RuleWithOperations {
	return []admissionregistrationv1.RuleWithOperations{
		createUpdate("apps", "deployments", "statefulsets", "daemonsets"),
		createUpdate("batch", "jobs", "cronjobs"),
	}
}

// templateRules are the kinds whose pod template is at spec.template.
func templateRules() []admissionregistrationv1.RuleWithOperations {
	return []admissionregistrationv1.RuleWithOperations{
		createUpdate("apps", "deployments", "statefulsets", "daemonsets"),
		createUpdate("batch", "jobs"),
	}
}

func cronJobRules() []admissionregistrationv1.RuleWithOperations {
	return []admissionregistrationv1.RuleWithOperations{createUpdate("batch", "cronjobs")}
}

func replicaSetRules() []admissionregistrationv1.RuleWithOperations {
	return []admissionregistrationv1.RuleWithOperations{createUpdate("apps", "replicasets")}
}

func podRules() []admissionregistrationv1.RuleWithOperations {
	return []admissionregistrationv1.RuleWithOperations{createUpdate("", "pods")}
}

func createUpdate(group string, resources ...string) admissionregistrationv1.RuleWithOperations {
	return admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule: admissionregistrationv1.Rule{
			APIGroups:   []string{group},
			APIVersions: []string{"v1"},
			Resources:   resources,
			Scope:       ptrScope(admissionregistrationv1.NamespacedScope),
		},
	}
}

// WorkloadMatchExpression is the CEL condition that sends a workload to
// netguard: it carries a netguard.io/ annotation now, or carried one before
// (so that removing the annotations is seen). Any key under netguard.io/
// counts, so that a misspelled one (netguard.io/depend-on) gets its warning.
const WorkloadMatchExpression = `(has(object.metadata.annotations) && object.metadata.annotations.exists(k, k.startsWith('netguard.io/'))) || (oldObject != null && has(oldObject.metadata.annotations) && oldObject.metadata.annotations.exists(k, k.startsWith('netguard.io/')))`

// The match conditions of the other injection webhooks. Each sends an
// object to netguard when it carries (or carried) netguard.io/ annotations,
// as WorkloadMatchExpression, or when the write sets or changes the
// netguard.io/component label of the pods it makes, so that a label
// netguard did not put there is checked (podlabel.go). Objects that a
// workload controller made from a template netguard saw (a controller
// ownerReference to a ReplicaSet, StatefulSet, DaemonSet or Job for a Pod,
// to a CronJob for a Job, to a Deployment for a ReplicaSet, written by one
// of TemplateControllerUsernames) are not sent: above all the pods of every
// ordinary Deployment, which never reach netguard.
var (
	// TemplateMatchExpression: Deployments, StatefulSets, DaemonSets, Jobs.
	TemplateMatchExpression = WorkloadMatchExpression + ` || (` + labelWritten("spec.template.metadata") + ` && !(` + templateMadeBy("Job", "batch/", "CronJob") + `))`
	// CronJobMatchExpression: CronJobs, whose pods' labels are in the job
	// template.
	CronJobMatchExpression = WorkloadMatchExpression + ` || ` + labelWritten("spec.jobTemplate.spec.template.metadata")
	// ReplicaSetMatchExpression: ReplicaSets netguard does not inject into;
	// only the label is checked, unless a Deployment made it.
	ReplicaSetMatchExpression = labelWritten("spec.template.metadata") + ` && !(` + templateMadeBy("ReplicaSet", "apps/", "Deployment") + `)`
	// PodMatchExpression: an annotated Pod no workload controller owns, or
	// a Pod whose label is written by anyone but the controller that made
	// it from a template.
	PodMatchExpression = `(` + PodAnnotatedMatchExpression + `) || (` + labelWritten("metadata") + ` && !(` + templateMadeBy("Pod", "", "") + `))`
	// PodAnnotatedMatchExpression is the validating Pod webhook's half:
	// annotated Pods that no workload controller owns.
	PodAnnotatedMatchExpression = `(` + annotated("object") + ` || (oldObject != null && ` + annotated("oldObject") + `)) && !` + templateOwned("object")
)

func annotated(obj string) string {
	return `(has(` + obj + `.metadata.annotations) && ` + obj + `.metadata.annotations.exists(k, k.startsWith('netguard.io/')))`
}

// hasPath is has() for each step of a dotted path below obj, so that a
// missing parent reads as false rather than an error.
func hasPath(obj, path string) string {
	var parts []string
	cur := obj
	for _, step := range strings.Split(path, ".") {
		cur += "." + step
		parts = append(parts, "has("+cur+")")
	}
	return strings.Join(parts, " && ")
}

// labelWritten: the object's pods get a component label at path (their
// metadata), and the old object's did not have this one.
func labelWritten(path string) string {
	const key = `'netguard.io/component'`
	labels := path + ".labels"
	return `(` + hasPath("object", labels) + ` && ` + key + ` in object.` + labels +
		` && (oldObject == null || !(` + hasPath("oldObject", labels) + `) || !(` + key + ` in oldObject.` + labels + `) || oldObject.` + labels + `[` + key + `] != object.` + labels + `[` + key + `]))`
}

// templateOwned: the object has a controller ownerReference to a kind that
// made it from a template netguard handles (rules.TemplateOwner).
func templateOwned(obj string) string {
	return `(has(` + obj + `.metadata.ownerReferences) && ` + obj + `.metadata.ownerReferences.exists(r, has(r.controller) && r.controller && ((r.apiVersion.startsWith('apps/') && r.kind in ['ReplicaSet', 'StatefulSet', 'DaemonSet']) || (r.apiVersion.startsWith('batch/') && r.kind == 'Job'))))`
}

// templateMadeBy: a controller of TemplateControllerUsernames writes an
// object it made from a template (Pods: templateOwned; others: a
// controller ownerReference to the owner kind of group prefix).
func templateMadeBy(kind, groupPrefix, owner string) string {
	users := make([]string, 0, len(TemplateControllerUsernames))
	for _, u := range TemplateControllerUsernames {
		users = append(users, "'"+u+"'")
	}
	byController := `request.userInfo.username in [` + strings.Join(users, ", ") + `]`
	if kind == "Pod" {
		return byController + ` && ` + templateOwned("object")
	}
	return byController + ` && has(object.metadata.ownerReferences) && object.metadata.ownerReferences.exists(r, has(r.controller) && r.controller && r.apiVersion.startsWith('` + groupPrefix + `') && r.kind == '` + owner + `')`
}

// SelfWriteMatchExpression is the CEL condition that sends a NetworkPolicy
// write to netguard unless netguard itself (the username replaces USERNAME)
// creates or updates a policy labelled app.kubernetes.io/managed-by=netguard.
// The webhook would allow exactly those (see docs/admission.md, managed
// policies), so skipping the call changes no verdict; it saves the API
// server a round trip for each policy netguard writes while a workload is
// admitted. Deletes, and every write by anyone else, still reach netguard.
const SelfWriteMatchExpression = `request.userInfo.username != 'USERNAME' || object == null || !has(object.metadata.labels) || !('app.kubernetes.io/managed-by' in object.metadata.labels) || object.metadata.labels['app.kubernetes.io/managed-by'] != 'netguard'`

// networkPolicyMatchConditions skips netguard's own managed writes when its
// username is known and needs no escaping in a CEL string. The condition
// that skips the writes the admission policies decide is not here: serve
// adds it once those policies are enforced (EnableCELSkip).
func networkPolicyMatchConditions(self string) []admissionregistrationv1.MatchCondition {
	if self == "" || strings.ContainsAny(self, `'\`+"\n\r") {
		return nil
	}
	return []admissionregistrationv1.MatchCondition{{Name: "not-netguard-managed-write", Expression: strings.Replace(SelfWriteMatchExpression, "USERNAME", self, 1)}}
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
