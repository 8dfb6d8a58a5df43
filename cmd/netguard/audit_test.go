package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	configv1alpha1 "github.com/netguard/netguard/api/config/v1alpha1"
	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// fakeCluster pages lists as the API server does and records them
// (webhooktest.Cluster).
type fakeCluster = webhooktest.Cluster

func newFakeCluster(t *testing.T, objs ...client.Object) *fakeCluster {
	t.Helper()
	s := runtime.NewScheme() // not manifestScheme: the fake registers kinds in its scheme
	utilruntime.Must(corev1.AddToScheme(s))
	utilruntime.Must(appsv1.AddToScheme(s))
	utilruntime.Must(networkingv1.AddToScheme(s))
	utilruntime.Must(netguardv1alpha1.AddToScheme(s))
	return webhooktest.NewCluster(fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build())
}

// useCluster makes audit talk to c, with "shop" as the kubeconfig
// context's namespace.
func useCluster(t *testing.T, c client.Reader) {
	t.Helper()
	old := newAuditClient
	newAuditClient = func(*auditOptions) (client.Reader, string, string, error) {
		return c, "https://cluster.example", "shop", nil
	}
	t.Cleanup(func() { newAuditClient = old })
}

func auditRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(append([]string{"audit"}, args...), ioStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	return code, out.String(), errOut.String()
}

func ns(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func netpol(namespace, name string, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Spec: spec}
}

// fromAnywhere violates baseline: ingressFromAnywhere.
func fromAnywhere(namespace, name string) *networkingv1.NetworkPolicy {
	p := intstr.FromInt32(80)
	return netpol(namespace, name, networkingv1.NetworkPolicySpec{
		Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: &p}}}},
	})
}

// sameNamespace passes baseline and violates restricted.
func sameNamespace(namespace, name string) *networkingv1.NetworkPolicy {
	p := intstr.FromInt32(8080)
	return netpol(namespace, name, networkingv1.NetworkPolicySpec{
		Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}},
			Ports: []networkingv1.NetworkPolicyPort{{Port: &p}},
		}},
	})
}

func denyAll(namespace string) *networkingv1.NetworkPolicy {
	return rules.NamespaceBaseline(namespace, rules.BaselineOptions{})[1]
}

func allowDNS(namespace string) *networkingv1.NetworkPolicy {
	return rules.NamespaceBaseline(namespace, rules.BaselineOptions{})[0]
}

func deployment(namespace, name string, ann map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Annotations: ann}}
}

// smallCluster: "clean" passes; "shop" has a policy from anywhere, one that
// only restricted rejects, and no default-deny (but netguard-allow-dns);
// kube-system is exempt.
func smallCluster(t *testing.T) *fakeCluster {
	return newFakeCluster(t,
		ns("clean", nil), denyAll("clean"), allowDNS("clean"), sameNamespace("clean", "same-namespace"),
		ns("shop", nil), allowDNS("shop"), fromAnywhere("shop", "open"), sameNamespace("shop", "same-namespace"),
		ns("kube-system", nil), fromAnywhere("kube-system", "anything"),
	)
}

func TestAuditText(t *testing.T) {
	useCluster(t, smallCluster(t))
	code, out, errOut := auditRun(t, "-A")
	if code != 1 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	want := `Namespace shop (enforce baseline):
  [missingDefaultDeny] NetworkPolicy "netguard-default-deny" is missing, so pods that no other policy selects accept and send any traffic, although the namespace enforces "baseline"; netguard serve creates it (podSelector {}, policyTypes [Ingress, Egress], no rules)
NetworkPolicy shop/open violates baseline
  [ingressFromAnywhere] spec.ingress[0]: ` + anywhereMessage(t) + `

NAMESPACE    ENFORCE   POLICIES  BASELINE  RESTRICTED  MANAGED  WORKLOADS  NOT ALLOWED
clean        baseline  1         0*        1           1        0          0
kube-system  exempt    -         -         -           -        -          -
shop         baseline  2         1*        2           2        0          2

POLICIES are raw NetworkPolicies; a level column counts those that would violate it (* the enforce level, - below it).
WORKLOADS are annotated workloads; NOT ALLOWED counts policies, workloads and the namespace that violate the enforce level.
3 namespaces audited (1 exempt), 3 NetworkPolicies, 0 annotated workloads: 2 objects not allowed (2 violations)
`
	if out != want {
		t.Errorf("text output:\n%s\nwant:\n%s", out, want)
	}
}

func anywhereMessage(t *testing.T) string {
	t.Helper()
	vs := rules.Evaluate(rules.LevelBaseline, rules.LatestVersion(), fromAnywhere("x", "y"))
	if len(vs) != 1 {
		t.Fatalf("fromAnywhere: %v", vs)
	}
	return vs[0].Message
}

// TestAuditJSONSchema pins the JSON form documented in docs/audit.md: check's
// results and errors, with level and stricter, plus namespaces.
func TestAuditJSONSchema(t *testing.T) {
	useCluster(t, smallCluster(t))
	code, out, errOut := auditRun(t, "-n", "shop", "-o", "json")
	if code != 1 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	restricted := rules.Evaluate(rules.LevelRestricted, rules.LatestVersion(), sameNamespace("shop", "same-namespace"))
	managed := rules.Evaluate(rules.LevelManaged, rules.LatestVersion(), sameNamespace("shop", "same-namespace"))
	openR := rules.Evaluate(rules.LevelRestricted, rules.LatestVersion(), fromAnywhere("shop", "open"))
	openM := rules.Evaluate(rules.LevelManaged, rules.LatestVersion(), fromAnywhere("shop", "open"))
	js := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	want := `{"results":[` +
		`{"kind":"Namespace","namespace":"","name":"shop","level":"baseline","allowed":false,"violations":[{"rule":"missingDefaultDeny","field":"","message":"NetworkPolicy \"netguard-default-deny\" is missing, so pods that no other policy selects accept and send any traffic, although the namespace enforces \"baseline\"; netguard serve creates it (podSelector {}, policyTypes [Ingress, Egress], no rules)"}]},` +
		`{"kind":"NetworkPolicy","namespace":"shop","name":"open","level":"baseline","allowed":false,"violations":[{"rule":"ingressFromAnywhere","field":"spec.ingress[0]","message":` + js(anywhereMessage(t)) + `}],` +
		`"stricter":[{"level":"restricted","violations":` + js(openR) + `},{"level":"managed","violations":` + js(openM) + `}]},` +
		`{"kind":"NetworkPolicy","namespace":"shop","name":"same-namespace","level":"baseline","allowed":true,"violations":[],` +
		`"stricter":[{"level":"restricted","violations":` + js(restricted) + `},{"level":"managed","violations":` + js(managed) + `}]}` +
		`],"namespaces":[{"name":"shop","exempt":false,"enforce":"baseline","networkPolicies":2,"workloads":0,"notAllowed":2,` +
		`"levels":[{"level":"baseline","enforced":true,"networkPolicies":1},{"level":"restricted","enforced":false,"networkPolicies":2},{"level":"managed","enforced":false,"networkPolicies":2}]}]}`
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(out)); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if compact.String() != want {
		t.Errorf("JSON:\n got %s\nwant %s", compact.String(), want)
	}
}

// everyFinding is a cluster with every audit rule and several checks.
func everyFinding(t *testing.T) *fakeCluster {
	t.Helper()
	p := func(n int32) *intstr.IntOrString { v := intstr.FromInt32(n); return &v }
	oldMetrics := &netguardv1alpha1.NetworkProfile{ObjectMeta: metav1.ObjectMeta{Name: "metrics"}, Spec: netguardv1alpha1.NetworkProfileSpec{
		Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: p(9090)}}}}}}
	metrics := oldMetrics.DeepCopy()
	metrics.Spec.Ingress[0].Ports[0].Port = p(9091)

	api := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api", Annotations: map[string]string{rules.AnnotationProfiles: "metrics"}}}
	w, _ := rules.WorkloadFromObject(api)
	g, errs := rules.Generate(w, map[string]rules.Profile{"metrics": webhook.ProfileToRules(oldMetrics)})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	api.Annotations[rules.AnnotationGenerated] = g.Record().String()
	objs := []client.Object{
		metrics, api,
		ns("shop", nil),
		fromAnywhere("shop", "open"),
		netpol("shop", "ipblock", networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8"}}}, Ports: []networkingv1.NetworkPolicyPort{{Port: p(80)}}}}}),
		netpol("shop", "other-namespaces", networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}}, Ports: []networkingv1.NetworkPolicyPort{{Port: p(80)}}}}}),
		deployment("shop", "web", map[string]string{rules.AnnotationDependsOn: "api:8080"}),
		deployment("shop", "web2", map[string]string{rules.AnnotationComponent: "web"}),
		deployment("shop", "bad", map[string]string{rules.AnnotationDependsOn: "api"}),
		// A cross-namespace dependency nobody exposes.
		deployment("shop", "lonely", map[string]string{rules.AnnotationDependsOn: "tools/gw:80"}),
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "agent", Annotations: map[string]string{rules.AnnotationProfiles: "nope"}}},
		// A profile offered to another namespace only.
		&netguardv1alpha1.NetworkProfile{ObjectMeta: metav1.ObjectMeta{Name: "kannika"}, Spec: netguardv1alpha1.NetworkProfileSpec{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kannika"}},
			Egress:            []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: p(8080)}}}}}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "borrower", Annotations: map[string]string{rules.AnnotationProfiles: "kannika"}}},
		&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "netguard.gone.depends-on",
			Labels:      map[string]string{rules.LabelManagedBy: rules.ManagedByValue},
			Annotations: map[string]string{rules.AnnotationWorkload: "Deployment/gone"}}},
		// LocalNetworkConfigs whose components may select the same pods,
		// one whose cross-namespace dependency has no other side, and one
		// that does not validate.
		localConfig("shop", "edge", "gw", map[string]string{"app": "gw"}),
		localConfig("shop", "wide", "all", map[string]string{"tier": "x"}),
		crossConfig("shop"),
		exposeEverywhereConfig("shop"),
		ns("tools", map[string]string{rules.LabelEnforce: "strict"}),
		netpol("tools", rules.DefaultDenyPolicyName, networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{}}}),
	}
	for _, gp := range g.Policies {
		objs = append(objs, gp)
	}
	return newFakeCluster(t, objs...)
}

func TestAuditReportsEveryFinding(t *testing.T) {
	useCluster(t, everyFinding(t))
	code, out, errOut := auditRun(t, "-A", "-o", "json")
	if code != 1 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var report struct {
		Results []struct {
			Kind, Namespace, Name, Level string
			Allowed                      bool
			Violations                   []rules.Violation
		}
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	seen := map[string]bool{}
	for _, r := range report.Results {
		key := r.Kind + " " + r.Name
		for _, v := range r.Violations {
			got[key] = append(got[key], v.Rule)
			seen[v.Rule] = true
		}
		if r.Allowed != (len(r.Violations) == 0) {
			t.Errorf("%s: allowed %v with %d violations", key, r.Allowed, len(r.Violations))
		}
	}
	want := map[string][]string{
		"Namespace shop":                         {"missingDefaultDeny", "missingGeneratedPolicy"},
		"NetworkPolicy ipblock":                  {"ingressFromIPBlock"},
		"NetworkPolicy netguard.gone.depends-on": {"orphanedGeneratedPolicy"},
		"NetworkPolicy open":                     {"ingressFromAnywhere"},
		"NetworkPolicy other-namespaces":         {"ingressFromOtherNamespaces"},
		"DaemonSet agent":                        {"unknownProfile"},
		"DaemonSet borrower":                     {"profileOutOfScope"},
		// Not labelled as netguard's: someone else wrote it.
		"NetworkPolicy netguard-default-deny": {"reservedPolicyName"},
		"Deployment bad":                      {"invalidAnnotations"},
		"Deployment web":                      {"missingGeneratedPolicy", "missingGeneratedPolicy", "missingGeneratedRecord"},
		"Deployment web2":                     {"duplicateComponent"},
		"Deployment lonely":                   {"missingGeneratedRecord", "oneSidedConsent"},
		"StatefulSet api":                     {"staleGeneratedPolicy", "staleGeneratedRecord"},
		"Namespace tools":                     {"invalidNamespaceLabel", "missingGeneratedPolicy", "weakDefaultDeny"},
		"LocalNetworkConfig edge":             {"overlappingComponent"},
		"LocalNetworkConfig wide":             {"overlappingComponent"},
		"LocalNetworkConfig cross":            {"oneSidedConsent"},
		"LocalNetworkConfig everywhere":       {"invalidLocalNetworkConfig"},
	}
	for _, ids := range got {
		slices.Sort(ids)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("findings:\n got %v\nwant %v", got, want)
	}
	for _, id := range rules.AuditRules() {
		if !seen[id] {
			t.Errorf("audit rule %q has no case here; add one", id)
		}
	}

	// In text, a policy "violates" a level only for a check; findings
	// about generated policies, workloads and namespaces are listed.
	_, text, _ := auditRun(t, "-A")
	for _, heading := range []string{
		"\nNetworkPolicy shop/open violates baseline\n",
		"\nNetworkPolicy shop/netguard.gone.depends-on:\n",
		"\nDeployment shop/web:\n",
		"\nNamespace tools (enforce managed):\n",
	} {
		if !strings.Contains(text, heading) {
			t.Errorf("text output has no heading %q:\n%s", heading, text)
		}
	}
}

func TestAuditReadsInPages(t *testing.T) {
	objs := []client.Object{ns("shop", nil), denyAll("shop"), allowDNS("shop")}
	for i := range 4 {
		objs = append(objs, sameNamespace("shop", fmt.Sprintf("p%d", i)), deployment("shop", fmt.Sprintf("d%d", i), nil))
	}
	c := newFakeCluster(t, objs...)
	useCluster(t, c)
	code, out, errOut := auditRun(t, "-n", "shop", "--chunk-size", "2", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q\n%s", code, errOut, out)
	}
	// The order is serve's background audit's (webhook.AuditReader): the
	// profiles, then the policies, then the workload kinds in
	// rules.WorkloadKinds order.
	want := []string{
		"NetworkProfileList limit=2 continue=",
		"NetworkPolicyList limit=2 continue=", "NetworkPolicyList limit=2 continue=2", "NetworkPolicyList limit=2 continue=4",
		"DeploymentList limit=2 continue=", "DeploymentList limit=2 continue=2",
		"StatefulSetList limit=2 continue=",
		"DaemonSetList limit=2 continue=",
		"JobList limit=2 continue=",
		"CronJobList limit=2 continue=",
		"PodList limit=2 continue=",
		"LocalNetworkConfigList limit=2 continue=",
	}
	if !reflect.DeepEqual(c.Lists(), want) {
		t.Errorf("lists:\n got %q\nwant %q", c.Lists(), want)
	}
	if n := strings.Count(out, `"kind": "NetworkPolicy"`); n != 4 {
		t.Errorf("%d NetworkPolicy results, want 4 (the baseline has none of its own)", n)
	}

	// The default page is 500, as kubectl's.
	c.Reset()
	if code, _, errOut := auditRun(t, "-A"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if lists := c.Lists(); lists[0] != "NamespaceList limit=500 continue=" {
		t.Errorf("first list %q", lists[0])
	}
}

func TestAuditScope(t *testing.T) {
	useCluster(t, smallCluster(t))
	namespaces := func(args ...string) []string {
		t.Helper()
		_, out, errOut := auditRun(t, append(args, "-o", "json")...)
		var r auditReport
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: %v\n%s%s", args, err, out, errOut)
		}
		var names []string
		for _, n := range r.Namespaces {
			names = append(names, n.Name)
		}
		for _, res := range r.Results {
			if n := res.Namespace; n != "" && !slices.Contains(names, n) {
				t.Errorf("%v: a result in namespace %q, which is not in scope", args, n)
			}
		}
		return names
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-A"}, []string{"clean", "kube-system", "shop"}},
		{[]string{"--all-namespaces"}, []string{"clean", "kube-system", "shop"}},
		{[]string{"-n", "clean"}, []string{"clean"}},
		{nil, []string{"shop"}}, // the kubeconfig context's namespace
	} {
		if got := namespaces(tc.args...); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v: namespaces %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestAuditExitCodes(t *testing.T) {
	dir := t.TempDir()
	strict := filepath.Join(dir, "strict.yaml")
	if err := os.WriteFile(strict, []byte("apiVersion: netguard.io/v1alpha1\nkind: NetguardConfiguration\ndefaults:\n  enforce: restricted\nexemptions:\n  namespaces: [shop]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: netguard.io/v1alpha1\nkind: NetguardConfiguration\ndefaults:\n  enforce: strict\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	useCluster(t, smallCluster(t))
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string // the one line on stderr, when code is 2
	}{
		{"nothing violated", []string{"-n", "clean"}, 0, ""},
		{"a violation", []string{"-n", "shop"}, 1, ""},
		{"exempt by the configuration file", []string{"-n", "shop", "--config", strict, "--default-enforce", "baseline"}, 0, ""},
		{"the file's default enforce level", []string{"-n", "clean", "--config", strict}, 1, ""},
		{"a flag overrides the file", []string{"-n", "clean", "--config", strict, "--default-enforce", "baseline"}, 0, ""},
		{"exempt by flag", []string{"-n", "shop", "--exempt-namespaces", "shop"}, 0, ""},
		{"netguard's own namespace is exempt", []string{"-n", "shop", "--netguard-namespace", "shop"}, 0, ""},
		{"-n and -A", []string{"-n", "shop", "-A"}, 2, "netguard: --namespace and --all-namespaces: give one or the other\n"},
		{"bad output", []string{"-o", "yaml"}, 2, "netguard: --output \"yaml\" is not supported; use text or json\n"},
		{"bad namespace name", []string{"-n", "Shop"}, 2, "netguard: --namespace \"Shop\" is not a valid namespace name\n"},
		{"no such namespace", []string{"-n", "nope"}, 2, "netguard: namespace \"nope\" does not exist; check the name, or audit every namespace with -A\n"},
		{"bad configuration", []string{"--config", bad}, 2, "netguard: --config \"" + bad + "\": defaults.enforce: Invalid value: \"strict\": unknown level \"strict\"; use privileged, baseline, restricted or managed, optionally with :v<major>.<minor>\n"},
		{"bad level flag", []string{"--default-enforce", "strict"}, 2, "netguard: --default-enforce: unknown level \"strict\"; use privileged, baseline, restricted or managed, optionally with :v<major>.<minor>\n"},
		{"bad chunk size", []string{"--chunk-size", "0"}, 2, "netguard: --chunk-size 0: must be at least 1\n"},
		{"arguments", []string{"shop"}, 2, "netguard: unknown command \"shop\" for \"netguard audit\"\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := auditRun(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.code, errOut)
			}
			if errOut != tc.stderr {
				t.Errorf("stderr %q, want %q", errOut, tc.stderr)
			}
		})
	}
}

// An API server that cannot be reached is exit 2 and one line, whatever
// client-go would like to say.
func TestAuditUnreachableAPIServer(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters:
- name: gone
  cluster: {server: "https://127.0.0.1:1"}
contexts:
- name: gone
  context: {cluster: gone, user: nobody}
current-context: gone
users:
- name: nobody
  user: {token: t}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-A"}, {"-n", "shop", "-o", "json"}} {
		code, out, errOut := auditRun(t, append(args, "--kubeconfig", kubeconfig)...)
		if code != 2 || out != "" {
			t.Errorf("%v: exit %d, stdout %q", args, code, out)
		}
		if strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "netguard: cannot read the cluster at https://127.0.0.1:1: ") || !strings.Contains(errOut, "connection refused") {
			t.Errorf("%v: stderr %q, want one line naming the server and the cause", args, errOut)
		}
	}
	code, _, errOut := auditRun(t, "--kubeconfig", filepath.Join(t.TempDir(), "missing"))
	if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "--kubeconfig") {
		t.Errorf("missing kubeconfig: exit %d, stderr %q", code, errOut)
	}
}

func TestAuditWithoutTheProfileAPI(t *testing.T) {
	c := newFakeCluster(t, ns("shop", nil), denyAll("shop"),
		deployment("shop", "web", map[string]string{rules.AnnotationProfiles: "metrics"}))
	useCluster(t, interceptor.NewClient(c, interceptor.Funcs{
		List: func(ctx context.Context, cl client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if _, ok := list.(*netguardv1alpha1.NetworkProfileList); ok {
				return &meta.NoKindMatchError{GroupKind: netguardv1alpha1.GroupVersion.WithKind("NetworkProfile").GroupKind()}
			}
			return cl.List(ctx, list, opts...)
		},
	}))
	code, out, errOut := auditRun(t, "-n", "shop")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if errOut != "netguard: the NetworkProfile API (netguard.io/v1alpha1) is not installed; workloads that name a profile are reported as unknownProfile\n" {
		t.Errorf("stderr %q", errOut)
	}
	if !strings.Contains(out, "[unknownProfile]") {
		t.Errorf("no unknownProfile finding:\n%s", out)
	}
}

func TestAuditProgress(t *testing.T) {
	var b bytes.Buffer
	if p := newProgress(&b); p.on {
		t.Error("progress is on for a buffer; it must be only for a terminal")
	}
	p := &progress{w: &b, on: true}
	count := p.counter("NetworkPolicies")
	for range 250 {
		count()
	}
	p.done()
	want := "\rnetguard: reading NetworkPolicies: 1\033[K\rnetguard: reading NetworkPolicies: 100\033[K\rnetguard: reading NetworkPolicies: 200\033[K\r\033[K"
	if b.String() != want {
		t.Errorf("progress %q, want %q", b.String(), want)
	}
}

// The background audit's options come from the merged configuration, and
// --audit-interval overrides audit.interval.
func TestServeAuditConfiguration(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("apiVersion: netguard.io/v1alpha1\nkind: NetguardConfiguration\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	file := write("config.yaml", "audit:\n  interval: 5m\n  maxObjectsPerCycle: 100\n")
	zero := write("zero.yaml", "audit:\n  interval: 0s\n")
	negative := write("negative.yaml", "audit:\n  maxObjectsPerCycle: -1\n")
	merged := func(args ...string) (webhook.AuditOptions, error) {
		o := defaultServeOptions()
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		o.AddFlags(fs)
		if err := fs.Parse(args); err != nil {
			return webhook.AuditOptions{}, err
		}
		cfg, err := loadServeConfig(o.ConfigFile)
		if err != nil {
			return webhook.AuditOptions{}, err
		}
		if err := o.mergeFlags(fs, cfg); err != nil {
			return webhook.AuditOptions{}, err
		}
		wc, err := o.webhookConfig(cfg)
		if err != nil {
			return webhook.AuditOptions{}, err
		}
		return backgroundAuditOptions(cfg, wc), nil
	}
	for _, tc := range []struct {
		args     []string
		interval time.Duration
		max      int
		err      string
	}{
		{nil, time.Minute, configv1alpha1.DefaultAuditMaxObjectsPerCycle, ""},
		{[]string{"--config", file}, 5 * time.Minute, 100, ""},
		{[]string{"--config", file, "--audit-interval", "2s"}, 2 * time.Second, 100, ""},
		{[]string{"--audit-interval", "0s"}, 0, 0, "--audit-interval 0s: must be greater than 0"},
		{[]string{"--config", zero}, 0, 0, `--config "` + zero + `": audit.interval: Invalid value: "0s": must be greater than 0`},
		{[]string{"--config", negative}, 0, 0, `--config "` + negative + `": audit.maxObjectsPerCycle: Invalid value: -1: must not be negative (0 means 5000)`},
	} {
		got, err := merged(tc.args...)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%v: error %v, want %s", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if got.Interval != tc.interval || got.MaxObjectsPerCycle != tc.max {
			t.Errorf("%v: interval %s, max %d; want %s, %d", tc.args, got.Interval, got.MaxObjectsPerCycle, tc.interval, tc.max)
		}
		if got.Defaults.Enforce.String() != "baseline" || !reflect.DeepEqual(got.ExemptNamespaces, []string{"kube-system", "netguard-system"}) {
			t.Errorf("%v: defaults %s, exempt %q: want the admission configuration's", tc.args, got.Defaults.Enforce, got.ExemptNamespaces)
		}
	}
}

func localConfig(namespace, name, component string, labels map[string]string) *netguardv1alpha1.LocalNetworkConfig {
	return &netguardv1alpha1.LocalNetworkConfig{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: netguardv1alpha1.LocalNetworkConfigSpec{Components: map[string]netguardv1alpha1.LocalComponent{
			component: {PodSelector: metav1.LabelSelector{MatchLabels: labels}},
		}}}
}

// exposeEverywhereConfig exposes a component with an empty namespace
// selector, which netguard refuses: it must be said explicitly.
func exposeEverywhereConfig(namespace string) *netguardv1alpha1.LocalNetworkConfig {
	l := localConfig(namespace, "everywhere", "metrics", map[string]string{"app": "metrics", "tier": "metrics"})
	c := l.Spec.Components["metrics"]
	c.ExposeTo = []netguardv1alpha1.LocalExposure{{Ports: []netguardv1alpha1.LocalExposedPort{{Port: intstr.FromInt32(9090)}}}}
	l.Spec.Components["metrics"] = c
	return l
}

func crossConfig(namespace string) *netguardv1alpha1.LocalNetworkConfig {
	l := localConfig(namespace, "cross", "gateway", map[string]string{"app": "gateway", "tier": "gateway"})
	p := intstr.FromInt32(8082)
	c := l.Spec.Components["gateway"]
	c.DependsOn = []netguardv1alpha1.LocalDependency{{Namespace: "kannika-system", Component: "event-gateway", Port: &p}}
	l.Spec.Components["gateway"] = c
	return l
}
