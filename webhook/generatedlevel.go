package webhook

import (
	"context"
	"errors"

	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/netguard/netguard/rules"
)

// generatedVerdict is how the namespace's modes judge the policies a
// workload's netguard.io/depends-on generates (rules.GeneratedViolations):
// as raw NetworkPolicies are judged, enforce denies, warn warns and audit
// annotates.
type generatedVerdict struct {
	enforce          rules.LevelVersion
	denied           []rules.Violation
	warnings         []string
	auditAnnotations map[string]string
}

// judgeGenerated evaluates gen, Generate's result for w, at the modes of w's
// namespace. Profile rules are not judged: their scope is.
func (s *Server) judgeGenerated(ctx context.Context, w rules.Workload, gen rules.Generated) (generatedVerdict, error) {
	return s.judge(ctx, w.Namespace, func(l rules.Level, v rules.Version) []rules.Violation {
		return rules.GeneratedViolations(w, gen, l, v)
	})
}

// judge evaluates generated policies at the modes of namespace; violations
// judges them at one level and version.
func (s *Server) judge(ctx context.Context, namespace string, violations func(rules.Level, rules.Version) []rules.Violation) (generatedVerdict, error) {
	labels, err := s.namespaces.NamespaceLabels(ctx, namespace)
	if err != nil {
		return generatedVerdict{}, err
	}
	policy, _ := rules.PolicyForNamespace(s.cfg.Defaults, labels)
	v := generatedVerdict{enforce: policy.Enforce}
	if v.denied = violations(policy.Enforce.Level, policy.Enforce.Version); len(v.denied) > 0 {
		countViolations(v.denied, "enforce")
		return v, nil
	}
	for _, vi := range violations(policy.Warn.Level, policy.Warn.Version) {
		v.warnings = append(v.warnings, "netguard: would violate netguard "+quote(policy.Warn)+": "+vi.String())
	}
	if vs := violations(policy.Audit.Level, policy.Audit.Version); len(vs) > 0 {
		v.auditAnnotations = map[string]string{AuditAnnotationViolations: "would violate netguard " + quote(policy.Audit) + ": " + joinViolations(vs)}
	}
	return v, nil
}

// denial is the workload's 403 in the API server's words:
// deployments.apps "web" is forbidden: violates netguard "restricted": [...] ...
func (v generatedVerdict) denial(req admission.Request, name string) admission.Response {
	gr := schema.GroupResource{Group: req.Resource.Group, Resource: req.Resource.Resource}
	if gr.Resource == "" {
		gr = schema.GroupResource{Group: req.Kind.Group, Resource: resourceOf(req)}
	}
	st := apierrors.NewForbidden(gr, name, errors.New("violates netguard "+quote(v.enforce)+": "+joinViolations(v.denied))).ErrStatus
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &st,
		AuditAnnotations: map[string]string{AuditAnnotationEnforcePolicy: v.enforce.String()}}}
}
