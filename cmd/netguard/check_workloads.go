package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook"
)

// workloadInput is an apps/v1 workload read from the input.
type workloadInput struct {
	manifest
	rules.Workload
}

// where names the workload for messages: `shop.yaml#2: Deployment "web"`.
func (w workloadInput) where() string {
	return fmt.Sprintf("%s: %s %q", w.Location(), w.Kind, w.Name)
}

// profileSet holds the NetworkProfiles of the input.
type profileSet struct {
	byName map[string]rules.Profile
	where  map[string]string
}

// workloadSet is what generate, reach and check need to know about the
// workloads and profiles among the manifests.
type workloadSet struct {
	workloads []workloadInput // every workload (rules.WorkloadFromObject), in input order
	locals    []localInput    // every LocalNetworkConfig, in input order
	profiles  profileSet
	// duplicates are NetworkProfiles defined more than once: bad input.
	duplicates []error
}

func collectWorkloads(ms []manifest) workloadSet {
	set := workloadSet{profiles: profileSet{byName: map[string]rules.Profile{}, where: map[string]string{}}}
	// Namespaces in the input give their labels, which decide which
	// profiles their workloads may use; for any other namespace only its
	// name (kubernetes.io/metadata.name) is known.
	nsLabels := map[string]map[string]string{}
	for _, m := range ms {
		if ns, ok := m.Object.(*corev1.Namespace); ok {
			labels := map[string]string{corev1.LabelMetadataName: ns.Name}
			for k, v := range ns.Labels {
				labels[k] = v
			}
			nsLabels[ns.Name] = labels
		}
	}
	for _, m := range ms {
		if p, ok := m.Object.(*netguardv1alpha1.NetworkProfile); ok {
			if first, dup := set.profiles.where[p.Name]; dup {
				set.duplicates = append(set.duplicates, fmt.Errorf("%s: NetworkProfile %q is already defined in %s", m.Location(), p.Name, first))
				continue
			}
			set.profiles.where[p.Name] = m.Location()
			set.profiles.byName[p.Name] = webhook.ProfileToRules(p)
			continue
		}
		if l, ok := m.Object.(*netguardv1alpha1.LocalNetworkConfig); ok {
			ns := l.Namespace
			if ns == "" {
				ns = metav1.NamespaceDefault
			}
			lc := webhook.LocalConfigToRules(l, nsLabels[ns])
			lc.Namespace = ns
			set.locals = append(set.locals, localInput{manifest: m, LocalConfig: lc})
			continue
		}
		w, ok := rules.WorkloadFromObject(m.Object)
		if !ok {
			continue
		}
		if w.Namespace == "" {
			w.Namespace = metav1.NamespaceDefault // as with kubectl and no namespace in the context
		}
		w.NamespaceLabels = nsLabels[w.Namespace]
		set.workloads = append(set.workloads, workloadInput{manifest: m, Workload: w})
	}
	// A dependency on a component a LocalNetworkConfig declares selects its
	// podSelector, as in a cluster.
	if len(set.locals) > 0 {
		index := map[string]rules.ComponentIndex{}
		for i := range set.workloads {
			w := &set.workloads[i]
			idx, ok := index[w.Namespace]
			if !ok {
				idx = rules.CollectComponents(set.plainIn(w.Namespace), set.localsIn(w.Namespace)).Index
				index[w.Namespace] = idx
			}
			w.Components = idx
		}
	}
	// Cross-namespace consent between the input's namespaces. The files
	// carry no platform configuration: consent counts at every level, as
	// netguard's default does.
	plain := make([]rules.Workload, len(set.workloads))
	for i, w := range set.workloads {
		plain[i] = w.Workload
	}
	locals := make([]rules.LocalConfig, len(set.locals))
	for i, l := range set.locals {
		locals[i] = l.LocalConfig
	}
	consents, localConsents := rules.ResolveConsentWithLocals(plain, locals, rules.CrossNamespaceConfig{}, func(string, map[string]string) rules.Level { return rules.LevelPrivileged })
	for i := range set.workloads {
		set.workloads[i].Consent = consents[i]
	}
	for i := range set.locals {
		set.locals[i].LocalConfig, _ = set.locals[i].WithConsent(func(j int, _ rules.LocalComponent) (*rules.Consent, error) {
			return localConsents[i][j], nil
		})
	}
	return set
}

func (s workloadSet) plainIn(ns string) []rules.Workload {
	var out []rules.Workload
	for _, w := range s.workloads {
		if w.Namespace == ns {
			out = append(out, w.Workload)
		}
	}
	return out
}

func (s workloadSet) localsIn(ns string) []rules.LocalConfig {
	var out []rules.LocalConfig
	for _, l := range s.locals {
		if l.Namespace == ns {
			out = append(out, l.LocalConfig)
		}
	}
	return out
}

// allLocals are the input's LocalNetworkConfigs.
func (s workloadSet) allLocals() []rules.LocalConfig {
	out := make([]rules.LocalConfig, len(s.locals))
	for i, l := range s.locals {
		out[i] = l.LocalConfig
	}
	return out
}

// workloadFinding is an error or warning about one workload's annotations.
type workloadFinding struct {
	Where   string // file, document, kind and name
	Warning bool
	Message string
}

func (f workloadFinding) String() string {
	if f.Warning {
		return f.Where + ": warning: " + f.Message
	}
	return f.Where + ": " + f.Message
}

// generateAll runs the generator over every annotated workload and the
// input-set checks. It returns the policies (baseline first, then sorted by
// namespace and name) only when there is no error. Once ctx is done it stops
// between workloads and returns nothing.
func (s workloadSet) generateAll(ctx context.Context, opts rules.BaselineOptions) ([]*networkingv1.NetworkPolicy, []workloadFinding) {
	var (
		findings []workloadFinding
		policies []*networkingv1.NetworkPolicy
		failed   bool
	)
	namespaces := map[string]bool{}
	findings = append(findings, s.unknownKeys()...)
	for _, w := range s.workloads {
		if ctx.Err() != nil {
			return nil, nil
		}
		if !rules.IsAnnotated(w.Annotations) {
			continue
		}
		namespaces[w.Namespace] = true
		g, errs := rules.Generate(w.Workload, s.profiles.byName)
		for _, msg := range g.Warnings {
			findings = append(findings, workloadFinding{Where: w.where(), Warning: true, Message: msg})
		}
		for _, e := range errs {
			findings = append(findings, workloadFinding{Where: w.where(), Message: e.Error()})
			failed = true
		}
		policies = append(policies, g.Policies...)
	}
	// Every workload, annotated or not: a dependency on one without
	// annotations is named in its warning.
	plain := make([]rules.Workload, len(s.workloads))
	for i, w := range s.workloads {
		plain[i] = w.Workload
	}
	for _, f := range rules.CheckWorkloadSet(plain, s.allLocals()...) {
		w := s.workloads[f.Index]
		if f.Error != nil {
			findings = append(findings, workloadFinding{Where: w.where(), Message: f.Error.Error()})
			failed = true
			continue
		}
		findings = append(findings, workloadFinding{Where: w.where(), Warning: true, Message: f.Warning})
	}
	for _, lr := range s.localResults() {
		namespaces[lr.local.Namespace] = true
		for _, msg := range lr.warnings {
			findings = append(findings, workloadFinding{Where: lr.local.where(), Warning: true, Message: msg})
		}
		for _, e := range lr.errs {
			findings = append(findings, workloadFinding{Where: lr.local.where(), Message: e.Error()})
			failed = true
		}
		policies = append(policies, lr.policies...)
	}
	if failed {
		return nil, findings
	}
	for ns := range namespaces {
		policies = append(policies, rules.NamespaceBaseline(ns, opts)...)
	}
	sort.Slice(policies, func(i, j int) bool {
		if policies[i].Namespace != policies[j].Namespace {
			return policies[i].Namespace < policies[j].Namespace
		}
		return policies[i].Name < policies[j].Name
	})
	return policies, findings
}

// unknownKeys warns about netguard.io/ annotations netguard does not read,
// in the webhook's words, for every workload of the input.
func (s workloadSet) unknownKeys() []workloadFinding {
	var out []workloadFinding
	for _, w := range s.workloads {
		for _, msg := range rules.UnknownWorkloadAnnotations(w.Annotations, field.NewPath("metadata")) {
			out = append(out, workloadFinding{Where: w.where(), Warning: true, Message: msg})
		}
	}
	return out
}

// loadWorkloads reads the manifests at paths and their workloads for
// generate and reach. Every file that cannot be read and every workload
// defined twice is printed, one line each, and then any of them means exit 2.
func loadWorkloads(streams ioStreams, paths []string) ([]manifest, workloadSet, error) {
	ms, errs := loadManifests(paths, streams.In)
	set := collectWorkloads(ms)
	errs = append(errs, set.duplicates...)
	if len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintf(streams.ErrOut, "netguard: %s\n", oneLine(e.Error()))
		}
		return nil, workloadSet{}, silentExit(2)
	}
	return ms, set, nil
}

// printFindings prints generation findings, one line each, and says whether
// any of them is an error rather than a warning.
func printFindings(w io.Writer, findings []workloadFinding) (failed bool) {
	for _, f := range findings {
		fmt.Fprintf(w, "netguard: %s\n", oneLine(f.String()))
		failed = failed || !f.Warning
	}
	return failed
}

// workloadResults gives every annotated workload among ms a result, as check
// gives every NetworkPolicy one: not allowed when its annotations are wrong
// (invalidAnnotations, unknownProfile, duplicateComponent, the rule IDs the
// audit uses). Warnings come back apart: they do not fail a check. So do
// NetworkProfiles defined twice in the input, which are bad input.
func workloadResults(ms []manifest) ([]checkResult, []workloadFinding, []error) {
	set := collectWorkloads(ms)
	var annotated []workloadInput
	result := map[int]int{} // index in set.workloads -> index in results
	plain := make([]rules.Workload, len(set.workloads))
	for i, w := range set.workloads {
		plain[i] = w.Workload
		if rules.IsAnnotated(w.Annotations) {
			result[i] = len(annotated)
			annotated = append(annotated, w)
		}
	}
	results := make([]checkResult, len(annotated))
	warnings := set.unknownKeys()
	for i, w := range annotated {
		g, errs := rules.Generate(w.Workload, set.profiles.byName)
		for _, msg := range g.Warnings {
			warnings = append(warnings, workloadFinding{Where: w.where(), Warning: true, Message: msg})
		}
		results[i] = checkResult{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name, Source: w.Location(), Violations: rules.AnnotationViolations(errs)}
	}
	// Every workload, annotated or not: a dependency on one without
	// annotations is named in its warning. Findings are about annotated ones.
	for _, f := range rules.CheckWorkloadSet(plain, set.allLocals()...) {
		if f.Error == nil {
			warnings = append(warnings, workloadFinding{Where: set.workloads[f.Index].where(), Warning: true, Message: f.Warning})
			continue
		}
		r := result[f.Index]
		results[r].Violations = append(results[r].Violations, rules.Violation{Rule: rules.AuditDuplicateComponent, Field: f.Error.Field, Message: f.Error.ErrorBody()})
	}
	for _, lr := range set.localResults() {
		for _, msg := range lr.warnings {
			warnings = append(warnings, workloadFinding{Where: lr.local.where(), Warning: true, Message: msg})
		}
		r := checkResult{Kind: rules.KindLocalNetworkConfig, Namespace: lr.local.Namespace, Name: lr.local.Name, Source: lr.local.Location()}
		for _, e := range lr.errs {
			rule := rules.AuditInvalidLocalNetworkConfig
			switch {
			case e.Type == field.ErrorTypeDuplicate:
				rule = rules.AuditDuplicateComponent
			case rules.IsMissingProfile(e):
				rule = rules.AuditUnknownProfile
			case strings.Contains(e.Detail, "overlaps the podSelector"):
				rule = rules.AuditOverlappingComponent
			}
			r.Violations = append(r.Violations, rules.Violation{Rule: rule, Field: e.Field, Message: e.ErrorBody()})
		}
		results = append(results, r)
	}
	for i := range results {
		results[i].Allowed = len(results[i].Violations) == 0
	}
	return results, warnings, set.duplicates
}

// localInput is a LocalNetworkConfig read from the input.
type localInput struct {
	manifest
	rules.LocalConfig
}

func (l localInput) where() string {
	return fmt.Sprintf("%s: %s %q", l.Location(), rules.KindLocalNetworkConfig, l.Name)
}

// localResult is what the input's LocalNetworkConfig generates, or why not.
type localResult struct {
	local    localInput
	policies []*networkingv1.NetworkPolicy
	warnings []string
	errs     field.ErrorList
}

// localResults generates every LocalNetworkConfig of the input, with the
// components of its namespace (annotated workloads and LocalNetworkConfigs
// of the input) resolved as the webhook resolves them in a cluster.
func (s workloadSet) localResults() []localResult {
	if len(s.locals) == 0 {
		return nil
	}
	byNS := map[string][]rules.LocalConfig{}
	for _, l := range s.locals {
		byNS[l.Namespace] = append(byNS[l.Namespace], l.LocalConfig)
	}
	ws := map[string][]rules.Workload{}
	for _, w := range s.workloads {
		ws[w.Namespace] = append(ws[w.Namespace], w.Workload)
	}
	components := map[string]rules.NamespaceComponents{}
	out := make([]localResult, 0, len(s.locals))
	for _, l := range s.locals {
		nc, ok := components[l.Namespace]
		if !ok {
			nc = rules.CollectComponents(ws[l.Namespace], byNS[l.Namespace])
			components[l.Namespace] = nc
		}
		r := localResult{local: l}
		warnings, errs := rules.ValidateLocalConfig(l.LocalConfig)
		if len(errs) > 0 {
			r.warnings, r.errs = warnings, errs
			out = append(out, r)
			continue
		}
		r.errs = rules.LocalClaimErrors(l.LocalConfig, nc)
		g, gerrs := rules.GenerateLocal(l.LocalConfig, s.profiles.byName, nc.Index)
		r.warnings = g.Warnings
		r.errs = append(r.errs, gerrs...)
		if len(r.errs) == 0 {
			r.policies = g.Policies
		}
		out = append(out, r)
	}
	return out
}
