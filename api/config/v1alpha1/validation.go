package v1alpha1

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The level names and the version syntax are the engine's (package rules);
// they are repeated here so that the file format imports no engine code.
// cmd/netguard's TestConfigLevelsMatchRules fails when the two disagree.
const levelManaged = "managed"

var levels = []string{"privileged", "baseline", "restricted", levelManaged}

var versionPattern = regexp.MustCompile(`^v([1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})$`)

// Levels are the level names a file may use, from privileged to managed.
func Levels() []string { return slices.Clone(levels) }

// ParseLevelVersion splits "baseline" or "baseline:v1.0" into its level and
// its version ("latest" when none is given) and checks both. The error
// names the whole value and says what to write instead; flags of the same
// meaning use it too, so that a bad value reads the same from both.
func ParseLevelVersion(s string) (level, version string, err error) {
	level, version = s, "latest"
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		level, version = s[:i], s[i+1:]
	}
	if !slices.Contains(levels, level) {
		return "", "", fmt.Errorf("unknown level %q; use privileged, baseline, restricted or managed, optionally with :v<major>.<minor>", s)
	}
	if version != "latest" && !versionPattern.MatchString(version) {
		return "", "", fmt.Errorf("unknown version %q: must be \"latest\" or \"v<major>.<minor>\" such as \"v1.0\"", version)
	}
	return level, version, nil
}

// Validate checks the values of c, whether they come from a file, from
// Default or from flags merged over them. Every error names its field.
func Validate(c *NetguardConfiguration) field.ErrorList {
	var errs field.ErrorList
	defaults := field.NewPath("defaults")
	for _, f := range []struct {
		name, val string
	}{{"enforce", c.Defaults.Enforce}, {"audit", c.Defaults.Audit}, {"warn", c.Defaults.Warn}} {
		if _, _, err := ParseLevelVersion(f.val); err != nil {
			errs = append(errs, field.Invalid(defaults.Child(f.name), f.val, err.Error()))
		}
	}
	audit := field.NewPath("audit")
	if d := c.Audit.Interval.Duration; d <= 0 {
		errs = append(errs, field.Invalid(audit.Child("interval"), d.String(), "must be greater than 0"))
	}
	if n := c.Audit.MaxObjectsPerCycle; n < 0 {
		errs = append(errs, field.Invalid(audit.Child("maxObjectsPerCycle"), n, fmt.Sprintf("must not be negative (0 means %d)", DefaultAuditMaxObjectsPerCycle)))
	}
	if l := c.CrossNamespace.MaxLevel; l != "" && !slices.Contains(levels, l) {
		errs = append(errs, field.NotSupported(field.NewPath("crossNamespace", "maxLevel"), l, levels))
	}
	if n := c.Admission.MaxConcurrentEvaluations; n < 0 {
		errs = append(errs, field.Invalid(field.NewPath("admission", "maxConcurrentEvaluations"), n, fmt.Sprintf("must not be negative (0 means %d)", DefaultMaxConcurrentEvaluations)))
	}
	return errs
}
