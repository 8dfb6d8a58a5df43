package webhook

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/flowcontrol"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	configv1alpha1 "github.com/netguard/netguard/api/config/v1alpha1"
	"github.com/netguard/netguard/rules"
)

// The background audit judges what is already in the cluster, as `netguard
// audit` does, on the leader only, from the manager's cache. It exports
// netguard_audit_violations and warns with Events on offending objects
// (docs/audit.md).

const (
	// AuditEventReason is the reason of the Events the audit emits.
	AuditEventReason = "NetguardViolation"
	// auditEventAction is the action of those Events (events.k8s.io/v1).
	auditEventAction = "Audit"
	// maxEventNote is the events.k8s.io/v1 limit on an Event's note.
	maxEventNote = 1024
)

// auditViolations is a gauge by namespace: unlike the admission metrics it
// describes the state of each namespace, so the namespace must be a label.
// Its cardinality is bounded by namespaces x 4 levels x the rules.
var auditViolations = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "netguard_audit_violations",
	Help: "Objects (NetworkPolicies, workloads, the namespace itself) that the background audit found to violate rule at level, by namespace. Level is the namespace's enforce level or a stricter one.",
}, []string{"namespace", "level", "rule"})

// auditEnforceLevel names each audited namespace's enforce level, so that
// queries can keep only the netguard_audit_violations series at it:
//
//	netguard_audit_violations * on (namespace, level) group_left netguard_audit_enforce_level
var auditEnforceLevel = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "netguard_audit_enforce_level",
	Help: "1 for the enforce level of each namespace the background audit evaluates; join netguard_audit_violations on (namespace, level) to keep what violates it.",
}, []string{"namespace", "level"})

func init() {
	metrics.Registry.MustRegister(auditViolations, auditEnforceLevel)
}

// AuditOptions configure the background audit.
type AuditOptions struct {
	// Interval is the time between two cycles; it must be positive.
	Interval time.Duration
	// MaxObjectsPerCycle bounds the NetworkPolicies and workloads one cycle
	// evaluates. A cycle stops after the namespace that reaches the bound and
	// the next one continues with the next namespace; a namespace is always
	// evaluated whole. 0 means
	// configv1alpha1.DefaultAuditMaxObjectsPerCycle.
	MaxObjectsPerCycle int
	// Defaults and ExemptNamespaces are the admission configuration's.
	// Namespaces labelled netguard.io/ignore are exempt too.
	Defaults         rules.NamespacePolicy
	ExemptNamespaces []string
	// EventInterval is the least time between two Events on one object;
	// 0 means one hour.
	EventInterval time.Duration
	// EventBurst and EventQPS shape the token bucket all Events share;
	// 0 means a burst of 10 and one Event every 6 seconds.
	EventBurst int
	EventQPS   float32
	// Reports select the policy reports the audit writes (reports.go).
	Reports ReportOptions
	// CrossNamespace is the admission configuration's grant for
	// cross-namespace consent.
	CrossNamespace rules.CrossNamespaceConfig
}

func (o *AuditOptions) defaults() error {
	if o.Interval <= 0 {
		return fmt.Errorf("audit interval %s: must be greater than 0", o.Interval)
	}
	if o.MaxObjectsPerCycle < 0 {
		return fmt.Errorf("audit maxObjectsPerCycle %d: must not be negative", o.MaxObjectsPerCycle)
	}
	if o.MaxObjectsPerCycle == 0 {
		o.MaxObjectsPerCycle = configv1alpha1.DefaultAuditMaxObjectsPerCycle
	}
	if err := o.Reports.Validate(); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if o.EventInterval == 0 {
		o.EventInterval = time.Hour
	}
	if o.EventBurst == 0 {
		o.EventBurst = 10
	}
	if o.EventQPS == 0 {
		o.EventQPS = 1.0 / 6
	}
	return nil
}

// AuditExempt reports whether the audit leaves a namespace alone, and why:
// it is exempt in the configuration, or labelled netguard.io/ignore, which
// keeps every webhook away from it.
func AuditExempt(exemptNamespaces []string, name string, labels map[string]string) (bool, string) {
	if slices.Contains(exemptNamespaces, name) {
		return true, "exemptions.namespaces"
	}
	if _, ok := labels[LabelIgnore]; ok {
		return true, "label " + LabelIgnore
	}
	return false, ""
}

// SetupAudit adds the background audit to mgr, whose scheme must know
// NetworkProfile (NewScheme). It runs on the elected leader only, so one
// replica emits the gauge and the Events.
func SetupAudit(mgr manager.Manager, o AuditOptions) error {
	if err := o.defaults(); err != nil {
		return err
	}
	if !o.Defaults.Enforce.Level.Valid() {
		return fmt.Errorf("audit: unknown default enforce level %q", o.Defaults.Enforce.Level)
	}
	a := newAuditor(mgr.GetCache(), mgr.GetEventRecorder("netguard"), o, mgr.GetLogger().WithName("audit"))
	// The cache holds NetworkPolicies as metadata only (policyMetadata):
	// their specs come from the API server, a namespace at a time.
	a.input.Policies = mgr.GetAPIReader()
	a.waitForCache = mgr.GetCache().WaitForCacheSync
	a.reports = newReportWriter(mgr.GetClient(), o.Reports, a.log.WithName("reports"))
	return mgr.Add(a)
}

// auditor is the background audit's state between cycles.
type auditor struct {
	// reader is the manager's cache, which consent is resolved from.
	reader client.Reader
	// input reads what the audit judges, as `netguard audit` does: the
	// cache whole, NetworkPolicies with their specs page by page.
	input        AuditReader
	events       events.EventRecorder
	opts         AuditOptions
	log          logr.Logger
	now          func() time.Time
	bucket       flowcontrol.PassiveRateLimiter
	waitForCache func(context.Context) bool

	// cursor is the last namespace audited in the current pass, "" at its
	// start; seen holds the namespaces audited in it.
	cursor string
	seen   map[string]bool
	// series holds the gauge's label pairs (level, rule) set per namespace,
	// so that what is fixed disappears without a gap for what is not.
	series map[string]map[[2]string]bool
	// enforce is the enforce level last reported per namespace.
	enforce map[string]rules.Level
	// lastEvent is when an object last got an Event, by object key.
	lastEvent map[string]time.Time
	// noProfiles is set while the NetworkProfile API is missing, so that
	// it is logged once, not every cycle.
	noProfiles bool
	// reports writes policy reports; nil when they are off.
	reports *reportWriter
}

func newAuditor(r client.Reader, rec events.EventRecorder, o AuditOptions, log logr.Logger) *auditor {
	return &auditor{
		reader: r, input: AuditReader{Metadata: r, Policies: r, PolicyPageSize: auditPageSize}, events: rec, opts: o, log: log, now: time.Now,
		bucket:    flowcontrol.NewTokenBucketPassiveRateLimiter(o.EventQPS, o.EventBurst),
		seen:      map[string]bool{},
		series:    map[string]map[[2]string]bool{},
		enforce:   map[string]rules.Level{},
		lastEvent: map[string]time.Time{},
	}
}

// NeedLeaderElection makes the audit run on the leader only.
func (a *auditor) NeedLeaderElection() bool { return true }

// Start runs a cycle every Interval until ctx ends. A failed cycle is logged
// and retried at the next one, from where it stopped.
func (a *auditor) Start(ctx context.Context) error {
	if a.waitForCache != nil && !a.waitForCache(ctx) {
		return nil // stopping
	}
	a.log.Info("background audit started", "interval", a.opts.Interval.String(), "maxObjectsPerCycle", a.opts.MaxObjectsPerCycle)
	for {
		if err := a.cycle(ctx); err != nil && ctx.Err() == nil {
			a.log.Error(err, "audit cycle failed; retrying at the next one")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(a.opts.Interval):
		}
	}
}

// cycle audits namespaces in name order from the cursor on, until the
// object budget is spent or the pass is complete.
func (a *auditor) cycle(ctx context.Context) error {
	start := a.now()
	items, err := a.input.Namespaces(ctx)
	if err != nil {
		return err
	}
	profiles, err := a.profiles(ctx)
	if err != nil {
		return err
	}
	budget := a.opts.MaxObjectsPerCycle
	first := sort.Search(len(items), func(i int) bool { return items[i].Name > a.cursor })
	audited := 0
	for i := first; i < len(items); i++ {
		ns := &items[i]
		if exempt, _ := AuditExempt(a.opts.ExemptNamespaces, ns.Name, ns.Labels); !exempt {
			n, err := a.auditNamespace(ctx, ns, profiles)
			if err != nil {
				return fmt.Errorf("namespace %q: %w", ns.Name, err)
			}
			a.seen[ns.Name] = true
			budget -= n
			audited++
		}
		a.cursor = ns.Name
		if budget <= 0 && i < len(items)-1 {
			a.log.V(1).Info("audit cycle reached its bound; the pass continues at the next cycle", "namespaces", audited, "next", items[i+1].Name, "duration", a.now().Sub(start).String())
			return nil
		}
	}
	if a.reports != nil {
		a.reports.finishPass(ctx, a.seen)
	}
	a.finishPass()
	a.log.V(1).Info("audit pass complete", "namespaces", len(a.series), "duration", a.now().Sub(start).String())
	return nil
}

// finishPass clears the gauge of namespaces the pass did not audit (deleted
// or exempt since) and starts the next pass.
func (a *auditor) finishPass() {
	for ns := range a.series {
		if !a.seen[ns] {
			auditViolations.DeletePartialMatch(prometheus.Labels{"namespace": ns})
			auditEnforceLevel.DeletePartialMatch(prometheus.Labels{"namespace": ns})
			delete(a.series, ns)
			delete(a.enforce, ns)
		}
	}
	for k, t := range a.lastEvent {
		if a.now().Sub(t) >= a.opts.EventInterval {
			delete(a.lastEvent, k)
		}
	}
	a.cursor = ""
	a.seen = map[string]bool{}
}

// profiles reads every NetworkProfile. Without the CRD there are none, and
// workloads that name one are reported as unknownProfile (AuditReader).
func (a *auditor) profiles(ctx context.Context) (map[string]rules.Profile, error) {
	out, installed, err := a.input.Profiles(ctx)
	if err != nil {
		return nil, err
	}
	if !installed && !a.noProfiles {
		a.log.Info("the NetworkProfile CRD is not installed; auditing without profiles")
	}
	a.noProfiles = !installed
	return out, nil
}

// auditPageSize is the page size of the audit's NetworkPolicy lists.
const auditPageSize = 500

// auditNamespace audits one namespace, updates its gauge series and emits
// Events. It returns the number of objects it evaluated.
func (a *auditor) auditNamespace(ctx context.Context, ns *metav1.PartialObjectMetadata, profiles map[string]rules.Profile) (int, error) {
	objs, err := a.input.Objects(ctx, ns.Name)
	if err != nil {
		return 0, err
	}
	in := objs.Input(ns, a.opts.Defaults, profiles)
	a.resolveConsent(ctx, &in)
	res := rules.AuditNamespace(in)
	a.report(res)
	a.warn(res)
	if a.reports != nil {
		// A report that cannot be written is logged, not a failed cycle:
		// the gauge and the Events are already out.
		if err := a.reports.write(ctx, res); err != nil {
			a.log.Error(err, "could not write the namespace's policy report; retrying at the next pass", "namespace", ns.Name)
		}
	}
	return objs.Read, nil
}

// report sets the namespace's gauge series: per level and rule, the number
// of objects that violate it, and its enforce level. Series that are no
// longer true are deleted.
func (a *auditor) report(res rules.NamespaceAudit) {
	counts := map[[2]string]int{}
	add := func(level rules.Level, vs []rules.Violation) {
		seen := map[string]bool{}
		for _, v := range vs {
			if !seen[v.Rule] {
				seen[v.Rule] = true
				counts[[2]string{string(level), v.Rule}]++
			}
		}
	}
	for _, r := range res.Results {
		add(res.Enforce.Level, r.Violations)
		for _, s := range r.Stricter {
			add(s.Level.Level, s.Violations)
		}
	}
	now := map[[2]string]bool{}
	for k, n := range counts {
		auditViolations.WithLabelValues(res.Namespace, k[0], k[1]).Set(float64(n))
		now[k] = true
	}
	for k := range a.series[res.Namespace] {
		if !now[k] {
			auditViolations.DeleteLabelValues(res.Namespace, k[0], k[1])
		}
	}
	a.series[res.Namespace] = now
	if old, ok := a.enforce[res.Namespace]; ok && old != res.Enforce.Level {
		auditEnforceLevel.DeleteLabelValues(res.Namespace, string(old))
	}
	auditEnforceLevel.WithLabelValues(res.Namespace, string(res.Enforce.Level)).Set(1)
	a.enforce[res.Namespace] = res.Enforce.Level
}

// warn emits an Event on every NetworkPolicy and workload that violates the
// namespace's enforce level, at most one per object per EventInterval and
// within the shared token bucket. An object the bucket refuses is tried
// again at the next pass.
func (a *auditor) warn(res rules.NamespaceAudit) {
	for _, r := range res.Results {
		if r.Allowed() || r.Kind == "Namespace" {
			continue
		}
		key := r.Kind + "/" + res.Namespace + "/" + r.Name + "/" + string(r.UID)
		if last, ok := a.lastEvent[key]; ok && a.now().Sub(last) < a.opts.EventInterval {
			continue
		}
		if !a.bucket.TryAccept() {
			a.log.V(1).Info("audit Events are rate limited; skipping one", "kind", r.Kind, "namespace", res.Namespace, "name", r.Name)
			continue
		}
		a.lastEvent[key] = a.now()
		apiVersion := rules.Workload{Kind: r.Kind}.APIVersion()
		note := "netguard audit: " + joinViolations(r.Violations)
		if r.Kind == "NetworkPolicy" {
			apiVersion = networkingv1.SchemeGroupVersion.String()
			note = "violates netguard " + quote(res.Enforce) + ": " + joinViolations(r.Violations)
		}
		ref := &corev1.ObjectReference{APIVersion: apiVersion, Kind: r.Kind, Namespace: res.Namespace, Name: r.Name, UID: r.UID}
		a.events.Eventf(ref, nil, corev1.EventTypeWarning, AuditEventReason, auditEventAction, "%s", truncate(note, maxEventNote))
	}
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const more = "…"
	cut := n - len(more)
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + more
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// resolveConsent finds what other namespaces declare towards in's workloads
// with cross-namespace declarations, from the same cache admission reads.
// When it cannot, consent is reported unknown rather than one-sided.
func (a *auditor) resolveConsent(ctx context.Context, in *rules.AuditInput) {
	lookup := &injector{cache: a.reader, namespaces: readerNamespaces{a.reader}, defaults: a.opts.Defaults, crossNamespace: a.opts.CrossNamespace}
	for i := range in.Workloads {
		w := in.Workloads[i]
		if !rules.HasConsentDeclarations(w.Annotations) {
			continue
		}
		ann, _, errs := rules.ParseAnnotations(w.Name, w.Annotations, field.NewPath("metadata"))
		if len(errs) > 0 {
			continue
		}
		w.NamespaceLabels = in.Labels
		c, err := lookup.consent(ctx, w, ann)
		if err != nil {
			a.log.Info("cannot resolve cross-namespace consent; not judging it this pass", "namespace", in.Namespace, "error", err.Error())
			in.ConsentUnknown = true
			return
		}
		if in.Consent == nil {
			in.Consent = map[string]*rules.Consent{}
		}
		in.Consent[w.Ref()] = c
	}
	for i, l := range in.LocalConfigs {
		if l.NamespaceLabels == nil {
			l.NamespaceLabels = in.Labels
		}
		withConsent, err := lookup.withLocalConsent(ctx, l)
		if err != nil {
			a.log.Info("cannot resolve cross-namespace consent; not judging it this pass", "namespace", in.Namespace, "error", err.Error())
			in.ConsentUnknown = true
			return
		}
		in.LocalConfigs[i] = withConsent
	}
}

// readerNamespaces reads namespace labels from a cache; a namespace that is
// gone has no labels.
type readerNamespaces struct{ r client.Reader }

func (n readerNamespaces) NamespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	ns := namespaceMetadata()
	if err := n.r.Get(ctx, client.ObjectKey{Name: name}, ns); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return ns.Labels, nil
}
