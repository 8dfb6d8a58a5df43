package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// DefaultAuditMaxObjectsPerCycle bounds one background audit cycle's
	// work when audit.maxObjectsPerCycle is 0 or unset.
	DefaultAuditMaxObjectsPerCycle = 5000

	// DefaultMaxConcurrentEvaluations is how many NetworkPolicy reviews one
	// replica judges at once unless configured otherwise. A review takes
	// microseconds to milliseconds (the limits of rules/limits.go bound the
	// worst), so this is far above what the API server needs, and low enough
	// that a flood of large policies cannot take every core and all memory.
	DefaultMaxConcurrentEvaluations = 32
)

// Default is the built-in configuration (the table of docs/configuration.md).
// Load decodes a file over it rather than filling unset fields afterwards, in
// the manner of SetDefaults: a field the file sets replaces the built-in
// value even when it sets the zero value, so that `interval: 0s` is an error
// from Validate and not silently one minute.
func Default() *NetguardConfiguration {
	enabled := true
	return &NetguardConfiguration{
		APIVersion: APIVersion,
		Kind:       Kind,
		Defaults:   LevelDefaults{Enforce: "baseline", Audit: "restricted", Warn: "restricted"},
		Exemptions: Exemptions{Namespaces: []string{"kube-system"}},
		Audit:      AuditConfig{Interval: metav1.Duration{Duration: time.Minute}, MaxObjectsPerCycle: DefaultAuditMaxObjectsPerCycle},
		Admission:  AdmissionConfig{MaxConcurrentEvaluations: DefaultMaxConcurrentEvaluations},
		CrossNamespace: CrossNamespaceConfig{
			Enabled:  &enabled,
			MaxLevel: levelManaged,
		},
	}
}
