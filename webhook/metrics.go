package webhook

import (
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metric names and labels are a user-facing interface (docs/metrics.md).
// Every label is a small enum; rule IDs are bounded by the check registry.
// Namespaces are never a label on the admission path.
var (
	admissionDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "netguard_admission_decisions_total",
		Help: "Admission decisions by resource, operation, decision (allow, deny, error), mode (enforce, exempt, managed, platform, inject) and enforced level.",
	}, []string{"resource", "operation", "decision", "mode", "level"})
	ruleViolations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "netguard_rule_violations_total",
		Help: "Guardrail violations found at admission by rule and mode (enforce, warn, audit).",
	}, []string{"rule", "mode"})
	namespaceLabelErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "netguard_namespace_label_errors_total",
		Help: "Admission requests in namespaces whose netguard.io/<mode> label is invalid and was treated as the strictest level, by mode.",
	}, []string{"mode"})
	admissionShed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "netguard_admission_shed_total",
		Help: "Admission requests answered 429 without being judged because --max-concurrent-evaluations reviews were already running, by resource.",
	}, []string{"resource"})
)

func init() {
	metrics.Registry.MustRegister(admissionDecisions, ruleViolations, namespaceLabelErrors, admissionShed)
}

// operationLabel keeps the operation label to the four operations the API
// server sends; anything else is "unknown".
func operationLabel(op admissionv1.Operation) string {
	switch op {
	case admissionv1.Create, admissionv1.Update, admissionv1.Delete, admissionv1.Connect:
		return string(op)
	}
	return "unknown"
}
