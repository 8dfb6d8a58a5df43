package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/pager"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook"
)

// auditOptions are the flags of `netguard audit`.
type auditOptions struct {
	Kubeconfig     string
	Namespace      string
	AllNamespaces  bool
	Output         string
	ConfigFile     string
	ChunkSize      int64
	RequestTimeout time.Duration
	// policy holds the flags shared with serve (--default-enforce,
	// --exempt-namespaces, and netguard's own namespace), so that the file
	// and the flags combine exactly as they do for serve.
	policy serveOptions
}

func (o *auditOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "path to a kubeconfig; empty uses $KUBECONFIG, ~/.kube/config or the in-cluster config")
	fs.StringVarP(&o.Namespace, "namespace", "n", "", "namespace to audit (default: the kubeconfig context's namespace)")
	fs.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "audit every namespace")
	fs.StringVarP(&o.Output, "output", "o", "text", "output format: text or json")
	fs.StringVar(&o.ConfigFile, "config", "", "the NetguardConfiguration file serve uses, for its defaults and exemptions (docs/configuration.md)")
	fs.Int64Var(&o.ChunkSize, "chunk-size", 500, "read lists in pages of this many objects")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", 30*time.Second, "time limit of each request to the API server")
	fs.StringVar(&o.policy.DefaultEnforce, "default-enforce", "", "enforce level for namespaces without a netguard.io/enforce label (overrides defaults.enforce)")
	fs.StringSliceVar(&o.policy.ExemptNamespaces, "exempt-namespaces", nil, "namespaces reported as exempt (replaces exemptions.namespaces; kube-system and --netguard-namespace always are)")
	fs.StringVar(&o.policy.Namespace, "netguard-namespace", envOr("POD_NAMESPACE", "netguard-system"), "netguard's own namespace, always exempt as in serve")
}

// Validate checks the flags that need no file and no cluster.
func (o *auditOptions) Validate() error {
	if o.AllNamespaces && o.Namespace != "" {
		return usageError("--namespace and --all-namespaces: give one or the other")
	}
	if o.Namespace != "" && !validNamespace(o.Namespace) {
		return usageError("--namespace %q is not a valid namespace name", o.Namespace)
	}
	switch o.Output {
	case "text", "json":
	default:
		return usageError("--output %q is not supported; use text or json", o.Output)
	}
	if o.ChunkSize < 1 {
		return usageError("--chunk-size %d: must be at least 1", o.ChunkSize)
	}
	if o.RequestTimeout <= 0 {
		return usageError("--request-timeout %s: must be greater than 0", o.RequestTimeout)
	}
	return nil
}

func init() {
	registerSubcommand("audit", func(streams ioStreams) *cobra.Command {
		o := &auditOptions{}
		cmd := &cobra.Command{
			Use:   "audit [-n NAMESPACE | -A] [-o text|json] [--config FILE]",
			Short: "Report what enforcement would break in a live cluster",
			Long: `audit reads the NetworkPolicies, namespaces, NetworkProfiles and annotated
Deployments, StatefulSets and DaemonSets of a live cluster and reports, per
namespace: the policies that violate its enforce level and what would fail at
each stricter level; a missing netguard-default-deny; workloads whose
generated policies or netguard.io/generated record are missing or stale;
annotation errors and unknown profiles. Namespaces exempt in the
configuration or labelled netguard.io/ignore are reported as exempt.

Run it before switching enforcement on. It only reads. See docs/audit.md.

Exit status: 0 when nothing violates its namespace's enforce level, 1 when
something does, 2 when the flags or the configuration are bad or the cluster
cannot be read.`,
			Example: `  netguard audit -A
  netguard audit -n shop -o json
  netguard audit -A --config /etc/netguard/config.yaml --default-enforce restricted`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if err := o.Validate(); err != nil {
					return err
				}
				cfg, err := loadServeConfig(o.ConfigFile)
				if err != nil {
					return usageError("%s", err.Error())
				}
				if err := o.policy.mergeFlags(cmd.Flags(), cfg); err != nil {
					return usageError("%s", err.Error())
				}
				wc, err := o.policy.webhookConfig(cfg)
				if err != nil {
					return usageError("%s", err.Error())
				}
				// client-go and controller-runtime must not write to the
				// terminal behind the report's back.
				logf.SetLogger(logr.Discard())
				c, host, namespace, err := newAuditClient(o)
				if err != nil {
					return usageError("%s", err.Error())
				}
				if o.Namespace == "" && !o.AllNamespaces {
					o.Namespace = namespace
				}
				if err := runAudit(cmd.Context(), streams, o, wc, c); err != nil {
					var ee *exitError
					if !errors.As(err, &ee) {
						return usageError("cannot read the cluster at %s: %v", host, err)
					}
					return err
				}
				return nil
			},
		}
		o.AddFlags(cmd.Flags())
		return cmd
	})
}

// newAuditClient connects to the cluster; tests replace it with a fake.
var newAuditClient = (*auditOptions).client

// client connects as kubectl would. It returns the client, the API server's
// address for messages and the kubeconfig context's namespace.
func (o *auditOptions) client() (client.Reader, string, string, error) {
	loading := clientcmd.NewDefaultClientConfigLoadingRules()
	loading.ExplicitPath = o.Kubeconfig
	kc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(loading, &clientcmd.ConfigOverrides{})
	cfg, err := kc.ClientConfig()
	if err != nil {
		if o.Kubeconfig != "" {
			return nil, "", "", fmt.Errorf("--kubeconfig %q: %w", o.Kubeconfig, err)
		}
		return nil, "", "", fmt.Errorf("no kubeconfig: set --kubeconfig or $KUBECONFIG, or run in a cluster: %w", err)
	}
	ns, _, err := kc.Namespace()
	if err != nil || ns == "" {
		ns = metav1.NamespaceDefault
	}
	cfg.Timeout = o.RequestTimeout
	cfg.WarningHandler = rest.NoWarnings{}
	c, err := client.New(cfg, client.Options{Scheme: manifestScheme})
	if err != nil {
		return nil, "", "", fmt.Errorf("cannot reach the API server at %s: %w", cfg.Host, err)
	}
	return c, cfg.Host, ns, nil
}

// auditReport is the output of audit. It is check's report, extended: every
// result carries the level it was judged at, and the namespaces are
// summarised. docs/audit.md documents the JSON form.
type auditReport struct {
	checkReport
	Namespaces []auditNamespaceSummary `json:"namespaces"`
}

// levelViolations are the violations of one object at a level above its
// namespace's enforce level (checkResult.Stricter).
type levelViolations struct {
	Level      string            `json:"level"`
	Violations []rules.Violation `json:"violations"`
}

// auditNamespaceSummary is one namespace's line of the summary table.
type auditNamespaceSummary struct {
	Name   string `json:"name"`
	Exempt bool   `json:"exempt"`
	// ExemptBy is "exemptions.namespaces" or "label netguard.io/ignore".
	ExemptBy string `json:"exemptBy,omitempty"`
	// Enforce is the namespace's enforce level, with ":VERSION" when pinned.
	Enforce string `json:"enforce,omitempty"`
	// NetworkPolicies are the raw policies judged by level; Workloads the
	// annotated workloads.
	NetworkPolicies int `json:"networkPolicies"`
	Workloads       int `json:"workloads"`
	// NotAllowed counts the results of the namespace (policies, workloads,
	// the namespace itself) that are not allowed.
	NotAllowed int                 `json:"notAllowed"`
	Levels     []auditLevelSummary `json:"levels,omitempty"`
}

// auditLevelSummary says how many raw NetworkPolicies violate a level: the
// enforce level and each stricter one.
type auditLevelSummary struct {
	Level           string `json:"level"`
	Enforced        bool   `json:"enforced"`
	NetworkPolicies int    `json:"networkPolicies"`
}

// clusterState is what audit reads, grouped by namespace.
type clusterState struct {
	namespaces []metav1.PartialObjectMetadata // sorted by name
	policies   map[string][]*networkingv1.NetworkPolicy
	workloads  map[string][]rules.Workload
	profiles   map[string]rules.Profile
	locals     map[string][]rules.LocalConfig
	// noProfiles is set when the NetworkProfile API is not installed.
	noProfiles bool
	// scoped is set for an audit of one namespace (-n).
	scoped bool
}

func runAudit(ctx context.Context, streams ioStreams, o *auditOptions, wc webhook.Config, c client.Reader) error {
	p := newProgress(streams.ErrOut)
	state, err := readCluster(ctx, c, o, p)
	p.done()
	if err != nil {
		return err
	}
	if state.noProfiles {
		fmt.Fprintln(streams.ErrOut, "netguard: the NetworkProfile API (netguard.io/v1alpha1) is not installed; workloads that name a profile are reported as unknownProfile")
	}
	report := buildAuditReport(state, wc)
	if o.Output == "json" {
		err = writeJSON(streams.Out, report)
	} else {
		err = report.writeText(streams.Out)
	}
	if err != nil {
		return err
	}
	if !report.allowed() {
		return silentExit(1)
	}
	return nil
}

var (
	namespaceGVK  = schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}
	workloadKinds = []string{"CronJob", "DaemonSet", "Deployment", "Job", "Pod", "StatefulSet"}
)

// readCluster reads the namespaces in scope and, in pages, their
// NetworkPolicies and workloads (metadata only), and every NetworkProfile.
func readCluster(ctx context.Context, c client.Reader, o *auditOptions, p *progress) (*clusterState, error) {
	s := &clusterState{policies: map[string][]*networkingv1.NetworkPolicy{}, workloads: map[string][]rules.Workload{}, profiles: map[string]rules.Profile{}, locals: map[string][]rules.LocalConfig{}}
	var scope []client.ListOption
	if o.AllNamespaces {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(namespaceGVK.GroupVersion().WithKind("NamespaceList"))
		err := eachPage(ctx, c, list, nil, o.ChunkSize, p.counter("namespaces"), func(obj runtime.Object) error {
			s.namespaces = append(s.namespaces, *obj.(*metav1.PartialObjectMetadata))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list namespaces: %w", err)
		}
		sort.Slice(s.namespaces, func(i, j int) bool { return s.namespaces[i].Name < s.namespaces[j].Name })
	} else {
		ns := metav1.PartialObjectMetadata{}
		ns.SetGroupVersionKind(namespaceGVK)
		if err := c.Get(ctx, types.NamespacedName{Name: o.Namespace}, &ns); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, usageError("namespace %q does not exist; check the name, or audit every namespace with -A", o.Namespace)
			}
			return nil, fmt.Errorf("get namespace %q: %w", o.Namespace, err)
		}
		s.namespaces = []metav1.PartialObjectMetadata{ns}
		s.scoped = true
		scope = []client.ListOption{client.InNamespace(o.Namespace)}
	}

	err := eachPage(ctx, c, &networkingv1.NetworkPolicyList{}, scope, o.ChunkSize, p.counter("NetworkPolicies"), func(obj runtime.Object) error {
		np := obj.(*networkingv1.NetworkPolicy)
		s.policies[np.Namespace] = append(s.policies[np.Namespace], np)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list NetworkPolicies: %w", err)
	}
	for _, kind := range workloadKinds {
		list := &metav1.PartialObjectMetadataList{}
		k, _ := rules.LookupWorkloadKind(kind)
		list.SetGroupVersionKind(k.GroupVersionKind().GroupVersion().WithKind(kind + "List"))
		err := eachPage(ctx, c, list, scope, o.ChunkSize, p.counter(kind+"s"), func(obj runtime.Object) error {
			m := obj.(*metav1.PartialObjectMetadata)
			if _, owned := rules.TemplateOwner(kind, m.OwnerReferences); owned {
				return nil // made from a template netguard handles
			}
			if rules.IsAnnotated(m.Annotations) {
				s.workloads[m.Namespace] = append(s.workloads[m.Namespace], rules.Workload{Kind: kind, Namespace: m.Namespace, Name: m.Name, UID: m.UID, Annotations: m.Annotations, Created: m.CreationTimestamp.Time})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list %ss: %w", kind, err)
		}
	}
	err = eachPage(ctx, c, &netguardv1alpha1.NetworkProfileList{}, nil, o.ChunkSize, p.counter("NetworkProfiles"), func(obj runtime.Object) error {
		np := obj.(*netguardv1alpha1.NetworkProfile)
		s.profiles[np.Name] = webhook.ProfileToRules(np)
		return nil
	})
	switch {
	case meta.IsNoMatchError(err) || apierrors.IsNotFound(err):
		s.noProfiles = true
	case err != nil:
		return nil, fmt.Errorf("list NetworkProfiles: %w", err)
	}
	err = eachPage(ctx, c, &netguardv1alpha1.LocalNetworkConfigList{}, nil, o.ChunkSize, p.counter("LocalNetworkConfigs"), func(obj runtime.Object) error {
		l := obj.(*netguardv1alpha1.LocalNetworkConfig)
		s.locals[l.Namespace] = append(s.locals[l.Namespace], webhook.LocalConfigToRules(l, nil))
		return nil
	})
	if err != nil && !meta.IsNoMatchError(err) && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("list LocalNetworkConfigs: %w", err)
	}
	return s, nil
}

// eachPage lists in pages of size with client-go's pager, which falls back
// to one full list when a continue token expires, and calls fn per item.
func eachPage(ctx context.Context, c client.Reader, list client.ObjectList, opts []client.ListOption, size int64, count func(), fn func(runtime.Object) error) error {
	lp := pager.New(func(ctx context.Context, lo metav1.ListOptions) (runtime.Object, error) {
		page := list.DeepCopyObject().(client.ObjectList)
		o := append(append([]client.ListOption{}, opts...), client.Limit(lo.Limit), client.Continue(lo.Continue))
		if err := c.List(ctx, page, o...); err != nil {
			return nil, err
		}
		return page, nil
	})
	lp.PageSize = size
	return lp.EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		count()
		return fn(obj)
	})
}

// buildAuditReport audits every namespace in scope.
func buildAuditReport(s *clusterState, wc webhook.Config) auditReport {
	report := auditReport{checkReport: checkReport{Results: []checkResult{}}, Namespaces: []auditNamespaceSummary{}}
	consent, consentUnknown := s.consent(wc)
	for _, ns := range s.namespaces {
		sum := auditNamespaceSummary{Name: ns.Name}
		if exempt, by := webhook.AuditExempt(wc.ExemptNamespaces, ns.Name, ns.Labels); exempt {
			sum.Exempt, sum.ExemptBy = true, by
			report.Namespaces = append(report.Namespaces, sum)
			continue
		}
		a := rules.AuditNamespace(rules.AuditInput{
			Namespace: ns.Name, Labels: ns.Labels, Defaults: wc.Defaults,
			Policies: s.policies[ns.Name], Workloads: s.workloads[ns.Name], Profiles: s.profiles,
			LocalConfigs: s.locals[ns.Name],
			Consent:      consent[ns.Name], ConsentUnknown: consentUnknown,
		})
		sum.Enforce = a.Enforce.String()
		sum.NetworkPolicies, sum.Workloads = a.RawPolicies, a.AnnotatedWorkloads
		for _, l := range rules.Levels()[a.Enforce.Level.Rank():] {
			sum.Levels = append(sum.Levels, auditLevelSummary{
				Level:           rules.LevelVersion{Level: l, Version: a.Enforce.Version}.String(),
				Enforced:        l == a.Enforce.Level,
				NetworkPolicies: a.FailingPolicies(l),
			})
		}
		for _, r := range a.Results {
			res := checkResult{Kind: r.Kind, Namespace: ns.Name, Name: r.Name, Level: sum.Enforce,
				Allowed: r.Allowed(), Violations: r.Violations}
			if res.Violations == nil {
				res.Violations = []rules.Violation{}
			}
			if r.Kind == "Namespace" {
				res.Namespace = ""
			}
			for _, st := range r.Stricter {
				res.Stricter = append(res.Stricter, levelViolations{Level: st.Level.String(), Violations: st.Violations})
			}
			if !res.Allowed {
				sum.NotAllowed++
			}
			report.Results = append(report.Results, res)
		}
		report.Namespaces = append(report.Namespaces, sum)
	}
	return report
}

// writeText prints what violates each namespace's enforce level, object by
// object, then the summary table and a closing line.
func (r auditReport) writeText(w io.Writer) error {
	var b strings.Builder
	violations := 0
	notAllowed := 0
	for _, res := range r.Results {
		if res.Allowed {
			continue
		}
		notAllowed++
		violations += len(res.Violations)
		switch {
		case res.Kind == "NetworkPolicy" && !slices.Contains(rules.AuditRules(), res.Violations[0].Rule):
			fmt.Fprintf(&b, "%s %s/%s violates %s\n", res.Kind, res.Namespace, res.Name, res.Level)
		case res.Namespace == "":
			fmt.Fprintf(&b, "%s %s (enforce %s):\n", res.Kind, res.Name, res.Level)
		default:
			fmt.Fprintf(&b, "%s %s/%s:\n", res.Kind, res.Namespace, res.Name)
		}
		for _, v := range res.Violations {
			fmt.Fprintf(&b, "  %s\n", v)
		}
	}
	if notAllowed > 0 {
		b.WriteString("\n")
	}

	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tENFORCE\tPOLICIES\tBASELINE\tRESTRICTED\tMANAGED\tWORKLOADS\tNOT ALLOWED")
	exempt, policies, workloads := 0, 0, 0
	for _, ns := range r.Namespaces {
		if ns.Exempt {
			exempt++
			fmt.Fprintf(tw, "%s\texempt\t-\t-\t-\t-\t-\t-\n", ns.Name)
			continue
		}
		policies += ns.NetworkPolicies
		workloads += ns.Workloads
		cells := map[string]string{}
		for _, l := range ns.Levels {
			cell := fmt.Sprint(l.NetworkPolicies)
			if l.Enforced {
				cell += "*"
			}
			cells[strings.SplitN(l.Level, ":", 2)[0]] = cell
		}
		cell := func(l rules.Level) string {
			if c, ok := cells[string(l)]; ok {
				return c
			}
			return "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\n", ns.Name, ns.Enforce, ns.NetworkPolicies,
			cell(rules.LevelBaseline), cell(rules.LevelRestricted), cell(rules.LevelManaged), ns.Workloads, ns.NotAllowed)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("\nPOLICIES are raw NetworkPolicies; a level column counts those that would violate it (* the enforce level, - below it).\n")
	b.WriteString("WORKLOADS are annotated workloads; NOT ALLOWED counts policies, workloads and the namespace that violate the enforce level.\n")
	fmt.Fprintf(&b, "%s audited (%d exempt), %s, %s: %s not allowed (%s)\n",
		plural(len(r.Namespaces), "namespace", "namespaces"), exempt,
		plural(policies, "NetworkPolicy", "NetworkPolicies"), plural(workloads, "annotated workload", "annotated workloads"),
		plural(notAllowed, "object", "objects"), plural(violations, "violation", "violations"))
	_, err := io.WriteString(w, b.String())
	return err
}

// progress shows on a terminal how far the reading has come; elsewhere it
// writes nothing.
type progress struct {
	w    io.Writer
	on   bool
	line bool // a progress line is showing
}

func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, on: ok && term.IsTerminal(int(f.Fd()))}
}

// counter returns a function to call per object read of what.
func (p *progress) counter(what string) func() {
	n := 0
	return func() {
		n++
		if p.on && (n == 1 || n%100 == 0) {
			fmt.Fprintf(p.w, "\rnetguard: reading %s: %d\033[K", what, n)
			p.line = true
		}
	}
}

// done clears the progress line.
func (p *progress) done() {
	if p.line {
		fmt.Fprint(p.w, "\r\033[K")
		p.line = false
	}
}

// consent resolves cross-namespace consent between the audited namespaces:
// by namespace, then workload reference (AuditInput.Consent). An audit of
// one namespace cannot see the other side: it reports consent as unknown.
func (s *clusterState) consent(wc webhook.Config) (map[string]map[string]*rules.Consent, bool) {
	if s.scoped {
		return nil, true
	}
	labels := map[string]map[string]string{}
	for _, ns := range s.namespaces {
		labels[ns.Name] = ns.Labels
	}
	var all []rules.Workload
	for _, ns := range s.namespaces {
		for _, w := range s.workloads[ns.Name] {
			w.NamespaceLabels = labels[ns.Name]
			all = append(all, w)
		}
	}
	var locals []rules.LocalConfig
	for _, ns := range s.namespaces {
		for _, l := range s.locals[ns.Name] {
			l.NamespaceLabels = labels[ns.Name]
			locals = append(locals, l)
		}
	}
	consents, localConsents := rules.ResolveConsentWithLocals(all, locals, wc.CrossNamespace, func(_ string, l map[string]string) rules.Level {
		p, _ := rules.PolicyForNamespace(wc.Defaults, l)
		return p.Enforce.Level
	})
	out := map[string]map[string]*rules.Consent{}
	for i, l := range locals {
		for j, c := range l.Components {
			if localConsents[i][j] == nil {
				continue
			}
			if out[l.Namespace] == nil {
				out[l.Namespace] = map[string]*rules.Consent{}
			}
			out[l.Namespace][rules.LocalConsentKey(l, c.Name)] = localConsents[i][j]
		}
	}
	for i, w := range all {
		if consents[i] == nil {
			continue
		}
		if out[w.Namespace] == nil {
			out[w.Namespace] = map[string]*rules.Consent{}
		}
		out[w.Namespace][w.Ref()] = consents[i]
	}
	return out, false
}
