package rules

// Namespace labels choose a level per mode, as Pod Security Admission's
// pod-security.kubernetes.io/<mode> labels do. A <mode>-version label pins the
// checks' behaviour to a version; without it, "latest" applies.
const (
	LabelEnforce        = "netguard.io/enforce"
	LabelEnforceVersion = "netguard.io/enforce-version"
	LabelAudit          = "netguard.io/audit"
	LabelAuditVersion   = "netguard.io/audit-version"
	LabelWarn           = "netguard.io/warn"
	LabelWarnVersion    = "netguard.io/warn-version"
)

// LevelVersion is a level evaluated at a version of the checks.
type LevelVersion struct {
	Level   Level
	Version Version
}

// String is "baseline" for the latest version, "baseline:v1.0" when pinned.
func (lv LevelVersion) String() string {
	if lv.Version.Latest() {
		return string(lv.Level)
	}
	return string(lv.Level) + ":" + lv.Version.String()
}

// NamespacePolicy is what applies to one namespace in each mode.
type NamespacePolicy struct {
	Enforce, Audit, Warn LevelVersion
}

// LabelError is a namespace label whose value is not a level or a version.
type LabelError struct {
	Mode, Label, Value string
	Err                error
}

// PolicyForNamespace resolves a namespace's labels against the cluster
// defaults. A bad level is treated as managed, the strictest level, so a typo
// can never open a namespace; a bad version is treated as latest. Every bad
// label is returned so the caller can report it.
func PolicyForNamespace(defaults NamespacePolicy, labels map[string]string) (NamespacePolicy, []LabelError) {
	p := defaults
	var errs []LabelError
	resolve := func(mode, levelLabel, versionLabel string, lv *LevelVersion) {
		if v, ok := labels[levelLabel]; ok {
			l, err := ParseLevel(v)
			if err != nil {
				errs = append(errs, LabelError{mode, levelLabel, v, err})
				l = LevelManaged
			}
			lv.Level = l
			lv.Version = LatestVersion()
		}
		if v, ok := labels[versionLabel]; ok {
			ver, err := ParseVersion(v)
			if err != nil {
				errs = append(errs, LabelError{mode, versionLabel, v, err})
				ver = LatestVersion()
			}
			lv.Version = ver
		}
	}
	resolve("enforce", LabelEnforce, LabelEnforceVersion, &p.Enforce)
	resolve("audit", LabelAudit, LabelAuditVersion, &p.Audit)
	resolve("warn", LabelWarn, LabelWarnVersion, &p.Warn)
	return p, errs
}
