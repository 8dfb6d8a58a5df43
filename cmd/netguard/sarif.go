package main

// `netguard check -o sarif` writes a SARIF 2.1.0 log, the format code
// scanning services (GitHub code scanning, GitLab, Azure DevOps, SonarQube)
// read to annotate a pull request at the offending line. The document is
// built with github.com/owenrumney/go-sarif, whose schema validation the
// tests run. See docs/cli-check.md, "SARIF output".

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"

	"github.com/netguard/netguard/rules"
)

// docsURL is where a rule's help links to; the anchors are the headings of
// docs/rules.md and docs/audit.md (a test checks that each one exists).
const docsURL = "https://github.com/netguard/netguard/blob/main/docs/"

// sarifRule is what a code scanning service shows about a rule: the same
// one-line summary as the table in docs/rules.md, and the section to read.
type sarifRule struct {
	summary string // the "Catches" column of docs/rules.md
	doc     string // "rules.md#ingressfromanywhere"
}

// sarifRules covers every check of rules.Checks() and the workload rules of
// check; a test keeps it equal to the tables in docs/rules.md and docs/audit.md.
var sarifRules = map[string]sarifRule{
	"ingressFromAnywhere":        {"ingress rule without sources", "rules.md#ingressfromanywhere"},
	"egressToAnywhere":           {"egress rule without destinations", "rules.md#egresstoanywhere"},
	"ingressFromIPBlock":         {"ingress from IP addresses", "rules.md#ingressfromipblock"},
	"egressToIPBlock":            {"egress to IP addresses", "rules.md#egresstoipblock"},
	"ingressFromOtherNamespaces": {"ingress from pods of other (or all) namespaces", "rules.md#ingressfromothernamespaces"},
	"egressToOtherNamespaces":    {"egress to pods of other (or all) namespaces", "rules.md#egresstoothernamespaces"},
	"malformedPolicy":            {"shapes the API server rejects", "rules.md#malformedpolicy"},
	"policySize":                 {"policies over the limits netguard judges", "rules.md#policysize"},
	"ingressAllPorts":            {"ingress rule that opens every port of a protocol", "rules.md#ingressallports--egressallports"},
	"egressAllPorts":             {"egress rule that reaches every port of a protocol", "rules.md#ingressallports--egressallports"},
	"ingressWidePortRange":       {"more than 1024 ingress ports per protocol for a peer", "rules.md#ingresswideportrange--egresswideportrange"},
	"egressWidePortRange":        {"more than 1024 egress ports per protocol for a peer", "rules.md#ingresswideportrange--egresswideportrange"},
	"ingressAllPodsFromAllPods":  {"every pod accepts every pod of the namespace", "rules.md#ingressallpodsfromallpods--egressallpodstoallpods"},
	"egressAllPodsToAllPods":     {"every pod reaches every pod of the namespace", "rules.md#ingressallpodsfromallpods--egressallpodstoallpods"},
	"rawNetworkPolicy":           {"any hand-written NetworkPolicy", "rules.md#rawnetworkpolicy"},

	rules.AuditInvalidAnnotations: {"a netguard.io/* annotation does not parse", "annotations.md"},
	rules.AuditUnknownProfile:     {"netguard.io/profiles names a NetworkProfile that does not exist", "audit.md#what-it-reports"},
	rules.AuditDuplicateComponent: {"another workload of the namespace already claims its component", "audit.md#what-it-reports"},
}

// sarifRuleIDs lists the rules in the order of the log: the checks in
// registry order, then the workload rules.
func sarifRuleIDs() []string {
	var ids []string
	for _, c := range rules.Checks() {
		ids = append(ids, c.ID)
	}
	return append(ids, rules.AuditInvalidAnnotations, rules.AuditUnknownProfile, rules.AuditDuplicateComponent)
}

// sarifURI turns a Source into a URI reference: a relative path stays
// relative (to the directory check ran in, which code scanning takes as the
// repository root), an absolute one becomes a file URI. stdin has none.
func sarifURI(source string) string {
	if source == "" || source == stdinSource {
		return ""
	}
	p := filepath.ToSlash(source)
	if filepath.IsAbs(source) {
		return (&url.URL{Scheme: "file", Path: p}).String()
	}
	return (&url.URL{Path: strings.TrimPrefix(p, "./")}).String()
}

// sarifReport builds the log of a check. Every violation is a result at level
// "error" (it fails the check), located at the field's line and column in
// the file; input errors are tool execution notifications, and make the
// invocation unsuccessful.
func (r checkReport) sarifReport() *sarif.Report {
	driver := sarif.NewToolComponent().
		WithName("netguard").
		WithInformationURI("https://github.com/netguard/netguard").
		WithVersion(currentVersion().Version).
		WithFullName(fmt.Sprintf("netguard check --level %s:%s", r.level, r.version))
	index := map[string]int{}
	levels := map[string]rules.Level{}
	for _, c := range rules.Checks() {
		levels[c.ID] = c.Level
	}
	for i, id := range sarifRuleIDs() {
		index[id] = i
		info := sarifRules[id]
		help := fmt.Sprintf("%s. See %s%s", upperFirst(info.summary), docsURL, info.doc)
		markdown := fmt.Sprintf("%s. See [%s](%s%s).", upperFirst(info.summary), info.doc, docsURL, info.doc)
		props := sarif.NewPropertyBag().Add("tags", []string{"kubernetes", "networkpolicy", "security"})
		if l, ok := levels[id]; ok {
			props.Add("netguardLevel", string(l))
		}
		driver.AddRule(sarif.NewReportingDescriptor().
			WithID(id).
			WithName(upperFirst(id)).
			WithShortDescription(sarif.NewMultiformatMessageString().WithText(upperFirst(info.summary))).
			WithFullDescription(sarif.NewMultiformatMessageString().WithText(help)).
			WithHelp(sarif.NewMultiformatMessageString().WithText(help).WithMarkdown(markdown)).
			WithHelpURI(docsURL + info.doc).
			WithDefaultConfiguration(sarif.NewReportingConfiguration().WithLevel("error")).
			WithProperties(props))
	}
	run := sarif.NewRunWithInformationURI("netguard", "https://github.com/netguard/netguard")
	run.Tool = sarif.NewTool().WithDriver(driver)
	run.WithColumnKind("unicodeCodePoints")

	for _, res := range r.Results {
		for i, v := range res.Violations {
			loc := sarif.NewLocation().AddLogicalLocation(sarif.NewLogicalLocation().
				WithKind("object").
				WithName(res.Name).
				WithFullyQualifiedName(fmt.Sprintf("%s/%s/%s", res.Kind, res.Namespace, res.Name)))
			if uri := sarifURI(res.file); uri != "" {
				phys := sarif.NewPhysicalLocation().WithArtifactLocation(sarif.NewArtifactLocation().WithURI(uri))
				if i < len(res.positions) && res.positions[i].Line > 0 {
					phys.WithRegion(sarif.NewRegion().WithStartLine(res.positions[i].Line).WithStartColumn(res.positions[i].Column))
				}
				loc.WithPhysicalLocation(phys)
			}
			text := fmt.Sprintf("%s %s/%s: %s", res.Kind, res.Namespace, res.Name, v.Message)
			if v.Field != "" {
				text = fmt.Sprintf("%s %s/%s: %s: %s", res.Kind, res.Namespace, res.Name, v.Field, v.Message)
			}
			result := sarif.NewResult().
				WithRuleID(v.Rule).
				WithLevel("error").
				WithKind("fail").
				WithMessage(sarif.NewMessage().WithText(text)).
				AddLocation(loc).
				// Stable across runs and line moves: the object and the field.
				WithPartialFingerprints(map[string]string{
					"netguardObject/v1": fmt.Sprintf("%s/%s/%s/%s/%s", res.Kind, res.Namespace, res.Name, v.Rule, v.Field),
				})
			if i, ok := index[v.Rule]; ok {
				result.WithRuleIndex(i)
			}
			run.AddResult(result)
		}
	}
	inv := sarif.NewInvocation().WithExecutionSuccessful(len(r.Errors) == 0)
	for _, e := range r.Errors {
		n := sarif.NewNotification().WithLevel("error").WithMessage(sarif.NewMessage().WithText(e.String()))
		if uri := sarifURI(e.file); uri != "" {
			n.AddLocation(sarif.NewLocation().WithPhysicalLocation(
				sarif.NewPhysicalLocation().WithArtifactLocation(sarif.NewArtifactLocation().WithURI(uri))))
		}
		inv.AddToolExecutionNotification(n)
	}
	run.AddInvocation(inv)
	return sarif.NewReport().AddRun(run)
}

func (r checkReport) writeSARIF(w io.Writer) error {
	b, err := json.Marshal(r.sarifReport())
	if err != nil {
		return err
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return err
	}
	return writeJSON(w, pruneSARIF(doc))
}

// sarifUnset are the properties go-sarif writes as -1 when not set, which the
// schema gives as their defaults.
var sarifUnset = map[string]bool{"index": true, "parentIndex": true, "rank": true, "byteOffset": true, "charOffset": true, "id": true}

// pruneSARIF drops what go-sarif writes for every optional property left
// unset (empty arrays and objects, -1 indices): the schema's defaults, which
// only make the log harder to read.
func pruneSARIF(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			c = pruneSARIF(c)
			switch cv := c.(type) {
			case []any:
				if len(cv) == 0 {
					delete(t, k)
					continue
				}
			case map[string]any:
				if len(cv) == 0 {
					delete(t, k)
					continue
				}
			case float64:
				if cv == -1 && sarifUnset[k] {
					delete(t, k)
					continue
				}
			}
			t[k] = c
		}
		return t
	case []any:
		for i, c := range t {
			t[i] = pruneSARIF(c)
		}
		return t
	}
	return v
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
