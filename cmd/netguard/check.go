package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/netguard/netguard/rules"
)

// checkOptions are the flags of `netguard check`.
type checkOptions struct {
	Filenames []string
	// Level is "level" or "level:version", as in Pod Security Admission's
	// "restricted:latest".
	Level     string
	Output    string
	Namespace string
}

// defaultCheckLevel is restricted: the strictest level a hand-written
// NetworkPolicy can pass (managed admits none). A policy that passes it is
// accepted by every namespace that accepts raw policies, which is what a CI
// gate wants to know; --level baseline matches a namespace labelled baseline.
const defaultCheckLevel = rules.LevelRestricted

func (o *checkOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&o.Filenames, "filename", "f", nil, `manifest file or directory to read, "-" for stdin (repeatable)`)
	fs.StringVar(&o.Level, "level", string(defaultCheckLevel), `level to check against: privileged, baseline, restricted or managed, optionally with a check version as in "baseline:v1.0" (default version latest)`)
	fs.StringVarP(&o.Output, "output", "o", "text", "output format: text, json or sarif (SARIF 2.1.0, for code scanning)")
	fs.StringVarP(&o.Namespace, "namespace", "n", "", `namespace of policies without metadata.namespace (default "default"); policies naming another namespace are an error, as with kubectl`)
}

// Validate checks the flags and returns the level and version to evaluate.
func (o *checkOptions) Validate() (rules.Level, rules.Version, error) {
	if len(o.Filenames) == 0 {
		return "", rules.Version{}, usageError(`no input: pass -f FILE, -f DIRECTORY or -f - for stdin`)
	}
	levelName, versionName, hasVersion := strings.Cut(o.Level, ":")
	level, err := rules.ParseLevel(levelName)
	if err != nil {
		return "", rules.Version{}, usageError("--level: %v", err)
	}
	version := rules.LatestVersion()
	if hasVersion {
		if version, err = rules.ParseVersion(versionName); err != nil {
			return "", rules.Version{}, usageError("--level: %v", err)
		}
	}
	switch o.Output {
	case "text", "json", "sarif":
	default:
		return "", rules.Version{}, usageError("--output %q is not supported; use text, json or sarif", o.Output)
	}
	if o.Namespace != "" && !validNamespace(o.Namespace) {
		return "", rules.Version{}, usageError("--namespace %q is not a valid namespace name", o.Namespace)
	}
	return level, version, nil
}

func init() {
	registerSubcommand("check", func(streams ioStreams) *cobra.Command {
		o := &checkOptions{}
		cmd := &cobra.Command{
			Use:   "check -f FILE|DIR|- ... [--level LEVEL[:VERSION]] [-o text|json|sarif]",
			Short: "Check NetworkPolicies in manifests against a guardrail level",
			Long: `check evaluates every NetworkPolicy in the given manifests against the
default-deny guardrails of a level, as the admission webhook would in a
namespace at that level. Input is YAML or JSON, with several documents per
file, v1 List kinds, directories (read recursively: *.yaml, *.yml, *.json)
and "-" for stdin. Other kinds are skipped.

The default level is restricted, the strictest one a hand-written policy can
pass. See docs/rules.md for the checks and docs/cli-check.md for the output.

Exit status: 0 when nothing is violated, 1 when a policy violates the level,
2 when the input or the flags are bad (one line per bad document on stderr;
the good documents are still checked and reported).`,
			Example: `  netguard check -f deploy/
  netguard check -f policy.yaml --level baseline -o json
  netguard check -f deploy/ -o sarif > netguard.sarif
  kustomize build overlays/prod | netguard check -f - -n shop`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				level, version, err := o.Validate()
				if err != nil {
					return err
				}
				return runCheck(cmd.Context(), streams, o, level, version)
			},
		}
		o.AddFlags(cmd.Flags())
		return cmd
	})
}

// checkReport is the output of check. Its JSON form is a stable interface,
// documented in docs/cli-check.md.
type checkReport struct {
	Results []checkResult `json:"results"`
	// Errors are the inputs that could not be checked; omitted when none.
	Errors []checkInputError `json:"errors,omitempty"`

	level     rules.Level
	version   rules.Version
	skipped   int // objects of other kinds
	workloads int // annotated workloads among Results
	// warnings are accepted annotations that are probably mistakes.
	warnings []workloadFinding
}

// checkResult is the verdict on one object. Kind, namespace and name identify
// it, so that other kinds than NetworkPolicy can report results of their own.
type checkResult struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Level is what the violations are judged at; audit sets it to the
	// namespace's enforce level. check leaves it out: its level is --level.
	Level      string            `json:"level,omitempty"`
	Allowed    bool              `json:"allowed"`
	Violations []rules.Violation `json:"violations"`
	// Stricter (audit) are the violations at each level above Level that
	// the object would fail.
	Stricter []levelViolations `json:"stricter,omitempty"`
	// Source is where the object was read: "file.yaml#2", "<stdin>#1",
	// "list.yaml#1.items[3]".
	Source string `json:"source,omitempty"`

	// file is the path Source names; positions are the places of
	// Violations in it (positions.go), in the same order. JSON adds them
	// to each violation as line and column.
	file      string
	positions []position
}

// checkInputError is a document that could not be checked.
type checkInputError struct {
	Source  string `json:"source"`
	Message string `json:"message"`

	file        string // for sorting: file, document, item
	index, item int
}

func validNamespace(ns string) bool { return len(validation.IsDNS1123Label(ns)) == 0 }

// checkManifests evaluates every NetworkPolicy among ms at level and
// version. Policies without a namespace are in namespace; policies naming
// another namespace than a non-empty explicit one are input errors, as
// kubectl treats them.
//
// Once ctx is done (SIGINT, SIGTERM) it stops, even inside an evaluation,
// and the report holds the objects checked so far; the caller must not
// present it as complete.
func checkManifests(ctx context.Context, ms []manifest, level rules.Level, version rules.Version, namespace string) checkReport {
	report := checkReport{Results: []checkResult{}, level: level, version: version}
	defaultNS := namespace
	if defaultNS == "" {
		defaultNS = metav1.NamespaceDefault // as with kubectl
	}
	fail := func(m manifest, format string, args ...any) {
		report.Errors = append(report.Errors, checkInputError{Source: m.Location(), Message: fmt.Sprintf(format, args...), file: m.Source, index: m.Index, item: m.Item})
	}
	for _, m := range ms {
		if ctx.Err() != nil {
			return report
		}
		switch obj := m.Object.(type) {
		case *networkingv1.NetworkPolicy:
			np := obj.DeepCopy()
			switch {
			case np.Name == "":
				fail(m, "NetworkPolicy has no metadata.name")
				continue
			case np.Namespace == "":
				np.Namespace = defaultNS
			case namespace != "" && np.Namespace != namespace:
				fail(m, "NetworkPolicy %q is in namespace %q, not in %q given by --namespace", np.Name, np.Namespace, namespace)
				continue
			}
			ev := rules.NewEvaluationContext(ctx, np)
			vs := ev.At(level, version)
			if ev.Err() != nil {
				return report
			}
			if vs == nil {
				vs = []rules.Violation{}
			}
			report.Results = append(report.Results, checkResult{
				Kind: "NetworkPolicy", Namespace: np.Namespace, Name: np.Name,
				Allowed: len(vs) == 0, Violations: vs, Source: m.Location(),
			})
		case *unstructured.Unstructured:
			// A NetworkPolicy of an API version the scheme does not know
			// must not be skipped as if it were some other kind.
			if gvk := obj.GroupVersionKind(); gvk.Kind == "NetworkPolicy" || gvk.Kind == "NetworkPolicyList" {
				fail(m, "%s %s is not supported; write NetworkPolicies as networking.k8s.io/v1", obj.GetAPIVersion(), gvk.Kind)
				continue
			}
			report.skipped++
		default:
			report.skipped++
		}
	}
	wres, warnings, dups := workloadResults(ms)
	for _, err := range dups {
		report.Errors = append(report.Errors, checkInputError{Message: err.Error()})
	}
	report.Results = append(report.Results, wres...)
	report.workloads = len(wres)
	report.skipped -= len(wres)
	report.warnings = warnings
	return report
}

func runCheck(ctx context.Context, streams ioStreams, o *checkOptions, level rules.Level, version rules.Version) error {
	ms, loadErrs := loadManifests(o.Filenames, streams.In)
	report := checkManifests(ctx, ms, level, version, o.Namespace)
	if err := ctx.Err(); err != nil {
		return interrupted(err)
	}
	report.locate(ms)
	var inputErrs []checkInputError
	for _, err := range loadErrs {
		var me *manifestError
		if errors.As(err, &me) {
			inputErrs = append(inputErrs, checkInputError{Source: me.Location(), Message: me.Err.Error(), file: me.Source, index: me.Index, item: me.Item})
			continue
		}
		inputErrs = append(inputErrs, checkInputError{Message: err.Error()})
	}
	// Errors of the loader and of the check, per file in document order.
	report.Errors = append(inputErrs, report.Errors...)
	sort.SliceStable(report.Errors, func(i, j int) bool {
		a, b := report.Errors[i], report.Errors[j]
		if a.file != b.file {
			return a.file < b.file
		}
		if a.index != b.index {
			return a.index < b.index
		}
		return a.item < b.item
	})

	for _, e := range report.Errors {
		fmt.Fprintf(streams.ErrOut, "netguard: %s\n", oneLine(e.String()))
	}
	for _, f := range report.warnings {
		fmt.Fprintf(streams.ErrOut, "netguard: %s\n", oneLine(f.String()))
	}
	var err error
	switch o.Output {
	case "json":
		err = report.writeJSON(streams.Out)
	case "sarif":
		err = report.writeSARIF(streams.Out)
	default:
		err = report.writeText(streams.Out)
	}
	if err != nil {
		return err
	}
	switch {
	case len(report.Errors) > 0:
		return silentExit(2)
	case !report.allowed():
		return silentExit(1)
	}
	return nil
}

func (e checkInputError) String() string {
	if e.Source == "" {
		return e.Message
	}
	return e.Source + ": " + e.Message
}

func (r checkReport) allowed() bool {
	for _, res := range r.Results {
		if !res.Allowed {
			return false
		}
	}
	return true
}

func (r checkReport) writeJSON(w io.Writer) error { return writeJSON(w, r) }

// writeJSON writes a report as indented JSON (check and audit -o json).
func writeJSON(w io.Writer, report any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // "<stdin>" stays readable
	enc.SetIndent("", "  ")
	return enc.Encode(report)
}

// writeText prints the objects that violate the level, one line per
// violation under a line naming the object, then a summary line.
func (r checkReport) writeText(w io.Writer) error {
	var b strings.Builder
	denied, deniedPolicies, violations := 0, 0, 0
	for _, res := range r.Results {
		if res.Allowed {
			continue
		}
		denied++
		if res.Kind == "NetworkPolicy" {
			deniedPolicies++
			violations += len(res.Violations)
		}
		if res.Kind == "NetworkPolicy" {
			fmt.Fprintf(&b, "%s: %s %s/%s violates %s:%s\n", res.Source, res.Kind, res.Namespace, res.Name, r.level, r.version)
		} else {
			fmt.Fprintf(&b, "%s: %s %s/%s has invalid netguard annotations\n", res.Source, res.Kind, res.Namespace, res.Name)
		}
		for i, v := range res.Violations {
			fmt.Fprintf(&b, "  %s%s\n", res.at(i), v)
		}
	}
	if denied > 0 {
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "%s checked against %s:%s: %d allowed, %d not allowed (%s)",
		plural(len(r.Results)-r.workloads, "NetworkPolicy", "NetworkPolicies"), r.level, r.version,
		len(r.Results)-r.workloads-deniedPolicies, deniedPolicies, plural(violations, "violation", "violations"))
	if r.workloads > 0 {
		fmt.Fprintf(&b, "; %s, %d with invalid netguard annotations", plural(r.workloads, "annotated workload", "annotated workloads"), denied-deniedPolicies)
	}
	if r.skipped > 0 {
		fmt.Fprintf(&b, "; %s of other kinds skipped", plural(r.skipped, "object", "objects"))
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(&b, "; %s could not be checked", plural(len(r.Errors), "input", "inputs"))
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
