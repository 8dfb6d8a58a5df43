package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation/field"

	configv1alpha1 "github.com/netguard/netguard/api/config/v1alpha1"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook"
)

// loadServeConfig reads the NetguardConfiguration file at path (empty means
// the built-in configuration) and validates it. Loading, defaulting and
// validation are the file format's (api/config/v1alpha1); this adds the
// file's name, as the flag that gave it.
func loadServeConfig(path string) (*configv1alpha1.NetguardConfiguration, error) {
	if path == "" {
		return configv1alpha1.Default(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	cfg, err := configv1alpha1.Load(data)
	if err != nil {
		return nil, fmt.Errorf("--config %q: %w", path, err)
	}
	if errs := configv1alpha1.Validate(cfg); len(errs) > 0 {
		return nil, fmt.Errorf("--config %q: %s", path, fieldErrorsOneLine(errs))
	}
	return cfg, nil
}

// fieldErrorsOneLine prints errs on one line, as the CLI reports a bad
// start: "defaults.enforce: Invalid value: ...; audit.interval: ...".
func fieldErrorsOneLine(errs field.ErrorList) string {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// parseLevelVersion reads "baseline" or "baseline:v1.0" (":latest" is the
// default) as the engine's level and version. The file format checks the
// syntax, so that a flag and a file field say the same about a bad value.
func parseLevelVersion(s string) (webhook.LevelVersion, error) {
	level, version, err := configv1alpha1.ParseLevelVersion(s)
	if err != nil {
		return webhook.LevelVersion{}, err
	}
	var lv webhook.LevelVersion
	if lv.Level, err = rules.ParseLevel(level); err != nil {
		return lv, err
	}
	lv.Version, err = rules.ParseVersion(version)
	return lv, err
}

// mergeFlags applies the policy flags the user set on top of the file: a flag
// that was given replaces the file's field (lists are replaced, not merged);
// a flag that was not given leaves the file's value. docs/configuration.md
// documents this, and TestFlagsOverrideConfigFile proves it.
func (o *serveOptions) mergeFlags(fs *pflag.FlagSet, c *configv1alpha1.NetguardConfiguration) error {
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
	if errs := configv1alpha1.Validate(c); len(errs) > 0 {
		return fmt.Errorf("flags: %s", fieldErrorsOneLine(errs))
	}
	return nil
}

// webhookConfig turns the merged configuration into the admission Config.
// kube-system and netguard's own namespace are always exempt: guarding them
// could lock the cluster or netguard itself out.
func (o *serveOptions) webhookConfig(c *configv1alpha1.NetguardConfiguration) (webhook.Config, error) {
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
func crossNamespaceGrant(c configv1alpha1.CrossNamespaceConfig) rules.CrossNamespaceConfig {
	g := rules.CrossNamespaceConfig{Disabled: c.Enabled != nil && !*c.Enabled, MaxLevel: rules.Level(c.MaxLevel)}
	if g.MaxLevel == rules.LevelManaged {
		g.MaxLevel = "" // the strictest level: every namespace
	}
	return g
}
