package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/netguard/netguard/e2e/cluster"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// The user-facing texts these tests expect verbatim.
const (
	webhookDenied = `admission webhook "networkpolicies.netguard.io" denied the request: `
	policyDenied  = `ValidatingAdmissionPolicy 'networkpolicies.netguard.io' with binding 'networkpolicies.netguard.io' denied request: `
	policyWarned  = `Validation failed for ValidatingAdmissionPolicy 'netguard-warn' with binding 'netguard-warn': `
	vAnywhere     = "[ingressFromAnywhere] spec.ingress[0]: allows traffic from any source; select the client pods with podSelector or use a NetworkProfile"
	vAllPorts     = "[ingressAllPorts] spec.ingress[0]: allows every port of every protocol; list the ports in use under ports"
	vRaw          = "[rawNetworkPolicy] only platform identities and netguard's generated policies may write NetworkPolicies in this namespace; declare connections with netguard annotations and NetworkProfiles instead"

	// handWritten selects the policies the tests write, not the namespace
	// baseline netguard adds to every guarded namespace.
	handWritten = "!app.kubernetes.io/managed-by"

	auditViolationsKey = "networkpolicies.netguard.io/audit-violations"
	enforcePolicyKey   = "networkpolicies.netguard.io/enforce-policy"
	netguardUser       = "netguard"
)

func vAllPods(ns string) string {
	return `[ingressAllPodsFromAllPods] spec.ingress[0].from[0]: with spec.podSelector {} this lets every pod in namespace "` + ns + `" accept traffic from every pod in it; select the server pods in spec.podSelector or the client pods in podSelector`
}

// Manifests as a user writes them: the first passes restricted, the second
// passes only baseline, the third fails baseline.
const (
	goodYAML = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: frontend-to-backend
spec:
  podSelector:
    matchLabels: {app: backend}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector:
        matchLabels: {app: frontend}
    ports:
    - {protocol: TCP, port: 8080}
`
	sameNamespaceYAML = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: same-namespace
spec:
  podSelector: {}
  ingress:
  - from:
    - podSelector: {}
`
	anywhereYAML = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: from-anywhere
spec:
  podSelector:
    matchLabels: {app: backend}
  policyTypes: [Ingress]
  ingress:
  - ports:
    - {protocol: TCP, port: 8080}
`
)

// TestValidatingModesAndLevels creates namespaces at every level in every
// mode (the other two modes privileged) and writes three policies to each
// through the API server: enforce denies, warn returns warnings, audit
// annotates the audit log. Namespace labels come from netguard's informer,
// never from a GET per request.
func TestValidatingModesAndLevels(t *testing.T) {
	startValidating(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	warnings := &warningCollector{}
	cfg := rest.CopyConfig(testCluster.Config)
	cfg.WarningHandler = warnings
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	policies := []struct {
		np    *networkingv1.NetworkPolicy
		rules map[string][]string // rule IDs by level
	}{
		{webhooktest.GoodPolicy("frontend-to-backend"), map[string][]string{"managed": {"rawNetworkPolicy"}}},
		{webhooktest.SameNamespacePolicy("same-namespace"), map[string][]string{
			"restricted": {"ingressAllPodsFromAllPods", "ingressAllPorts"},
			"managed":    {"ingressAllPodsFromAllPods", "ingressAllPorts", "rawNetworkPolicy"},
		}},
		{webhooktest.AnywherePolicy("from-anywhere"), map[string][]string{
			"baseline":   {"ingressFromAnywhere"},
			"restricted": {"ingressFromAnywhere"},
			"managed":    {"ingressFromAnywhere", "rawNetworkPolicy"},
		}},
	}
	type auditWant struct{ ns, name, level string }
	var audits []auditWant
	var namespaces []string
	for _, mode := range []string{"enforce", "warn", "audit"} {
		for _, level := range []string{"privileged", "baseline", "restricted", "managed"} {
			ns := "val-" + mode + "-" + level
			namespaces = append(namespaces, ns)
			labels := map[string]string{"netguard.io/enforce": "privileged", "netguard.io/warn": "privileged", "netguard.io/audit": "privileged"}
			labels["netguard.io/"+mode] = level
			if err := testCluster.EnsureNamespace(ctx, ns, labels); err != nil {
				t.Fatal(err)
			}
			for _, p := range policies {
				ids := p.rules[level]
				warnings.reset()
				_, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, p.np, metav1.CreateOptions{})
				where := fmt.Sprintf("%s=%s, %s", mode, level, p.np.Name)
				if mode == "enforce" && len(ids) > 0 {
					if !apierrors.IsForbidden(err) {
						t.Errorf("%s: want 403 from netguard, got %v", where, err)
						continue
					}
					// The admission policies or the webhook: the same words
					// (TestHybridSameVerdicts).
					prefix := fmt.Sprintf(`violates netguard %q: `, level)
					if text, _ := netguardText(err.Error()); !strings.HasPrefix(text, prefix) || !inOrder(text, ids) {
						t.Errorf("%s: denial %q, want %q followed by rules %v", where, err, prefix, ids)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: want allowed, got %v", where, err)
					continue
				}
				got := warnings.get()
				if mode != "warn" {
					if len(got) > 0 {
						t.Errorf("%s: unexpected warnings %q", where, got)
					}
				} else if len(got) != len(ids) {
					t.Errorf("%s: warnings %q, want one per rule of %v", where, got, ids)
				} else {
					for i, w := range got {
						w, _ = netguardText(w)
						if want := fmt.Sprintf("would violate netguard %q: [%s] ", level, ids[i]); !strings.HasPrefix(w, want) {
							t.Errorf("%s: warning %q, want it to start with %q", where, w, want)
						}
					}
				}
				if mode == "audit" {
					audits = append(audits, auditWant{ns, p.np.Name, level})
				}
			}
		}
	}

	for _, a := range audits {
		e := waitAuditEvent(t, createOf(a.ns, a.name, false))
		var ids []string
		for _, p := range policies {
			if p.np.Name == a.name {
				ids = p.rules[a.level]
			}
		}
		got, ok := e.Annotations[auditViolationsKey]
		switch {
		case len(ids) == 0 && ok:
			t.Errorf("audit=%s, %s: unexpected %s %q", a.level, a.name, auditViolationsKey, got)
		case len(ids) > 0 && (!strings.HasPrefix(got, fmt.Sprintf("would violate netguard %q: [", a.level)) || !inOrder(got, ids)):
			t.Errorf("audit=%s, %s: %s = %q, want rules %v", a.level, a.name, auditViolationsKey, got, ids)
		}
		if e.Annotations[enforcePolicyKey] != "privileged" {
			t.Errorf("audit=%s, %s: %s = %q, want privileged", a.level, a.name, enforcePolicyKey, e.Annotations[enforcePolicyKey])
		}
	}

	// Labels were read from netguard's namespace informer: it listed and
	// watched namespaces, and never fetched one of these.
	events := readAuditLog(t)
	var listed bool
	for _, e := range events {
		if e.User.Username != netguardUser || e.ObjectRef == nil || e.ObjectRef.Resource != "namespaces" {
			continue
		}
		if e.Verb == "list" || e.Verb == "watch" {
			listed = true
		}
		if e.Verb == "get" {
			for _, ns := range namespaces {
				if e.ObjectRef.Name == ns {
					t.Errorf("netguard read namespace %q with a GET (%s); labels must come from the informer cache", ns, e.RequestURI)
				}
			}
		}
	}
	if !listed {
		t.Errorf("no list or watch of namespaces by %q in the audit log", netguardUser)
	}
}

// TestValidatingKubectl is what a user sees in a baseline namespace with the
// default warn and audit levels (restricted): the PSA-style denial on
// kubectl's stderr, warnings printed, a server-side dry run with the same
// verdict that creates nothing, and the audit annotation in the API
// server's audit log.
func TestValidatingKubectl(t *testing.T) {
	startValidating(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := "val-kubectl"
	if err := testCluster.EnsureNamespace(ctx, ns, map[string]string{"netguard.io/enforce": "baseline"}); err != nil {
		t.Fatal(err)
	}
	// These policies are decided in the API server by netguard's admission
	// policies (docs/admission.md, "Decided in the API server"): the same
	// words as the webhook's behind the API server's own prefix.
	denial := `Error from server (Forbidden): error when creating "STDIN": networkpolicies.networking.k8s.io "from-anywhere" is forbidden: ` +
		policyDenied + `violates netguard "baseline": ` + vAnywhere + "\n"
	warns := `Warning: ` + policyWarned + `would violate netguard "restricted": ` + vAllPods(ns) + "\n" +
		`Warning: ` + policyWarned + `would violate netguard "restricted": ` + vAllPorts + "\n"

	for _, dry := range []bool{true, false} {
		args := []string{"-n", ns, "apply", "-f", "-"}
		suffix := ""
		if dry {
			args = append(args, "--dry-run=server")
			suffix = " (server dry run)"
		}
		r := kubectl(t, ctx, admin(), anywhereYAML, args...)
		r.wantFail(t, "", denial)

		r = kubectl(t, ctx, admin(), sameNamespaceYAML, args...)
		r.wantOK(t, "networkpolicy.networking.k8s.io/same-namespace created"+suffix+"\n", warns)

		r = kubectl(t, ctx, admin(), goodYAML, args...)
		r.wantOK(t, "networkpolicy.networking.k8s.io/frontend-to-backend created"+suffix+"\n", "")

		if dry {
			r = kubectl(t, ctx, admin(), "", "-n", ns, "get", "networkpolicies", "-l", handWritten, "-o", "name")
			r.wantOK(t, "", "")
		}
	}
	r := kubectl(t, ctx, admin(), "", "-n", ns, "get", "networkpolicies", "-l", handWritten, "-o", "name")
	r.wantOK(t, "networkpolicy.networking.k8s.io/frontend-to-backend\nnetworkpolicy.networking.k8s.io/same-namespace\n", "")

	// The audit log holds netguard's annotations, prefixed with the webhook's
	// name, for the real request and for the dry run alike.
	wantAudit := `would violate netguard "restricted": ` + vAllPods(ns) + "; " + vAllPorts
	for _, dry := range []bool{false, true} {
		e := waitAuditEvent(t, createOf(ns, "same-namespace", dry))
		if got := e.Annotations[auditViolationsKey]; got != wantAudit {
			t.Errorf("dry run %v: %s:\n got %q\nwant %q", dry, auditViolationsKey, got, wantAudit)
		}
		if got := e.Annotations[enforcePolicyKey]; got != "baseline" {
			t.Errorf("dry run %v: %s = %q, want baseline", dry, enforcePolicyKey, got)
		}
		if e.ResponseStatus == nil || e.ResponseStatus.Code != 201 {
			t.Errorf("dry run %v: response status %+v, want 201", dry, e.ResponseStatus)
		}
	}
	if e := waitAuditEvent(t, createOf(ns, "frontend-to-backend", false)); e.Annotations[auditViolationsKey] != "" {
		t.Errorf("a policy that passes restricted got %s %q", auditViolationsKey, e.Annotations[auditViolationsKey])
	}
}

// TestValidatingManagedPolicies: netguard's own policies are written by
// netguard (its identity learned from a SelfSubjectReview) and platform
// identities only. A user with RBAC rights on NetworkPolicies, and the
// cluster admin, are denied by netguard with a message that names what they
// tried, however they try; a platform group member is not.
func TestValidatingManagedPolicies(t *testing.T) {
	startValidating(t, "--platform-groups=platform-admins")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := "val-managed"
	if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	grantNetworkPolicyEdit(t, ctx, ns, rbacv1.Subject{Kind: rbacv1.UserKind, Name: "alice"}, rbacv1.Subject{Kind: rbacv1.GroupKind, Name: "platform-admins"})
	alice := admin("--as=alice", "--as-group=system:authenticated")
	bob := admin("--as=bob", "--as-group=platform-admins")
	self := []string{"--kubeconfig=" + netguardKubeconfig(t)}

	managedDeny := `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: netguard-default-deny
  labels: {app.kubernetes.io/managed-by: netguard}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
`
	generated := strings.Replace(goodYAML, "name: frontend-to-backend", "name: backend-from-frontend\n  labels: {app.kubernetes.io/managed-by: netguard}", 1)
	// netguard's controller gives the namespace its baseline as netguard: the
	// webhook lets its own identity through. netguard's credential may write
	// a managed policy by hand too.
	firstDeny := waitForPolicy(t, ctx, ns, "netguard-default-deny", "")
	kubectl(t, ctx, self, generated, "-n", ns, "apply", "-f", "-").wantOK(t, "networkpolicy.networking.k8s.io/backend-from-frontend created\n", "")

	forbidden := func(name, msg string) string {
		return "Error from server (Forbidden): " + webhookDenied + fmt.Sprintf("networkpolicies.networking.k8s.io %q is forbidden: ", name) + msg + "\n"
	}
	deleteMsg := func(name, user string) string {
		return forbidden(name, fmt.Sprintf(`%q is managed by netguard: only netguard and platform identities may delete it, and user %q is neither; `+baselineFix, name, user))
	}

	// The admin is neither netguard nor a platform identity here.
	kubectl(t, ctx, admin(), "", "-n", ns, "delete", "networkpolicy", "netguard-default-deny").
		wantFail(t, "", deleteMsg("netguard-default-deny", "netguard-admin"))

	kubectl(t, ctx, alice, "", "-n", ns, "delete", "networkpolicy", "netguard-default-deny").
		wantFail(t, "", deleteMsg("netguard-default-deny", "alice"))
	kubectl(t, ctx, alice, "", "-n", ns, "delete", "networkpolicy", "netguard-default-deny", "--dry-run=server").
		wantFail(t, "", deleteMsg("netguard-default-deny", "alice"))
	// The DNS allowance is not the default-deny, and its message says so.
	waitForPolicy(t, ctx, ns, "netguard-allow-dns", "")
	kubectl(t, ctx, alice, "", "-n", ns, "delete", "networkpolicy", "netguard-allow-dns").
		wantFail(t, "", forbidden("netguard-allow-dns", `"netguard-allow-dns" is managed by netguard: only netguard and platform identities may delete it, and user "alice" is neither; `+dnsFix))
	kubectl(t, ctx, alice, "", "-n", ns, "label", "networkpolicy", "backend-from-frontend", "app.kubernetes.io/managed-by-").
		wantFail(t, "", forbidden("backend-from-frontend", `"backend-from-frontend" is managed by netguard: removing its app.kubernetes.io/managed-by label or renaming it is not allowed for user "alice"`))
	kubectl(t, ctx, alice, "", "-n", ns, "label", "--overwrite", "networkpolicy", "backend-from-frontend", "app.kubernetes.io/managed-by=alice").
		wantFail(t, "", forbidden("backend-from-frontend", `"backend-from-frontend" is managed by netguard: removing its app.kubernetes.io/managed-by label or renaming it is not allowed for user "alice"`))
	kubectl(t, ctx, alice, strings.Replace(generated, "port: 8080", "port: 9090", 1), "-n", ns, "apply", "-f", "-").
		wantFailEnding(t, `error when patching "STDIN": `+webhookDenied, forbidden("backend-from-frontend", `"backend-from-frontend" is managed by netguard: only netguard and platform identities may update it, and user "alice" is neither; change the owning workload's netguard.io annotations, or ask the platform team`))
	kubectl(t, ctx, alice, strings.Replace(generated, "backend-from-frontend", "lookalike", 1), "-n", ns, "apply", "-f", "-").
		wantFail(t, "", strings.Replace(forbidden("lookalike", `"lookalike" is labelled app.kubernetes.io/managed-by=netguard, which only netguard and platform identities may create; user "alice" is neither: remove the label`), "Error from server (Forbidden): ", `Error from server (Forbidden): error when creating "STDIN": `, 1))
	kubectl(t, ctx, alice, strings.Replace(managedDeny, "  labels: {app.kubernetes.io/managed-by: netguard}\n", "", 1), "-n", ns, "create", "-f", "-").
		wantFail(t, "", strings.Replace(forbidden("netguard-default-deny", `the name "netguard-default-deny" is reserved for netguard's namespace default-deny; user "alice" may not create it: choose another name`), "Error from server (Forbidden): ", `Error from server (Forbidden): error when creating "STDIN": `, 1))

	// Her own policy is hers until she marks it as netguard's.
	kubectl(t, ctx, alice, goodYAML, "-n", ns, "apply", "-f", "-").wantOK(t, "networkpolicy.networking.k8s.io/frontend-to-backend created\n", "")
	kubectl(t, ctx, alice, "", "-n", ns, "label", "networkpolicy", "frontend-to-backend", "app.kubernetes.io/managed-by=netguard").
		wantFail(t, "", forbidden("frontend-to-backend", `adding the label app.kubernetes.io/managed-by=netguard to "frontend-to-backend" is not allowed for user "alice": only netguard and platform identities may mark a policy as managed; remove the label`))

	// Nothing alice tried changed anything.
	kubectl(t, ctx, admin(), "", "-n", ns, "get", "networkpolicies", "--no-headers", "-o", "custom-columns=NAME:.metadata.name,MANAGED:.metadata.labels.app\\.kubernetes\\.io/managed-by").
		wantOK(t, "backend-from-frontend   netguard\nfrontend-to-backend     <none>\nnetguard-allow-dns      netguard\nnetguard-default-deny   netguard\n", "")

	// A platform identity may.
	kubectl(t, ctx, bob, "", "-n", ns, "label", "networkpolicy", "backend-from-frontend", "app.kubernetes.io/managed-by-").
		wantOK(t, "networkpolicy.networking.k8s.io/backend-from-frontend unlabeled\n", "")
	kubectl(t, ctx, bob, "", "-n", ns, "delete", "networkpolicy", "netguard-default-deny", "--dry-run=server").
		wantOK(t, `networkpolicy.networking.k8s.io "netguard-default-deny" deleted from val-managed namespace (server dry run)`+"\n", "")
	kubectl(t, ctx, admin(), "", "-n", ns, "get", "networkpolicy", "netguard-default-deny", "-o", "name").
		wantOK(t, "networkpolicy.networking.k8s.io/netguard-default-deny\n", "")
	kubectl(t, ctx, bob, "", "-n", ns, "delete", "networkpolicy", "netguard-default-deny").
		wantOK(t, `networkpolicy.networking.k8s.io "netguard-default-deny" deleted from val-managed namespace`+"\n", "")
	// netguard puts its default-deny back, as itself.
	waitForPolicy(t, ctx, ns, "netguard-default-deny", firstDeny)
}

// TestValidatingExemptNamespaceAndLabelTypo: an exempt namespace is left
// alone whatever its labels; a mistyped level is treated as managed, counted
// and logged.
func TestValidatingExemptNamespaceAndLabelTypo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// netguard now denies such a label when it is written (namespaces.netguard.io):
	// this one was written while netguard was not running.
	if err := testCluster.EnsureNamespace(ctx, "val-typo", map[string]string{"netguard.io/enforce": "Baseline"}); err != nil {
		t.Fatal(err)
	}
	ng, log := startValidating(t, "--exempt-namespaces=val-exempt")
	strictest := map[string]string{"netguard.io/enforce": "managed", "netguard.io/warn": "managed", "netguard.io/audit": "managed"}
	if err := testCluster.EnsureNamespace(ctx, "val-exempt", strictest); err != nil {
		t.Fatal(err)
	}

	kubectl(t, ctx, admin(), anywhereYAML, "-n", "val-exempt", "apply", "-f", "-").
		wantOK(t, "networkpolicy.networking.k8s.io/from-anywhere created\n", "")
	e := waitAuditEvent(t, createOf("val-exempt", "from-anywhere", false))
	for k, v := range e.Annotations {
		if strings.HasPrefix(k, "networkpolicies.netguard.io/") {
			t.Errorf("exempt request has audit annotation %s=%q", k, v)
		}
	}

	before := metricValue(t, ng, `netguard_namespace_label_errors_total{mode="enforce"}`)
	// A namespaceSelector pinned to the own namespace: judged by the
	// webhook, whose metric and log this test reads.
	pinned := strings.Replace(goodYAML, "    - podSelector:\n        matchLabels: {app: frontend}", "    - namespaceSelector:\n        matchLabels: {kubernetes.io/metadata.name: val-typo}\n      podSelector:\n        matchLabels: {app: frontend}", 1)
	if pinned == goodYAML {
		t.Fatal("goodYAML changed: the pinned variant was not made")
	}
	kubectl(t, ctx, admin(), pinned, "-n", "val-typo", "apply", "-f", "-").
		wantFail(t, "", `Error from server (Forbidden): error when creating "STDIN": `+webhookDenied+
			`networkpolicies.networking.k8s.io "frontend-to-backend" is forbidden: violates netguard "managed": `+vRaw+
			`; namespace label netguard.io/enforce="Baseline" is invalid (unknown level "Baseline": must be one of privileged, baseline, restricted, managed), so netguard applies the strictest setting: ask the platform team to fix the label`+"\n")
	if after := metricValue(t, ng, `netguard_namespace_label_errors_total{mode="enforce"}`); after != before+1 {
		t.Errorf("netguard_namespace_label_errors_total{mode=\"enforce\"} went from %v to %v, want +1", before, after)
	}
	if !logHas(log.String(), "namespace label has an invalid value; using the strictest setting", `"label":"netguard.io/enforce"`, `"value":"Baseline"`) {
		t.Errorf("no log line about the bad label in:\n%s", log.String())
	}
}

// TestValidatingMakeRunCommands runs the kubectl commands `make run` prints,
// as it prints them, from the repository root, against netguard started as
// `make run` starts it.
func TestValidatingMakeRunCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// make run installs the openreports CRD and turns the audit's reports
	// on; the audit runs more often here than make run's default minute.
	if out, err := testCluster.Kubectl(ctx, nil, "apply", "--server-side", "-f", "../charts/netguard/files/crds/openreports.io_reports.yaml"); err != nil {
		t.Fatalf("install the openreports CRD: %v\n%s", err, out)
	}
	if out, err := testCluster.Kubectl(ctx, nil, "wait", "--for=condition=Established", "--timeout=60s", "crd/reports.openreports.io"); err != nil {
		t.Fatalf("openreports CRD: %v\n%s", err, out)
	}
	startNetguard(t, "--log-format=console", "--audit-reports=openreports", "--audit-interval=2s")
	waitWebhookActive(t)

	src, err := os.ReadFile("../hack/run/main.go")
	if err != nil {
		t.Fatal(err)
	}
	_, tryIt, ok := strings.Cut(string(src), "Try it (in another shell):\n")
	if !ok {
		t.Fatal(`hack/run/main.go no longer prints "Try it (in another shell):"`)
	}
	tryIt, _, _ = strings.Cut(tryIt, "\n\n")
	const ns = "val-make-run"
	var ran []string
	for _, line := range strings.Split(tryIt, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "kubectl ") {
			continue
		}
		line = strings.ReplaceAll(line, "team-a", ns)
		if strings.Contains(line, "| bin/netguard reach") {
			// As a person types it: the baseline controller has long
			// written the default-deny the answer depends on.
			waitForPolicy(t, ctx, ns, "netguard-default-deny", "")
		}
		if strings.Contains(line, "--as=alice") {
			// As a person types it: RBAC has long seen the RoleBinding.
			eventually(t, 30*time.Second, "alice's RoleBinding in effect", func() error {
				out, err := testCluster.Kubectl(ctx, nil, "-n", ns, "auth", "can-i", "delete", "networkpolicies", "--as=alice")
				if err != nil || strings.TrimSpace(out) != "yes" {
					return fmt.Errorf("can-i: %q, %v", out, err)
				}
				return nil
			})
		}
		r := runTourLine(ctx, line)
		ran = append(ran, line)
		switch {
		case strings.Contains(line, "allow-frontend-to-backend.yaml"):
			r.wantOK(t, "networkpolicy.networking.k8s.io/allow-frontend-to-backend created\nnetworkpolicy.networking.k8s.io/allow-frontend-egress-to-backend created\n", "")
		case strings.Contains(line, "frontend-backend.yaml"):
			r.wantOK(t, "deployment.apps/frontend created\ndeployment.apps/backend created\n", "")
		case strings.Contains(line, "bin/netguard reach"):
			// The tour's claim: frontend reaches backend on 8080 under the
			// namespace's default-deny (exit 0 means allowed).
			want := ns + "/frontend -> " + ns + "/backend on 8080/TCP: allowed"
			if r.err != nil || !strings.HasPrefix(r.stdout, want) {
				t.Errorf("%s: %v\nstdout: %s\nstderr: %s\nwant stdout to start with %q", line, r.err, r.stdout, r.stderr, want)
			}
		case strings.Contains(line, "allow-from-anywhere.yaml"):
			// Decided in the API server by netguard's admission policy.
			r.wantFail(t, "", `Error from server (Forbidden): error when creating "docs/examples/allow-from-anywhere.yaml": `+
				`networkpolicies.networking.k8s.io "allow-from-anywhere" is forbidden: `+policyDenied+`violates netguard "baseline": `+vAnywhere+"\n")
		case strings.Contains(line, "annotated-deployments.yaml") && strings.Contains(line, "--dry-run=server"):
			// A dry run stores nothing, so web's dependency names a component
			// no stored workload declares yet, and netguard says so.
			r.wantOK(t, "deployment.apps/api created (server dry run)\ndeployment.apps/web created (server dry run)\n",
				`Warning: netguard: netguard.io/depends-on: no workload in namespace "val-make-run" declares component "api", so "api:8080" reaches no pods`+"\n"+
					"Warning: netguard (dry run): would generate NetworkPolicy netguard.web.depends-on\nWarning: netguard (dry run): would generate NetworkPolicy netguard.web.to.api\n")
		case strings.Contains(line, "annotated-deployments.yaml"):
			r.wantOK(t, "deployment.apps/api created\ndeployment.apps/web created\n", "")
		case strings.Contains(line, "get networkpolicies"):
			// The baseline controller works asynchronously: a person typing
			// the next command never beats it, a test may.
			want := []string{"allow-frontend-to-backend", "netguard-allow-dns", "netguard-default-deny", "netguard.web.depends-on", "netguard.web.to.api"}
			eventually(t, 20*time.Second, line, func() error {
				out, err := testCluster.Kubectl(ctx, nil, "-n", ns, "get", "networkpolicies")
				if err != nil {
					return fmt.Errorf("%v: %s", err, out)
				}
				for _, name := range want {
					if !strings.Contains(out, name) {
						return fmt.Errorf("%s missing from\n%s", name, out)
					}
				}
				return nil
			})
		case strings.Contains(line, "delete networkpolicy netguard-default-deny"):
			// alice may, by the built-in admin role: netguard is what stops her.
			if !strings.Contains(line, "--as=alice") {
				t.Errorf("make run's tour deletes the default-deny as someone other than alice: %s", line)
			}
			r.wantFail(t, "", "Error from server (Forbidden): "+webhookDenied+`networkpolicies.networking.k8s.io "netguard-default-deny" is forbidden: "netguard-default-deny" is managed by netguard: only netguard and platform identities may delete it, and user "alice" is neither; `+baselineFix+"\n")
		case strings.Contains(line, "netguard.io/enforce=privileged"):
			r.wantOK(t, "namespace/"+ns+" labeled\n", "")
			// The tour's claim: the baseline goes.
			eventually(t, 30*time.Second, "baseline removed at privileged", func() error {
				out, err := testCluster.Kubectl(ctx, nil, "-n", ns, "get", "networkpolicies", "-o", "name")
				if err != nil {
					return fmt.Errorf("%v: %s", err, out)
				}
				if strings.Contains(out, "netguard-default-deny") || strings.Contains(out, "netguard-allow-dns") {
					return fmt.Errorf("baseline still there:\n%s", out)
				}
				return nil
			})
		case strings.Contains(line, "reports.openreports.io"):
			// The background audit writes the report at its next pass.
			eventually(t, 30*time.Second, line, func() error {
				out, err := testCluster.Kubectl(ctx, nil, strings.Fields(strings.TrimPrefix(line, "kubectl "))...)
				if err != nil {
					return fmt.Errorf("%v: %s", err, out)
				}
				if !strings.Contains(out, "kind: Report") || !strings.Contains(out, "source: netguard") {
					return fmt.Errorf("not netguard's report:\n%s", out)
				}
				return nil
			})
		default:
			if r.err != nil {
				t.Errorf("%s: %v\n%s", line, r.err, r.stderr)
			}
		}
	}
	var applied, denied, reached int
	for _, l := range ran {
		if strings.Contains(l, "allow-frontend-to-backend.yaml") {
			applied++
		}
		if strings.Contains(l, "allow-from-anywhere.yaml") {
			denied++
		}
		if strings.Contains(l, "bin/netguard reach") {
			reached++
		}
	}
	if applied == 0 || denied == 0 || reached == 0 {
		t.Fatalf("make run's instructions no longer apply both examples and check the first with netguard reach; ran %q", ran)
	}
	kubectl(t, ctx, admin(), "", "-n", ns, "get", "networkpolicies", "-l", handWritten, "-o", "name").
		wantOK(t, "networkpolicy.networking.k8s.io/allow-frontend-egress-to-backend\nnetworkpolicy.networking.k8s.io/allow-frontend-to-backend\n", "")
}

// baselineFix is how a denied change to the namespace baseline ends: what
// does remove it.
const (
	baselineFix  = "it is the namespace's default-deny: " + baselineKept
	dnsFix       = "it lets the namespace's pods reach the cluster DNS: " + baselineKept
	baselineKept = "netguard keeps it while the namespace's enforce level is above privileged, and removes it once the namespace is labelled netguard.io/enforce=privileged (or netguard.io/ignore) by whoever may label namespaces"
)

// runTourLine runs one line of make run's tour from the repository root, as
// the admin: "kubectl ARGS", or "kubectl ARGS | bin/netguard ARGS" with the
// netguard the tests built.
func runTourLine(ctx context.Context, line string) kubectlResult {
	first, second, piped := strings.Cut(line, " | ")
	command := func(l string) *exec.Cmd {
		args := strings.Fields(l)
		bin := testCluster.KubectlPath
		if args[0] == "bin/netguard" {
			bin = netguardBin
		}
		cmd := exec.CommandContext(ctx, bin, args[1:]...)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "KUBECONFIG="+testCluster.KubeconfigPath)
		return cmd
	}
	var stdout, stderr bytes.Buffer
	cmd := command(first)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if !piped {
		err := cmd.Run()
		return kubectlResult{cmd: line, stdout: stdout.String(), stderr: stderr.String(), err: err}
	}
	if err := cmd.Run(); err != nil {
		return kubectlResult{cmd: line, stdout: stdout.String(), stderr: stderr.String(), err: err}
	}
	next := command(second)
	var out bytes.Buffer
	next.Stdin, next.Stdout, next.Stderr = &stdout, &out, &stderr
	err := next.Run()
	return kubectlResult{cmd: line, stdout: out.String(), stderr: stderr.String(), err: err}
}

// ---- helpers ----

var (
	netguardKubeconfigOnce sync.Once
	netguardKubeconfigPath string
	netguardKubeconfigErr  error
)

// netguardKubeconfig is a kubeconfig for the user "netguard" (cluster-admin
// rights): netguard runs as itself, apart from the admin the tests act as.
func netguardKubeconfig(t *testing.T) string {
	t.Helper()
	netguardKubeconfigOnce.Do(func() {
		_, netguardKubeconfigPath, netguardKubeconfigErr = testCluster.AddUser(netguardUser, "system:masters")
	})
	if netguardKubeconfigErr != nil {
		t.Fatal(netguardKubeconfigErr)
	}
	return netguardKubeconfigPath
}

// startValidating runs netguard as the user "netguard", its identity left to
// a SelfSubjectReview, and waits until the API server calls it.
func startValidating(t *testing.T, args ...string) (*cluster.Netguard, *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	l := newTestLog(t)
	ng, err := testCluster.StartNetguard(ctx, cluster.NetguardOptions{Binary: netguardBin, Kubeconfig: netguardKubeconfig(t), Args: args, Log: l.buf})
	if err != nil {
		t.Fatalf("start netguard: %v\n%s", err, l.buf.String())
	}
	t.Cleanup(func() {
		if err := ng.Stop(context.Background()); err != nil {
			t.Errorf("stop netguard: %v", err)
		}
	})
	waitWebhookActive(t)
	if !strings.Contains(l.buf.String(), `"username":"netguard"`) {
		t.Errorf("netguard did not learn its identity from a SelfSubjectReview; log:\n%s", l.buf.String())
	}
	return ng, l.buf
}

// waitWebhookActive waits until the API server has picked up the webhook
// configuration and netguard answers: a dry run that netguard denies is
// denied.
func waitWebhookActive(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const ns = "val-probe"
	if err := testCluster.EnsureNamespace(ctx, ns, map[string]string{"netguard.io/enforce": "restricted"}); err != nil {
		t.Fatal(err)
	}
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	var last error
	for ctx.Err() == nil {
		_, last = cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, webhooktest.AnywherePolicy("probe"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if apierrors.IsForbidden(last) && strings.Contains(last.Error(), "violates netguard") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("netguard's webhook did not become active: last answer %v", last)
}

// grantNetworkPolicyEdit binds subjects to the built-in ClusterRole admin in
// ns, as a namespace owner is bound in a real cluster: its NetworkPolicy
// rights come from the controller manager's clusterrole-aggregation.
func grantNetworkPolicyEdit(t *testing.T, ctx context.Context, ns string, subjects ...rbacv1.Subject) {
	t.Helper()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "networkpolicy-editors", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
		Subjects:   subjects,
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitForPolicy waits until ns holds the policy name with a uid other than
// notUID, and returns its uid.
func waitForPolicy(t *testing.T, ctx context.Context, ns, name string, notUID types.UID) types.UID {
	t.Helper()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		np, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && np.UID != notUID {
			return np.UID
		}
		if time.Now().After(deadline) {
			t.Fatalf("netguard did not write %s/%s within 30s: %v", ns, name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// admin is kubectl's flags for the admin kubeconfig, plus extra flags such
// as impersonation.
func admin(extra ...string) []string {
	return append([]string{"--kubeconfig=" + testCluster.KubeconfigPath}, extra...)
}

type kubectlResult struct {
	cmd            string
	stdout, stderr string
	err            error
}

// kubectl runs kubectl with identity flags, stdin and args, keeping stdout
// and stderr apart.
func kubectl(t *testing.T, ctx context.Context, identity []string, stdin string, args ...string) kubectlResult {
	t.Helper()
	all := append(append([]string{}, identity...), args...)
	cmd := exec.CommandContext(ctx, testCluster.KubectlPath, all...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return kubectlResult{cmd: "kubectl " + strings.Join(all[1:], " "), stdout: stdout.String(), stderr: stderr.String(), err: err}
}

func (r kubectlResult) wantOK(t *testing.T, stdout, stderr string) {
	t.Helper()
	if r.err != nil {
		t.Errorf("%s: %v\nstdout: %s\nstderr: %s", r.cmd, r.err, r.stdout, r.stderr)
		return
	}
	if r.stdout != stdout || r.stderr != stderr {
		t.Errorf("%s:\nstdout got  %q\nstdout want %q\nstderr got  %q\nstderr want %q", r.cmd, r.stdout, stdout, r.stderr, stderr)
	}
}

// wantFailEnding is wantFail for messages kubectl prefixes with a long,
// variable part (the patch apply sends): stderr ends with prefix and the
// final part of the Forbidden message.
func (r kubectlResult) wantFailEnding(t *testing.T, prefix, forbidden string) {
	t.Helper()
	var ee *exec.ExitError
	if !errors.As(r.err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("%s: want exit code 1, got %v\nstdout: %s\nstderr: %s", r.cmd, r.err, r.stdout, r.stderr)
		return
	}
	end := prefix + strings.TrimPrefix(forbidden, "Error from server (Forbidden): "+webhookDenied)
	if !strings.HasPrefix(r.stderr, "Error from server (Forbidden): ") || !strings.HasSuffix(r.stderr, end) {
		t.Errorf("%s:\nstderr got %q\nwant it to end with %q", r.cmd, r.stderr, end)
	}
}

func (r kubectlResult) wantFail(t *testing.T, stdout, stderr string) {
	t.Helper()
	var ee *exec.ExitError
	if !errors.As(r.err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("%s: want exit code 1, got %v\nstdout: %s\nstderr: %s", r.cmd, r.err, r.stdout, r.stderr)
		return
	}
	if r.stdout != stdout || r.stderr != stderr {
		t.Errorf("%s:\nstdout got  %q\nstdout want %q\nstderr got  %q\nstderr want %q", r.cmd, r.stdout, stdout, r.stderr, stderr)
	}
}

// warningCollector records the warnings of client-go requests.
type warningCollector struct {
	mu   sync.Mutex
	list []string
}

func (w *warningCollector) HandleWarningHeader(code int, _ string, text string) {
	if code != 299 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warningCollector) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = nil
}

func (w *warningCollector) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.list...)
}

// inOrder reports whether every rule ID appears in s as [id], in order.
func inOrder(s string, ids []string) bool {
	at := 0
	for _, id := range ids {
		i := strings.Index(s[at:], "["+id+"]")
		if i < 0 {
			return false
		}
		at += i + len(id) + 2
	}
	return true
}

// auditEvent is the part of an audit.k8s.io/v1 Event these tests read.
type auditEvent struct {
	Stage      string `json:"stage"`
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource  string `json:"resource"`
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	Annotations map[string]string `json:"annotations"`
}

// readAuditLog parses the API server's audit log, one JSON event a line.
func readAuditLog(t *testing.T) []auditEvent {
	t.Helper()
	f, err := os.Open(testCluster.AuditLogPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var events []auditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e auditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err == nil {
			events = append(events, e)
		}
	}
	return events
}

// createOf matches the completed create of a NetworkPolicy, a dry run or not.
func createOf(ns, name string, dryRun bool) func(auditEvent) bool {
	return func(e auditEvent) bool {
		return e.Stage == "ResponseComplete" && e.Verb == "create" && e.ObjectRef != nil &&
			e.ObjectRef.Resource == "networkpolicies" && e.ObjectRef.Namespace == ns && e.ObjectRef.Name == name &&
			strings.Contains(e.RequestURI, "dryRun=") == dryRun
	}
}

// waitAuditEvent returns the last event that matches, waiting for the API
// server to write it.
func waitAuditEvent(t *testing.T, match func(auditEvent) bool) auditEvent {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		events := readAuditLog(t)
		for i := len(events) - 1; i >= 0; i-- {
			if match(events[i]) {
				return events[i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no matching event in the audit log %s", testCluster.AuditLogPath)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// metricValue is one sample of netguard's /metrics, 0 when absent.
func metricValue(t *testing.T, ng *cluster.Netguard, series string) float64 {
	t.Helper()
	text, err := ng.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// logHas reports whether one line of a JSON log contains all of parts.
func logHas(log string, parts ...string) bool {
	for _, line := range strings.Split(log, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
