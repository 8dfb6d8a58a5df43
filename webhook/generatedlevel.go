package webhook

import (
	"context"
	"errors"
	"sync"

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
//
// A generation from the cache carries the verdicts earlier calls worked out
// for it (gen.judged): its inputs are the same, so are its verdicts.
func (s *Server) judgeGenerated(ctx context.Context, w rules.Workload, gen generation) (generatedVerdict, error) {
	return s.judge(ctx, w.Namespace, func(l rules.Level, v rules.Version) []rules.Violation {
		return gen.judged.at(rules.LevelVersion{Level: l, Version: v}, func() []rules.Violation {
			return rules.GeneratedViolations(w, gen.Generated, l, v)
		})
	})
}

// verdictMemo remembers rules.GeneratedViolations for one cached generation
// at each level and version it was judged at. A nil memo remembers nothing.
type verdictMemo struct {
	mu     sync.Mutex
	judged map[rules.LevelVersion][]rules.Violation
}

// at returns the violations at lv, working them out with judge the first
// time. The slices are shared: callers must not change them.
func (m *verdictMemo) at(lv rules.LevelVersion, judge func() []rules.Violation) []rules.Violation {
	if m == nil {
		return judge()
	}
	m.mu.Lock()
	vs, ok := m.judged[lv]
	m.mu.Unlock()
	if ok {
		return vs
	}
	vs = judge()
	m.mu.Lock()
	if m.judged == nil {
		m.judged = make(map[rules.LevelVersion][]rules.Violation, 2)
	}
	m.judged[lv] = vs
	m.mu.Unlock()
	return vs
}

// judge evaluates generated policies at the modes of namespace; violations
// judges them at one level and version.
func (s *Server) judge(ctx context.Context, namespace string, violations func(rules.Level, rules.Version) []rules.Violation) (generatedVerdict, error) {
	labels, err := s.namespaces.NamespaceLabels(ctx, namespace)
	if err != nil {
		return generatedVerdict{}, err
	}
	policy, _ := rules.PolicyForNamespace(s.cfg.Defaults, labels)
	// Warn and audit are usually at one level: judge each level once.
	judged := &verdictMemo{}
	at := func(lv rules.LevelVersion) []rules.Violation {
		return judged.at(lv, func() []rules.Violation { return violations(lv.Level, lv.Version) })
	}
	v := generatedVerdict{enforce: policy.Enforce}
	if v.denied = at(policy.Enforce); len(v.denied) > 0 {
		countViolations(v.denied, "enforce")
		return v, nil
	}
	for _, vi := range at(policy.Warn) {
		v.warnings = append(v.warnings, "netguard: would violate netguard "+quote(policy.Warn)+": "+vi.String())
	}
	if vs := at(policy.Audit); len(vs) > 0 {
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
