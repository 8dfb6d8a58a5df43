package webhook

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metric names and labels are a user-facing interface (docs/metrics.md).
// Labels are bounded: resource, operation, decision, mode and level are small
// enums; rule IDs are bounded by the check registry.
var (
	admissionDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "netguard_admission_decisions_total",
		Help: "Admission decisions by resource, operation, decision (allow, deny, warn, error), mode (enforce, warn, audit, exempt, managed) and level.",
	}, []string{"resource", "operation", "decision", "mode", "level"})
)

func init() {
	metrics.Registry.MustRegister(admissionDecisions)
}
