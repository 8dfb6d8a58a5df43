package main

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/netguard/netguard/webhook"
)

// auditServeOptions are serve's settings for the background audit
// (docs/audit.md). They are embedded in serveOptions so that serve.go only
// wires them.
type auditServeOptions struct {
	// AuditInterval is --audit-interval; it overrides audit.interval.
	AuditInterval time.Duration
	// audit is what runServe hands to webhook.SetupAudit, once the file and
	// the flags are merged.
	audit webhook.AuditOptions
}

func (o *auditServeOptions) addAuditFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&o.AuditInterval, "audit-interval", time.Minute, "time between two cycles of the background audit (overrides audit.interval)")
}

// backgroundAuditOptions are the background audit's options from the merged
// configuration: its own section, and the admission defaults and exemptions
// so that it judges namespaces as admission does.
func backgroundAuditOptions(c *NetguardConfiguration, wc webhook.Config) webhook.AuditOptions {
	return webhook.AuditOptions{
		Interval:           c.Audit.Interval.Duration,
		MaxObjectsPerCycle: c.Audit.MaxObjectsPerCycle,
		Defaults:           wc.Defaults,
		ExemptNamespaces:   wc.ExemptNamespaces,
	}
}
