package e2e

// Issue 17, item 4: the seed scenarios (the vendor documents in
// shared/seeds) installed the way their products install themselves,
// through the real API server: annotated workloads where a chart is ours to
// change, LocalNetworkConfigs for the pods an operator or controller makes
// (bare Pods, CronJobs, Deployments with the operator's labels), and
// NetworkProfiles where a path leaves the pod network. When netguard has
// generated the policies, the test exports what the API server holds and
// puts every pair of the scenario's pods and workloads to `netguard reach
// --generated=false`: each documented path must be allowed, every other
// pair and port it tries denied.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
)

// seedStrangers is a namespace netguard does not guard (enforce privileged:
// no default deny), holding look-alike pods: a "*" row of a table (any
// pod in the cluster) is tried from them, and nothing else may reach them
// or be reached from them.
const seedStrangers = "seed-strangers"

// seedPath is one row of a seed's connectivity table: from may open a
// connection to to on ports. from and to name an endpoint group of the
// scenario ("NS/NAME") or an address outside the pod network; from "*" is
// any pod of a namespace netguard does not guard. ports: "9500",
// "8500-8504", "7000,3000,8888", with "/UDP" or "/SCTP" after a port.
type seedPath struct {
	from, to, ports string
}

// seedScenario is what a test installed and what its seed documents.
type seedScenario struct {
	// namespaces are exported: their Namespace, NetworkPolicies, workloads
	// and Pods.
	namespaces []string
	// guarded are the namespaces under netguard's default deny.
	guarded []string
	// groups maps a table name ("NS/NAME") to the pods and workloads, as
	// `netguard reach` names them, that stand for it.
	groups map[string][]string
	table  []seedPath
	// probes are ports tried on every pair besides those the table implies.
	probes []string
}

type seedPort struct {
	lo, hi int32
	proto  corev1.Protocol
}

func (p seedPort) String() string { return fmt.Sprintf("%d/%s", p.lo, p.proto) }

func parseSeedPorts(t *testing.T, s string) []seedPort {
	t.Helper()
	var out []seedPort
	for _, f := range strings.Split(s, ",") {
		num, proto, _ := strings.Cut(strings.TrimSpace(f), "/")
		p := seedPort{proto: corev1.ProtocolTCP}
		if proto != "" {
			p.proto = corev1.Protocol(strings.ToUpper(proto))
		}
		lo, hi, isRange := strings.Cut(num, "-")
		l, err := strconv.ParseInt(lo, 10, 32)
		if err != nil {
			t.Fatalf("table ports %q: %v", s, err)
		}
		p.lo, p.hi = int32(l), int32(l)
		if isRange {
			h, err := strconv.ParseInt(hi, 10, 32)
			if err != nil {
				t.Fatalf("table ports %q: %v", s, err)
			}
			p.hi = int32(h)
		}
		out = append(out, p)
	}
	return out
}

func isAddress(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// want says whether the table allows from -> to on p (one port, lo == hi),
// and names the row that does.
func (sc *seedScenario) want(t *testing.T, from, to string, p seedPort) (bool, string) {
	for _, r := range sc.table {
		if r.to != to {
			continue
		}
		if r.from != from && (r.from != "*" || isAddress(from) || slices.Contains(sc.guarded, namespaceOf(from))) {
			continue
		}
		for _, rp := range parseSeedPorts(t, r.ports) {
			if rp.proto == p.proto && rp.lo <= p.lo && p.lo <= rp.hi {
				return true, fmt.Sprintf("%s -> %s %s", r.from, r.to, r.ports)
			}
		}
	}
	return false, ""
}

func namespaceOf(ref string) string {
	ns, _, _ := strings.Cut(ref, "/")
	return ns
}

// probePorts are the ports tried between every pair: each row's ends, its
// middle and the ports just outside it, its first port over UDP, and the
// scenario's own.
func (sc *seedScenario) probePorts(t *testing.T) []seedPort {
	set := map[seedPort]bool{}
	add := func(n int32, proto corev1.Protocol) {
		if n >= 1 && n <= 65535 {
			set[seedPort{n, n, proto}] = true
		}
	}
	for _, r := range sc.table {
		for _, p := range parseSeedPorts(t, r.ports) {
			for _, n := range []int32{p.lo - 1, p.lo, (p.lo + p.hi) / 2, p.hi, p.hi + 1} {
				add(n, p.proto)
			}
			add(p.lo, corev1.ProtocolUDP)
		}
	}
	for _, s := range sc.probes {
		for _, p := range parseSeedPorts(t, s) {
			add(p.lo, p.proto)
		}
	}
	out := make([]seedPort, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].proto != out[j].proto {
			return out[i].proto < out[j].proto
		}
		return out[i].lo < out[j].lo
	})
	return out
}

// exportSeed writes what the API server holds for the scenario's
// namespaces into dir, as `kubectl get -o yaml` prints it.
func exportSeed(ctx context.Context, dir string, namespaces []string) error {
	get := func(file string, args ...string) error {
		cmd := exec.CommandContext(ctx, testCluster.KubectlPath, append([]string{"--kubeconfig=" + testCluster.KubeconfigPath, "get", "-o", "yaml"}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("kubectl get %s: %v: %s", strings.Join(args, " "), err, stderr.String())
		}
		return os.WriteFile(filepath.Join(dir, file), out, 0o600)
	}
	if err := get("namespaces.yaml", append([]string{"namespaces"}, namespaces...)...); err != nil {
		return err
	}
	for _, ns := range namespaces {
		if err := get(ns+".yaml", "-n", ns, "networkpolicies,deployments,statefulsets,daemonsets,jobs,cronjobs,pods"); err != nil {
			return err
		}
	}
	return nil
}

// reachOne runs `netguard reach` on one connection and returns its verdict
// and the line it printed.
func reachOne(ctx context.Context, dir, from, to string, p seedPort) (bool, string, error) {
	cmd := exec.CommandContext(ctx, netguardBin, "reach", "-f", dir, "--generated=false", "--from", from, "--to", to, "--port", p.String())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return true, strings.TrimSpace(stdout.String()), nil
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		return false, strings.TrimSpace(stdout.String()), nil
	}
	return false, "", fmt.Errorf("netguard reach --from %s --to %s --port %s: %v\n%s%s", from, to, p, err, stdout.String(), stderr.String())
}

// reachMatrix runs `netguard reach --matrix --port` and returns, for every
// pair of the input's pods and workloads, whether p is allowed.
func reachMatrix(ctx context.Context, dir string, p seedPort) (map[[2]string]bool, error) {
	cmd := exec.CommandContext(ctx, netguardBin, "reach", "-f", dir, "--generated=false", "--matrix", "--port", p.String())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("netguard reach --matrix --port %s: %v\n%s", p, err, stderr.String())
	}
	lines := strings.Split(stdout.String(), "\n")
	start := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, `FROM \ TO`) })
	if start < 0 {
		return nil, fmt.Errorf("netguard reach --matrix --port %s: no table in\n%s", p, stdout.String())
	}
	var names []string
	var cells [][]string
	for _, l := range lines[start+1:] {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) < 2 || f[0] != fmt.Sprintf("[%d]", len(names)+1) {
			return nil, fmt.Errorf("netguard reach --matrix --port %s: unexpected line %q", p, l)
		}
		names = append(names, f[1])
		cells = append(cells, f[2:])
	}
	out := map[[2]string]bool{}
	for i, from := range names {
		if len(cells[i]) != len(names) {
			return nil, fmt.Errorf("netguard reach --matrix --port %s: row %s has %d cells for %d columns", p, from, len(cells[i]), len(names))
		}
		for j, to := range names {
			key := [2]string{from, to}
			if _, dup := out[key]; dup {
				return nil, fmt.Errorf("netguard reach --matrix: %s appears twice", from)
			}
			out[key] = cells[i][j] != "-" && cells[i][j] != "n/a"
		}
	}
	return out, nil
}

// check exports the cluster and compares `netguard reach` with the table.
func (sc *seedScenario) check(t *testing.T, ctx context.Context) error {
	t.Helper()
	dir, err := os.MkdirTemp("", "netguard-seed-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := exportSeed(ctx, dir, sc.namespaces); err != nil {
		return err
	}
	groupNames := make([]string, 0, len(sc.groups))
	for g := range sc.groups {
		groupNames = append(groupNames, g)
	}
	sort.Strings(groupNames)
	for _, r := range sc.table {
		for _, end := range []string{r.from, r.to} {
			if _, ok := sc.groups[end]; !ok && end != "*" && !isAddress(end) {
				t.Fatalf("table row %+v: no endpoint group %q", r, end)
			}
		}
	}

	var wrong []string
	// reason is the line `netguard reach` printed for the connection.
	mismatch := func(want bool, row, reason string) {
		if want {
			wrong = append(wrong, reason+"\n    but the seed's table allows it: "+row)
		} else {
			wrong = append(wrong, reason+"\n    but the seed's table has no row for it")
		}
	}
	checked := 0
	// Every pair of pods and workloads, on every probe port, from the matrix.
	for _, p := range sc.probePorts(t) {
		m, err := reachMatrix(ctx, dir, p)
		if err != nil {
			return err
		}
		for _, fg := range groupNames {
			for _, tg := range groupNames {
				if !slices.Contains(sc.guarded, namespaceOf(fg)) && !slices.Contains(sc.guarded, namespaceOf(tg)) {
					continue // neither side is netguard's
				}
				want, row := sc.want(t, fg, tg, p)
				for _, from := range sc.groups[fg] {
					for _, to := range sc.groups[tg] {
						got, ok := m[[2]string{from, to}]
						if !ok {
							return fmt.Errorf("%s -> %s: not both in the export (is the pod or workload there?)", from, to)
						}
						checked++
						if got != want {
							_, reason, err := reachOne(ctx, dir, from, to, p)
							if err != nil {
								return err
							}
							mismatch(want, row, reason)
						}
					}
				}
			}
		}
	}
	// Addresses outside the pod network, one connection at a time, to and
	// from every member of a guarded namespace: on the ports of their rows
	// and just outside them, and inbound on the ports of the "*" rows (any
	// pod of the cluster is not any address).
	type extProbe struct {
		ext      string
		outbound bool // from a member to ext
		port     seedPort
	}
	extProbes := map[extProbe]bool{}
	var externals []string
	for _, r := range sc.table {
		for _, ext := range []string{r.from, r.to} {
			if !isAddress(ext) {
				continue
			}
			externals = append(externals, ext)
			for _, p := range parseSeedPorts(t, r.ports) {
				for _, n := range []int32{p.lo - 1, p.lo, p.hi, p.hi + 1} {
					extProbes[extProbe{ext, ext == r.to, seedPort{n, n, p.proto}}] = true
				}
			}
		}
	}
	for _, r := range sc.table {
		if r.from != "*" {
			continue
		}
		for _, ext := range externals {
			for _, p := range parseSeedPorts(t, r.ports) {
				extProbes[extProbe{ext, false, seedPort{p.lo, p.lo, p.proto}}] = true
			}
		}
	}
	for _, g := range groupNames {
		if !slices.Contains(sc.guarded, namespaceOf(g)) {
			continue
		}
		for _, member := range sc.groups[g] {
			for e := range extProbes {
				from, to, fg, tg := e.ext, member, e.ext, g
				if e.outbound {
					from, to, fg, tg = member, e.ext, g, e.ext
				}
				want, row := sc.want(t, fg, tg, e.port)
				got, reason, err := reachOne(ctx, dir, from, to, e.port)
				if err != nil {
					return err
				}
				checked++
				if got != want {
					mismatch(want, row, reason)
				}
			}
		}
	}
	if len(wrong) > 0 {
		sort.Strings(wrong)
		if len(wrong) > 40 {
			wrong = append(wrong[:40], fmt.Sprintf("... and %d more", len(wrong)-40))
		}
		return fmt.Errorf("%d of %d connections differ from the seed's table:\n%s", len(wrong), checked, strings.Join(wrong, "\n"))
	}
	t.Logf("%d connections checked against the seed's table (%d rows)", checked, len(sc.table))
	return nil
}

// seedTenant is a namespace's admin (the built-in admin role, which the
// aggregated ClusterRole of docs/install.md extends to LocalNetworkConfigs).
// It returns the kubeconfig that kubectl uses as the tenant.
func seedTenant(t *testing.T, ctx context.Context, cs kubernetes.Interface, user, ns string) string {
	t.Helper()
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "netguard-localnetworkconfigs-edit", Labels: map[string]string{
			"rbac.authorization.k8s.io/aggregate-to-edit": "true", "rbac.authorization.k8s.io/aggregate-to-admin": "true"}},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"netguard.io"}, Resources: []string{"localnetworkconfigs"},
			Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}}},
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	_, kubeconfig, err := testCluster.AddTenant(ctx, user, ns, "admin")
	if err != nil {
		t.Fatal(err)
	}
	// The aggregation controller fills admin a moment after the role exists.
	eventually(t, 30*time.Second, user+" may create LocalNetworkConfigs in "+ns, func() error {
		r, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: []string{"system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Group: "netguard.io", Resource: "localnetworkconfigs"},
		}}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		if !r.Status.Allowed {
			return fmt.Errorf("not allowed: %s", r.Status.Reason)
		}
		return nil
	})
	return kubeconfig
}

// applyAs applies manifests with kubectl as the user of kubeconfig.
func applyAs(ctx context.Context, kubeconfig, manifests string) error {
	out, err := testCluster.KubectlAs(ctx, kubeconfig, strings.NewReader(manifests), "apply", "-f", "-")
	if err != nil {
		return fmt.Errorf("kubectl apply: %v\n%s", err, out)
	}
	return nil
}

// seedNamespaces creates the guarded namespaces (the cluster's default
// level, baseline) and the strangers' namespace, which netguard leaves open.
func seedNamespaces(t *testing.T, ctx context.Context, guarded ...string) {
	t.Helper()
	for _, ns := range guarded {
		if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := testCluster.EnsureNamespace(ctx, seedStrangers, map[string]string{rules.LabelEnforce: "privileged"}); err != nil {
		t.Fatal(err)
	}
}

// policiesExist waits until every NetworkPolicy of names exists in ns.
func policiesExist(ctx context.Context, cs kubernetes.Interface, ns string, names ...string) func() error {
	return func() error {
		for _, name := range names {
			if _, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
				return fmt.Errorf("NetworkPolicy %s/%s: %w", ns, name, err)
			}
		}
		return nil
	}
}

// lncReady waits until the LocalNetworkConfig's status says Ready for its
// current generation and every policy it lists exists.
func lncReady(ctx context.Context, cs kubernetes.Interface, c client.Client, ns, name string) func() error {
	return func() error {
		l := &netguardv1alpha1.LocalNetworkConfig{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, l); err != nil {
			return err
		}
		cond := apimeta.FindStatusCondition(l.Status.Conditions, "Ready")
		if cond == nil || cond.Status != metav1.ConditionTrue || l.Status.ObservedGeneration != l.Generation || len(l.Status.Policies) == 0 {
			return fmt.Errorf("LocalNetworkConfig %s/%s status %+v", ns, name, l.Status)
		}
		return policiesExist(ctx, cs, ns, l.Status.Policies...)()
	}
}

// The baseline every guarded namespace gets from netguard.
var baselinePolicies = []string{"netguard-default-deny", "netguard-allow-dns"}

// Longhorn (seed 002, Longhorn's networking page) in longhorn-system. The
// Helm chart's workloads are annotated; the pods longhorn-manager creates
// itself (instance managers, backing image managers and data sources,
// share managers: bare Pods) and the CronJobs of recurring jobs carry only
// Longhorn's labels and are declared by a LocalNetworkConfig. The API
// server, the nodes and the backup store are outside the pod network: the
// platform offers profiles for them.
const longhornChart = `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: longhorn-manager
  namespace: longhorn-system
  annotations:
    netguard.io/depends-on: |
      longhorn-manager:9500
      instance-manager:8500-8504
      backing-image-manager:8000
      backing-image-data-source:8000
    netguard.io/profiles: longhorn-kube-apiserver, longhorn-apiserver-webhooks, longhorn-backupstore
spec:
  selector: {matchLabels: {app: longhorn-manager}}
  template:
    metadata: {labels: {app: longhorn-manager}}
    spec:
      containers:
      - name: manager
        image: registry.example/longhorn-manager:1
        ports:
        - {name: manager, containerPort: 9500}
        - {name: conversion-wh, containerPort: 9501}
        - {name: admission-wh, containerPort: 9502}
        - {name: recov-backend, containerPort: 9503}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: longhorn-ui
  namespace: longhorn-system
  annotations:
    netguard.io/depends-on: longhorn-manager:9500
spec:
  selector: {matchLabels: {app: longhorn-ui}}
  template:
    metadata: {labels: {app: longhorn-ui}}
    spec:
      containers:
      - {name: ui, image: registry.example/longhorn-ui:1, ports: [{name: http, containerPort: 8000}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: longhorn-csi-plugin
  namespace: longhorn-system
  annotations:
    netguard.io/depends-on: longhorn-manager:9500
spec:
  selector: {matchLabels: {app: longhorn-csi-plugin}}
  template:
    metadata: {labels: {app: longhorn-csi-plugin}}
    spec:
      containers:
      - {name: plugin, image: registry.example/longhorn-manager:1}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: longhorn-driver-deployer
  namespace: longhorn-system
  annotations:
    netguard.io/depends-on: longhorn-manager:9500
spec:
  selector: {matchLabels: {app: longhorn-driver-deployer}}
  template:
    metadata: {labels: {app: longhorn-driver-deployer}}
    spec:
      containers:
      - {name: deployer, image: registry.example/longhorn-manager:1}
`

// What longhorn-manager creates: one instance manager and one backing image
// manager per node, a data source and a share manager per volume, and a
// CronJob per recurring job; and an unrelated pod that nobody declares.
const longhornManaged = `apiVersion: v1
kind: Pod
metadata:
  name: instance-manager-node-a
  namespace: longhorn-system
  labels: {longhorn.io/component: instance-manager, longhorn.io/node: node-a, longhorn.io/managed-by: longhorn-manager}
spec:
  containers:
  - name: instance-manager
    image: registry.example/longhorn-instance-manager:1
    ports:
    - {name: process-mgr, containerPort: 8500}
    - {name: proxy, containerPort: 8501}
    - {name: disk, containerPort: 8502}
    - {name: instance, containerPort: 8503}
    - {name: spdk, containerPort: 8504}
    - {name: iscsi, containerPort: 3260}
---
apiVersion: v1
kind: Pod
metadata:
  name: instance-manager-node-b
  namespace: longhorn-system
  labels: {longhorn.io/component: instance-manager, longhorn.io/node: node-b, longhorn.io/managed-by: longhorn-manager}
spec:
  containers:
  - name: instance-manager
    image: registry.example/longhorn-instance-manager:1
    ports:
    - {name: process-mgr, containerPort: 8500}
    - {name: proxy, containerPort: 8501}
    - {name: disk, containerPort: 8502}
    - {name: instance, containerPort: 8503}
    - {name: spdk, containerPort: 8504}
    - {name: iscsi, containerPort: 3260}
---
apiVersion: v1
kind: Pod
metadata:
  name: backing-image-manager-node-a
  namespace: longhorn-system
  labels: {longhorn.io/component: backing-image-manager, longhorn.io/node: node-a, longhorn.io/managed-by: longhorn-manager}
spec:
  containers:
  - {name: manager, image: registry.example/backing-image-manager:1, ports: [{name: api, containerPort: 8000}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: backing-image-ds-base
  namespace: longhorn-system
  labels: {longhorn.io/component: backing-image-data-source, longhorn.io/managed-by: longhorn-manager}
spec:
  containers:
  - {name: data-source, image: registry.example/backing-image-manager:1, ports: [{name: api, containerPort: 8000}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: share-manager-pvc-data
  namespace: longhorn-system
  labels: {longhorn.io/component: share-manager, longhorn.io/managed-by: longhorn-manager}
spec:
  containers:
  - {name: nfs, image: registry.example/longhorn-share-manager:1, ports: [{name: nfs, containerPort: 2049}]}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: backup-daily
  namespace: longhorn-system
  labels: {longhorn.io/component: recurring-job, longhorn.io/managed-by: longhorn-manager}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        metadata:
          labels: {longhorn.io/component: recurring-job, longhorn.io/recurring-job: backup-daily, longhorn.io/managed-by: longhorn-manager}
        spec:
          restartPolicy: OnFailure
          containers:
          - {name: backup, image: registry.example/longhorn-manager:1}
---
apiVersion: v1
kind: Pod
metadata:
  name: debug
  namespace: longhorn-system
  labels: {app: debug}
spec:
  containers:
  - {name: shell, image: registry.example/shell:1, ports: [{containerPort: 8080}]}
`

const longhornConfig = `apiVersion: netguard.io/v1alpha1
kind: LocalNetworkConfig
metadata:
  name: longhorn
  namespace: longhorn-system
spec:
  components:
    instance-manager:
      podSelector: {matchLabels: {longhorn.io/component: instance-manager}}
      dependsOn:
      - {component: instance-manager, port: "10000-30000"}
      - {networkProfile: longhorn-iscsi-from-nodes}
    backing-image-manager:
      podSelector: {matchLabels: {longhorn.io/component: backing-image-manager}}
    backing-image-data-source:
      podSelector: {matchLabels: {longhorn.io/component: backing-image-data-source}}
      dependsOn:
      - {component: instance-manager, port: "10000-30000"}
    share-manager:
      podSelector: {matchLabels: {longhorn.io/component: share-manager}}
      dependsOn:
      - {component: longhorn-manager, port: 9503}
    recurring-job:
      podSelector: {matchLabels: {longhorn.io/component: recurring-job}}
      dependsOn:
      - {component: longhorn-manager, port: 9500}
`

// The platform's profiles, offered to longhorn-system only. Addresses: the
// control plane 10.0.0.0/24 (API server on 6443), the nodes 10.0.1.0/24,
// the S3 backup store 198.51.100.0/28.
const longhornProfiles = `apiVersion: netguard.io/v1alpha1
kind: NetworkProfile
metadata:
  name: longhorn-kube-apiserver
spec:
  description: longhorn-system calls the Kubernetes API server
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: longhorn-system}}
  egress:
  - to: [{ipBlock: {cidr: 10.0.0.0/24}}]
    ports: [{protocol: TCP, port: 6443}]
---
apiVersion: netguard.io/v1alpha1
kind: NetworkProfile
metadata:
  name: longhorn-apiserver-webhooks
spec:
  description: the Kubernetes API server calls Longhorn's conversion and admission webhooks
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: longhorn-system}}
  ingress:
  - from: [{ipBlock: {cidr: 10.0.0.0/24}}]
    ports: [{protocol: TCP, port: 9501}, {protocol: TCP, port: 9502}]
---
apiVersion: netguard.io/v1alpha1
kind: NetworkProfile
metadata:
  name: longhorn-backupstore
spec:
  description: HTTPS to the S3 backup store
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: longhorn-system}}
  egress:
  - to: [{ipBlock: {cidr: 198.51.100.0/28}}]
    ports: [{protocol: TCP, port: 443}]
---
apiVersion: netguard.io/v1alpha1
kind: NetworkProfile
metadata:
  name: longhorn-iscsi-from-nodes
spec:
  description: iSCSI from the cluster's nodes
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: longhorn-system}}
  ingress:
  - from: [{ipBlock: {cidr: 10.0.1.0/24}}]
    ports: [{protocol: TCP, port: 3260}]
`

// A pod elsewhere that carries the labels of Longhorn's pods.
const longhornLookalike = `apiVersion: v1
kind: Pod
metadata:
  name: longhorn-lookalike
  namespace: seed-strangers
  labels: {longhorn.io/component: instance-manager, app: longhorn-manager}
spec:
  containers:
  - {name: app, image: registry.example/app:1, ports: [{containerPort: 9500}, {containerPort: 8500}]}
`

func TestSeedLonghorn(t *testing.T) {
	startNetguard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	const ns = "longhorn-system"
	seedNamespaces(t, ctx, ns)
	if err := applyAs(ctx, testCluster.KubeconfigPath, longhornProfiles+"---\n"+longhornLookalike); err != nil {
		t.Fatalf("the platform team's profiles and the look-alike: %v", err)
	}
	installer := seedTenant(t, ctx, cs, "longhorn-installer", ns)
	c := profileClient(t)
	for what, m := range map[string]string{"the chart": longhornChart, "what longhorn-manager creates": longhornManaged, "the LocalNetworkConfig": longhornConfig} {
		if err := applyAs(ctx, installer, m); err != nil {
			t.Fatalf("%s, as the namespace's admin: %v", what, err)
		}
	}
	eventually(t, 60*time.Second, "longhorn's policies", func() error {
		if err := lncReady(ctx, cs, c, ns, "longhorn")(); err != nil {
			return err
		}
		return policiesExist(ctx, cs, ns, append(baselinePolicies,
			"netguard.longhorn-manager.depends-on", "netguard.longhorn-manager.to.instance-manager",
			"netguard.longhorn-manager.profile.longhorn-apiserver-webhooks",
			"netguard.longhorn-ui.to.longhorn-manager", "netguard.longhorn-csi-plugin.to.longhorn-manager",
			"netguard.longhorn-driver-deployer.to.longhorn-manager")...)()
	})

	const (
		apiserver   = "10.0.0.10"
		node        = "10.0.1.7"
		backupstore = "198.51.100.5"
		lh          = ns + "/"
	)
	sc := &seedScenario{
		namespaces: []string{ns, seedStrangers},
		guarded:    []string{ns},
		groups: map[string][]string{
			lh + "longhorn-manager":          {lh + "longhorn-manager"},
			lh + "longhorn-ui":               {lh + "longhorn-ui"},
			lh + "longhorn-csi-plugin":       {lh + "longhorn-csi-plugin"},
			lh + "longhorn-driver-deployer":  {lh + "longhorn-driver-deployer"},
			lh + "recurring-job":             {lh + "backup-daily"},
			lh + "share-manager":             {lh + "share-manager-pvc-data"},
			lh + "instance-manager":          {lh + "instance-manager-node-a", lh + "instance-manager-node-b"},
			lh + "backing-image-manager":     {lh + "backing-image-manager-node-a"},
			lh + "backing-image-data-source": {lh + "backing-image-ds-base"},
			lh + "debug":                     {lh + "debug"},
			seedStrangers + "/lookalike":     {seedStrangers + "/longhorn-lookalike"},
		},
		table: []seedPath{
			// Longhorn Manager, ingress: other managers, the UI, the CSI
			// plugin, recurring job pods and the driver deployer on 9500.
			{lh + "longhorn-manager", lh + "longhorn-manager", "9500"},
			{lh + "longhorn-ui", lh + "longhorn-manager", "9500"},
			{lh + "longhorn-csi-plugin", lh + "longhorn-manager", "9500"},
			{lh + "recurring-job", lh + "longhorn-manager", "9500"},
			{lh + "longhorn-driver-deployer", lh + "longhorn-manager", "9500"},
			// Longhorn Manager, ingress: the conversion (9501) and admission
			// (9502) webhook servers, called by the API server.
			{apiserver, lh + "longhorn-manager", "9501,9502"},
			// Longhorn Manager, ingress: the recovery backend (9503), called
			// by share managers (as in rules/testdata/scenarios/longhorn).
			{lh + "share-manager", lh + "longhorn-manager", "9503"},
			// Longhorn Manager, egress: instance managers' process-manager,
			// proxy, disk, instance and spdk services (8500-8504).
			{lh + "longhorn-manager", lh + "instance-manager", "8500-8504"},
			// Longhorn Manager, egress: backing image managers and data
			// sources (8000).
			{lh + "longhorn-manager", lh + "backing-image-manager", "8000"},
			{lh + "longhorn-manager", lh + "backing-image-data-source", "8000"},
			// Longhorn Manager, egress: the external backup store (user
			// defined: HTTPS here) and the Kubernetes API server.
			{lh + "longhorn-manager", backupstore, "443"},
			{lh + "longhorn-manager", apiserver, "6443"},
			// Instance Manager, ingress: other instance managers and backing
			// image data sources on 10000-30000, nodes on 3260. (The
			// manager's 8500-8504 is the egress row above.)
			{lh + "instance-manager", lh + "instance-manager", "10000-30000"},
			{lh + "backing-image-data-source", lh + "instance-manager", "10000-30000"},
			{node, lh + "instance-manager", "3260"},
		},
		probes: []string{"80", "2049", "8080", "9000"},
	}
	eventually(t, 60*time.Second, "Longhorn's connectivity as its networking page documents it", func() error {
		return sc.check(t, ctx)
	})
}

// IBM Event Processing with the IBM Operator for Apache Flink (seed 003) in
// event-processing. The two operators come from Helm charts and are
// annotated. What they create carries only their labels: the Event
// Processing instance (a Deployment), and a Flink cluster in native
// Kubernetes mode, a job manager Deployment whose task manager pods the job
// manager creates itself, owned by its Deployment. Two LocalNetworkConfigs,
// one per operator's objects, declare them. "Anywhere" in the seed's tables
// is a platform profile: an ingress rule without peers (or, for the Flink
// REST API, "inside the cluster", any namespace).
const flinkOperators = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: flink-operator
  namespace: event-processing
  annotations:
    netguard.io/depends-on: flink-jobmanager:8081
    netguard.io/profiles: ep-webhook-9443
spec:
  selector: {matchLabels: {app.kubernetes.io/name: flink-operator}}
  template:
    metadata: {labels: {app.kubernetes.io/name: flink-operator}}
    spec:
      containers:
      - {name: operator, image: registry.example/flink-operator:1, ports: [{name: webhook, containerPort: 9443}]}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ep-operator
  namespace: event-processing
  annotations:
    netguard.io/profiles: ep-https-8443
spec:
  selector: {matchLabels: {app.kubernetes.io/name: ep-operator}}
  template:
    metadata: {labels: {app.kubernetes.io/name: ep-operator}}
    spec:
      containers:
      - {name: operator, image: registry.example/ep-operator:1, ports: [{name: webhook, containerPort: 8443}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: debug
  namespace: event-processing
  labels: {app: debug}
spec:
  containers:
  - {name: shell, image: registry.example/shell:1}
`

// What the operators create: the Event Processing instance orders-ep and
// the Flink cluster orders-flink's job manager.
const flinkOperands = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders-ep
  namespace: event-processing
spec:
  selector: {matchLabels: {app.kubernetes.io/instance: orders-ep}}
  template:
    metadata:
      labels: {app.kubernetes.io/instance: orders-ep, app.kubernetes.io/name: event-processing, app.kubernetes.io/managed-by: ep-operator}
    spec:
      containers:
      - name: ep
        image: registry.example/event-processing:1
        ports:
        - {name: ui, containerPort: 8443}
        - {name: kafka-admin, containerPort: 7000}
        - {name: frontend, containerPort: 3000}
        - {name: backend, containerPort: 8888}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders-flink
  namespace: event-processing
  labels: {app: orders-flink, component: jobmanager, type: flink-native-kubernetes}
spec:
  selector: {matchLabels: {app: orders-flink, component: jobmanager, type: flink-native-kubernetes}}
  template:
    metadata:
      labels: {app: orders-flink, component: jobmanager, type: flink-native-kubernetes, app.kubernetes.io/managed-by: flink-operator}
    spec:
      containers:
      - name: flink-main-container
        image: registry.example/flink:1
        ports:
        - {name: rest, containerPort: 8081}
        - {name: jobmanager-rpc, containerPort: 6123}
        - {name: blobserver, containerPort: 6124}
`

// The task managers the job manager starts, owned by its Deployment
// (JOBMANAGER_UID is filled in once it exists).
const flinkTaskManagers = `apiVersion: v1
kind: Pod
metadata:
  name: orders-flink-taskmanager-1-1
  namespace: event-processing
  labels: {app: orders-flink, component: taskmanager, type: flink-native-kubernetes, app.kubernetes.io/managed-by: flink-operator}
  ownerReferences:
  - {apiVersion: apps/v1, kind: Deployment, name: orders-flink, uid: JOBMANAGER_UID, controller: true}
spec:
  containers:
  - name: flink-main-container
    image: registry.example/flink:1
    ports:
    - {name: rest, containerPort: 8081}
    - {name: rpc, containerPort: 6123}
    - {name: blob, containerPort: 6124}
---
apiVersion: v1
kind: Pod
metadata:
  name: orders-flink-taskmanager-1-2
  namespace: event-processing
  labels: {app: orders-flink, component: taskmanager, type: flink-native-kubernetes, app.kubernetes.io/managed-by: flink-operator}
  ownerReferences:
  - {apiVersion: apps/v1, kind: Deployment, name: orders-flink, uid: JOBMANAGER_UID, controller: true}
spec:
  containers:
  - name: flink-main-container
    image: registry.example/flink:1
    ports:
    - {name: rest, containerPort: 8081}
    - {name: rpc, containerPort: 6123}
    - {name: blob, containerPort: 6124}
`

// Both configurations select by app.kubernetes.io/managed-by among others:
// the components of a namespace must be provably disjoint, and the two
// operators' label sets share that key only.
const flinkConfigs = `apiVersion: netguard.io/v1alpha1
kind: LocalNetworkConfig
metadata:
  name: orders-flink
  namespace: event-processing
spec:
  components:
    flink-jobmanager:
      podSelector:
        matchLabels: {app: orders-flink, component: jobmanager, type: flink-native-kubernetes, app.kubernetes.io/managed-by: flink-operator}
      dependsOn:
      - {component: flink-jobmanager, port: 6123}
      - {component: flink-jobmanager, port: 6124}
      - {component: flink-taskmanager, port: 6123}
      - {component: flink-taskmanager, port: 6124}
      - {networkProfile: ep-flink-rest}
    flink-taskmanager:
      podSelector:
        matchLabels: {app: orders-flink, component: taskmanager, type: flink-native-kubernetes, app.kubernetes.io/managed-by: flink-operator}
      dependsOn:
      - {component: flink-jobmanager, port: 6123}
      - {component: flink-jobmanager, port: 6124}
      - {component: flink-taskmanager, port: 6123}
      - {component: flink-taskmanager, port: 6124}
      - {networkProfile: ep-flink-rest}
---
apiVersion: netguard.io/v1alpha1
kind: LocalNetworkConfig
metadata:
  name: orders-ep
  namespace: event-processing
spec:
  components:
    event-processing:
      podSelector:
        matchLabels: {app.kubernetes.io/instance: orders-ep, app.kubernetes.io/managed-by: ep-operator}
      dependsOn:
      - {component: event-processing, port: 7000}
      - {component: event-processing, port: 3000}
      - {component: event-processing, port: 8888}
      - {component: flink-jobmanager, port: rest}
      - {networkProfile: ep-https-8443}
`

const flinkProfiles = `apiVersion: netguard.io/v1alpha1
kind: NetworkProfile
metadata:
  name: ep-https-8443
spec:
  description: HTTPS on 8443 from anywhere (the Event Processing UI and its operator's webhook)
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: event-processing}}
  ingress:
  - ports: [{protocol: TCP, port: 8443}]
---
apiVersion: netguard.io/v1alpha1
kind: NetworkProfile
metadata:
  name: ep-webhook-9443
spec:
  description: the Flink operator's webhook on 9443 from anywhere
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: event-processing}}
  ingress:
  - ports: [{protocol: TCP, port: 9443}]
---
apiVersion: netguard.io/v1alpha1
kind: NetworkProfile
metadata:
  name: ep-flink-rest
spec:
  description: the Flink REST API on 8081 from any pod of the cluster
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: event-processing}}
  ingress:
  - from: [{namespaceSelector: {}}]
    ports: [{protocol: TCP, port: 8081}]
`

const flinkLookalike = `apiVersion: v1
kind: Pod
metadata:
  name: flink-lookalike
  namespace: seed-strangers
  labels: {app: orders-flink, component: jobmanager, type: flink-native-kubernetes, app.kubernetes.io/managed-by: flink-operator}
spec:
  containers:
  - {name: app, image: registry.example/app:1, ports: [{containerPort: 8081}, {containerPort: 6123}]}
`

func TestSeedEventProcessingFlink(t *testing.T) {
	startNetguard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	const ns = "event-processing"
	seedNamespaces(t, ctx, ns)
	if err := applyAs(ctx, testCluster.KubeconfigPath, flinkProfiles+"---\n"+flinkLookalike); err != nil {
		t.Fatalf("the platform team's profiles and the look-alike: %v", err)
	}
	admin := seedTenant(t, ctx, cs, "event-processing-admin", ns)
	c := profileClient(t)
	for _, m := range []struct{ what, manifests string }{
		{"the operators' charts", flinkOperators},
		{"the operators' objects", flinkOperands},
		{"the LocalNetworkConfigs", flinkConfigs},
	} {
		if err := applyAs(ctx, admin, m.manifests); err != nil {
			t.Fatalf("%s, as the namespace's admin: %v", m.what, err)
		}
	}
	jm, err := cs.AppsV1().Deployments(ns).Get(ctx, "orders-flink", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := applyAs(ctx, admin, strings.ReplaceAll(flinkTaskManagers, "JOBMANAGER_UID", string(jm.UID))); err != nil {
		t.Fatalf("the task managers, as the namespace's admin: %v", err)
	}
	eventually(t, 60*time.Second, "Event Processing's and Flink's policies", func() error {
		for _, name := range []string{"orders-flink", "orders-ep"} {
			if err := lncReady(ctx, cs, c, ns, name)(); err != nil {
				return err
			}
		}
		return policiesExist(ctx, cs, ns, append(baselinePolicies,
			"netguard.flink-operator.depends-on", "netguard.flink-operator.to.flink-jobmanager",
			"netguard.flink-operator.profile.ep-webhook-9443", "netguard.ep-operator.profile.ep-https-8443")...)()
	})

	const (
		anywhere = "203.0.113.7"
		ep       = ns + "/"
	)
	sc := &seedScenario{
		namespaces: []string{ns, seedStrangers},
		guarded:    []string{ns},
		groups: map[string][]string{
			ep + "ep-operator":           {ep + "ep-operator"},
			ep + "flink-operator":        {ep + "flink-operator"},
			ep + "event-processing":      {ep + "orders-ep"},
			ep + "flink-jobmanager":      {ep + "orders-flink"},
			ep + "flink-taskmanager":     {ep + "orders-flink-taskmanager-1-1", ep + "orders-flink-taskmanager-1-2"},
			ep + "debug":                 {ep + "debug"},
			seedStrangers + "/lookalike": {seedStrangers + "/flink-lookalike"},
		},
		table: []seedPath{
			// Event Processing operator pod, ingress: 8443 from anywhere
			// (its validating webhook).
			{"*", ep + "ep-operator", "8443"},
			{anywhere, ep + "ep-operator", "8443"},
			// Flink operator pod, ingress: 9443 from anywhere (its webhook).
			{"*", ep + "flink-operator", "9443"},
			{anywhere, ep + "flink-operator", "9443"},
			// Event Processing pod, ingress: 8443 from anywhere (the UI).
			{"*", ep + "event-processing", "8443"},
			{anywhere, ep + "event-processing", "8443"},
			// Event Processing pod, ingress: 7000 (Kafka administration),
			// 3000 (UI frontend), 8888 (UI backend) from the instance's pods.
			{ep + "event-processing", ep + "event-processing", "7000,3000,8888"},
			// Flink operand pods, ingress: 8081 (REST API) from anywhere
			// inside the cluster.
			{"*", ep + "flink-jobmanager", "8081"},
			{"*", ep + "flink-taskmanager", "8081"},
			// Flink operand pods, ingress, and Flink pods, egress: 6123
			// (RPC) and 6124 (blob server) among the Flink pods.
			{ep + "flink-jobmanager", ep + "flink-jobmanager", "6123,6124"},
			{ep + "flink-jobmanager", ep + "flink-taskmanager", "6123,6124"},
			{ep + "flink-taskmanager", ep + "flink-jobmanager", "6123,6124"},
			{ep + "flink-taskmanager", ep + "flink-taskmanager", "6123,6124"},
			// Event Processing pod, egress: Flink, for submitting jobs (the
			// port is the job manager's REST API, as in the seed's
			// stream-authoring policy).
			{ep + "event-processing", ep + "flink-jobmanager", "8081"},
			// The seed's job manager policy: the Flink operator reaches the
			// REST API.
			{ep + "flink-operator", ep + "flink-jobmanager", "8081"},
		},
		probes: []string{"80", "443", "6122", "6125", "8080", "9249"},
	}
	eventually(t, 60*time.Second, "Event Processing's and Flink's connectivity as their tables document it", func() error {
		return sc.check(t, ctx)
	})
}

// Kannika Armory (seed 000) across a system namespace, where its API runs,
// and a resource namespace, where the platform starts backup pods and
// restore Jobs: by consent of both sides, with no NetworkProfile
// (docs/annotations.md, "Cross-namespace dependencies by consent"). The API
// is installed by a chart and annotated; it exposes its event gateway to
// the resource namespace and depends on the backup and restore components
// there. A third namespace declares the same needs without being exposed
// to, and a look-alike pod in an unguarded namespace carries the backup
// pods' labels: neither gets a path.
const kannikaSystem = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: {{sys}}
  annotations:
    netguard.io/depends-on: {{data}}/backup:9000 {{data}}/restore:9000
    netguard.io/expose-to: kubernetes.io/metadata.name={{data}}:8082
spec:
  selector: {matchLabels: {app.kubernetes.io/name: kannika-api}}
  template:
    metadata: {labels: {app.kubernetes.io/name: kannika-api}}
    spec:
      containers:
      - name: api
        image: registry.example/kannika-api:1
        ports:
        - {name: http, containerPort: 8080}
        - {name: events, containerPort: 8082}
`

// The resource namespace's own workload, which takes no part in Kannika.
const kannikaBystander = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders-db
  namespace: {{data}}
spec:
  selector: {matchLabels: {app: orders-db}}
  template:
    metadata: {labels: {app: orders-db}}
    spec:
      containers:
      - {name: db, image: registry.example/postgres:1, ports: [{name: postgres, containerPort: 5432}, {name: metrics, containerPort: 9000}]}
`

// The backup pod and the restore Job as the platform creates them, with
// only its labels; NS is the resource namespace or the third one.
const kannikaWorkers = `apiVersion: v1
kind: Pod
metadata:
  name: backup-orders
  namespace: {{ns}}
  labels: {armory.kannika.io/role: backup, armory.kannika.io/backup: orders, app.kubernetes.io/managed-by: kannika-armory}
spec:
  containers:
  - {name: backup, image: registry.example/kannika-backup:1, ports: [{name: metrics, containerPort: 9000}]}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: restore-orders-1
  namespace: {{ns}}
spec:
  template:
    metadata:
      labels: {armory.kannika.io/role: restore, armory.kannika.io/restore: orders-1, app.kubernetes.io/managed-by: kannika-armory}
    spec:
      restartPolicy: Never
      containers:
      - {name: restore, image: registry.example/kannika-restore:1, ports: [{name: metrics, containerPort: 9000}]}
`

// The same, annotated: each declares its side of both paths.
const kannikaAnnotatedWorkers = `apiVersion: v1
kind: Pod
metadata:
  name: backup-orders
  namespace: {{ns}}
  labels: {armory.kannika.io/role: backup, armory.kannika.io/backup: orders, app.kubernetes.io/managed-by: kannika-armory}
  annotations:
    netguard.io/component: backup
    netguard.io/depends-on: {{sys}}/api:8082
    netguard.io/expose-to: kubernetes.io/metadata.name={{sys}}:9000
spec:
  containers:
  - {name: backup, image: registry.example/kannika-backup:1, ports: [{name: metrics, containerPort: 9000}]}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: restore-orders-1
  namespace: {{ns}}
  annotations:
    netguard.io/component: restore
    netguard.io/depends-on: {{sys}}/api:8082
    netguard.io/expose-to: kubernetes.io/metadata.name={{sys}}:9000
spec:
  template:
    metadata:
      labels: {armory.kannika.io/role: restore, armory.kannika.io/restore: orders-1, app.kubernetes.io/managed-by: kannika-armory}
    spec:
      restartPolicy: Never
      containers:
      - {name: restore, image: registry.example/kannika-restore:1, ports: [{name: metrics, containerPort: 9000}]}
`

// The resource side's LocalNetworkConfig, in the shape the CRD documents:
// each component depends on the API's event gateway in the system namespace
// and exposes its metrics port to that namespace.
const kannikaConfig = `apiVersion: netguard.io/v1alpha1
kind: LocalNetworkConfig
metadata:
  name: armory
  namespace: {{ns}}
spec:
  components:
    backup:
      podSelector: {matchLabels: {armory.kannika.io/role: backup}}
      dependsOn:
      - {namespace: {{sys}}, component: api, port: 8082}
      exposeTo:
      - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: {{sys}}}}
        ports: [{port: 9000}]
    restore:
      podSelector: {matchLabels: {armory.kannika.io/role: restore}}
      dependsOn:
      - {namespace: {{sys}}, component: api, port: 8082}
      exposeTo:
      - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: {{sys}}}}
        ports: [{port: 9000}]
`

const kannikaLookalike = `apiVersion: v1
kind: Pod
metadata:
  name: armory-lookalike-{{data}}
  namespace: seed-strangers
  labels: {armory.kannika.io/role: backup, netguard.io/component: backup}
spec:
  containers:
  - {name: app, image: registry.example/app:1, ports: [{name: metrics, containerPort: 9000}]}
`

// TestSeedKannikaArmory declares the resource side with LocalNetworkConfigs
// (the platform's pods carry no annotations), by consent with
// dependsOn[].namespace and exposeTo.
func TestSeedKannikaArmory(t *testing.T) {
	seedKannika(t, "kannika-system", "kannika-data", "kannika-other", false)
}

// TestSeedKannikaArmoryAnnotated is the same with the backup pod and the
// restore Job annotated.
func TestSeedKannikaArmoryAnnotated(t *testing.T) {
	seedKannika(t, "kannika-system-a", "kannika-data-a", "kannika-other-a", true)
}

func seedKannika(t *testing.T, sys, data, other string, annotated bool) {
	startNetguard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	fill := func(m, ns string) string {
		return strings.NewReplacer("{{sys}}", sys, "{{data}}", data, "{{ns}}", ns).Replace(m)
	}
	seedNamespaces(t, ctx, sys, data, other)
	if err := applyAs(ctx, testCluster.KubeconfigPath, fill(kannikaLookalike, "")); err != nil {
		t.Fatalf("the look-alike: %v", err)
	}
	owner := map[string]string{}
	for _, ns := range []string{sys, data, other} {
		owner[ns] = seedTenant(t, ctx, cs, "owner-of-"+ns, ns)
	}
	c := profileClient(t)

	// The resource side first: its declarations wait for the system side's.
	for _, ns := range []string{data, other} {
		m := kannikaWorkers + "---\n" + kannikaConfig
		if annotated {
			m = kannikaAnnotatedWorkers
		}
		if ns == data {
			m += "---\n" + kannikaBystander
		}
		if err := applyAs(ctx, owner[ns], fill(m, ns)); err != nil {
			t.Fatalf("%s's owner applies the backup pod and the restore Job: %v", ns, err)
		}
	}
	if err := applyAs(ctx, owner[sys], fill(kannikaSystem, sys)); err != nil {
		t.Fatalf("%s's owner applies the API: %v", sys, err)
	}

	eventually(t, 60*time.Second, "both sides agreed", func() error {
		for _, ns := range []string{sys, data, other} {
			if err := policiesExist(ctx, cs, ns, baselinePolicies...)(); err != nil {
				return err
			}
		}
		if err := policiesExist(ctx, cs, sys, "netguard.api.cross-namespace-egress", "netguard.api.cross-namespace-ingress")(); err != nil {
			return err
		}
		if annotated {
			return policiesExist(ctx, cs, data, "netguard.backup.cross-namespace-egress", "netguard.backup.cross-namespace-ingress",
				"netguard.restore.cross-namespace-egress", "netguard.restore.cross-namespace-ingress")()
		}
		return lncReady(ctx, cs, c, data, "armory")()
	})

	sc := &seedScenario{
		namespaces: []string{sys, data, other, seedStrangers},
		guarded:    []string{sys, data, other},
		groups: map[string][]string{
			sys + "/api":                 {sys + "/api"},
			data + "/backup":             {data + "/backup-orders"},
			data + "/restore":            {data + "/restore-orders-1"},
			data + "/orders-db":          {data + "/orders-db"},
			other + "/backup":            {other + "/backup-orders"},
			other + "/restore":           {other + "/restore-orders-1"},
			seedStrangers + "/lookalike": {seedStrangers + "/armory-lookalike-" + data},
		},
		table: []seedPath{
			// 9000, Prometheus metrics scraping: the API server scrapes the
			// /metrics endpoint of backup pods and restore Jobs. (The
			// table's direction column reads "Resource -> System"; its prose
			// and its NetworkPolicy open 9000 on the resource side's pods to
			// the system namespace, which is the direction connections open.)
			{sys + "/api", data + "/backup", "9000"},
			{sys + "/api", data + "/restore", "9000"},
			// 8082, push metrics and events: backup and restore pods reach
			// the API's event gateway.
			{data + "/backup", sys + "/api", "8082"},
			{data + "/restore", sys + "/api", "8082"},
		},
		probes: []string{"53", "5432", "8080", "9090"},
	}
	eventually(t, 60*time.Second, "Kannika Armory's connectivity as its networking page documents it", func() error {
		return sc.check(t, ctx)
	})
}
