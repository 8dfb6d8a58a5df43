package rules

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
)

// Check is one guardrail: data plus a function, as in Pod Security Admission.
// IDs are lowerCamel and permanent; a change of behaviour is a new entry in
// Versions, never a new meaning for an old ID.
type Check struct {
	// ID names the check in violations, documentation and exemptions.
	ID string
	// Level is the lowest level the check runs at; it runs at every higher
	// level too. Never LevelPrivileged.
	Level Level
	// Versions are the check's behaviours, by strictly increasing
	// MinimumVersion. A policy evaluated at version V gets the newest entry
	// with MinimumVersion <= V; latest gets the last entry.
	Versions []VersionedCheck
}

// VersionedCheck is the behaviour of a check from MinimumVersion on.
type VersionedCheck struct {
	MinimumVersion Version
	Func           CheckFunc
}

// CheckFunc returns the violations of one check in an analysed policy. The
// evaluator sets Violation.Rule; the function fills Field and Message.
type CheckFunc func(a *Analysis) []Violation

// Violation is one reason a NetworkPolicy is not allowed at a level.
type Violation struct {
	// Rule is the ID of the check.
	Rule string `json:"rule"`
	// Field is the path of the offending field, such as
	// "spec.ingress[0].from[1].ipBlock"; empty for the policy as a whole.
	Field string `json:"field"`
	// Message says what is wrong and what to do.
	Message string `json:"message"`
}

// String is "[rule] field: message", or "[rule] message" without a field.
func (v Violation) String() string {
	if v.Field == "" {
		return "[" + v.Rule + "] " + v.Message
	}
	return "[" + v.Rule + "] " + v.Field + ": " + v.Message
}

// checkConstructors lists every check. A new check gets its own
// check_<id>.go file and a line here; registry_test.go verifies both.
var checkConstructors = []func() Check{
	checkEgressAllPodsToAllPods,
	checkEgressAllPorts,
	checkEgressToAnywhere,
	checkEgressToIPBlock,
	checkEgressToOtherNamespaces,
	checkEgressWidePortRange,
	checkIngressAllPodsFromAllPods,
	checkIngressAllPorts,
	checkIngressFromAnywhere,
	checkIngressFromIPBlock,
	checkIngressFromOtherNamespaces,
	checkIngressWidePortRange,
	checkMalformedPolicy,
	checkPolicySize,
	checkRawNetworkPolicy,
}

// registry is validated when the package is initialised: a broken registry
// is a programming error and must not reach a cluster.
var registry = mustBuildRegistry(checkConstructors)

func mustBuildRegistry(ctors []func() Check) []Check {
	checks := make([]Check, 0, len(ctors))
	for _, f := range ctors {
		checks = append(checks, f())
	}
	if err := validateChecks(checks); err != nil {
		panic("rules: invalid check registry: " + err.Error())
	}
	return checks
}

// validateChecks rejects duplicate or badly formed IDs, levels other than
// baseline, restricted and managed, empty version lists, missing functions,
// versions that are "latest" or not strictly increasing, and a list not
// sorted by ID.
func validateChecks(checks []Check) error {
	seen := map[string]bool{}
	for i, c := range checks {
		if c.ID == "" || !isLowerCamel(c.ID) {
			return fmt.Errorf("check %q: ID must be lowerCamel", c.ID)
		}
		if seen[c.ID] {
			return fmt.Errorf("check %q: registered twice", c.ID)
		}
		seen[c.ID] = true
		if i > 0 && checks[i-1].ID > c.ID {
			return fmt.Errorf("check %q: registry not sorted by ID (after %q)", c.ID, checks[i-1].ID)
		}
		if c.Level.Rank() < LevelBaseline.Rank() {
			return fmt.Errorf("check %q: invalid level %q", c.ID, c.Level)
		}
		if len(c.Versions) == 0 {
			return fmt.Errorf("check %q: no versions", c.ID)
		}
		for j, v := range c.Versions {
			if v.MinimumVersion.Latest() {
				return fmt.Errorf("check %q: version %d: MinimumVersion must be a numbered version, not latest", c.ID, j)
			}
			if v.Func == nil {
				return fmt.Errorf("check %q: version %s: no function", c.ID, v.MinimumVersion)
			}
			if j > 0 && !c.Versions[j-1].MinimumVersion.Older(v.MinimumVersion) {
				return fmt.Errorf("check %q: versions must be strictly increasing (%s after %s)", c.ID, v.MinimumVersion, c.Versions[j-1].MinimumVersion)
			}
		}
	}
	return nil
}

func isLowerCamel(s string) bool {
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
		case r >= 'A' && r <= 'Z' && i > 0:
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Checks returns the registered checks sorted by ID. The slice is a copy;
// the functions are shared.
func Checks() []Check {
	out := make([]Check, len(registry))
	for i, c := range registry {
		c.Versions = slices.Clone(c.Versions)
		out[i] = c
	}
	return out
}

// forVersion returns the behaviour of c at version v, nil when v is older
// than the check.
func (c Check) forVersion(v Version) CheckFunc {
	var f CheckFunc
	for _, vc := range c.Versions {
		if v.Older(vc.MinimumVersion) {
			break
		}
		f = vc.Func
	}
	return f
}

// Evaluate runs every check whose level is at or below level, at version,
// against np and returns the violations in check ID order, then field path
// order (spec.ingress[2] before spec.ingress[10]). No violations means np is
// allowed.
//
// An unknown level is evaluated as restricted, as Pod Security Admission
// does; LevelPrivileged runs no check. A nil policy is a violation of
// malformedPolicy. A check that panics is reported as its own violation
// rather than crashing the caller or allowing the policy.
func Evaluate(level Level, version Version, np *networkingv1.NetworkPolicy) []Violation {
	return NewEvaluation(np).At(level, version)
}

// Evaluation evaluates one policy at several levels and versions, analysing
// it once: the webhook asks for enforce, warn and audit on every request, and
// the analysis costs more than the checks. It is not safe for concurrent use.
//
// A policy over one of the limits in limits.go is not analysed: at every
// level from baseline up it gets the policySize violations and nothing else.
type Evaluation struct {
	ctx      context.Context
	np       *networkingv1.NetworkPolicy
	analyzed bool
	a        *Analysis
	err      error
	done     []evaluated
}

type evaluated struct {
	level      Level
	version    Version
	violations []Violation
}

// NewEvaluation prepares np for evaluation; nothing is analysed until At
// needs it.
func NewEvaluation(np *networkingv1.NetworkPolicy) *Evaluation {
	return NewEvaluationContext(context.Background(), np)
}

// NewEvaluationContext is NewEvaluation with a context: once ctx is done,
// the evaluation stops early and Err returns ctx's error. The webhook passes
// the request's deadline, the commands their interrupt signal.
func NewEvaluationContext(ctx context.Context, np *networkingv1.NetworkPolicy) *Evaluation {
	return &Evaluation{ctx: ctx, np: np}
}

// Err is the context's error when an evaluation was stopped by it. Once Err
// is not nil, what At returned may be incomplete: callers must not read an
// empty result as allowed.
func (e *Evaluation) Err() error { return e.ctx.Err() }

// At is Evaluate(level, version, np). Asked twice for the same level and
// version it returns the same slice, which callers must not modify.
func (e *Evaluation) At(level Level, version Version) []Violation {
	if !level.Valid() {
		level = LevelRestricted
	}
	if level == LevelPrivileged {
		return nil
	}
	for _, d := range e.done {
		if d.level == level && d.version == version {
			return d.violations
		}
	}
	if e.ctx.Err() != nil {
		return nil
	}
	if !e.analyzed {
		e.a, e.err = analyzeSafely(e.ctx, e.np)
		e.analyzed = true
	}
	var out []Violation
	if e.err != nil {
		out = []Violation{{Rule: checkMalformedPolicy().ID, Message: e.err.Error()}}
	} else {
		out = evaluateAnalysis(level, version, e.a)
	}
	if e.ctx.Err() != nil {
		return out // incomplete: not kept
	}
	e.done = append(e.done, evaluated{level, version, out})
	return out
}

func evaluateAnalysis(level Level, version Version, a *Analysis) []Violation {
	var out []Violation
	for _, c := range registry {
		if a.stopped() {
			break
		}
		if c.Level.Rank() > level.Rank() {
			continue
		}
		f := c.forVersion(version)
		if f == nil {
			continue
		}
		vs := runCheck(c.ID, f, a)
		for i := range vs {
			vs[i].Rule = c.ID
		}
		slices.SortStableFunc(vs, func(x, y Violation) int {
			if c := compareFieldPaths(x.Field, y.Field); c != 0 {
				return c
			}
			return strings.Compare(x.Message, y.Message)
		})
		out = append(out, slices.CompactFunc(vs, func(x, y Violation) bool { return x == y })...)
	}
	return out
}

// analyzeSafely is Analyze, with a panic turned into an error: a bug in the
// analysis must deny the policy, not crash the webhook or allow it. A policy
// over a limit is not analysed beyond its limits and namespace.
func analyzeSafely(ctx context.Context, np *networkingv1.NetworkPolicy) (a *Analysis, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error analysing the policy: %v; the policy is not allowed until this is fixed, please report it", r)
		}
	}()
	if limits := checkLimits(np); len(limits) > 0 {
		a = newAnalysis(np)
		a.limits = limits
		a.ctx = ctx
		return a, nil
	}
	a = analyzeSpec(np)
	a.ctx = ctx
	return a, nil
}

func runCheck(id string, f CheckFunc, a *Analysis) (vs []Violation) {
	defer func() {
		if r := recover(); r != nil {
			vs = []Violation{{Field: "", Message: fmt.Sprintf("internal error in check %q: %v; the policy is not allowed until this is fixed, please report it", id, r)}}
		}
	}()
	return f(a)
}

// compareFieldPaths orders field paths with numeric indices compared as
// numbers.
func compareFieldPaths(a, b string) int {
	for a != "" && b != "" {
		da, db := leadingDigits(a), leadingDigits(b)
		if da > 0 && db > 0 {
			na, _ := strconv.ParseUint(a[:da], 10, 64)
			nb, _ := strconv.ParseUint(b[:db], 10, 64)
			if na != nb {
				if na < nb {
					return -1
				}
				return 1
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			if a[0] < b[0] {
				return -1
			}
			return 1
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func leadingDigits(s string) int {
	n := 0
	for n < len(s) && n < 18 && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}
