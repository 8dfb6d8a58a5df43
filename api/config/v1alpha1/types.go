// Package v1alpha1 is the NetguardConfiguration file format read by
// `netguard serve --config` and `netguard audit --config`
// (docs/configuration.md): its types, built-in values (Default), decoding
// (Load) and validation (Validate). It imports no other netguard package, so
// that the Helm chart's tests and other writers of the file can use it.
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// APIVersion and Kind identify the file.
const (
	APIVersion = "netguard.io/v1alpha1"
	Kind       = "NetguardConfiguration"
)

// NetguardConfiguration is the versioned file behind `serve --config`. Its
// fields are documented in docs/configuration.md; unknown fields are errors so
// a typo never silently falls back to a default.
type NetguardConfiguration struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Defaults   LevelDefaults   `json:"defaults"`
	Exemptions Exemptions      `json:"exemptions"`
	Platform   PlatformConfig  `json:"platformIdentities"`
	Audit      AuditConfig     `json:"audit"`
	Admission  AdmissionConfig `json:"admission,omitempty"`
	// CrossNamespace is the platform's grant for cross-namespace
	// dependencies by consent (docs/security.md).
	CrossNamespace CrossNamespaceConfig `json:"crossNamespace,omitempty"`
}

// CrossNamespaceConfig turns cross-namespace dependencies by consent
// (netguard.io/depends-on NAMESPACE/COMPONENT:PORT with netguard.io/expose-to
// on the provider) on or off, and limits them by level.
type CrossNamespaceConfig struct {
	// Enabled allows consent at all; false closes every consent path (the
	// declarations stay, as warnings and audit findings). Unset means true.
	Enabled *bool `json:"enabled,omitempty"`
	// MaxLevel is the strictest enforce level of a namespace whose workloads
	// may take part in consent, as consumer or provider: privileged,
	// baseline, restricted or managed (every level, the default).
	MaxLevel string `json:"maxLevel,omitempty"`
}

// AdmissionConfig tunes how serve judges admission requests
// (docs/serve.md).
type AdmissionConfig struct {
	// MaxConcurrentEvaluations bounds the NetworkPolicy reviews one replica
	// judges at once; past it a review waits up to a second and is then
	// answered 429 (shed). 0 means the default, 32.
	MaxConcurrentEvaluations int `json:"maxConcurrentEvaluations,omitempty"`
}

// LevelDefaults apply to namespaces that carry no netguard.io/<mode> label.
type LevelDefaults struct {
	Enforce string `json:"enforce,omitempty"`
	Audit   string `json:"audit,omitempty"`
	Warn    string `json:"warn,omitempty"`
}

// Exemptions are never evaluated; requests from them are allowed and counted.
type Exemptions struct {
	Usernames  []string `json:"usernames,omitempty"`
	Groups     []string `json:"groups,omitempty"`
	Namespaces []string `json:"namespaces,omitempty"`
}

// PlatformConfig names who may write netguard-managed policies besides
// netguard itself.
type PlatformConfig struct {
	Usernames []string `json:"usernames,omitempty"`
	Groups    []string `json:"groups,omitempty"`
}

// AuditConfig tunes serve's background audit (docs/audit.md).
type AuditConfig struct {
	// Interval is the time between two audit cycles.
	Interval metav1.Duration `json:"interval"`
	// MaxObjectsPerCycle bounds the NetworkPolicies and workloads one cycle
	// evaluates; a pass over a large cluster takes several cycles.
	MaxObjectsPerCycle int `json:"maxObjectsPerCycle,omitempty"`
}
