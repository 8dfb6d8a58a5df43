package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	configv1alpha1 "github.com/netguard/netguard/api/config/v1alpha1"
	"github.com/netguard/netguard/webhook"
)

// auditServeOptions are serve's settings for the background audit
// (docs/audit.md). They are embedded in serveOptions so that serve.go only
// wires them.
type auditServeOptions struct {
	// AuditInterval is --audit-interval; it overrides audit.interval.
	AuditInterval time.Duration
	// AuditReports and AuditReportMaxResults are --audit-reports and
	// --audit-report-max-results: the policy reports the audit writes.
	AuditReports          []string
	AuditReportMaxResults int
	// audit is what runServe hands to webhook.SetupAudit, once the file and
	// the flags are merged.
	audit webhook.AuditOptions
}

func (o *auditServeOptions) addAuditFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&o.AuditInterval, "audit-interval", time.Minute, "time between two cycles of the background audit (overrides audit.interval)")
	fs.StringSliceVar(&o.AuditReports, "audit-reports", nil, "policy reports the background audit writes, one per namespace: openreports (openreports.io/v1alpha1 Report), policyreports (wgpolicyk8s.io/v1alpha2 PolicyReport), or both, comma-separated; none by default")
	fs.IntVar(&o.AuditReportMaxResults, "audit-report-max-results", webhook.DefaultReportMaxResults, "most results one policy report lists, most severe first; the summary counts them all")
}

// backgroundAuditOptions are the background audit's options from the merged
// configuration: its own section, and the admission defaults and exemptions
// so that it judges namespaces as admission does.
func backgroundAuditOptions(c *configv1alpha1.NetguardConfiguration, wc webhook.Config) webhook.AuditOptions {
	return webhook.AuditOptions{
		Interval:           c.Audit.Interval.Duration,
		MaxObjectsPerCycle: c.Audit.MaxObjectsPerCycle,
		Defaults:           wc.Defaults,
		ExemptNamespaces:   wc.ExemptNamespaces,
		CrossNamespace:     wc.CrossNamespace,
	}
}

// reportOptions are the policy reports --audit-reports and
// --audit-report-max-results ask for.
func (o *auditServeOptions) reportOptions() (webhook.ReportOptions, error) {
	r := webhook.ReportOptions{MaxResults: o.AuditReportMaxResults}
	for _, f := range o.AuditReports {
		if f = strings.TrimSpace(f); f != "" && !slices.Contains(r.Formats, f) {
			r.Formats = append(r.Formats, f)
		}
	}
	if o.AuditReportMaxResults < 1 {
		return r, fmt.Errorf("--audit-report-max-results %d: must be at least 1", o.AuditReportMaxResults)
	}
	if err := r.Validate(); err != nil {
		return r, fmt.Errorf("--audit-reports: %w", err)
	}
	return r, nil
}
