package webhook

// The background audit can write what it finds as policy reports, the
// resources Policy Reporter, Kyverno's and other dashboards read: one report
// per audited namespace, named netguard, in the openreports.io/v1alpha1
// Report format and, for Policy Reporter's older API, as a
// wgpolicyk8s.io/v1alpha2 PolicyReport. Both have the same results: one per
// violation, naming the object, the rule ID, the level and a severity.
// Reports are unstructured objects applied server-side, so netguard needs
// no Go module of either API. docs/audit.md, "Policy reports".

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/netguard/netguard/rules"
)

const (
	// ReportFormatOpenReports writes openreports.io/v1alpha1 Reports.
	ReportFormatOpenReports = "openreports"
	// ReportFormatPolicyReports writes wgpolicyk8s.io/v1alpha2 PolicyReports.
	ReportFormatPolicyReports = "policyreports"
	// ReportName is the name of netguard's report in each namespace.
	ReportName = "netguard"
	// DefaultReportMaxResults bounds one report when
	// ReportOptions.MaxResults is 0.
	DefaultReportMaxResults = 1000
	// reportSource is every result's source.
	reportSource = "netguard"
	// reportFieldOwner is the field manager of netguard's applies.
	reportFieldOwner = "netguard-audit"
	// maxResultMessage keeps each result's message short.
	maxResultMessage = 512
)

// ReportOptions select the report formats of the background audit.
type ReportOptions struct {
	// Formats are ReportFormatOpenReports and ReportFormatPolicyReports;
	// none turns reports off.
	Formats []string
	// MaxResults bounds the results of one report, most severe first; the
	// report's summary still counts every result. 0 means
	// DefaultReportMaxResults.
	MaxResults int
}

// Validate checks the formats and the bound.
func (o ReportOptions) Validate() error {
	for _, f := range o.Formats {
		if f != ReportFormatOpenReports && f != ReportFormatPolicyReports {
			return fmt.Errorf("report format %q: must be %s or %s", f, ReportFormatOpenReports, ReportFormatPolicyReports)
		}
	}
	if o.MaxResults < 0 {
		return fmt.Errorf("report maxResults %d: must not be negative", o.MaxResults)
	}
	return nil
}

// reportKinds are the resources of each format.
var reportKinds = map[string]schema.GroupVersionKind{
	ReportFormatOpenReports:   {Group: "openreports.io", Version: "v1alpha1", Kind: "Report"},
	ReportFormatPolicyReports: {Group: "wgpolicyk8s.io", Version: "v1alpha2", Kind: "PolicyReport"},
}

// reportWriter writes and deletes the audit's reports.
type reportWriter struct {
	c          client.Client
	formats    []string
	maxResults int
	log        logr.Logger
	now        func() time.Time
	// missing are formats whose CRD is not installed: skipped until the
	// next pass, logged once.
	missing map[string]bool
	// written are the namespaces that have a report of netguard's.
	written map[string]bool
}

func newReportWriter(c client.Client, o ReportOptions, log logr.Logger) *reportWriter {
	if len(o.Formats) == 0 {
		return nil
	}
	max := o.MaxResults
	if max == 0 {
		max = DefaultReportMaxResults
	}
	return &reportWriter{c: c, formats: o.Formats, maxResults: max, log: log, now: time.Now, missing: map[string]bool{}, written: map[string]bool{}}
}

// reportResult is one row of a report before it is rendered.
type reportResult struct {
	kind, name, uid string
	apiVersion      string
	rule, field     string
	level           string
	result          string // fail at the enforce level, warn above it
	severity        string
	message         string
}

// severityRank orders results, most severe first.
var severityRank = map[string]int{"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}

// reportSeverity rates a rule: a check by the lowest level that runs it
// (baseline: high, restricted: medium, managed: low), an audit rule by what
// it leaves open.
func reportSeverity(rule string, checkLevels map[string]rules.Level) string {
	if l, ok := checkLevels[rule]; ok {
		switch l {
		case rules.LevelBaseline:
			return "high"
		case rules.LevelRestricted:
			return "medium"
		default:
			return "low"
		}
	}
	switch rule {
	case rules.AuditMissingDefaultDeny, rules.AuditWeakDefaultDeny, rules.AuditOrphanedGeneratedPolicy:
		return "high"
	case rules.AuditInvalidNamespaceLabel, rules.AuditInvalidAnnotations, rules.AuditUnknownProfile, rules.AuditDuplicateComponent:
		return "medium"
	default:
		return "low"
	}
}

func reportResults(res rules.NamespaceAudit) []reportResult {
	levels := map[string]rules.Level{}
	for _, c := range rules.Checks() {
		levels[c.ID] = c.Level
	}
	var out []reportResult
	add := func(r rules.AuditResult, level rules.LevelVersion, result string, vs []rules.Violation) {
		apiVersion := rules.Workload{Kind: r.Kind}.APIVersion()
		switch r.Kind {
		case "NetworkPolicy":
			apiVersion = "networking.k8s.io/v1"
		case "Namespace":
			apiVersion = "v1"
		}
		for _, v := range vs {
			msg := v.Message
			if v.Field != "" {
				msg = v.Field + ": " + msg
			}
			out = append(out, reportResult{
				kind: r.Kind, name: r.Name, uid: string(r.UID), apiVersion: apiVersion,
				rule: v.Rule, field: v.Field, level: level.String(), result: result,
				severity: reportSeverity(v.Rule, levels), message: truncate(msg, maxResultMessage),
			})
		}
	}
	for _, r := range res.Results {
		add(r, res.Enforce, "fail", r.Violations)
		for _, s := range r.Stricter {
			add(r, s.Level, "warn", s.Violations)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.result != b.result {
			return a.result == "fail"
		}
		if severityRank[a.severity] != severityRank[b.severity] {
			return severityRank[a.severity] < severityRank[b.severity]
		}
		if a.kind != b.kind {
			return a.kind < b.kind
		}
		if a.name != b.name {
			return a.name < b.name
		}
		return a.rule+a.field < b.rule+b.field
	})
	return out
}

// report renders the report of one format. The summary counts every
// result; at most maxResults are listed, and the
// netguard.io/report-truncated annotation says how many were left out.
func (w *reportWriter) report(format, namespace string, res rules.NamespaceAudit, results []reportResult) *unstructured.Unstructured {
	gvk := reportKinds[format]
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(namespace)
	u.SetName(ReportName)
	u.SetLabels(map[string]string{"app.kubernetes.io/managed-by": "netguard"})
	fail, warn := 0, 0
	for _, r := range results {
		if r.result == "fail" {
			fail++
		} else {
			warn++
		}
	}
	passed := 0
	for _, r := range res.Results {
		if r.Allowed() && r.Kind != "Namespace" {
			passed++
		}
	}
	listed := results
	if len(listed) > w.maxResults {
		listed = listed[:w.maxResults]
		u.SetAnnotations(map[string]string{"netguard.io/report-truncated": fmt.Sprintf("%d of %d results listed, most severe first", len(listed), len(results))})
	}
	now := w.now()
	rows := make([]any, 0, len(listed))
	for _, r := range listed {
		subject := map[string]any{"apiVersion": r.apiVersion, "kind": r.kind, "name": r.name}
		if r.kind != "Namespace" {
			subject["namespace"] = namespace
		}
		if r.uid != "" {
			subject["uid"] = r.uid
		}
		row := map[string]any{
			"source":    reportSource,
			"policy":    "netguard-" + strings.SplitN(r.level, ":", 2)[0],
			"rule":      r.rule,
			"category":  r.kind,
			"result":    r.result,
			"severity":  r.severity,
			"scored":    r.result == "fail",
			"message":   r.message,
			"timestamp": map[string]any{"seconds": now.Unix(), "nanos": int64(0)},
			"properties": map[string]any{
				"level": r.level,
				"field": r.field,
			},
		}
		// openreports.io names the objects subjects; wgpolicyk8s.io
		// resources.
		if format == ReportFormatOpenReports {
			row["subjects"] = []any{subject}
		} else {
			row["resources"] = []any{subject}
		}
		rows = append(rows, row)
	}
	u.Object["results"] = rows
	u.Object["summary"] = map[string]any{"pass": int64(passed), "fail": int64(fail), "warn": int64(warn), "error": int64(0), "skip": int64(0)}
	return u
}

// write applies the namespace's reports, replacing every result of the last
// pass, so that what is fixed disappears from them.
func (w *reportWriter) write(ctx context.Context, res rules.NamespaceAudit) error {
	results := reportResults(res)
	for _, f := range w.formats {
		if w.missing[f] {
			continue
		}
		u := w.report(f, res.Namespace, res, results)
		err := w.c.Patch(ctx, u, client.Apply, client.FieldOwner(reportFieldOwner), client.ForceOwnership)
		if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) && isMissingResource(err) {
			w.missing[f] = true
			w.log.Info("the report CRD is not installed; not writing these reports until the next pass", "kind", reportKinds[f].GroupKind().String())
			continue
		}
		if err != nil {
			return fmt.Errorf("apply %s %s/%s: %w", reportKinds[f].Kind, res.Namespace, ReportName, err)
		}
	}
	w.written[res.Namespace] = true
	return nil
}

// isMissingResource tells a 404 for the resource type from one for an object.
func isMissingResource(err error) bool {
	var s apierrors.APIStatus
	if !errors.As(err, &s) {
		return false
	}
	d := s.Status().Details
	return d == nil || d.Name == ""
}

// finishPass deletes the reports of namespaces the pass did not audit
// (exempt or deleted since) and tries missing CRDs again.
func (w *reportWriter) finishPass(ctx context.Context, seen map[string]bool) {
	for ns := range w.written {
		if seen[ns] {
			continue
		}
		failed := false
		for _, f := range w.formats {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(reportKinds[f])
			u.SetNamespace(ns)
			u.SetName(ReportName)
			if err := w.c.Delete(ctx, u); err != nil && !apierrors.IsNotFound(err) && !meta.IsNoMatchError(err) {
				w.log.Error(err, "could not delete a stale report; retrying at the next pass", "namespace", ns, "kind", reportKinds[f].Kind)
				failed = true
			}
		}
		if !failed {
			delete(w.written, ns)
		}
	}
	w.missing = map[string]bool{}
}
