package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"

	"github.com/netguard/netguard/rules"
)

// lineOf is the 1-based line of the first line of text containing s.
func lineOf(t *testing.T, text, s string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%q not in the text", s)
	return 0
}

// TestCheckSARIF runs check -o sarif on a policy with violations, a workload
// with a bad annotation and a bad document, validates the log against the
// SARIF 2.1.0 schema and checks what code scanning reads from it.
func TestCheckSARIF(t *testing.T) {
	dir := t.TempDir()
	policy := `# shop's policies
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: open
  namespace: shop
spec:
  podSelector: {}
  egress:
    - to:
        - ipBlock:
            cidr: 0.0.0.0/0
      ports:
        - port: 443
`
	workload := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  annotations:
    netguard.io/depends-on: "backend:80a"
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: registry.example/web:1}]}
---
kind: NetworkPolicy
`
	writeFiles(t, dir, map[string]string{"np.yaml": policy, "web.yaml": workload})
	t.Chdir(dir) // URIs relative to the working directory, as in CI
	code, out, _ := checkRun(t, "", "-f", "np.yaml", "-f", "web.yaml", "-o", "sarif")
	if code != 2 {
		t.Errorf("exit %d, want 2 (a bad document)", code)
	}

	report, err := sarif.FromString(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := report.Validate(); err != nil {
		t.Fatalf("the log does not validate against the SARIF 2.1.0 schema: %v\n%s", err, out)
	}
	if report.Version != "2.1.0" || len(report.Runs) != 1 {
		t.Fatalf("version %q, %d runs", report.Version, len(report.Runs))
	}
	run := report.Runs[0]
	driver := run.Tool.Driver
	if driver.Name == nil || *driver.Name != "netguard" {
		t.Errorf("driver name %v", driver.Name)
	}
	// One rule per check ID, then the workload rules, each with help and a
	// link to its section of the docs.
	var ids []string
	for _, r := range driver.Rules {
		ids = append(ids, *r.ID)
		if r.HelpURI == nil || !strings.HasPrefix(*r.HelpURI, docsURL) || r.Help == nil || r.Help.Text == nil || r.ShortDescription == nil {
			t.Errorf("rule %s: help %v helpUri %v", *r.ID, r.Help, r.HelpURI)
		}
	}
	if strings.Join(ids, ",") != strings.Join(sarifRuleIDs(), ",") {
		t.Errorf("rules %v, want %v", ids, sarifRuleIDs())
	}

	type found struct {
		uri        string
		line, col  int
		ruleID     string
		ruleOfIdx  string
		fqName     string
		errorLevel bool
	}
	var got []found
	for _, r := range run.Results {
		f := found{ruleID: *r.RuleID, errorLevel: r.Level == "error"}
		if r.RuleIndex >= 0 && r.RuleIndex < len(ids) {
			f.ruleOfIdx = ids[r.RuleIndex]
		}
		if len(r.Locations) != 1 || r.Message.Text == nil {
			t.Fatalf("result %s: locations %d", f.ruleID, len(r.Locations))
		}
		loc := r.Locations[0]
		f.uri = *loc.PhysicalLocation.ArtifactLocation.URI
		f.line, f.col = *loc.PhysicalLocation.Region.StartLine, *loc.PhysicalLocation.Region.StartColumn
		f.fqName = *loc.LogicalLocations[0].FullyQualifiedName
		got = append(got, f)
	}
	want := []found{
		{"np.yaml", lineOf(t, policy, "egress:"), 3, "egressToIPBlock", "egressToIPBlock", "NetworkPolicy/shop/open", true},
		{"web.yaml", lineOf(t, workload, "netguard.io/depends-on"), 5, "invalidAnnotations", "invalidAnnotations", "Deployment/shop/web", true},
	}
	// egressToIPBlock points at the ipBlock key, under egress.
	want[0].line, want[0].col = lineOf(t, policy, "- ipBlock:"), 11
	if len(got) != len(want) {
		t.Fatalf("results %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("result %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	inv := run.Invocations
	if len(inv) != 1 || inv[0].ExecutionSuccessful == nil || *inv[0].ExecutionSuccessful ||
		len(inv[0].ToolExecutionNotifications) != 1 || !strings.Contains(*inv[0].ToolExecutionNotifications[0].Message.Text, "web.yaml#2") {
		t.Errorf("invocation %s: want one notification for web.yaml#2", mustJSON(t, inv))
	}
	// Nothing of go-sarif's unset defaults is left in the log.
	if strings.Contains(out, "[]") || strings.Contains(out, "-1") {
		t.Errorf("log holds empty arrays or -1 defaults:\n%s", out)
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSARIFRulesMatchTheDocs keeps sarifRules equal to the checks table of
// docs/rules.md and the workload rules of docs/audit.md, and every help link
// pointing at a heading that exists.
func TestSARIFRulesMatchTheDocs(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "docs", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	docs := map[string]string{"rules.md": read("rules.md"), "audit.md": read("audit.md"), "annotations.md": read("annotations.md")}
	row := regexp.MustCompile("(?m)^\\| \\[`(\\w+)`\\]\\(#([\\w-]+)\\) \\| \\w+ \\| (.+) \\|$")
	table := map[string][2]string{}
	for _, m := range row.FindAllStringSubmatch(docs["rules.md"], -1) {
		table[m[1]] = [2]string{m[3], "rules.md#" + m[2]}
	}
	for _, c := range rules.Checks() {
		r, ok := sarifRules[c.ID]
		if !ok {
			t.Errorf("check %s has no SARIF rule", c.ID)
			continue
		}
		if d := table[c.ID]; d != [2]string{r.summary, r.doc} {
			t.Errorf("check %s: SARIF %q %q, docs/rules.md %q %q", c.ID, r.summary, r.doc, d[0], d[1])
		}
	}
	if len(sarifRules) != len(sarifRuleIDs()) {
		t.Errorf("sarifRules has %d entries, sarifRuleIDs %d", len(sarifRules), len(sarifRuleIDs()))
	}
	heading := regexp.MustCompile(`(?m)^#+ (.+)$`)
	for id, r := range sarifRules {
		file, anchor, _ := strings.Cut(r.doc, "#")
		text, ok := docs[file]
		if !ok {
			t.Errorf("%s: %s is not a doc", id, file)
			continue
		}
		if anchor == "" {
			continue
		}
		exists := false
		for _, h := range heading.FindAllStringSubmatch(text, -1) {
			if githubAnchor(h[1]) == anchor {
				exists = true
			}
		}
		if !exists {
			t.Errorf("%s: %s has no heading #%s", id, file, anchor)
		}
	}
	for _, id := range []string{rules.AuditInvalidAnnotations, rules.AuditUnknownProfile, rules.AuditDuplicateComponent} {
		if !strings.Contains(docs["audit.md"], "| `"+id+"` | workload | ") {
			t.Errorf("docs/audit.md does not list %s", id)
		}
	}
}

// githubAnchor is the id GitHub gives a Markdown heading.
func githubAnchor(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestFieldPositions maps field paths to lines and columns in YAML, JSON
// streams, Lists and stdin.
func TestFieldPositions(t *testing.T) {
	yamlDocs := "# leading comment\n---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n" +
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: b\n  annotations:\n    netguard.io/x.y: \"1\"\nspec:\n  podSelector: {}\n  ingress:\n  - from:\n    - podSelector: {}\n    - namespaceSelector: {}\n"
	jsonStream := `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a"}}  {"kind":"NetworkPolicy","apiVersion":"networking.k8s.io/v1",
"metadata":{"name":"b"},"spec":{"podSelector":{},"ingress":[{"from":[{"podSelector":{}}]}]}}`
	list := "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- apiVersion: networking.k8s.io/v1\n  kind: NetworkPolicy\n  metadata: {name: b}\n  spec:\n    podSelector: {}\n    ingress: [{from: [{podSelector: {}}]}]\n"
	cases := []struct {
		name, data, field string
		line, col         int
	}{
		{"yaml field", yamlDocs, "spec.ingress[0].from[1].namespaceSelector", 20, 7},
		{"yaml list item", yamlDocs, "spec.ingress[0]", 18, 5},
		{"yaml annotation key with dots", yamlDocs, "metadata.annotations[netguard.io/x.y]", 14, 5},
		{"yaml whole object", yamlDocs, "", 12, 3},
		{"yaml field left out", yamlDocs, "spec.policyTypes", 15, 1},
		{"json stream", jsonStream, "spec.ingress[0].from[0]", 2, 70},
		{"json whole object", jsonStream, "", 2, 13},
		{"list item", list, "spec.ingress[0].from[0].podSelector", 12, 24},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ms, errs := decodeManifests("in.yaml", []byte(c.data))
			if len(errs) > 0 || len(ms) != 2 {
				t.Fatalf("%d manifests, errors %v", len(ms), errs)
			}
			got := ms[1].fieldPosition(c.field)
			if got != (position{Line: c.line, Column: c.col}) {
				t.Errorf("%s: %+v, want line %d column %d", c.field, got, c.line, c.col)
			}
		})
	}
}
