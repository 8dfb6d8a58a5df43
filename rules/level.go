package rules

import (
	"fmt"
	"strings"
)

// Level is how much a namespace trusts the NetworkPolicies its users write, in
// the manner of Pod Security Admission levels. Each level includes the checks
// of the levels below it.
type Level string

const (
	// LevelPrivileged runs no checks: any NetworkPolicy is allowed.
	LevelPrivileged Level = "privileged"
	// LevelBaseline keeps raw NetworkPolicies inside the namespace: no peer
	// may be anywhere, an IP block, or pods of another namespace. Traffic
	// across the namespace boundary is reserved for platform NetworkProfiles.
	LevelBaseline Level = "baseline"
	// LevelRestricted is baseline plus narrowness inside the namespace: every
	// rule names its ports, port ranges stay small, and no policy opens every
	// pod of the namespace to every other pod.
	LevelRestricted Level = "restricted"
	// LevelManaged allows no raw NetworkPolicy at all: only platform
	// identities and the policies netguard generates may write them. Who is a
	// platform identity is decided by the admission configuration, not here.
	LevelManaged Level = "managed"
)

var allLevels = []Level{LevelPrivileged, LevelBaseline, LevelRestricted, LevelManaged}

// Levels returns the levels in rank order, from privileged to managed.
func Levels() []Level {
	return append([]Level(nil), allLevels...)
}

// Rank orders levels: privileged 0 < baseline 1 < restricted 2 < managed 3.
// An unknown level has rank -1.
func (l Level) Rank() int {
	for i, k := range allLevels {
		if k == l {
			return i
		}
	}
	return -1
}

// Valid reports whether l is one of the four levels.
func (l Level) Valid() bool { return l.Rank() >= 0 }

// ParseLevel parses a level name as written in labels, flags and
// configuration files. The error names the value and the allowed ones.
func ParseLevel(s string) (Level, error) {
	l := Level(s)
	if l.Valid() {
		return l, nil
	}
	names := make([]string, len(allLevels))
	for i, k := range allLevels {
		names[i] = string(k)
	}
	return "", fmt.Errorf("unknown level %q: must be one of %s", s, strings.Join(names, ", "))
}
