package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/netguard/netguard/e2e/cluster"
	"github.com/netguard/netguard/webhook"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// The plumbing around netguard's words: the webhook's denial, the admission
// policy's denial and warning. netguardText strips them, so that the two
// paths can be compared on what netguard says.
var (
	webhookDenialPrefix = regexp.MustCompile(`^admission webhook "networkpolicies\.netguard\.io" denied the request: networkpolicies\.networking\.k8s\.io "[^"]*" is forbidden: `)
	policyDenialPrefix  = regexp.MustCompile(`^networkpolicies\.networking\.k8s\.io "[^"]*" is forbidden: ValidatingAdmissionPolicy '[^']*' with binding '[^']*' denied request: `)
	policyWarningPrefix = regexp.MustCompile(`^Validation failed for ValidatingAdmissionPolicy '[^']*' with binding '[^']*': `)
)

// netguardText is a denial or warning without the plumbing's words around
// it, and whether it came from an admission policy.
func netguardText(s string) (string, bool) {
	for _, p := range []*regexp.Regexp{policyDenialPrefix, policyWarningPrefix} {
		if loc := p.FindStringIndex(s); loc != nil {
			return s[loc[1]:], true
		}
	}
	if loc := webhookDenialPrefix.FindStringIndex(s); loc != nil {
		return s[loc[1]:], false
	}
	return s, false
}

// hybridCase is one NetworkPolicy sent to one namespace.
type hybridCase struct {
	name string
	ns   string
	obj  []byte
	// update sends obj as an UPDATE of the stored policy hybridUpdateBase.
	update bool
}

// hybridUpdateBase is the policy every namespace holds for the UPDATE cases.
const hybridUpdateBase = "upd-base"

// verdict is what the API server answered, in netguard's words.
type verdict struct {
	Code     int32
	Message  string
	Warnings []string
	// ByPolicy is true when an admission policy denied or warned.
	ByPolicy bool
}

func (v verdict) String() string {
	return fmt.Sprintf("code %d %q warnings %q", v.Code, v.Message, v.Warnings)
}

// hybridNamespaces are the levels, versions and label mistakes the
// differential test covers: every level enforced, warned and audited, a
// pinned v1.0, and labels that are not a level or a version.
var hybridNamespaces = map[string]map[string]string{
	"hy-privileged": {"netguard.io/enforce": "privileged", "netguard.io/warn": "baseline", "netguard.io/audit": "restricted"},
	"hy-baseline":   {"netguard.io/enforce": "baseline", "netguard.io/warn": "restricted", "netguard.io/audit": "managed"},
	"hy-restricted": {"netguard.io/enforce": "restricted", "netguard.io/warn": "managed"},
	"hy-v10":        {"netguard.io/enforce": "restricted", "netguard.io/enforce-version": "v1.0", "netguard.io/warn": "restricted", "netguard.io/warn-version": "v1.0"},
	"hy-managed":    {"netguard.io/enforce": "managed"},
	"hy-defaults":   nil,
	"hy-bad-level":  {"netguard.io/enforce": "strict", "netguard.io/warn": "restricted"},
	"hy-bad-ver":    {"netguard.io/enforce": "baseline", "netguard.io/enforce-version": "v1", "netguard.io/warn": "restricted", "netguard.io/warn-version": "latest"},
	// A warn label that is not a level: warn at managed; both warn bindings
	// select the namespace, and it must be warned once.
	"hy-bad-warn": {"netguard.io/enforce": "privileged", "netguard.io/warn": "loud"},
}

// hybridEdgeCases are shapes at the edges of what CEL decides: entries
// without port of each protocol and repeated, directions that are not
// effective, the size bound on either side, selectors that select every pod.
func hybridEdgeCases() map[string]string {
	rules := func(n int) string {
		var rs []string
		for i := range n {
			rs = append(rs, fmt.Sprintf(`{"from":[{"podSelector":{"matchLabels":{"app":"c%d"}}}],"ports":[{"port":%d}]}`, i, 8000+i))
		}
		return `{"podSelector":{"matchLabels":{"app":"s"}},"ingress":[` + strings.Join(rs, ",") + `]}`
	}
	return map[string]string{
		"ports without port, repeated": `{"podSelector":{},"ingress":[{"from":[{"podSelector":{}}],"ports":[{"protocol":"UDP"},{"protocol":"UDP"},{},{"protocol":"SCTP"},{"port":53,"protocol":"UDP"}]}]}`,
		"egress without to and ports":  `{"podSelector":{"matchLabels":{"app":"a"}},"policyTypes":["Egress"],"egress":[{},{"to":[{"podSelector":{}}]}]}`,
		"egress not effective":         `{"podSelector":{},"policyTypes":["Ingress"],"ingress":[{"from":[{"podSelector":{"matchLabels":{"app":"x"}}}],"ports":[{"port":80}]}],"egress":[{}]}`,
		"egress implied by rules":      `{"podSelector":{},"egress":[{"to":[{"podSelector":{"matchLabels":{}}}],"ports":[{"port":"dns","protocol":"UDP"}]}]}`,
		"both directions, all pods":    `{"podSelector":{"matchLabels":{}},"policyTypes":["Ingress","Egress"],"ingress":[{"from":[{"podSelector":{}},{"podSelector":{"matchLabels":{"a":"b"}}},{"podSelector":{}}]}],"egress":[{"to":[{"podSelector":{}}],"ports":[{"port":443}]}]}`,
		"deny all":                     `{"podSelector":{},"policyTypes":["Ingress","Egress"]}`,
		"at the size bound":            rules(6),
		"past the size bound":          rules(7),
		"a range":                      `{"podSelector":{"matchLabels":{"app":"s"}},"ingress":[{"from":[{"podSelector":{"matchLabels":{"app":"c"}}}],"ports":[{"port":8000,"endPort":8010}]}]}`,
		"matchExpressions":             `{"podSelector":{"matchExpressions":[{"key":"app","operator":"In","values":["s"]}]},"ingress":[{"from":[{"podSelector":{}}],"ports":[{"port":80}]}]}`,
	}
}

// hybridCorpus is the check corpus (rules/testdata: every level's pass and
// fail fixtures and the vendor seeds), the bypass corpus and the edge cases,
// each in every namespace of hybridNamespaces.
func hybridCorpus(t *testing.T) []hybridCase {
	t.Helper()
	type doc struct {
		name string
		obj  map[string]any
	}
	var docs []doc
	files, err := filepath.Glob("../rules/testdata/*/*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seeds, _ := filepath.Glob("../rules/testdata/seeds/*.yaml")
	files = append(files, seeds...)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, part := range bytes.Split(data, []byte("\n---")) {
			var obj map[string]any
			if err := yaml.Unmarshal(part, &obj); err != nil || obj["kind"] != "NetworkPolicy" {
				continue
			}
			docs = append(docs, doc{fmt.Sprintf("%s#%d", strings.TrimPrefix(f, "../rules/testdata/"), i), obj})
		}
	}
	for _, b := range webhooktest.BypassCorpus() {
		raw := b.Obj
		if raw == "" {
			raw = `{"metadata":{"name":"p"},"spec":` + b.Spec + `}`
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(raw), &obj); err != nil {
			t.Fatalf("bypass %q: %v", b.Name, err)
		}
		docs = append(docs, doc{"bypass: " + b.Name, obj})
	}
	for name, spec := range hybridEdgeCases() {
		var obj map[string]any
		if err := json.Unmarshal([]byte(`{"metadata":{"name":"edge"},"spec":`+spec+`}`), &obj); err != nil {
			t.Fatalf("edge case %q: %v", name, err)
		}
		docs = append(docs, doc{"edge: " + name, obj})
	}
	sort.Slice(docs, func(i, j int) bool { return docs[i].name < docs[j].name })
	namespaces := slices.Sorted(func(yield func(string) bool) {
		for ns := range hybridNamespaces {
			if !yield(ns) {
				return
			}
		}
	})
	var out []hybridCase
	for _, d := range docs {
		for _, ns := range namespaces {
			obj := deepCopyJSON(d.obj)
			obj["apiVersion"], obj["kind"] = "networking.k8s.io/v1", "NetworkPolicy"
			meta, _ := obj["metadata"].(map[string]any)
			if meta == nil {
				meta = map[string]any{"name": "p"}
				obj["metadata"] = meta
			}
			// A case that names another namespace keeps it: the API server
			// refuses it before admission, on both paths alike.
			if m, ok := meta["namespace"].(string); !ok || !strings.HasPrefix(d.name, "bypass: ") || m == "team" {
				meta["namespace"] = ns
			}
			raw, err := json.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, hybridCase{name: d.name, ns: ns, obj: raw})
		}
	}
	return out
}

func deepCopyJSON(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

// warningList collects a request's warnings.
type warningList struct {
	mu  sync.Mutex
	got []string
}

func (w *warningList) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, text)
}

func (w *warningList) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.got
	w.got = nil
	return out
}

// sendDryRun creates each case with dryRun=All, as a tenant, and returns
// the verdicts in order.
func sendDryRun(t *testing.T, ctx context.Context, cfg *rest.Config, cases []hybridCase) []verdict {
	t.Helper()
	warnings := &warningList{}
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandlerWithContext = warnings
	cfg.QPS, cfg.Burst = 500, 1000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]verdict, len(cases))
	for i, c := range cases {
		warnings.take()
		req := cs.NetworkingV1().RESTClient().Post().Namespace(c.ns).Resource("networkpolicies")
		if c.update {
			req = cs.NetworkingV1().RESTClient().Put().Namespace(c.ns).Resource("networkpolicies").Name(hybridUpdateBase)
		}
		err := req.Param("dryRun", "All").Body(c.obj).SetHeader("Content-Type", "application/json").Do(ctx).Error()
		var v verdict
		if err != nil {
			var st apierrors.APIStatus
			if !errors.As(err, &st) {
				t.Fatalf("%s in %s: %v", c.name, c.ns, err)
			}
			v.Code = st.Status().Code
			v.Message, v.ByPolicy = netguardText(st.Status().Message)
		}
		for _, w := range warnings.take() {
			text, byPolicy := netguardText(w)
			v.Warnings = append(v.Warnings, text)
			v.ByPolicy = v.ByPolicy || byPolicy
		}
		out[i] = v
	}
	return out
}

// TestHybridSameVerdicts is the differential test of the two paths: every
// case of the check corpus, the bypass corpus and the edge cases, in every
// namespace of hybridNamespaces, is sent through the API server once as
// installed (the admission policies decide what they can, the webhook the
// rest) and once with the webhook alone (the policies unbound and the
// webhook's not-decided-in-cel condition removed). Verdict, code, message
// and warnings must be the same.
func TestHybridSameVerdicts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	admin, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	for ns, labels := range hybridNamespaces {
		if err := testCluster.EnsureNamespace(ctx, ns, labels); err != nil {
			t.Fatal(err)
		}
		// Stored before netguard runs, so at every level.
		base := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: hybridUpdateBase}}
		if _, err := admin.NetworkingV1().NetworkPolicies(ns).Create(ctx, base, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	ng := startNetguard(t, "--default-enforce=baseline", "--default-warn=restricted", "--default-audit=restricted")
	tenant, _, err := testCluster.AddUser("hybrid-tenant")
	if err != nil {
		t.Fatal(err)
	}
	grantNetworkPolicies(t, ctx, "hybrid-tenant")
	waitPoliciesActive(t, ctx, tenant, "hy-baseline")
	cases := hybridCorpus(t)
	// The same objects as UPDATEs of a stored policy (its name, their
	// labels and spec).
	for _, c := range slices.Clone(cases) {
		var obj map[string]any
		if err := json.Unmarshal(c.obj, &obj); err != nil {
			t.Fatal(err)
		}
		if meta, ok := obj["metadata"].(map[string]any); ok && meta["namespace"] == c.ns {
			meta["name"] = hybridUpdateBase
			raw, _ := json.Marshal(obj)
			cases = append(cases, hybridCase{name: c.name + " (update)", ns: c.ns, obj: raw, update: true})
		}
	}

	before := webhookReviews(t, ng)
	hybrid := sendDryRun(t, ctx, tenant, cases)
	reached := webhookReviews(t, ng) - before

	// The webhook alone: no binding, no skip.
	cs := admin
	for _, name := range webhook.AdmissionPolicyNames {
		if err := cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	vwc, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, webhook.ValidatingConfigurationName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range vwc.Webhooks {
		vwc.Webhooks[i].MatchConditions = slices.DeleteFunc(vwc.Webhooks[i].MatchConditions, func(c admissionregistrationv1.MatchCondition) bool {
			return c.Name == webhook.NotDecidedInCELCondition
		})
	}
	if _, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Update(ctx, vwc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitBindingsGone(t, ctx, tenant)
	before = webhookReviews(t, ng)
	alone := sendDryRun(t, ctx, tenant, cases)
	reachedAlone := webhookReviews(t, ng) - before

	deniedInCEL, warnedInCEL := 0, 0
	for i, c := range cases {
		h, w := hybrid[i], alone[i]
		if w.ByPolicy {
			t.Fatalf("%s in %s: the webhook-only run was answered by an admission policy: %s", c.name, c.ns, w)
		}
		if h.ByPolicy && h.Code != 0 {
			deniedInCEL++
		}
		if h.ByPolicy && h.Code == 0 {
			warnedInCEL++
		}
		h.ByPolicy = false
		if !equalVerdicts(h, w) {
			t.Errorf("%s in %s:\n  hybrid:       %s\n  webhook only: %s\n  object: %s", c.name, c.ns, h, w, c.obj)
		}
	}
	// Cases the API server refuses itself (invalid objects) reach neither.
	decidedInCEL := reachedAlone - reached
	t.Logf("%d cases (CREATE and UPDATE of %d objects x %d namespaces); the webhook alone saw %d, with the admission policies %d: they decided %d on their own (%d denials, %d with warnings)",
		len(cases), len(cases)/2/len(hybridNamespaces), len(hybridNamespaces), reachedAlone, reached, decidedInCEL, deniedInCEL, warnedInCEL)
	// The comparison proves nothing if CEL decided nothing.
	if decidedInCEL == 0 || deniedInCEL == 0 || warnedInCEL == 0 {
		t.Errorf("the admission policies decided %d cases, denied %d and warned on %d: the hybrid path was not exercised", decidedInCEL, deniedInCEL, warnedInCEL)
	}
}

func equalVerdicts(a, b verdict) bool {
	return a.Code == b.Code && a.Message == b.Message && slices.Equal(a.Warnings, b.Warnings)
}

// waitBindingsGone waits until a case the admission policies deny is
// denied by the webhook: the API server's policy cache has seen the
// bindings go.
func waitBindingsGone(t *testing.T, ctx context.Context, cfg *rest.Config) {
	t.Helper()
	probe := []hybridCase{{name: "probe", ns: "hy-baseline", obj: []byte(`{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"probe"},"spec":{"podSelector":{},"ingress":[{}]}}`)}}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if v := sendDryRun(t, ctx, cfg, probe)[0]; v.Code != 0 && !v.ByPolicy {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("the admission policies still answer 30s after their bindings were deleted")
}

// webhookReviews is how many NetworkPolicy reviews netguard has answered.
func webhookReviews(t *testing.T, ng *cluster.Netguard) int {
	t.Helper()
	n, err := ng.NetworkPolicyReviews()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// grantNetworkPolicies lets user write NetworkPolicies in every namespace.
func grantNetworkPolicies(t *testing.T, ctx context.Context, user string) {
	t.Helper()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	name := "netpol-writer-" + user
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"get", "list", "create", "update", "delete"}}},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = cs.RbacV1().ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// TestHybridOutage stops netguard and keeps its configurations, as an
// outage does: the admission policies still decide in the API server, so a
// typical same-namespace policy is admitted and a policy open to every
// source is still denied, in netguard's words; only a policy that needs the
// webhook (here an ipBlock) fails closed.
func TestHybridOutage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const ns = "hy-outage"
	if err := testCluster.EnsureNamespace(ctx, ns, map[string]string{"netguard.io/enforce": "restricted"}); err != nil {
		t.Fatal(err)
	}
	l := newTestLog(t)
	ng, err := testCluster.StartNetguard(ctx, cluster.NetguardOptions{Binary: netguardBin, Log: l.buf, KeepWebhooks: true})
	if err != nil {
		t.Fatalf("start netguard: %v", err)
	}
	t.Cleanup(func() {
		_ = ng.RemoveWebhooks(context.Background())
	})
	tenant, _, err := testCluster.AddUser("outage-tenant")
	if err != nil {
		t.Fatal(err)
	}
	grantNetworkPolicies(t, ctx, "outage-tenant")
	waitPoliciesActive(t, ctx, tenant, ns)
	if err := ng.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	policy := func(name, ingress string) hybridCase {
		return hybridCase{name: name, ns: ns, obj: []byte(`{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"` + name + `"},"spec":{"podSelector":{"matchLabels":{"app":"api"}},"ingress":[` + ingress + `]}}`)}
	}
	got := sendDryRun(t, ctx, tenant, []hybridCase{
		policy("web-to-api", `{"from":[{"podSelector":{"matchLabels":{"app":"web"}}}],"ports":[{"port":8080}]}`),
		policy("from-anywhere", `{"ports":[{"port":8080}]}`),
		policy("from-an-address", `{"from":[{"ipBlock":{"cidr":"10.0.0.0/8"}}],"ports":[{"port":8080}]}`),
	})
	if got[0].Code != 0 {
		t.Errorf("a same-namespace policy during the outage: %s, want it admitted by the API server alone", got[0])
	}
	wantAnywhere := `violates netguard "restricted": [ingressFromAnywhere] spec.ingress[0]: allows traffic from any source; select the client pods with podSelector or use a NetworkProfile`
	if got[1].Code != 403 || !got[1].ByPolicy || got[1].Message != wantAnywhere {
		t.Errorf("a policy from anywhere during the outage: %s, want 403 %q from the admission policy", got[1], wantAnywhere)
	}
	if got[2].Code != 500 || !strings.Contains(got[2].Message, `failed calling webhook "networkpolicies.netguard.io"`) {
		t.Errorf("an ipBlock policy during the outage: %s, want the webhook call to fail closed", got[2])
	}
}

// waitPoliciesActive waits until the API server enforces the admission
// policies in ns (not privileged): it loads new policies and bindings
// asynchronously, a moment after they are stored.
func waitPoliciesActive(t *testing.T, ctx context.Context, cfg *rest.Config, ns string) {
	t.Helper()
	probe := []hybridCase{{name: "probe", ns: ns, obj: []byte(`{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"probe"},"spec":{"podSelector":{},"ingress":[{}]}}`)}}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if v := sendDryRun(t, ctx, cfg, probe)[0]; v.Code == 403 && v.ByPolicy {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the admission policies do not deny 30s after netguard applied them")
}

// A cluster with netguard's webhook configuration but without its admission
// policies (a first helm install before serve ever started, or serve unable
// to start) must fail closed: the configuration as installed has no skip of
// what the policies decide, so every NetworkPolicy write reaches the webhook
// and is refused while netguard is away. Before, the configuration carried
// the skip, and a policy from anywhere was admitted by nobody. serve adds
// the skip once its policies answer.
func TestHybridSkipOnlyOnceThePoliciesAnswer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const ns = "hy-fresh"
	if err := testCluster.EnsureNamespace(ctx, ns, map[string]string{"netguard.io/enforce": "baseline"}); err != nil {
		t.Fatal(err)
	}
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	l := newTestLog(t)
	ng, err := testCluster.StartNetguard(ctx, cluster.NetguardOptions{Binary: netguardBin, Log: l.buf, KeepWebhooks: true})
	if err != nil {
		t.Fatalf("start netguard: %v", err)
	}
	t.Cleanup(func() { _ = ng.RemoveWebhooks(context.Background()) })
	if err := ng.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// A fresh install: the configurations as installed, no policies.
	if err := cluster.RemoveAdmissionPolicies(ctx, cs); err != nil {
		t.Fatal(err)
	}
	if err := ng.InstallWebhooks(ctx); err != nil {
		t.Fatal(err)
	}
	tenant, _, err := testCluster.AddUser("fresh-tenant")
	if err != nil {
		t.Fatal(err)
	}
	grantNetworkPolicies(t, ctx, "fresh-tenant")
	waitBindingsGone(t, ctx, tenant)
	policy := func(name, ingress string) hybridCase {
		return hybridCase{name: name, ns: ns, obj: []byte(`{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"` + name + `"},"spec":{"podSelector":{"matchLabels":{"app":"api"}},"ingress":[` + ingress + `]}}`)}
	}
	for i, v := range sendDryRun(t, ctx, tenant, []hybridCase{
		policy("from-anywhere", `{"ports":[{"port":8080}]}`),
		policy("web-to-api", `{"from":[{"podSelector":{"matchLabels":{"app":"web"}}}],"ports":[{"port":8080}]}`),
	}) {
		if v.Code != 500 || v.ByPolicy || !strings.Contains(v.Message, `failed calling webhook "networkpolicies.netguard.io"`) {
			t.Errorf("case %d without netguard and without its policies: %s, want the webhook call to fail closed", i, v)
		}
	}

	// serve applies its policies, sees them answer, and adds the skip to
	// the configuration it finds.
	l2 := newTestLog(t)
	ng2, err := testCluster.StartNetguard(ctx, cluster.NetguardOptions{Binary: netguardBin, Log: l2.buf})
	if err != nil {
		t.Fatalf("start netguard: %v", err)
	}
	t.Cleanup(func() { _ = ng2.Stop(context.Background()) })
	if !strings.Contains(l2.buf.String(), "the NetworkPolicy webhook now skips the writes the admission policies decide") {
		t.Errorf("serve did not add the skip to the configuration it found; log:\n%s", l2.buf.String())
	}
	vwc, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, webhook.ValidatingConfigurationName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(vwc.Webhooks[0].MatchConditions, webhook.DecidedInCELCondition()) {
		t.Errorf("match conditions %+v: want %s", vwc.Webhooks[0].MatchConditions, webhook.NotDecidedInCELCondition)
	}
	got := sendDryRun(t, ctx, tenant, []hybridCase{policy("from-anywhere", `{"ports":[{"port":8080}]}`)})[0]
	if got.Code != 403 || !got.ByPolicy {
		t.Errorf("a policy from anywhere with netguard back: %s, want 403 from the admission policy", got)
	}
}
