package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	configv1alpha1 "github.com/netguard/netguard/api/config/v1alpha1"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook"
)

const (
	configAPIVersion = configv1alpha1.APIVersion
	configKind       = configv1alpha1.Kind
)

// The file format lives in api/config/v1alpha1, so that everything that
// writes the file (the chart, tests) shares its Go types.
type (
	NetguardConfiguration = configv1alpha1.NetguardConfiguration
	LevelDefaults         = configv1alpha1.LevelDefaults
	Exemptions            = configv1alpha1.Exemptions
	PlatformConfig        = configv1alpha1.PlatformConfig
	AuditConfig           = configv1alpha1.AuditConfig
	AdmissionConfig       = configv1alpha1.AdmissionConfig
	CrossNamespaceConfig  = configv1alpha1.CrossNamespaceConfig
)

func defaultConfiguration() *NetguardConfiguration {
	return &NetguardConfiguration{
		APIVersion:     configAPIVersion,
		Kind:           configKind,
		Defaults:       LevelDefaults{Enforce: "baseline", Audit: "restricted", Warn: "restricted"},
		Exemptions:     Exemptions{Namespaces: []string{"kube-system"}},
		Audit:          AuditConfig{Interval: metav1.Duration{Duration: time.Minute}, MaxObjectsPerCycle: webhook.DefaultAuditMaxObjectsPerCycle},
		Admission:      AdmissionConfig{MaxConcurrentEvaluations: webhook.DefaultMaxConcurrentEvaluations},
		CrossNamespace: CrossNamespaceConfig{Enabled: ptrTo(true), MaxLevel: string(rules.LevelManaged)},
	}
}

// loadServeConfig reads path (empty means defaults only). Errors name the file
// and the field.
func loadServeConfig(path string) (*NetguardConfiguration, error) {
	cfg := defaultConfiguration()
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("--config %q: file is empty; write apiVersion: %s and kind: %s", path, configAPIVersion, configKind)
	}
	if err := yaml.UnmarshalStrict(data, cfg); err != nil {
		return nil, fmt.Errorf("--config %q: %w", path, err)
	}
	if cfg.APIVersion != configAPIVersion || cfg.Kind != configKind {
		return nil, fmt.Errorf("--config %q: apiVersion %q, kind %q: want apiVersion %s, kind %s", path, cfg.APIVersion, cfg.Kind, configAPIVersion, configKind)
	}
	if err := validateConfiguration(cfg); err != nil {
		return nil, fmt.Errorf("--config %q: %w", path, err)
	}
	return cfg, nil
}

func validateConfiguration(c *NetguardConfiguration) error {
	var errs []error
	for _, f := range []struct{ path, val string }{
		{"defaults.enforce", c.Defaults.Enforce},
		{"defaults.audit", c.Defaults.Audit},
		{"defaults.warn", c.Defaults.Warn},
	} {
		if _, err := parseLevelVersion(f.val); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.path, err))
		}
	}
	if c.Audit.Interval.Duration <= 0 {
		errs = append(errs, fmt.Errorf("audit.interval %s: must be greater than 0", c.Audit.Interval.Duration))
	}
	if c.Audit.MaxObjectsPerCycle < 0 {
		errs = append(errs, fmt.Errorf("audit.maxObjectsPerCycle %d: must not be negative (0 means %d)", c.Audit.MaxObjectsPerCycle, webhook.DefaultAuditMaxObjectsPerCycle))
	}
	if l := c.CrossNamespace.MaxLevel; l != "" {
		if _, err := rules.ParseLevel(l); err != nil {
			errs = append(errs, fmt.Errorf("crossNamespace.maxLevel %q: use privileged, baseline, restricted or managed", l))
		}
	}
	if c.Admission.MaxConcurrentEvaluations < 0 {
		errs = append(errs, fmt.Errorf("admission.maxConcurrentEvaluations %d: must not be negative (0 means %d)", c.Admission.MaxConcurrentEvaluations, webhook.DefaultMaxConcurrentEvaluations))
	}
	return errors.Join(errs...)
}

// parseLevelVersion reads "baseline" or "baseline:v1.0" (":latest" is the default).
func parseLevelVersion(s string) (webhook.LevelVersion, error) {
	lv := webhook.LevelVersion{Version: rules.LatestVersion()}
	level, version, pinned := cutLast(s, ':')
	l, err := rules.ParseLevel(level)
	if err != nil {
		return lv, fmt.Errorf("unknown level %q; use privileged, baseline, restricted or managed, optionally with :v<major>.<minor>", s)
	}
	lv.Level = l
	if pinned {
		v, err := rules.ParseVersion(version)
		if err != nil {
			return lv, err
		}
		lv.Version = v
	}
	return lv, nil
}

func cutLast(s string, sep byte) (string, string, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// mergeFlags applies the policy flags the user set on top of the file: a flag
// that was given replaces the file's field (lists are replaced, not merged);
// a flag that was not given leaves the file's value. docs/configuration.md
// documents this, and TestFlagsOverrideConfigFile proves it.
func (o *serveOptions) mergeFlags(fs *pflag.FlagSet, c *NetguardConfiguration) error {
	// A level flag is checked here, under its own name: Validate skips the
	// empty value because it means "not given", but --default-enforce= was.
	var bad []string
	set := func(name string, dst *string, val string) {
		if !fs.Changed(name) {
			return
		}
		if _, err := parseLevelVersion(val); err != nil {
			bad = append(bad, fmt.Sprintf("--%s: %v", name, err))
			return
		}
		*dst = val
	}
	setList := func(name string, dst *[]string, val []string) {
		if fs.Changed(name) {
			*dst = slices.Clone(val)
		}
	}
	set("default-enforce", &c.Defaults.Enforce, o.DefaultEnforce)
	set("default-audit", &c.Defaults.Audit, o.DefaultAudit)
	set("default-warn", &c.Defaults.Warn, o.DefaultWarn)
	setList("exempt-usernames", &c.Exemptions.Usernames, o.ExemptUsernames)
	setList("exempt-groups", &c.Exemptions.Groups, o.ExemptGroups)
	setList("exempt-namespaces", &c.Exemptions.Namespaces, o.ExemptNamespaces)
	setList("platform-usernames", &c.Platform.Usernames, o.PlatformUsernames)
	setList("platform-groups", &c.Platform.Groups, o.PlatformGroups)
	if fs.Changed("audit-interval") {
		if o.AuditInterval <= 0 {
			bad = append(bad, fmt.Sprintf("--audit-interval %s: must be greater than 0", o.AuditInterval))
		} else {
			c.Audit.Interval.Duration = o.AuditInterval
		}
	}
	if fs.Changed("max-concurrent-evaluations") {
		if o.MaxConcurrentEvaluations < 1 {
			bad = append(bad, fmt.Sprintf("--max-concurrent-evaluations %d: must be at least 1", o.MaxConcurrentEvaluations))
		} else {
			c.Admission.MaxConcurrentEvaluations = o.MaxConcurrentEvaluations
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	if err := validateConfiguration(c); err != nil {
		return fmt.Errorf("flags: %w", err)
	}
	return nil
}

// webhookConfig turns the merged configuration into the admission Config.
// kube-system and netguard's own namespace are always exempt: guarding them
// could lock the cluster or netguard itself out.
func (o *serveOptions) webhookConfig(c *NetguardConfiguration) (webhook.Config, error) {
	var wc webhook.Config
	var err error
	if wc.Defaults.Enforce, err = parseLevelVersion(c.Defaults.Enforce); err != nil {
		return wc, err
	}
	if wc.Defaults.Audit, err = parseLevelVersion(c.Defaults.Audit); err != nil {
		return wc, err
	}
	if wc.Defaults.Warn, err = parseLevelVersion(c.Defaults.Warn); err != nil {
		return wc, err
	}
	wc.ExemptUsernames = slices.Clone(c.Exemptions.Usernames)
	wc.ExemptGroups = slices.Clone(c.Exemptions.Groups)
	wc.ExemptNamespaces = slices.Clone(c.Exemptions.Namespaces)
	for _, ns := range []string{"kube-system", o.Namespace} {
		if ns != "" && !slices.Contains(wc.ExemptNamespaces, ns) {
			wc.ExemptNamespaces = append(wc.ExemptNamespaces, ns)
		}
	}
	slices.Sort(wc.ExemptNamespaces)
	wc.PlatformUsernames = slices.Clone(c.Platform.Usernames)
	wc.PlatformGroups = slices.Clone(c.Platform.Groups)
	wc.SelfUsername = o.SelfUsername
	wc.SystemDeleters = slices.Clone(webhook.DefaultSystemDeleters)
	wc.MaxConcurrentEvaluations = c.Admission.MaxConcurrentEvaluations
	wc.CrossNamespace = crossNamespaceGrant(c.CrossNamespace)
	return wc, wc.Validate()
}

// crossNamespaceGrant is the file's crossNamespace as the rules see it:
// enabled unless set to false, every level unless limited.
func crossNamespaceGrant(c CrossNamespaceConfig) rules.CrossNamespaceConfig {
	g := rules.CrossNamespaceConfig{Disabled: c.Enabled != nil && !*c.Enabled, MaxLevel: rules.Level(c.MaxLevel)}
	if g.MaxLevel == rules.LevelManaged {
		g.MaxLevel = "" // the strictest level: every namespace
	}
	return g
}

func ptrTo[T any](v T) *T { return &v }
