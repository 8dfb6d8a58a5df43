package webhook

import (
	"fmt"
	"slices"

	configv1alpha1 "github.com/netguard/netguard/api/config/v1alpha1"
	"github.com/netguard/netguard/rules"
)

const (
	// AuditAnnotationViolations is the audit annotation key netguard sets; the
	// API server prefixes it with the webhook's name.
	AuditAnnotationViolations = "audit-violations"
	// AuditAnnotationEnforcePolicy records the level and version enforced.
	AuditAnnotationEnforcePolicy = "enforce-policy"
)

// LevelVersion and Policy are the rules package's types, named here for the
// webhook's configuration.
type (
	LevelVersion = rules.LevelVersion
	Policy       = rules.NamespacePolicy
)

// Config is netguard's admission configuration after the file and the flags
// have been combined and validated (see cmd/netguard).
type Config struct {
	Defaults Policy
	// Exempt requests are allowed without evaluation.
	ExemptUsernames, ExemptGroups, ExemptNamespaces []string
	// Platform identities may write netguard-managed policies, and raw
	// policies in managed namespaces.
	PlatformUsernames, PlatformGroups []string
	// SystemDeleters may delete managed policies, and remove their
	// ownerReferences without changing anything else, but never create or
	// otherwise change one: the garbage collector removing a deleted
	// workload's policies or orphaning them (--cascade=orphan), and the
	// namespace controller emptying a terminating namespace.
	SystemDeleters []string
	// SelfUsername is netguard's own identity. Empty means: ask the API server
	// at start (SelfSubjectReview).
	SelfUsername string
	// MaxConcurrentEvaluations bounds the NetworkPolicy reviews judged at
	// once; more wait briefly and are then shed with 429. 0 means
	// configv1alpha1.DefaultMaxConcurrentEvaluations.
	MaxConcurrentEvaluations int
	// CrossNamespace is the platform's grant for cross-namespace
	// dependencies by consent; the zero value allows them at every level.
	CrossNamespace rules.CrossNamespaceConfig
}

// DefaultSystemDeleters are kube-controller-manager's identities, both when it
// uses per-controller service accounts and when it does not.
var DefaultSystemDeleters = []string{
	"system:kube-controller-manager",
	"system:serviceaccount:kube-system:generic-garbage-collector",
	"system:serviceaccount:kube-system:namespace-controller",
}

// Validate rejects levels that are not one of the four.
func (c *Config) Validate() error {
	for _, f := range []struct {
		name string
		lv   LevelVersion
	}{{"enforce", c.Defaults.Enforce}, {"audit", c.Defaults.Audit}, {"warn", c.Defaults.Warn}} {
		if !f.lv.Level.Valid() {
			return fmt.Errorf("defaults.%s: unknown level %q", f.name, f.lv.Level)
		}
	}
	if l := c.CrossNamespace.MaxLevel; l != "" && !l.Valid() {
		return fmt.Errorf("crossNamespace.maxLevel: unknown level %q", l)
	}
	if c.MaxConcurrentEvaluations < 0 {
		return fmt.Errorf("maxConcurrentEvaluations %d: must not be negative (0 means %d)", c.MaxConcurrentEvaluations, configv1alpha1.DefaultMaxConcurrentEvaluations)
	}
	return nil
}

func (c *Config) namespaceExempt(ns string) bool { return slices.Contains(c.ExemptNamespaces, ns) }

func (c *Config) userExempt(user string, groups []string) bool {
	if slices.Contains(c.ExemptUsernames, user) {
		return true
	}
	for _, g := range groups {
		if slices.Contains(c.ExemptGroups, g) {
			return true
		}
	}
	return false
}

func (c *Config) isPlatform(user string, groups []string) bool {
	if slices.Contains(c.PlatformUsernames, user) {
		return true
	}
	for _, g := range groups {
		if slices.Contains(c.PlatformGroups, g) {
			return true
		}
	}
	return false
}
