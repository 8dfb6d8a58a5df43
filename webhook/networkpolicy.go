package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/netguard/netguard/rules"
)

var (
	networkPoliciesResource = schema.GroupResource{Group: "networking.k8s.io", Resource: "networkpolicies"}
	networkPolicyGVK        = networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy")
	namespaceGVK            = schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}
)

// networkPolicyValidator judges raw NetworkPolicy writes. It is fail-closed:
// anything it cannot decode or resolve is denied.
type networkPolicyValidator struct {
	cfg        *Config
	isSelf     func(user string) bool
	namespaces namespaceLabeler
}

func (v *networkPolicyValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	resp, d := v.handle(ctx, req)
	admissionDecisions.WithLabelValues("networkpolicies", operationLabel(req.Operation), d.decision, d.mode, d.level).Inc()
	return resp
}

// decision is what the metrics and logs record about one request.
type decision struct{ decision, mode, level string }

func (v *networkPolicyValidator) handle(ctx context.Context, req admission.Request) (admission.Response, decision) {
	log := logf.FromContext(ctx)
	errored := func(code int32, err error) (admission.Response, decision) {
		log.Info("rejecting malformed or unresolvable request", "operation", req.Operation, "reason", err.Error())
		return admission.Errored(code, err), decision{"error", "enforce", "none"}
	}
	if err := checkRequest(req); err != nil {
		return errored(http.StatusBadRequest, err)
	}
	if req.Kind.Group != networkPolicyGVK.Group || req.Kind.Kind != networkPolicyGVK.Kind {
		return errored(http.StatusBadRequest, fmt.Errorf("this webhook handles networking.k8s.io NetworkPolicy, not %s", req.Kind.String()))
	}
	var newNP, oldNP *networkingv1.NetworkPolicy
	var err error
	switch req.Operation {
	case admissionv1.Create:
		newNP, err = requestPolicy("object", req.Object)
	case admissionv1.Update:
		if newNP, err = requestPolicy("object", req.Object); err == nil {
			oldNP, err = requestPolicy("oldObject", req.OldObject)
		}
	case admissionv1.Delete:
		oldNP, err = requestPolicy("oldObject", req.OldObject)
	default:
		return errored(http.StatusBadRequest, fmt.Errorf("operation %q is not handled", req.Operation))
	}
	if err == nil {
		err = sameNamespace(req, newNP, oldNP)
	}
	if err != nil {
		return errored(http.StatusBadRequest, err)
	}
	name := req.Name
	if name == "" && newNP != nil {
		name = newNP.Name
	}
	if newNP != nil && newNP.Namespace == "" {
		newNP.Namespace = req.Namespace
	}
	user, groups := req.UserInfo.Username, req.UserInfo.Groups

	if v.cfg.namespaceExempt(req.Namespace) {
		return admission.Allowed(""), decision{"allow", "exempt", "none"}
	}

	// Managed policies: only netguard and platform identities touch them, in
	// every namespace and whatever the level.
	if rules.IsManagedPolicy(oldNP) || rules.IsManagedPolicy(newNP) {
		if v.isSelf(user) || v.cfg.isPlatform(user, groups) {
			return admission.Allowed(""), decision{"allow", "managed", "none"}
		}
		if slices.Contains(v.cfg.SystemDeleters, user) && systemMayWrite(req.Operation, oldNP, newNP) {
			return admission.Allowed(""), decision{"allow", "managed", "none"}
		}
		if req.Operation == admissionv1.Delete && squatter(oldNP) {
			// A policy of a reserved name that netguard did not write (the
			// audit reports it): deleting an allowance only narrows, and
			// lets its author clean up. The default-deny is not an
			// allowance.
			return admission.Allowed(""), decision{"allow", "managed", "none"}
		}
		log.Info("denied change to a managed NetworkPolicy", "operation", req.Operation, "user", user)
		return forbidden(name, managedDenial(req.Operation, oldNP, newNP, name, user)), decision{"deny", "managed", "none"}
	}

	// Deleting a raw policy only removes allowances; default-deny still holds.
	if req.Operation == admissionv1.Delete {
		return admission.Allowed(""), decision{"allow", "enforce", "none"}
	}
	if v.cfg.userExempt(user, groups) {
		return admission.Allowed(""), decision{"allow", "exempt", "none"}
	}
	if v.cfg.isPlatform(user, groups) {
		return admission.Allowed(""), decision{"allow", "platform", "none"}
	}

	labels, err := v.namespaces.NamespaceLabels(ctx, req.Namespace)
	if err != nil {
		code := int32(http.StatusInternalServerError)
		if errors.Is(err, errNotSynced) {
			code = http.StatusServiceUnavailable
		}
		return errored(code, err)
	}
	policy, labelErrs := rules.PolicyForNamespace(v.cfg.Defaults, labels)
	for _, le := range labelErrs {
		namespaceLabelErrors.WithLabelValues(le.Mode).Inc()
		log.Info("namespace label has an invalid value; using the strictest setting", "label", le.Label, "value", le.Value, "error", le.Err.Error())
	}
	d := decision{"allow", "enforce", string(policy.Enforce.Level)}

	// One analysis serves the three modes, which usually share a level. It
	// stops at the request's deadline: the API server has given up by then.
	ev := rules.NewEvaluationContext(ctx, newNP)
	stopped := func() (admission.Response, decision) {
		return errored(http.StatusServiceUnavailable, fmt.Errorf("the evaluation of the policy stopped before it finished (%v); the policy is not allowed: retry", ev.Err()))
	}
	vs := ev.At(policy.Enforce.Level, policy.Enforce.Version)
	if ev.Err() != nil {
		return stopped()
	}
	if len(vs) > 0 {
		countViolations(vs, "enforce")
		log.Info("denied NetworkPolicy", "operation", req.Operation, "level", policy.Enforce.String(), "rules", ruleIDs(vs))
		d.decision = "deny"
		msg := "violates netguard " + quote(policy.Enforce) + ": " + joinViolations(vs) + labelErrorNote(labelErrs, "enforce")
		resp := forbidden(name, msg)
		if hasRule(vs, malformedPolicyRule) {
			// The API server validates before it calls validating webhooks,
			// so only a client that calls netguard directly gets here.
			resp = invalidPolicy(name, msg)
		}
		resp.AuditAnnotations = map[string]string{AuditAnnotationEnforcePolicy: policy.Enforce.String()}
		return resp, d
	}
	resp := admission.Allowed("")
	resp.AuditAnnotations = map[string]string{AuditAnnotationEnforcePolicy: policy.Enforce.String()}
	warn, audit := ev.At(policy.Warn.Level, policy.Warn.Version), ev.At(policy.Audit.Level, policy.Audit.Version)
	if ev.Err() != nil {
		return stopped()
	}
	if vs := warn; len(vs) > 0 {
		countViolations(vs, "warn")
		for _, vi := range vs {
			resp.Warnings = append(resp.Warnings, "would violate netguard "+quote(policy.Warn)+": "+vi.String())
		}
	}
	if vs := audit; len(vs) > 0 {
		countViolations(vs, "audit")
		resp.AuditAnnotations[AuditAnnotationViolations] = "would violate netguard " + quote(policy.Audit) + ": " + joinViolations(vs)
	}
	log.V(1).Info("allowed NetworkPolicy", "operation", req.Operation, "level", policy.Enforce.String(), "warnings", len(resp.Warnings))
	return resp, d
}

// managedDenial says what user tried to do to a managed policy: create one,
// take the name of the default-deny, mark their own policy as managed, strip
// the mark, or change or delete one.
func managedDenial(op admissionv1.Operation, oldNP, newNP *networkingv1.NetworkPolicy, name, user string) string {
	label := rules.LabelManagedBy + "=" + rules.ManagedByValue
	switch {
	case oldNP == nil && newNP.Labels[rules.LabelManagedBy] == rules.ManagedByValue:
		return fmt.Sprintf("%q is labelled %s, which only netguard and platform identities may create; user %q is neither: remove the label", name, label, user)
	case oldNP == nil && name == rules.DefaultDenyPolicyName:
		return fmt.Sprintf("the name %q is reserved for netguard's namespace default-deny; user %q may not create it: choose another name", name, user)
	case oldNP == nil:
		return fmt.Sprintf("the name %q is reserved for the policies netguard generates (%s, %s and names starting with %q); user %q may not create it: choose another name", name, rules.DefaultDenyPolicyName, rules.AllowDNSPolicyName, rules.GeneratedPolicyPrefix, user)
	case newNP != nil && !rules.IsManagedPolicy(oldNP):
		return fmt.Sprintf("adding the label %s to %q is not allowed for user %q: only netguard and platform identities may mark a policy as managed; remove the label", label, name, user)
	case newNP != nil && !rules.IsManagedPolicy(newNP):
		return fmt.Sprintf("%q is managed by netguard: removing its %s label or renaming it is not allowed for user %q", name, rules.LabelManagedBy, user)
	}
	fix := "change the owning workload's netguard.io annotations, or ask the platform team"
	switch name {
	case rules.DefaultDenyPolicyName:
		fix = baselineFix
	case rules.AllowDNSPolicyName:
		fix = dnsFix
	}
	return fmt.Sprintf("%q is managed by netguard: only netguard and platform identities may %s it, and user %q is neither; %s", name, strings.ToLower(string(op)), user, fix)
}

// requestPolicy is the NetworkPolicy in a request's object or oldObject,
// decoded from its raw bytes.
func requestPolicy(fieldName string, ext runtime.RawExtension) (*networkingv1.NetworkPolicy, error) {
	if np, ok := ext.Object.(*networkingv1.NetworkPolicy); ok && np != nil {
		// Decoded with the review (decodeNetworkPolicyReview).
		return checkPolicyKind(fieldName, np)
	}
	return decodeNetworkPolicy(fieldName, ext.Raw)
}

// decodeNetworkPolicy decodes a raw object and insists that it is a
// networking.k8s.io/v1 NetworkPolicy.
func decodeNetworkPolicy(fieldName string, raw []byte) (*networkingv1.NetworkPolicy, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("request.%s is missing", fieldName)
	}
	np := &networkingv1.NetworkPolicy{}
	// Case-sensitive, as the API server decodes: "Ingress" is not "ingress".
	if err := utiljson.Unmarshal(raw, np); err != nil {
		return nil, fmt.Errorf("request.%s is not a NetworkPolicy: %v", fieldName, err)
	}
	return checkPolicyKind(fieldName, np)
}

func checkPolicyKind(fieldName string, np *networkingv1.NetworkPolicy) (*networkingv1.NetworkPolicy, error) {
	if np.APIVersion != "" || np.Kind != "" {
		if gvk := np.GroupVersionKind(); gvk != networkPolicyGVK {
			return nil, fmt.Errorf("request.%s is %s, want networking.k8s.io/v1 NetworkPolicy", fieldName, gvk.String())
		}
	}
	return np, nil
}

// sameNamespace insists that the objects are in the request's namespace, as
// the API server guarantees: a policy is judged, and its namespaceSelectors
// read, in the namespace whose labels chose the level.
func sameNamespace(req admission.Request, objs ...*networkingv1.NetworkPolicy) error {
	for i, o := range objs {
		if o != nil && o.Namespace != "" && o.Namespace != req.Namespace {
			field := "object"
			if i > 0 {
				field = "oldObject"
			}
			return fmt.Errorf("request.%s.metadata.namespace %q is not request.namespace %q", field, o.Namespace, req.Namespace)
		}
	}
	return nil
}

// forbidden is a 403 in the API server's own words:
// networkpolicies.networking.k8s.io "web" is forbidden: <msg>.
func forbidden(name, msg string) admission.Response {
	st := apierrors.NewForbidden(networkPoliciesResource, name, errors.New(msg)).ErrStatus
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &st}}
}

// malformedPolicyRule is the check that finds shapes the API server rejects.
const malformedPolicyRule = "malformedPolicy"

// invalidPolicy is a 422 in the same words as forbidden: the object is not
// one the API server would accept, which no level can allow.
func invalidPolicy(name, msg string) admission.Response {
	st := metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusUnprocessableEntity,
		Reason:  metav1.StatusReasonInvalid,
		Message: fmt.Sprintf("%s %q is invalid: %s", networkPoliciesResource.String(), name, msg),
		Details: &metav1.StatusDetails{Name: name, Group: networkPoliciesResource.Group, Kind: networkPoliciesResource.Resource},
	}
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &st}}
}

func hasRule(vs []rules.Violation, id string) bool {
	for _, v := range vs {
		if v.Rule == id {
			return true
		}
	}
	return false
}

func quote(lv LevelVersion) string { return `"` + lv.String() + `"` }

func joinViolations(vs []rules.Violation) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.String()
	}
	return strings.Join(parts, "; ")
}

func ruleIDs(vs []rules.Violation) []string {
	ids := make([]string, 0, len(vs))
	for _, v := range vs {
		if len(ids) == 0 || ids[len(ids)-1] != v.Rule {
			ids = append(ids, v.Rule)
		}
	}
	return ids
}

func countViolations(vs []rules.Violation, mode string) {
	for _, v := range vs {
		ruleViolations.WithLabelValues(v.Rule, mode).Inc()
	}
}

// squatter reports whether np has a name netguard generates but not
// netguard's label, and is not the default-deny.
func squatter(np *networkingv1.NetworkPolicy) bool {
	return np != nil && np.Name != rules.DefaultDenyPolicyName && rules.IsReservedPolicyName(np.Name) && np.Labels[rules.LabelManagedBy] != rules.ManagedByValue
}
