package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

const (
	selfUser = "system:serviceaccount:netguard-system:netguard"
	alice    = "alice"
)

// The violations of the three test policies, exactly as a user reads them.
const (
	vAnywhere = "[ingressFromAnywhere] spec.ingress[0]: allows traffic from any source; select the client pods with podSelector or use a NetworkProfile"
	vAllPorts = "[ingressAllPorts] spec.ingress[0]: allows every port of every protocol; list the ports in use under ports"
	vRaw      = "[rawNetworkPolicy] only platform identities and netguard's generated policies may write NetworkPolicies in this namespace; declare connections with netguard annotations and NetworkProfiles instead"
)

// vAllPods names the namespace the policy is in.
func vAllPods(ns string) string {
	return `[ingressAllPodsFromAllPods] spec.ingress[0].from[0]: with spec.podSelector {} this lets every pod in namespace "` + ns + `" accept traffic from every pod in it; select the server pods in spec.podSelector or the client pods in podSelector`
}

// fakeNamespaces is the informer cache as the validator sees it.
type fakeNamespaces struct {
	mu     sync.Mutex
	labels map[string]map[string]string
	err    error
	calls  int
}

func (f *fakeNamespaces) NamespaceLabels(_ context.Context, name string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	l, ok := f.labels[name]
	if !ok {
		return nil, fmt.Errorf("namespace %q: not found", name)
	}
	return l, nil
}

func latest(l rules.Level) LevelVersion {
	return LevelVersion{Level: l, Version: rules.LatestVersion()}
}

// testConfig is the documented default (enforce baseline, audit and warn
// restricted) with one exemption and one platform identity of each kind.
func testConfig() *Config {
	return &Config{
		Defaults:          Policy{Enforce: latest(rules.LevelBaseline), Audit: latest(rules.LevelRestricted), Warn: latest(rules.LevelRestricted)},
		ExemptUsernames:   []string{"ci-bot"},
		ExemptGroups:      []string{"exempt-group"},
		ExemptNamespaces:  []string{"kube-system", "netguard-system", "sandbox"},
		PlatformUsernames: []string{"bob"},
		PlatformGroups:    []string{"platform-admins"},
		SystemDeleters:    DefaultSystemDeleters,
	}
}

func newValidator(cfg *Config, namespaces map[string]map[string]string) (*networkPolicyValidator, *fakeNamespaces) {
	ns := &fakeNamespaces{labels: namespaces}
	return &networkPolicyValidator{cfg: cfg, isSelf: func(u string) bool { return u == selfUser }, namespaces: ns}, ns
}

// modeLabels sets one mode to level and the other two to privileged, so only
// that mode can have an effect.
func modeLabels(mode string, level rules.Level) map[string]string {
	l := map[string]string{rules.LabelEnforce: "privileged", rules.LabelWarn: "privileged", rules.LabelAudit: "privileged"}
	l["netguard.io/"+mode] = string(level)
	return l
}

func withLabels(np *networkingv1.NetworkPolicy, kv ...string) *networkingv1.NetworkPolicy {
	np = np.DeepCopy()
	if np.Labels == nil {
		np.Labels = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		np.Labels[kv[i]] = kv[i+1]
	}
	return np
}

func managed(np *networkingv1.NetworkPolicy) *networkingv1.NetworkPolicy {
	return withLabels(np, rules.LabelManagedBy, rules.ManagedByValue)
}

func defaultDeny() *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: rules.DefaultDenyPolicyName},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}},
	}
}

// rawPolicy encodes np as the API server sends it, with apiVersion and kind.
func rawPolicy(t *testing.T, np *networkingv1.NetworkPolicy, namespace string) runtime.RawExtension {
	t.Helper()
	if np == nil {
		return runtime.RawExtension{}
	}
	np = np.DeepCopy()
	np.Namespace = namespace
	np.APIVersion, np.Kind = "networking.k8s.io/v1", "NetworkPolicy"
	b, err := json.Marshal(np)
	if err != nil {
		t.Fatal(err)
	}
	return runtime.RawExtension{Raw: b}
}

var uidCounter int

// request builds an AdmissionRequest like the API server's for a
// NetworkPolicy write by user in groups.
func request(t *testing.T, op admissionv1.Operation, namespace string, obj, old *networkingv1.NetworkPolicy, user string, groups ...string) admission.Request {
	t.Helper()
	name := ""
	if obj != nil {
		name = obj.Name
	} else if old != nil {
		name = old.Name
	}
	uidCounter++
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       types.UID(fmt.Sprintf("uid-%d", uidCounter)),
		Kind:      metav1.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"},
		Resource:  metav1.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"},
		Name:      name,
		Namespace: namespace,
		Operation: op,
		UserInfo:  authenticationv1.UserInfo{Username: user, Groups: append([]string{"system:authenticated"}, groups...)},
		Object:    rawPolicy(t, obj, namespace),
		OldObject: rawPolicy(t, old, namespace),
	}}
}

func create(t *testing.T, ns string, np *networkingv1.NetworkPolicy, user string, groups ...string) admission.Request {
	return request(t, admissionv1.Create, ns, np, nil, user, groups...)
}

func forbiddenMsg(name, msg string) string {
	return fmt.Sprintf("networkpolicies.networking.k8s.io %q is forbidden: %s", name, msg)
}

// assertDenied checks a 403 with exactly msg.
func assertDenied(t *testing.T, resp admission.Response, msg string) {
	t.Helper()
	if resp.Allowed {
		t.Fatalf("allowed, want denied with %q", msg)
	}
	if resp.Result == nil || resp.Result.Code != http.StatusForbidden || resp.Result.Reason != metav1.StatusReasonForbidden {
		t.Fatalf("result %+v, want 403 Forbidden", resp.Result)
	}
	if resp.Result.Message != msg {
		t.Fatalf("message:\n got %s\nwant %s", resp.Result.Message, msg)
	}
}

func assertAllowed(t *testing.T, resp admission.Response) {
	t.Helper()
	if !resp.Allowed {
		t.Fatalf("denied, want allowed: %+v", resp.Result)
	}
}

func withWouldViolate(lv string, vs []string) string {
	return `would violate netguard "` + lv + `": ` + strings.Join(vs, "; ")
}

// TestModesAndLevels covers every mode at every level with a policy that
// passes restricted, one that passes only baseline and one that fails
// baseline. Enforce denies with the PSA-style message, warn returns one
// warning per violation, audit allows and annotates.
func TestModesAndLevels(t *testing.T) {
	policies := []struct {
		name string
		np   *networkingv1.NetworkPolicy
		// violations per level
		want map[rules.Level][]string
	}{
		{"good", webhooktest.GoodPolicy("frontend-to-backend"), map[rules.Level][]string{
			rules.LevelManaged: {vRaw},
		}},
		{"same-namespace", webhooktest.SameNamespacePolicy("same-namespace"), map[rules.Level][]string{
			rules.LevelRestricted: {vAllPods("team"), vAllPorts},
			rules.LevelManaged:    {vAllPods("team"), vAllPorts, vRaw},
		}},
		{"anywhere", webhooktest.AnywherePolicy("from-anywhere"), map[rules.Level][]string{
			rules.LevelBaseline:   {vAnywhere},
			rules.LevelRestricted: {vAnywhere},
			rules.LevelManaged:    {vAnywhere, vRaw},
		}},
	}
	for _, mode := range []string{"enforce", "warn", "audit"} {
		for _, level := range rules.Levels() {
			for _, p := range policies {
				t.Run(mode+"/"+string(level)+"/"+p.name, func(t *testing.T) {
					v, _ := newValidator(testConfig(), map[string]map[string]string{"team": modeLabels(mode, level)})
					resp := v.Handle(context.Background(), create(t, "team", p.np, alice))
					want := p.want[level]
					if mode == "enforce" && len(want) > 0 {
						assertDenied(t, resp, forbiddenMsg(p.np.Name, `violates netguard "`+string(level)+`": `+strings.Join(want, "; ")))
						return
					}
					assertAllowed(t, resp)
					var wantWarnings []string
					if mode == "warn" {
						for _, w := range want {
							wantWarnings = append(wantWarnings, withWouldViolate(string(level), []string{w}))
						}
					}
					if !reflect.DeepEqual(resp.Warnings, wantWarnings) {
						t.Errorf("warnings:\n got %q\nwant %q", resp.Warnings, wantWarnings)
					}
					got, ok := resp.AuditAnnotations[AuditAnnotationViolations]
					if mode == "audit" && len(want) > 0 {
						if w := withWouldViolate(string(level), want); got != w {
							t.Errorf("audit annotation:\n got %q\nwant %q", got, w)
						}
					} else if ok {
						t.Errorf("unexpected audit annotation %q", got)
					}
					enforced := string(level)
					if mode != "enforce" {
						enforced = "privileged"
					}
					if got := resp.AuditAnnotations[AuditAnnotationEnforcePolicy]; got != enforced {
						t.Errorf("enforce-policy annotation %q, want %q", got, enforced)
					}
				})
			}
		}
	}
}

// A namespace without labels gets the defaults: enforce baseline, warn and
// audit restricted. The three modes act on one request together.
func TestDefaultsApplyToUnlabelledNamespaces(t *testing.T) {
	v, _ := newValidator(testConfig(), map[string]map[string]string{"plain": nil})

	resp := v.Handle(context.Background(), create(t, "plain", webhooktest.SameNamespacePolicy("web"), alice))
	assertAllowed(t, resp)
	wantWarnings := []string{
		`would violate netguard "restricted": ` + vAllPods("plain"),
		`would violate netguard "restricted": ` + vAllPorts,
	}
	if !reflect.DeepEqual(resp.Warnings, wantWarnings) {
		t.Errorf("warnings:\n got %q\nwant %q", resp.Warnings, wantWarnings)
	}
	wantAnnotations := map[string]string{
		AuditAnnotationEnforcePolicy: "baseline",
		AuditAnnotationViolations:    `would violate netguard "restricted": ` + vAllPods("plain") + "; " + vAllPorts,
	}
	if !reflect.DeepEqual(resp.AuditAnnotations, wantAnnotations) {
		t.Errorf("audit annotations:\n got %q\nwant %q", resp.AuditAnnotations, wantAnnotations)
	}

	resp = v.Handle(context.Background(), create(t, "plain", webhooktest.AnywherePolicy("web"), alice))
	assertDenied(t, resp, forbiddenMsg("web", `violates netguard "baseline": `+vAnywhere))
}

// TestExactMessages pins the texts a user reads, in full.
func TestExactMessages(t *testing.T) {
	namespaces := map[string]map[string]string{
		"plain":  nil,
		"pinned": {rules.LabelEnforce: "baseline", rules.LabelEnforceVersion: "v1.0"},
		"locked": {rules.LabelEnforce: "managed"},
	}
	v, _ := newValidator(testConfig(), namespaces)
	ctx := context.Background()

	resp := v.Handle(ctx, create(t, "plain", webhooktest.AnywherePolicy("web"), alice))
	assertDenied(t, resp, `networkpolicies.networking.k8s.io "web" is forbidden: violates netguard "baseline": [ingressFromAnywhere] spec.ingress[0]: allows traffic from any source; select the client pods with podSelector or use a NetworkProfile`)

	resp = v.Handle(ctx, create(t, "pinned", webhooktest.AnywherePolicy("web"), alice))
	assertDenied(t, resp, `networkpolicies.networking.k8s.io "web" is forbidden: violates netguard "baseline:v1.0": [ingressFromAnywhere] spec.ingress[0]: allows traffic from any source; select the client pods with podSelector or use a NetworkProfile`)

	resp = v.Handle(ctx, create(t, "locked", webhooktest.GoodPolicy("web"), alice))
	assertDenied(t, resp, `networkpolicies.networking.k8s.io "web" is forbidden: violates netguard "managed": [rawNetworkPolicy] only platform identities and netguard's generated policies may write NetworkPolicies in this namespace; declare connections with netguard annotations and NetworkProfiles instead`)

	resp = v.Handle(ctx, create(t, "plain", webhooktest.SameNamespacePolicy("web"), alice))
	want := []string{
		`would violate netguard "restricted": [ingressAllPodsFromAllPods] spec.ingress[0].from[0]: with spec.podSelector {} this lets every pod in namespace "plain" accept traffic from every pod in it; select the server pods in spec.podSelector or the client pods in podSelector`,
		`would violate netguard "restricted": [ingressAllPorts] spec.ingress[0]: allows every port of every protocol; list the ports in use under ports`,
	}
	if !reflect.DeepEqual(resp.Warnings, want) {
		t.Errorf("warnings:\n got %q\nwant %q", resp.Warnings, want)
	}
	if got, w := resp.AuditAnnotations["audit-violations"], `would violate netguard "restricted": [ingressAllPodsFromAllPods] spec.ingress[0].from[0]: with spec.podSelector {} this lets every pod in namespace "plain" accept traffic from every pod in it; select the server pods in spec.podSelector or the client pods in podSelector; [ingressAllPorts] spec.ingress[0]: allows every port of every protocol; list the ports in use under ports`; got != w {
		t.Errorf("audit-violations:\n got %q\nwant %q", got, w)
	}
}

// typoNote is what a denial adds when the enforce label is not a level.
func typoNote(value string) string {
	return fmt.Sprintf(`; namespace label netguard.io/enforce=%q is invalid (unknown level %q: must be one of privileged, baseline, restricted, managed), so netguard applies the strictest setting: ask the platform team to fix the label`, value, value)
}

// A bad label value is the strictest level, never privileged, and is
// counted and logged; a denial says which label it was.
func TestLabelErrorsAreManaged(t *testing.T) {
	cases := []struct {
		name               string
		labels             map[string]string
		mode               string
		badLabel, badValue string
		check              func(t *testing.T, resp admission.Response)
	}{
		{"enforce typo", map[string]string{rules.LabelEnforce: "Baseline"}, "enforce", rules.LabelEnforce, "Baseline", func(t *testing.T, resp admission.Response) {
			assertDenied(t, resp, forbiddenMsg("web", `violates netguard "managed": `+vRaw+typoNote("Baseline")))
		}},
		{"privileged typo is not privileged", map[string]string{rules.LabelEnforce: "Privileged"}, "enforce", rules.LabelEnforce, "Privileged", func(t *testing.T, resp admission.Response) {
			assertDenied(t, resp, forbiddenMsg("web", `violates netguard "managed": `+vRaw+typoNote("Privileged")))
		}},
		{"empty enforce value", map[string]string{rules.LabelEnforce: ""}, "enforce", rules.LabelEnforce, "", func(t *testing.T, resp admission.Response) {
			assertDenied(t, resp, forbiddenMsg("web", `violates netguard "managed": `+vRaw+typoNote("")))
		}},
		{"warn typo", map[string]string{rules.LabelEnforce: "privileged", rules.LabelWarn: "strict"}, "warn", rules.LabelWarn, "strict", func(t *testing.T, resp admission.Response) {
			assertAllowed(t, resp)
			if want := []string{`would violate netguard "managed": ` + vRaw}; !reflect.DeepEqual(resp.Warnings, want) {
				t.Errorf("warnings %q, want %q", resp.Warnings, want)
			}
		}},
		{"audit typo", map[string]string{rules.LabelEnforce: "privileged", rules.LabelAudit: "restricted "}, "audit", rules.LabelAudit, "restricted ", func(t *testing.T, resp admission.Response) {
			assertAllowed(t, resp)
			if got, want := resp.AuditAnnotations[AuditAnnotationViolations], `would violate netguard "managed": `+vRaw; got != want {
				t.Errorf("audit annotation %q, want %q", got, want)
			}
		}},
		{"bad version is latest", map[string]string{rules.LabelEnforce: "restricted", rules.LabelEnforceVersion: "1.0"}, "enforce", rules.LabelEnforceVersion, "1.0", func(t *testing.T, resp admission.Response) {
			assertAllowed(t, resp)
			if got := resp.AuditAnnotations[AuditAnnotationEnforcePolicy]; got != "restricted" {
				t.Errorf("enforce-policy %q, want restricted", got)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, _ := newValidator(testConfig(), map[string]map[string]string{"team": tc.labels})
			before := counterValue(t, namespaceLabelErrors.WithLabelValues(tc.mode))
			ctx, logs := captureLogs(0)
			resp := v.Handle(ctx, create(t, "team", webhooktest.GoodPolicy("web"), alice))
			tc.check(t, resp)
			if d := counterValue(t, namespaceLabelErrors.WithLabelValues(tc.mode)) - before; d != 1 {
				t.Errorf("netguard_namespace_label_errors_total{mode=%q} grew by %v, want 1", tc.mode, d)
			}
			line := logs.find("namespace label has an invalid value; using the strictest setting")
			if line == nil {
				t.Fatalf("no log line for the bad label; logs:\n%s", logs)
			}
			if line["label"] != tc.badLabel || line["value"] != tc.badValue || line["error"] == "" || line["v"] != float64(0) {
				t.Errorf("log line %v, want label %q value %q and an error, at info", line, tc.badLabel, tc.badValue)
			}
		})
	}
}

// Exempt users, groups and namespaces are allowed without evaluation: no
// warnings, no audit annotations, whatever the namespace's labels, and even
// before the caches are synced.
func TestExemptions(t *testing.T) {
	strict := map[string]string{rules.LabelEnforce: "managed", rules.LabelWarn: "managed", rules.LabelAudit: "managed"}
	cases := []struct {
		name, ns, user string
		groups         []string
	}{
		{"exempt username", "team", "ci-bot", nil},
		{"exempt group", "team", alice, []string{"exempt-group"}},
		{"exempt namespace", "sandbox", alice, nil},
		{"kube-system", "kube-system", alice, nil},
		{"netguard's namespace", "netguard-system", alice, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, ns := newValidator(testConfig(), map[string]map[string]string{tc.ns: strict})
			ns.err = errNotSynced
			before := counterValue(t, admissionDecisions.WithLabelValues("networkpolicies", "CREATE", "allow", "exempt", "none"))
			resp := v.Handle(context.Background(), create(t, tc.ns, webhooktest.AnywherePolicy("web"), tc.user, tc.groups...))
			assertAllowed(t, resp)
			if len(resp.Warnings) > 0 || len(resp.AuditAnnotations) > 0 {
				t.Errorf("exempt request got warnings %q, audit annotations %q", resp.Warnings, resp.AuditAnnotations)
			}
			if d := counterValue(t, admissionDecisions.WithLabelValues("networkpolicies", "CREATE", "allow", "exempt", "none")) - before; d != 1 {
				t.Errorf("exempt decisions grew by %v, want 1", d)
			}
		})
	}

	// An exempt namespace is outside netguard altogether, managed policies
	// included; an exempt user is exempt from levels, not from the
	// protection of managed policies.
	v, _ := newValidator(testConfig(), map[string]map[string]string{"team": nil})
	assertAllowed(t, v.Handle(context.Background(), request(t, admissionv1.Delete, "sandbox", nil, managed(defaultDeny()), alice)))
	assertDenied(t, v.Handle(context.Background(), request(t, admissionv1.Delete, "team", nil, managed(defaultDeny()), "ci-bot")),
		forbiddenMsg(rules.DefaultDenyPolicyName, `"netguard-default-deny" is managed by netguard: only netguard and platform identities may delete it, and user "ci-bot" is neither; `+baselineFix))
	// The DNS allowance says what it is for, not what the default-deny is.
	dns := rules.NamespaceBaseline("team", rules.BaselineOptions{})[0]
	dns.Namespace = ""
	assertDenied(t, v.Handle(context.Background(), request(t, admissionv1.Delete, "team", nil, dns, "ci-bot")),
		forbiddenMsg(rules.AllowDNSPolicyName, `"netguard-allow-dns" is managed by netguard: only netguard and platform identities may delete it, and user "ci-bot" is neither; `+dnsFix))
}

// TestManagedProtection: only netguard and platform identities create,
// change or delete managed policies, whatever the namespace's level; anyone
// else gets a 403 that names what they tried. Looking like a managed policy
// gets a policy no exemption from the level.
func TestManagedProtection(t *testing.T) {
	namespaces := map[string]map[string]string{
		"open":   {rules.LabelEnforce: "privileged", rules.LabelWarn: "privileged", rules.LabelAudit: "privileged"},
		"team":   nil,
		"locked": {rules.LabelEnforce: "managed"},
	}
	const (
		update = admissionv1.Update
		del    = admissionv1.Delete
		cr     = admissionv1.Create
	)
	gen := managed(webhooktest.GoodPolicy("backend-from-frontend"))
	genChanged := gen.DeepCopy()
	genChanged.Spec.Ingress[0].From = nil
	mine := webhooktest.GoodPolicy("backend-from-frontend")
	unlabelledDeny := defaultDeny()
	relabelled := withLabels(gen, rules.LabelManagedBy, "alice")
	renamed := webhooktest.GoodPolicy("mine")
	// What the garbage collector writes when it orphans a generated policy
	// (kubectl delete --cascade=orphan): the ownerReference goes, nothing else.
	owned := gen.DeepCopy()
	no := false
	owned.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "u-1", Controller: &no, BlockOwnerDeletion: &no}}
	owned.ResourceVersion = "10"
	released := gen.DeepCopy()
	released.ResourceVersion = "11"
	releasedAndChanged := genChanged.DeepCopy()
	const gc = "system:serviceaccount:kube-system:generic-garbage-collector"

	denyMsg := func(name, msg string) string { return forbiddenMsg(name, msg) }
	cases := []struct {
		name     string
		ns       string
		op       admissionv1.Operation
		obj, old *networkingv1.NetworkPolicy
		user     string
		groups   []string
		want     string // empty: allowed
		mode     string // metrics mode label
	}{
		{"create with the label", "open", cr, gen, nil, alice, nil,
			denyMsg("backend-from-frontend", `"backend-from-frontend" is labelled app.kubernetes.io/managed-by=netguard, which only netguard and platform identities may create; user "alice" is neither: remove the label`), "managed"},
		{"create a bad policy with the label", "open", cr, managed(webhooktest.AnywherePolicy("sneaky")), nil, alice, nil,
			denyMsg("sneaky", `"sneaky" is labelled app.kubernetes.io/managed-by=netguard, which only netguard and platform identities may create; user "alice" is neither: remove the label`), "managed"},
		{"create named netguard-default-deny", "open", cr, unlabelledDeny, nil, alice, nil,
			denyMsg("netguard-default-deny", `the name "netguard-default-deny" is reserved for netguard's namespace default-deny; user "alice" may not create it: choose another name`), "managed"},
		{"create named and labelled", "locked", cr, managed(defaultDeny()), nil, alice, nil,
			denyMsg("netguard-default-deny", `"netguard-default-deny" is labelled app.kubernetes.io/managed-by=netguard, which only netguard and platform identities may create; user "alice" is neither: remove the label`), "managed"},
		{"change the spec", "open", update, genChanged, gen, alice, nil,
			denyMsg("backend-from-frontend", `"backend-from-frontend" is managed by netguard: only netguard and platform identities may update it, and user "alice" is neither; change the owning workload's netguard.io annotations, or ask the platform team`), "managed"},
		{"remove the label", "open", update, mine, gen, alice, nil,
			denyMsg("backend-from-frontend", `"backend-from-frontend" is managed by netguard: removing its app.kubernetes.io/managed-by label or renaming it is not allowed for user "alice"`), "managed"},
		{"change the label's value", "open", update, relabelled, gen, alice, nil,
			denyMsg("backend-from-frontend", `"backend-from-frontend" is managed by netguard: removing its app.kubernetes.io/managed-by label or renaming it is not allowed for user "alice"`), "managed"},
		{"add the label", "team", update, gen, mine, alice, nil,
			denyMsg("backend-from-frontend", `adding the label app.kubernetes.io/managed-by=netguard to "backend-from-frontend" is not allowed for user "alice": only netguard and platform identities may mark a policy as managed; remove the label`), "managed"},
		{"rename", "open", update, renamed, managed(defaultDeny()), alice, nil,
			denyMsg("mine", `"mine" is managed by netguard: removing its app.kubernetes.io/managed-by label or renaming it is not allowed for user "alice"`), "managed"},
		{"delete", "open", del, nil, gen, alice, nil,
			denyMsg("backend-from-frontend", `"backend-from-frontend" is managed by netguard: only netguard and platform identities may delete it, and user "alice" is neither; change the owning workload's netguard.io annotations, or ask the platform team`), "managed"},
		{"delete the default-deny without its label", "open", del, nil, unlabelledDeny, alice, nil,
			denyMsg("netguard-default-deny", `"netguard-default-deny" is managed by netguard: only netguard and platform identities may delete it, and user "alice" is neither; `+baselineFix), "managed"},
		{"a username that equals a platform group is not a platform identity", "open", del, nil, gen, "platform-admins", nil,
			denyMsg("backend-from-frontend", `"backend-from-frontend" is managed by netguard: only netguard and platform identities may delete it, and user "platform-admins" is neither; change the owning workload's netguard.io annotations, or ask the platform team`), "managed"},

		{"self creates", "locked", cr, gen, nil, selfUser, nil, "", "managed"},
		{"self updates", "locked", update, genChanged, gen, selfUser, nil, "", "managed"},
		{"self removes the label", "locked", update, mine, gen, selfUser, nil, "", "managed"},
		{"self deletes", "locked", del, nil, gen, selfUser, nil, "", "managed"},
		{"self creates the default-deny", "team", cr, managed(defaultDeny()), nil, selfUser, nil, "", "managed"},
		{"platform user creates", "locked", cr, gen, nil, "bob", nil, "", "managed"},
		{"platform user deletes the default-deny", "team", del, nil, managed(defaultDeny()), "bob", nil, "", "managed"},
		{"platform group updates", "locked", update, genChanged, gen, "carol", []string{"platform-admins"}, "", "managed"},
		{"platform group adds the label", "team", update, gen, mine, "carol", []string{"platform-admins"}, "", "managed"},
		{"the garbage collector deletes a generated policy", "locked", del, nil, gen, "system:serviceaccount:kube-system:generic-garbage-collector", nil, "", "managed"},
		{"the namespace controller deletes the default-deny", "team", del, nil, managed(defaultDeny()), "system:serviceaccount:kube-system:namespace-controller", nil, "", "managed"},
		{"kube-controller-manager deletes", "open", del, nil, gen, "system:kube-controller-manager", nil, "", "managed"},
		{"a system deleter may not change a managed policy", "open", update, genChanged, gen, "system:serviceaccount:kube-system:generic-garbage-collector", nil,
			denyMsg("backend-from-frontend", `"backend-from-frontend" is managed by netguard: only netguard and platform identities may update it, and user "system:serviceaccount:kube-system:generic-garbage-collector" is neither; change the owning workload's netguard.io annotations, or ask the platform team`), "managed"},
		{"the garbage collector orphans a generated policy", "locked", update, released, owned, gc, nil, "", "managed"},
		{"kube-controller-manager orphans a generated policy", "open", update, released, owned, "system:kube-controller-manager", nil, "", "managed"},
		{"orphaning may not change anything else", "open", update, releasedAndChanged, owned, gc, nil,
			denyMsg("backend-from-frontend", `"backend-from-frontend" is managed by netguard: only netguard and platform identities may update it, and user "`+gc+`" is neither; change the owning workload's netguard.io annotations, or ask the platform team`), "managed"},
		{"a system deleter may not add an ownerReference", "open", update, owned, released, gc, nil,
			denyMsg("backend-from-frontend", `"backend-from-frontend" is managed by netguard: only netguard and platform identities may update it, and user "`+gc+`" is neither; change the owning workload's netguard.io annotations, or ask the platform team`), "managed"},
		{"nobody else may orphan one", "open", update, released, owned, alice, nil,
			denyMsg("backend-from-frontend", `"backend-from-frontend" is managed by netguard: only netguard and platform identities may update it, and user "alice" is neither; change the owning workload's netguard.io annotations, or ask the platform team`), "managed"},
		{"a system deleter may not create one", "open", cr, gen, nil, "system:kube-controller-manager", nil,
			denyMsg("backend-from-frontend", `"backend-from-frontend" is labelled app.kubernetes.io/managed-by=netguard, which only netguard and platform identities may create; user "system:kube-controller-manager" is neither: remove the label`), "managed"},
		{"platform identity writes a raw policy in a managed namespace", "locked", cr, webhooktest.AnywherePolicy("raw"), nil, "bob", nil, "", "platform"},

		// Look-alikes are ordinary policies, judged by the level.
		{"name like the default-deny", "team", cr, webhooktest.AnywherePolicy("netguard-default-deny-2"), nil, alice, nil,
			denyMsg("netguard-default-deny-2", `violates netguard "baseline": `+vAnywhere), "enforce"},
		{"label value like netguard", "team", cr, withLabels(webhooktest.AnywherePolicy("web"), rules.LabelManagedBy, "Netguard"), nil, alice, nil,
			denyMsg("web", `violates netguard "baseline": `+vAnywhere), "enforce"},
		{"netguard's own raw policy is judged", "locked", cr, webhooktest.GoodPolicy("web"), nil, selfUser, nil,
			denyMsg("web", `violates netguard "managed": `+vRaw), "enforce"},
		{"deleting an ordinary policy", "locked", del, nil, webhooktest.AnywherePolicy("web"), alice, nil, "", "enforce"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, _ := newValidator(testConfig(), namespaces)
			decision := "allow"
			if tc.want != "" {
				decision = "deny"
			}
			level := "none"
			if tc.mode == "enforce" && tc.op != del {
				level = "baseline"
				if tc.ns == "locked" {
					level = "managed"
				}
			}
			counter := admissionDecisions.WithLabelValues("networkpolicies", string(tc.op), decision, tc.mode, level)
			before := counterValue(t, counter)
			resp := v.Handle(context.Background(), request(t, tc.op, tc.ns, tc.obj, tc.old, tc.user, tc.groups...))
			if tc.want == "" {
				assertAllowed(t, resp)
			} else {
				assertDenied(t, resp, tc.want)
			}
			if d := counterValue(t, counter) - before; d != 1 {
				t.Errorf("netguard_admission_decisions_total{operation=%q,decision=%q,mode=%q,level=%q} grew by %v, want 1", tc.op, decision, tc.mode, level, d)
			}
		})
	}
}

// A dry run gets exactly the verdict, warnings and annotations of the real
// request.
func TestDryRunSameVerdict(t *testing.T) {
	namespaces := map[string]map[string]string{"team": nil, "typo": {rules.LabelEnforce: "Baseline"}}
	reqs := map[string]func() admission.Request{
		"enforce deny":   func() admission.Request { return create(t, "team", webhooktest.AnywherePolicy("web"), alice) },
		"warn and audit": func() admission.Request { return create(t, "team", webhooktest.SameNamespacePolicy("web"), alice) },
		"clean allow":    func() admission.Request { return create(t, "team", webhooktest.GoodPolicy("web"), alice) },
		"managed deny": func() admission.Request {
			return request(t, admissionv1.Delete, "team", nil, managed(defaultDeny()), alice)
		},
		"label typo": func() admission.Request { return create(t, "typo", webhooktest.GoodPolicy("web"), alice) },
		"exempt":     func() admission.Request { return create(t, "sandbox", webhooktest.AnywherePolicy("web"), alice) },
	}
	for name, mk := range reqs {
		t.Run(name, func(t *testing.T) {
			v, _ := newValidator(testConfig(), namespaces)
			real := mk()
			dry := real
			yes := true
			dry.DryRun = &yes
			a := v.Handle(context.Background(), real)
			b := v.Handle(context.Background(), dry)
			if !reflect.DeepEqual(a, b) {
				t.Errorf("dry run differs:\n real %+v\n  dry %+v", a, b)
			}
		})
	}
}

// Requests netguard cannot read are denied with 400, never allowed.
func TestMalformedRequests(t *testing.T) {
	v, _ := newValidator(testConfig(), map[string]map[string]string{"team": nil})
	good := func() admission.Request { return create(t, "team", webhooktest.GoodPolicy("web"), alice) }
	cases := []struct {
		name   string
		mutate func(*admission.Request)
		want   string
	}{
		{"undecodable object", func(r *admission.Request) { r.Object.Raw = []byte(`{"spec": [`) }, "request.object is not a NetworkPolicy: "},
		{"wrong field type", func(r *admission.Request) { r.Object.Raw = []byte(`{"spec": {"ingress": "everything"}}`) }, "request.object is not a NetworkPolicy: "},
		{"missing object", func(r *admission.Request) { r.Object.Raw = nil }, "request.object is missing"},
		{"wrong kind", func(r *admission.Request) {
			r.Kind = metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
		}, "this webhook handles networking.k8s.io NetworkPolicy, not /v1, Kind=Pod"},
		{"object of another kind", func(r *admission.Request) {
			r.Object.Raw = []byte(`{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}}`)
		}, "request.object is /v1, Kind=Pod, want networking.k8s.io/v1 NetworkPolicy"},
		{"update without oldObject", func(r *admission.Request) { r.Operation = admissionv1.Update }, "request.oldObject is missing"},
		{"delete without oldObject", func(r *admission.Request) { r.Operation = admissionv1.Delete }, "request.oldObject is missing"},
		{"connect", func(r *admission.Request) { r.Operation = admissionv1.Connect }, `operation "CONNECT" is not handled`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := good()
			tc.mutate(&req)
			before := counterValue(t, admissionDecisions.WithLabelValues("networkpolicies", string(req.Operation), "error", "enforce", "none"))
			resp := v.Handle(context.Background(), req)
			if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusBadRequest {
				t.Fatalf("want a 400 denial, got allowed=%v result %+v", resp.Allowed, resp.Result)
			}
			if !strings.HasPrefix(resp.Result.Message, tc.want) {
				t.Errorf("message %q, want it to start with %q", resp.Result.Message, tc.want)
			}
			if d := counterValue(t, admissionDecisions.WithLabelValues("networkpolicies", string(req.Operation), "error", "enforce", "none")) - before; d != 1 {
				t.Errorf("error decisions grew by %v, want 1", d)
			}
		})
	}
}

// Before the namespace cache has synced, evaluated requests fail with a
// retryable 503 instead of being judged against unknown labels.
func TestCachesNotSynced(t *testing.T) {
	v, ns := newValidator(testConfig(), nil)
	ns.err = errNotSynced
	resp := v.Handle(context.Background(), create(t, "team", webhooktest.GoodPolicy("web"), alice))
	if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusServiceUnavailable {
		t.Fatalf("want 503, got allowed=%v result %+v", resp.Allowed, resp.Result)
	}
	if resp.Result.Message != "netguard is starting and its caches are not synced yet; retry in a few seconds" {
		t.Errorf("message %q", resp.Result.Message)
	}
	if err := (&apierrors.StatusError{ErrStatus: *resp.Result}); !apierrors.IsServiceUnavailable(err) {
		t.Errorf("clients do not see a retryable ServiceUnavailable: %v", err)
	}

	// Any other failure to read the namespace is a 500, still a denial.
	ns.err = errors.New("boom")
	resp = v.Handle(context.Background(), create(t, "team", webhooktest.GoodPolicy("web"), alice))
	if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusInternalServerError {
		t.Fatalf("want 500, got allowed=%v result %+v", resp.Allowed, resp.Result)
	}
}

// The controller-runtime webhook echoes the request's UID in every kind of
// response, over HTTP as the API server sees it.
func TestResponseUIDEchoesRequest(t *testing.T) {
	v, ns := newValidator(testConfig(), map[string]map[string]string{"team": nil})
	wh := &admission.Webhook{Handler: v}
	reqs := map[string]admission.Request{
		"allowed": create(t, "team", webhooktest.GoodPolicy("web"), alice),
		"warned":  create(t, "team", webhooktest.SameNamespacePolicy("web"), alice),
		"denied":  create(t, "team", webhooktest.AnywherePolicy("web"), alice),
		"managed": request(t, admissionv1.Delete, "team", nil, managed(defaultDeny()), alice),
		"malformed": func() admission.Request {
			r := create(t, "team", webhooktest.GoodPolicy("web"), alice)
			r.Object.Raw = []byte(`{"spec": "everything"}`)
			return r
		}(),
	}
	for name, req := range reqs {
		t.Run(name, func(t *testing.T) {
			if resp := wh.Handle(context.Background(), req); resp.UID != req.UID {
				t.Errorf("Handle: response uid %q, want %q", resp.UID, req.UID)
			}
			review := admissionv1.AdmissionReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
				Request:  &req.AdmissionRequest,
			}
			body, err := json.Marshal(review)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			hr := httptest.NewRequest(http.MethodPost, PathValidateNetworkPolicy, bytes.NewReader(body))
			hr.Header.Set("Content-Type", "application/json")
			wh.ServeHTTP(rec, hr)
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatalf("response %q: %v", rec.Body.String(), err)
			}
			if out.Response == nil || out.Response.UID != req.UID {
				t.Errorf("ServeHTTP: response %+v, want uid %q", out.Response, req.UID)
			}
		})
	}
	ns.err = errNotSynced
	req := create(t, "team", webhooktest.GoodPolicy("web"), alice)
	if resp := wh.Handle(context.Background(), req); resp.UID != req.UID || resp.Result.Code != http.StatusServiceUnavailable {
		t.Errorf("not synced: uid %q code %d, want uid %q and 503", resp.UID, resp.Result.Code, req.UID)
	}
}

// Violations are counted per rule and mode; the decision counter has the
// documented labels; every label value comes from a small fixed set.
func TestMetrics(t *testing.T) {
	v, _ := newValidator(testConfig(), map[string]map[string]string{
		"team": nil,
		"warn": {rules.LabelEnforce: "privileged", rules.LabelWarn: "baseline", rules.LabelAudit: "privileged"},
	})
	ctx := context.Background()
	count := func(rule, mode string) float64 { return counterValue(t, ruleViolations.WithLabelValues(rule, mode)) }
	decisions := func(op, decision, mode, level string) float64 {
		return counterValue(t, admissionDecisions.WithLabelValues("networkpolicies", op, decision, mode, level))
	}

	b := map[string]float64{
		"enforce": count("ingressFromAnywhere", "enforce"),
		"warn":    count("ingressFromAnywhere", "warn"),
		"auditP":  count("ingressAllPodsFromAllPods", "audit"),
		"auditA":  count("ingressAllPorts", "audit"),
		"warnP":   count("ingressAllPodsFromAllPods", "warn"),
		"deny":    decisions("CREATE", "deny", "enforce", "baseline"),
		"allow":   decisions("CREATE", "allow", "enforce", "baseline"),
		"allowP":  decisions("CREATE", "allow", "enforce", "privileged"),
	}
	v.Handle(ctx, create(t, "team", webhooktest.AnywherePolicy("web"), alice))      // enforce: ingressFromAnywhere
	v.Handle(ctx, create(t, "team", webhooktest.SameNamespacePolicy("web"), alice)) // warn + audit: allPods, allPorts
	v.Handle(ctx, create(t, "warn", webhooktest.AnywherePolicy("web"), alice))      // warn: ingressFromAnywhere

	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{`netguard_rule_violations_total{rule="ingressFromAnywhere",mode="enforce"}`, count("ingressFromAnywhere", "enforce") - b["enforce"], 1},
		{`netguard_rule_violations_total{rule="ingressFromAnywhere",mode="warn"}`, count("ingressFromAnywhere", "warn") - b["warn"], 1},
		{`netguard_rule_violations_total{rule="ingressAllPodsFromAllPods",mode="audit"}`, count("ingressAllPodsFromAllPods", "audit") - b["auditP"], 1},
		{`netguard_rule_violations_total{rule="ingressAllPorts",mode="audit"}`, count("ingressAllPorts", "audit") - b["auditA"], 1},
		{`netguard_rule_violations_total{rule="ingressAllPodsFromAllPods",mode="warn"}`, count("ingressAllPodsFromAllPods", "warn") - b["warnP"], 1},
		{`decisions{CREATE,deny,enforce,baseline}`, decisions("CREATE", "deny", "enforce", "baseline") - b["deny"], 1},
		{`decisions{CREATE,allow,enforce,baseline}`, decisions("CREATE", "allow", "enforce", "baseline") - b["allow"], 1},
		{`decisions{CREATE,allow,enforce,privileged}`, decisions("CREATE", "allow", "enforce", "privileged") - b["allowP"], 1},
	} {
		if c.got != c.want {
			t.Errorf("%s grew by %v, want %v", c.name, c.got, c.want)
		}
	}

	// The metrics are on controller-runtime's registry, which the manager
	// serves on /metrics, and their labels are bounded.
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	ruleIDs := map[string]bool{}
	for _, c := range rules.Checks() {
		ruleIDs[c.ID] = true
	}
	levels := map[string]bool{"none": true}
	for _, l := range rules.Levels() {
		levels[string(l)] = true
	}
	allowed := map[string]map[string]map[string]bool{
		// The workload webhooks share the decision counter with their own
		// resources and mode "inject"; the namespace-label webhook with
		// resource "namespaces" and mode "labels" (docs/metrics.md).
		"netguard_admission_decisions_total": {
			"resource":  {"networkpolicies": true, "deployments": true, "statefulsets": true, "daemonsets": true, "jobs": true, "cronjobs": true, "replicasets": true, "pods": true, "unknown": true, "namespaces": true, "localnetworkconfigs": true},
			"operation": {"CREATE": true, "UPDATE": true, "DELETE": true, "CONNECT": true, "unknown": true},
			"decision":  {"allow": true, "deny": true, "error": true},
			"mode":      {"enforce": true, "exempt": true, "managed": true, "platform": true, "inject": true, "labels": true},
			"level":     levels,
		},
		"netguard_rule_violations_total":        {"rule": ruleIDs, "mode": {"enforce": true, "warn": true, "audit": true}},
		"netguard_namespace_label_errors_total": {"mode": {"enforce": true, "warn": true, "audit": true}},
	}
	found := map[string]bool{}
	for _, f := range families {
		labels, ok := allowed[f.GetName()]
		if !ok {
			continue
		}
		found[f.GetName()] = true
		for _, m := range f.GetMetric() {
			values := map[string]string{}
			for _, lp := range m.GetLabel() {
				values[lp.GetName()] = lp.GetValue()
				if !labels[lp.GetName()][lp.GetValue()] {
					t.Errorf("%s has label %s=%q outside its documented set", f.GetName(), lp.GetName(), lp.GetValue())
				}
			}
			if values["resource"] == "networkpolicies" && values["mode"] == "inject" {
				t.Errorf("%s: a NetworkPolicy decision in mode inject", f.GetName())
			}
		}
	}
	for name := range allowed {
		if name != "netguard_namespace_label_errors_total" && !found[name] {
			t.Errorf("%s is not on controller-runtime's metrics registry", name)
		}
	}
}

// Denials are logged at info with their rule IDs; allows only at debug.
func TestLogging(t *testing.T) {
	v, _ := newValidator(testConfig(), map[string]map[string]string{"team": nil})

	ctx, logs := captureLogs(0)
	v.Handle(ctx, create(t, "team", webhooktest.AnywherePolicy("web"), alice))
	line := logs.find("denied NetworkPolicy")
	if line == nil {
		t.Fatalf("no info line for a denial; logs:\n%s", logs)
	}
	if got := fmt.Sprint(line["rules"]); got != "[ingressFromAnywhere]" || line["level"] != "baseline" || line["v"] != float64(0) {
		t.Errorf("denial log line %v, want rules [ingressFromAnywhere], level baseline at info", line)
	}
	v.Handle(ctx, request(t, admissionv1.Delete, "team", nil, managed(defaultDeny()), alice))
	if line := logs.find("denied change to a managed NetworkPolicy"); line == nil || line["user"] != alice {
		t.Errorf("managed denial log line %v; logs:\n%s", line, logs)
	}
	v.Handle(ctx, create(t, "team", webhooktest.GoodPolicy("web"), alice))
	if line := logs.find("allowed NetworkPolicy"); line != nil {
		t.Errorf("an allow is logged at info: %v", line)
	}

	ctx, logs = captureLogs(1)
	v.Handle(ctx, create(t, "team", webhooktest.SameNamespacePolicy("web"), alice))
	line = logs.find("allowed NetworkPolicy")
	if line == nil || line["v"] != float64(1) || line["warnings"] != float64(2) {
		t.Errorf("debug allow line %v; logs:\n%s", line, logs)
	}
}

// logLines collects JSON log lines.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
}

func (l *logLines) find(msg string) map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if line["msg"] == msg {
			return line
		}
	}
	return nil
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, line := range l.lines {
		fmt.Fprintln(&b, line)
	}
	return b.String()
}

// captureLogs returns a context whose logger records lines up to verbosity v;
// the info level is under the key "v" so it does not clash with netguard's
// "level" key.
func captureLogs(v int) (context.Context, *logLines) {
	l := &logLines{}
	key := "v"
	logger := funcr.NewJSON(func(obj string) {
		var m map[string]any
		if err := json.Unmarshal([]byte(obj), &m); err != nil {
			m = map[string]any{"unparsed": obj}
		}
		l.mu.Lock()
		l.lines = append(l.lines, m)
		l.mu.Unlock()
	}, funcr.Options{Verbosity: v, LogInfoLevel: &key})
	return logr.NewContext(context.Background(), logger), l
}

// counterValue reads one counter; prometheus/testutil would pull in a new
// module for this one line.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
