package rules

import (
	"fmt"
	"regexp"
	"strconv"
)

// Version is a version of the check set, as in Pod Security Admission: a
// namespace pinned to "v1.0" keeps the behaviour the checks had in v1.0 when
// netguard is upgraded, and "latest" follows the newest behaviour. The zero
// Version means latest, so an unset version never evaluates fewer checks.
type Version struct {
	major, minor int
	set          bool // false for latest
}

// LatestVersion is the newest behaviour of every check.
func LatestVersion() Version { return Version{} }

// MajorMinorVersion returns the version "v<major>.<minor>".
func MajorMinorVersion(major, minor int) Version {
	return Version{major: major, minor: minor, set: true}
}

var versionPattern = regexp.MustCompile(`^v([1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})$`)

// ParseVersion parses "latest" or "v<major>.<minor>" such as "v1.0". Versions
// before v1.0 do not exist.
func ParseVersion(s string) (Version, error) {
	if s == "latest" {
		return LatestVersion(), nil
	}
	m := versionPattern.FindStringSubmatch(s)
	if m == nil {
		return LatestVersion(), fmt.Errorf("unknown version %q: must be \"latest\" or \"v<major>.<minor>\" such as \"v1.0\"", s)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return MajorMinorVersion(major, minor), nil
}

// Latest reports whether v is "latest".
func (v Version) Latest() bool { return !v.set }

// Major and Minor are the numbers of a version other than latest.
func (v Version) Major() int { return v.major }
func (v Version) Minor() int { return v.minor }

// String is "latest" or "v1.0".
func (v Version) String() string {
	if v.Latest() {
		return "latest"
	}
	return fmt.Sprintf("v%d.%d", v.major, v.minor)
}

// Older reports whether v is older than other. Latest is newer than every
// numbered version.
func (v Version) Older(other Version) bool {
	if v.Latest() {
		return false
	}
	if other.Latest() {
		return true
	}
	if v.major != other.major {
		return v.major < other.major
	}
	return v.minor < other.minor
}
