package rules

import "testing"

func TestPolicyForNamespace(t *testing.T) {
	defaults := NamespacePolicy{
		Enforce: LevelVersion{LevelBaseline, LatestVersion()},
		Audit:   LevelVersion{LevelRestricted, LatestVersion()},
		Warn:    LevelVersion{LevelRestricted, LatestVersion()},
	}
	cases := []struct {
		name                 string
		labels               map[string]string
		enforce, audit, warn string
		errs                 int
	}{
		{"no labels take the defaults", nil, "baseline", "restricted", "restricted", 0},
		{"labels override per mode", map[string]string{LabelEnforce: "privileged", LabelWarn: "managed"}, "privileged", "restricted", "managed", 0},
		{"a version pins", map[string]string{LabelEnforce: "restricted", LabelEnforceVersion: "v1.0"}, "restricted:v1.0", "restricted", "restricted", 0},
		{"a bad level is the strictest, never privileged", map[string]string{LabelEnforce: "Privileged"}, "managed", "restricted", "restricted", 1},
		{"an empty level is the strictest", map[string]string{LabelAudit: ""}, "baseline", "managed", "restricted", 1},
		{"a bad version is latest", map[string]string{LabelEnforceVersion: "v1"}, "baseline", "restricted", "restricted", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, errs := PolicyForNamespace(defaults, tc.labels)
			if got := p.Enforce.String(); got != tc.enforce {
				t.Errorf("enforce %s, want %s", got, tc.enforce)
			}
			if got := p.Audit.String(); got != tc.audit {
				t.Errorf("audit %s, want %s", got, tc.audit)
			}
			if got := p.Warn.String(); got != tc.warn {
				t.Errorf("warn %s, want %s", got, tc.warn)
			}
			if len(errs) != tc.errs {
				t.Errorf("%d label errors, want %d: %v", len(errs), tc.errs, errs)
			}
		})
	}
}
