package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

const (
	configAPIVersion = "netguard.io/v1alpha1"
	configKind       = "NetguardConfiguration"
)

// NetguardConfiguration is the versioned file behind `serve --config`. Its
// fields are documented in docs/configuration.md; unknown fields are errors so
// a typo never silently falls back to a default.
type NetguardConfiguration struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Defaults   LevelDefaults  `json:"defaults"`
	Exemptions Exemptions     `json:"exemptions"`
	Platform   PlatformConfig `json:"platformIdentities"`
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

func defaultConfiguration() *NetguardConfiguration {
	return &NetguardConfiguration{
		APIVersion: configAPIVersion,
		Kind:       configKind,
		Defaults:   LevelDefaults{Enforce: "baseline", Audit: "restricted", Warn: "restricted"},
		Exemptions: Exemptions{Namespaces: []string{"kube-system"}},
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
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("--config %q: %w", path, err)
	}
	return cfg, nil
}

var knownLevels = map[string]bool{"privileged": true, "baseline": true, "restricted": true, "managed": true}

func (c *NetguardConfiguration) validate() error {
	var errs []error
	for _, f := range []struct{ path, val string }{
		{"defaults.enforce", c.Defaults.Enforce},
		{"defaults.audit", c.Defaults.Audit},
		{"defaults.warn", c.Defaults.Warn},
	} {
		if !knownLevels[f.val] {
			errs = append(errs, fmt.Errorf("%s: unknown level %q; use privileged, baseline, restricted or managed", f.path, f.val))
		}
	}
	return errors.Join(errs...)
}
