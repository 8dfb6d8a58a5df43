package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/netguard/netguard/hack/loadgen/load"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook"
)

// The ways a NetworkPolicy write can be admitted, each in its own namespace
// so that all are live at once and requests interleave: drift of the shared
// machine then hits all alike. floor is the honest floor, the fastest
// webhook that allows everything (hack/loadgen/floor -minimal): what any
// admission webhook costs the API server, before the webhook does any work.
const (
	modeNone     = "none"
	modeVAP      = "vap"
	modeFloor    = "floor"
	modeNetguard = "netguard"
)

var apiModes = []string{modeNone, modeVAP, modeFloor, modeNetguard}

// guarded says whether a mode denies bad policies.
func guarded(mode string) bool { return mode == modeVAP || mode == modeNetguard }

// labelFloor selects the namespace the floor webhook is called for.
const labelFloor = "bench.netguard.io/floor"

// floorWebhook registers the floor server for NetworkPolicy writes in the
// floor mode's namespace, as netguard's webhook is registered for its own.
func floorWebhook(url string, caBundle []byte) *admissionregistrationv1.ValidatingWebhookConfiguration {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	equivalent := admissionregistrationv1.Equivalent
	timeout := int32(5)
	u := url + webhook.PathValidateNetworkPolicy
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "netguard-bench-floor"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "floor.bench.netguard.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &u, CABundle: caBundle},
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             &none,
			FailurePolicy:           &fail,
			MatchPolicy:             &equivalent,
			TimeoutSeconds:          &timeout,
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{labelFloor: "true"}},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{"networking.k8s.io"}, APIVersions: []string{"v1"}, Resources: []string{"networkpolicies"}},
			}},
		}},
	}
}

func apiNamespace(mode string) string { return "bench-" + mode }

// labelVAP selects the namespaces the ValidatingAdmissionPolicy binds to.
const labelVAP = "bench.netguard.io/vap"

// vapName names the ValidatingAdmissionPolicy and its binding.
const vapName = "netguard-bench-baseline"

// The baseline checks CEL can express: every rule names its peers, no
// ipBlock, and a namespaceSelector only when it pins
// kubernetes.io/metadata.name to the policy's own namespace.
var vapValidations = []admissionregistrationv1.Validation{
	{
		Expression: "!has(object.spec.ingress) || object.spec.ingress.all(r, has(r.from) && size(r.from) > 0)",
		Message:    "every ingress rule must list its sources in from: a rule without from allows traffic from anywhere",
	},
	{
		Expression: "!has(object.spec.egress) || object.spec.egress.all(r, has(r.to) && size(r.to) > 0)",
		Message:    "every egress rule must list its destinations in to: a rule without to allows traffic to anywhere",
	},
	{
		Expression: "!has(object.spec.ingress) || object.spec.ingress.all(r, !has(r.from) || r.from.all(p, !has(p.ipBlock)))",
		Message:    "ingress from an ipBlock is reserved for platform NetworkProfiles",
	},
	{
		Expression: "!has(object.spec.egress) || object.spec.egress.all(r, !has(r.to) || r.to.all(p, !has(p.ipBlock)))",
		Message:    "egress to an ipBlock is reserved for platform NetworkProfiles",
	},
	{
		Expression: "!has(object.spec.ingress) || object.spec.ingress.all(r, !has(r.from) || r.from.all(p, !has(p.namespaceSelector) || " + pinsOwnNamespace + "))",
		Message:    "a namespaceSelector must pin kubernetes.io/metadata.name to the policy's own namespace",
	},
	{
		Expression: "!has(object.spec.egress) || object.spec.egress.all(r, !has(r.to) || r.to.all(p, !has(p.namespaceSelector) || " + pinsOwnNamespace + "))",
		Message:    "a namespaceSelector must pin kubernetes.io/metadata.name to the policy's own namespace",
	},
}

const pinsOwnNamespace = "(has(p.namespaceSelector.matchLabels) && 'kubernetes.io/metadata.name' in p.namespaceSelector.matchLabels && p.namespaceSelector.matchLabels['kubernetes.io/metadata.name'] == request.namespace)"

func validatingAdmissionPolicy() (*admissionregistrationv1.ValidatingAdmissionPolicy, *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
	fail := admissionregistrationv1.Fail
	equivalent := admissionregistrationv1.Equivalent
	p := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: vapName},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionregistrationv1.MatchResources{
				MatchPolicy: &equivalent,
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{"networking.k8s.io"}, APIVersions: []string{"v1"}, Resources: []string{"networkpolicies"}},
				}}},
			},
			Validations: vapValidations,
		},
	}
	b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: vapName},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        vapName,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{labelVAP: "true"}},
			},
		},
	}
	return p, b
}

// latencies is one kind of request's samples.
type latencies []time.Duration

// mean is the average latency, 0 for none: set against a histogram's
// mean (the webhook handler's), a median would compare unlike things.
func (l latencies) mean() time.Duration {
	if len(l) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range l {
		sum += d
	}
	return sum / time.Duration(len(l))
}

func (l latencies) q(q float64) time.Duration {
	s := slices.Sorted(slices.Values(l))
	if len(s) == 0 {
		return 0
	}
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

type apiResult struct {
	Policies, Concurrency int
	// Verified says how the modes answered a bad policy before timing.
	Verified []string
	// Create and Update: the typical team policy (load.AllowedPolicy),
	// which netguard's admission policies decide in CEL.
	Create map[string]latencies
	Update map[string]latencies
	// CreateMixed and UpdateMixed: the mixed corpus (load.MixedPolicy), 6
	// of 10 decided in CEL, 4 judged by netguard's webhook.
	CreateMixed map[string]latencies
	UpdateMixed map[string]latencies
	// Reviewed and ReviewedMixed: how many of netguard's mode's writes of
	// each pass its webhook answered (its decisions metric): the proof
	// that the admission policies decided the rest in the API server.
	Reviewed, ReviewedMixed int
	// Deployments: create latency with and without netguard annotations.
	Deployments              int
	DeployPlain, DeployInjct latencies
	// ApplyBatch: the same generated policies written by server-side apply
	// from the benchmark, 8 at a time, where no webhook is called: the
	// API server's and etcd's share of injection.
	ApplyBatch latencies
	// HandlerMean is the mean time netguard's handler took per call of
	// each workload webhook path while the Deployments were created
	// (controller-runtime's controller_runtime_webhook_latency_seconds),
	// and HandlerCalls how many calls it saw.
	HandlerMean      map[string]time.Duration
	HandlerCalls     map[string]int
	InjectedPolicies int
	Elapsed          time.Duration
}

func runAPIServer(ctx context.Context, e *benchEnv, s settings) (*apiResult, error) {
	t0 := time.Now()
	res := &apiResult{Policies: s.APIPolicies, Concurrency: s.APIConcurrency, Create: map[string]latencies{}, Update: map[string]latencies{}, CreateMixed: map[string]latencies{}, UpdateMixed: map[string]latencies{}}
	labels := map[string]map[string]string{
		modeNone:     {webhook.LabelIgnore: ""},
		modeVAP:      {webhook.LabelIgnore: "", labelVAP: "true"},
		modeFloor:    {webhook.LabelIgnore: "", labelFloor: "true"},
		modeNetguard: {rules.LabelEnforce: string(rules.LevelBaseline)},
	}
	for _, m := range apiModes {
		if err := e.createNamespace(ctx, apiNamespace(m), labels[m]); err != nil {
			return nil, err
		}
	}
	vap, binding := validatingAdmissionPolicy()
	regs := e.cs.AdmissionregistrationV1()
	if _, err := regs.ValidatingAdmissionPolicies().Create(ctx, vap, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create ValidatingAdmissionPolicy: %w", err)
	}
	if _, err := regs.ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create ValidatingAdmissionPolicyBinding: %w", err)
	}
	if _, err := regs.ValidatingWebhookConfigurations().Create(ctx, floorWebhook(e.honest.URL, e.ng.CABundle), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("register the floor webhook: %w", err)
	}
	var err error
	if res.Verified, err = e.verifyModes(ctx); err != nil {
		return nil, err
	}

	// The typical team policy, then the mixed corpus: CREATE, then UPDATE,
	// each request of the modes interleaved.
	if res.Reviewed, err = e.runPolicyWrites(ctx, s, load.AllowedPolicy, "np", res.Create, res.Update); err != nil {
		return nil, err
	}
	progress("  created and updated %d typical NetworkPolicies in each mode", s.APIPolicies)
	if res.ReviewedMixed, err = e.runPolicyWrites(ctx, s, load.MixedPolicy, "mx", res.CreateMixed, res.UpdateMixed); err != nil {
		return nil, err
	}
	progress("  created and updated %d NetworkPolicies of the mixed corpus in each mode", s.APIPolicies)

	if err := e.runDeployments(ctx, s, res); err != nil {
		return nil, err
	}
	res.Elapsed = time.Since(t0)
	return res, nil
}

// runPolicyWrites creates s.APIPolicies NetworkPolicies gen(namespace,
// prefix-i, i) in each mode's namespace, then updates each with
// load.UpdatedPolicy, the requests of the modes interleaved and
// s.APIConcurrency at a time, and records the latencies by mode. It
// returns how many NetworkPolicy reviews netguard's webhook answered
// meanwhile (only netguard's mode calls it).
func (e *benchEnv) runPolicyWrites(ctx context.Context, s settings, gen func(namespace, name string, i int) *networkingv1.NetworkPolicy, prefix string, create, update map[string]latencies) (int, error) {
	before, err := e.ng.NetworkPolicyReviews()
	if err != nil {
		return 0, err
	}
	// With -pprof, the API server's CPU profile of the first seconds of the
	// CREATEs: where admission spends its time (history.md, sections 17
	// and 18).
	profiled := make(chan struct{})
	go func() {
		defer close(profiled)
		e.saveAPIServerProfile(ctx, 5, "cpu-apiserver-"+prefix+".pprof")
	}()
	defer func() { <-profiled }()
	created := map[string][]*networkingv1.NetworkPolicy{}
	for _, m := range apiModes {
		created[m] = make([]*networkingv1.NetworkPolicy, s.APIPolicies)
	}
	var mu sync.Mutex
	err = runJobs(ctx, s.APIPolicies*len(apiModes), s.APIConcurrency, func(ctx context.Context, j int) error {
		m, i := apiModes[j%len(apiModes)], j/len(apiModes)
		np := gen(apiNamespace(m), fmt.Sprintf("%s-%d", prefix, i), i)
		t := time.Now()
		out, err := e.cs.NetworkingV1().NetworkPolicies(np.Namespace).Create(ctx, np, metav1.CreateOptions{})
		d := time.Since(t)
		if err != nil {
			return fmt.Errorf("%s: create %s: %w", m, np.Name, err)
		}
		mu.Lock()
		create[m] = append(create[m], d)
		created[m][i] = out
		mu.Unlock()
		return nil
	})
	if err != nil {
		return 0, err
	}
	err = runJobs(ctx, s.APIPolicies*len(apiModes), s.APIConcurrency, func(ctx context.Context, j int) error {
		m, i := apiModes[j%len(apiModes)], j/len(apiModes)
		np := load.UpdatedPolicy(created[m][i], i)
		t := time.Now()
		_, err := e.cs.NetworkingV1().NetworkPolicies(np.Namespace).Update(ctx, np, metav1.UpdateOptions{})
		d := time.Since(t)
		if err != nil {
			return fmt.Errorf("%s: update %s: %w", m, np.Name, err)
		}
		mu.Lock()
		update[m] = append(update[m], d)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return 0, err
	}
	after, err := e.ng.NetworkPolicyReviews()
	return after - before, err
}

// latencySum is a histogram's sum (seconds) and count.
type latencySum struct{ sum, count float64 }

// webhookLatency reads controller_runtime_webhook_latency_seconds from
// netguard's metrics, by webhook path.
func (e *benchEnv) webhookLatency() (map[string]latencySum, error) {
	out := map[string]latencySum{}
	err := e.netguardSamples(func(name, labels string, v float64) {
		_, after, ok := strings.Cut(labels, `webhook="`)
		if !ok {
			return
		}
		path, _, _ := strings.Cut(after, `"`)
		l := out[path]
		switch name {
		case "controller_runtime_webhook_latency_seconds_sum":
			l.sum += v
		case "controller_runtime_webhook_latency_seconds_count":
			l.count += v
		default:
			return
		}
		out[path] = l
	})
	return out, err
}

// netguardSamples calls fn with each labelled sample of netguard's metrics
// (name, the text between the braces, value).
func (e *benchEnv) netguardSamples(fn func(name, labels string, v float64)) error {
	m, err := e.ng.Metrics()
	if err != nil {
		return fmt.Errorf("read netguard's metrics: %w", err)
	}
	for _, line := range strings.Split(m, "\n") {
		name, rest, ok := strings.Cut(line, "{")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		end := strings.LastIndex(rest, "} ")
		if end < 0 {
			return fmt.Errorf("netguard's metrics: %q: no value after the labels", line)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest[end+2:]), 64)
		if err != nil {
			return fmt.Errorf("netguard's metrics: %q: %w", line, err)
		}
		fn(name, rest[:end], v)
	}
	return nil
}

// verifyModes proves, before anything is timed, that the VAP and netguard
// deny each kind of bad policy and that the unguarded namespace allows it.
// The VAP takes a few seconds to reach the API server's admission chain.
func (e *benchEnv) verifyModes(ctx context.Context) ([]string, error) {
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		var out []string
		ok := true
		for _, m := range apiModes {
			for i := range 3 {
				np := load.DeniedPolicy(apiNamespace(m), fmt.Sprintf("bad-%d", i), i)
				_, err := e.cs.NetworkingV1().NetworkPolicies(np.Namespace).Create(ctx, np, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
				denied := err != nil && (apierrors.IsForbidden(err) || apierrors.IsInvalid(err))
				if err != nil && !denied {
					return nil, fmt.Errorf("%s: dry-run create of a bad policy: %w", m, err)
				}
				if denied != guarded(m) {
					ok = false
					last = fmt.Sprintf("%s: bad policy %d denied=%v", m, i, denied)
				}
				verdict := "allowed"
				if denied {
					verdict = "denied: " + firstLine(err.Error())
				}
				out = append(out, fmt.Sprintf("%s, %s: %s", m, badPolicyNames[i], verdict))
			}
			// A good policy, and one of each shape of the mixed corpus that
			// netguard's webhook judges (i%10 = 6..9).
			for _, i := range []int{0, 6, 7, 8, 9} {
				good := load.MixedPolicy(apiNamespace(m), "good", i)
				if _, err := e.cs.NetworkingV1().NetworkPolicies(good.Namespace).Create(ctx, good, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
					return nil, fmt.Errorf("%s: a good policy (mixed corpus, variant %d) is not allowed: %w", m, i, err)
				}
			}
		}
		if ok {
			return out, nil
		}
		time.Sleep(time.Second)
	}
	return nil, fmt.Errorf("admission modes not in effect after 90s: %s", last)
}

var badPolicyNames = []string{"ingress from anywhere", "egress to 0.0.0.0/0", "ingress from every namespace"}

func firstLine(s string) string {
	const max = 160
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// runDeployments creates Deployments with 5 dependencies and 2 profiles and
// the same Deployments without annotations, interleaved, one at a time.
func (e *benchEnv) runDeployments(ctx context.Context, s settings, res *apiResult) error {
	ns := "bench-inject"
	if err := e.createNamespace(ctx, ns, nil); err != nil {
		return err
	}
	applyNS := "bench-apply"
	if err := e.createNamespace(ctx, applyNS, map[string]string{webhook.LabelIgnore: ""}); err != nil {
		return err
	}
	res.Deployments = s.Deployments
	before, err := e.webhookLatency()
	if err != nil {
		return err
	}
	// With -pprof, netguard's CPU profile of the first seconds of the
	// Deployments.
	profiled := make(chan struct{})
	go func() {
		defer close(profiled)
		e.saveProfile(ctx, "profile?seconds=5", "cpu-injection.pprof")
	}()
	defer func() { <-profiled }()
	profiles := load.ProfileNames[:2]
	known := map[string]rules.Profile{}
	for _, p := range load.Profiles() {
		known[p.Name] = webhook.ProfileToRules(p)
	}
	for i := range s.Deployments {
		// The policies injection writes for this Deployment, applied by the
		// benchmark in a namespace no webhook sees.
		ref := load.AnnotatedDeployment(applyNS, fmt.Sprintf("inject-%d", i), 5, profiles)
		gen, errs := rules.Generate(rules.Workload{Kind: "Deployment", Namespace: applyNS, Name: ref.Name, Annotations: ref.Annotations}, known)
		if len(errs) > 0 {
			return fmt.Errorf("generate reference policies: %v", errs.ToAggregate())
		}
		t := time.Now()
		if err := e.applyAll(ctx, gen.Policies); err != nil {
			return err
		}
		res.ApplyBatch = append(res.ApplyBatch, time.Since(t))
		for _, annotated := range []bool{i%2 == 0, i%2 != 0} {
			d := load.PlainDeployment(ns, fmt.Sprintf("plain-%d", i))
			if annotated {
				d = load.AnnotatedDeployment(ns, fmt.Sprintf("inject-%d", i), 5, profiles)
			}
			t := time.Now()
			_, err := e.cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
			dt := time.Since(t)
			if err != nil {
				return fmt.Errorf("create Deployment %s: %w", d.Name, err)
			}
			if annotated {
				res.DeployInjct = append(res.DeployInjct, dt)
			} else {
				res.DeployPlain = append(res.DeployPlain, dt)
			}
		}
	}
	// Proof that injection happened: the policies of the first one exist.
	list, err := e.cs.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{LabelSelector: rules.LabelManagedBy + "=" + rules.ManagedByValue + "," + rules.LabelComponent + "=inject-0"})
	if err != nil {
		return err
	}
	res.InjectedPolicies = len(list.Items)
	after, err := e.webhookLatency()
	if err != nil {
		return err
	}
	res.HandlerMean, res.HandlerCalls = map[string]time.Duration{}, map[string]int{}
	for _, path := range []string{webhook.PathMutateWorkload, webhook.PathValidateWorkload} {
		n := after[path].count - before[path].count
		if n > 0 {
			res.HandlerCalls[path] = int(n)
			res.HandlerMean[path] = time.Duration((after[path].sum - before[path].sum) / n * float64(time.Second))
		}
	}
	if res.InjectedPolicies == 0 {
		return fmt.Errorf("no generated NetworkPolicies for Deployment inject-0: injection did not happen")
	}
	progress("  created %d Deployments with and without injection", 2*s.Deployments)
	return nil
}

// runJobs runs fn(0..n-1) on workers goroutines, in order of j, and stops at
// the first error.
func runJobs(ctx context.Context, n, workers int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := fn(ctx, j); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
	for j := 0; j < n; j++ {
		select {
		case jobs <- j:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

// applyAll writes ps by server-side apply, 8 at a time, as netguard's
// validating webhook does.
func (e *benchEnv) applyAll(ctx context.Context, ps []*networkingv1.NetworkPolicy) error {
	return runJobs(ctx, len(ps), 8, func(ctx context.Context, i int) error {
		ac, err := webhook.PolicyApplyConfiguration(ps[i])
		if err != nil {
			return err
		}
		if err := e.cl.Apply(ctx, ac, client.FieldOwner("netguard-bench"), client.ForceOwnership); err != nil {
			return fmt.Errorf("apply NetworkPolicy %s: %w", ps[i].Name, err)
		}
		return nil
	})
}
