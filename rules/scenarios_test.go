package rules

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// The scenarios in testdata/scenarios are real products' documented network
// needs, written as annotated workloads and profiles. For each, the
// generated policies plus the namespace baseline must give exactly the
// documented connectivity: every flow of the table allowed, every other
// (source, destination, port) the test tries denied.

// flow is one row of a documented connectivity table. From is an endpoint
// key ("namespace/workload" or an IP) or "*" for any source outside the
// namespaces netguard governs (other namespaces' pods, external addresses):
// a governed pod needs its own row, since its egress is denied by default.
type flow struct {
	from, to string
	ports    string // "9500", "8500-8504", "53/UDP"
}

type scenarioEnv struct {
	endpoints []Endpoint
	keys      []string // endpoint keys, in the order of endpoints
	governed  map[string]bool
	policies  []*networkingv1.NetworkPolicy // generated and baseline
	manifests []*networkingv1.NetworkPolicy // NetworkPolicies found in the files
}

func endpointKey(e Endpoint) string {
	if e.External {
		return e.IP
	}
	return e.Namespace + "/" + e.Name
}

func (env *scenarioEnv) add(e Endpoint) {
	env.endpoints = append(env.endpoints, e)
	env.keys = append(env.keys, endpointKey(e))
}

func (env *scenarioEnv) endpoint(t *testing.T, key string) Endpoint {
	t.Helper()
	for i, k := range env.keys {
		if k == key {
			return env.endpoints[i]
		}
	}
	t.Fatalf("no endpoint %q", key)
	return Endpoint{}
}

// scenarioDocs decodes every YAML document of the files directly in dir.
func scenarioDocs(t *testing.T, dir string) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	sort.Strings(files)
	var docs [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			js, err := utilyaml.ToJSON(doc)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(bytes.TrimSpace(js)) == 0 || string(bytes.TrimSpace(js)) == "null" {
				continue
			}
			docs = append(docs, js)
		}
	}
	return docs
}

func strictJSON(t *testing.T, b []byte, into any) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(into); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
}

// loadScenario reads a scenario directory, generates its policies and builds
// one endpoint per workload, as `netguard reach` does.
func loadScenario(t *testing.T, dir string) *scenarioEnv {
	t.Helper()
	env := &scenarioEnv{governed: map[string]bool{}}
	nsLabels := map[string]map[string]string{}
	profiles := map[string]Profile{}
	var workloads []Workload
	var templates []*corev1.PodTemplateSpec
	for _, js := range scenarioDocs(t, dir) {
		var tm metav1.TypeMeta
		if err := json.Unmarshal(js, &tm); err != nil {
			t.Fatal(err)
		}
		switch tm.Kind {
		case "Namespace":
			var ns corev1.Namespace
			strictJSON(t, js, &ns)
			nsLabels[ns.Name] = ns.Labels
		case "NetworkProfile":
			// rules cannot import the API package; read the same fields.
			var p struct {
				metav1.TypeMeta `json:",inline"`
				Metadata        metav1.ObjectMeta `json:"metadata"`
				Spec            struct {
					Description       string                                  `json:"description"`
					Ingress           []networkingv1.NetworkPolicyIngressRule `json:"ingress"`
					Egress            []networkingv1.NetworkPolicyEgressRule  `json:"egress"`
					NamespaceSelector *metav1.LabelSelector                   `json:"namespaceSelector"`
				} `json:"spec"`
			}
			strictJSON(t, js, &p)
			profiles[p.Metadata.Name] = Profile{Name: p.Metadata.Name, Description: p.Spec.Description, Ingress: p.Spec.Ingress, Egress: p.Spec.Egress, NamespaceSelector: p.Spec.NamespaceSelector}
		case "NetworkPolicy":
			var np networkingv1.NetworkPolicy
			strictJSON(t, js, &np)
			env.manifests = append(env.manifests, &np)
		case "Deployment", "StatefulSet", "DaemonSet":
			var (
				obj  runtime.Object
				tmpl *corev1.PodTemplateSpec
			)
			switch tm.Kind {
			case "Deployment":
				o := &appsv1.Deployment{}
				obj, tmpl = o, &o.Spec.Template
			case "StatefulSet":
				o := &appsv1.StatefulSet{}
				obj, tmpl = o, &o.Spec.Template
			default:
				o := &appsv1.DaemonSet{}
				obj, tmpl = o, &o.Spec.Template
			}
			strictJSON(t, js, obj)
			w, ok := WorkloadFromObject(obj)
			if !ok {
				t.Fatalf("%s: not a workload", tm.Kind)
			}
			workloads = append(workloads, w)
			templates = append(templates, tmpl)
		default:
			t.Fatalf("%s: unexpected kind %q", dir, tm.Kind)
		}
	}
	for _, f := range CheckWorkloadSet(workloads) {
		t.Errorf("%s: %s %s", workloads[f.Index].Ref(), f.Error, f.Warning)
	}
	for i, w := range workloads {
		g, errs := Generate(w, profiles)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", w.Ref(), errs)
		}
		for _, msg := range g.Warnings {
			t.Errorf("%s: warning %s", w.Ref(), msg)
		}
		env.policies = append(env.policies, g.Policies...)
		labels := map[string]string{}
		for k, v := range templates[i].Labels {
			labels[k] = v
		}
		if g.Component != "" {
			labels[LabelComponent] = g.Component
			env.governed[w.Namespace] = true
		}
		var ports []corev1.ContainerPort
		for _, c := range templates[i].Spec.Containers {
			ports = append(ports, c.Ports...)
		}
		env.add(Endpoint{Namespace: w.Namespace, Name: w.Name, Labels: labels, NamespaceLabels: nsLabels[w.Namespace], Ports: ports})
	}
	var nss []string
	for ns := range env.governed {
		nss = append(nss, ns)
	}
	sort.Strings(nss)
	for _, ns := range nss {
		env.policies = append(env.policies, NamespaceBaseline(ns, BaselineOptions{})...)
		// A pod of the namespace that no annotation mentions: denied both
		// ways by the baseline.
		env.add(Endpoint{Namespace: ns, Name: "stray", Labels: map[string]string{"app": "stray"}, NamespaceLabels: nsLabels[ns],
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}, {ContainerPort: 9000}}})
	}
	// Common outsiders: the cluster DNS, a pod of an unmanaged namespace
	// and an address on the internet.
	env.add(Endpoint{Namespace: "kube-system", Name: "coredns", Labels: map[string]string{"k8s-app": "kube-dns"}})
	env.add(Endpoint{Namespace: "elsewhere", Name: "client", Labels: map[string]string{"app": "client"}})
	env.add(ExternalEndpoint("203.0.113.77"))
	return env
}

type portRange struct {
	lo, hi int32
	proto  corev1.Protocol
}

func parseFlowPorts(t *testing.T, s string) []portRange {
	t.Helper()
	var out []portRange
	for _, part := range strings.Split(s, ",") {
		num, proto, _ := strings.Cut(part, "/")
		pr := portRange{proto: corev1.ProtocolTCP}
		if proto != "" {
			pr.proto = corev1.Protocol(proto)
		}
		lo, hi, isRange := strings.Cut(num, "-")
		l, err := strconv.Atoi(lo)
		if err != nil {
			t.Fatalf("flow ports %q", s)
		}
		pr.lo, pr.hi = int32(l), int32(l)
		if isRange {
			h, err := strconv.Atoi(hi)
			if err != nil {
				t.Fatalf("flow ports %q", s)
			}
			pr.hi = int32(h)
		}
		out = append(out, pr)
	}
	return out
}

// checkScenario compares the evaluator's verdicts with the table for every
// ordered pair of endpoints on every probe port.
func checkScenario(t *testing.T, env *scenarioEnv, table []flow) {
	t.Helper()
	type row struct {
		flow
		ports []portRange
	}
	var rows []row
	probeSet := map[Port]bool{}
	addProbe := func(n int32) {
		if n >= 1 && n <= 65535 {
			probeSet[Port{n, corev1.ProtocolTCP}] = true
			probeSet[Port{n, corev1.ProtocolUDP}] = true
		}
	}
	for _, f := range table {
		found := false
		for _, k := range env.keys {
			found = found || k == f.to
		}
		if !found {
			t.Fatalf("table row %v: no endpoint %q", f, f.to)
		}
		r := row{flow: f, ports: parseFlowPorts(t, f.ports)}
		rows = append(rows, r)
		for _, p := range r.ports {
			for _, n := range []int32{p.lo - 1, p.lo, (p.lo + p.hi) / 2, p.hi, p.hi + 1} {
				addProbe(n)
			}
		}
	}
	for _, e := range env.endpoints {
		for _, cp := range e.Ports {
			addProbe(cp.ContainerPort)
		}
	}
	for _, n := range []int32{22, 53, 80, 443, 3260, 6443, 8080, 9000, 9090, 9092} {
		addProbe(n)
	}
	var probes []Port
	for p := range probeSet {
		probes = append(probes, p)
	}
	sort.Slice(probes, func(i, j int) bool {
		if probes[i].Number != probes[j].Number {
			return probes[i].Number < probes[j].Number
		}
		return probes[i].Protocol < probes[j].Protocol
	})

	governed := func(e Endpoint) bool { return !e.External && env.governed[e.Namespace] }
	expected := func(from, to Endpoint, fromKey, toKey string, p Port) bool {
		if governed(from) && to.Namespace == "kube-system" && to.Labels["k8s-app"] == "kube-dns" && p.Number == 53 {
			return true
		}
		for _, r := range rows {
			if r.to != toKey || (r.from != fromKey && !(r.from == "*" && !governed(from))) {
				continue
			}
			for _, pr := range r.ports {
				if pr.proto == p.Protocol && pr.lo <= p.Number && p.Number <= pr.hi {
					return true
				}
			}
		}
		return false
	}

	ev, err := NewEvaluator(env.policies)
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	checked, allowed := 0, 0
	for i, from := range env.endpoints {
		for j, to := range env.endpoints {
			if !governed(from) && !governed(to) {
				continue // neither side is netguard's
			}
			for _, p := range probes {
				v := ev.Reach(from, to, p)
				want := expected(from, to, env.keys[i], env.keys[j], p)
				checked++
				if v.Allowed {
					allowed++
				}
				if v.Allowed != want {
					bad = append(bad, fmt.Sprintf("%s -> %s %s: got allowed=%v, table says %v: %s", env.keys[i], env.keys[j], p, v.Allowed, want, v.Reason()))
				}
			}
		}
	}
	// Every row of the table was exercised and found open.
	for _, r := range rows {
		if r.from == "*" {
			continue
		}
		from, to := env.endpoint(t, r.from), env.endpoint(t, r.to)
		for _, pr := range r.ports {
			for _, n := range []int32{pr.lo, pr.hi} {
				if v := ev.Reach(from, to, Port{n, pr.proto}); !v.Allowed {
					bad = append(bad, fmt.Sprintf("table row %s -> %s %d/%s denied: %s", r.from, r.to, n, pr.proto, v.Reason()))
				}
			}
		}
	}
	if len(bad) > 0 {
		if len(bad) > 30 {
			bad = append(bad[:30], fmt.Sprintf("... and %d more", len(bad)-30))
		}
		t.Errorf("connectivity differs from the documented table:\n%s", strings.Join(bad, "\n"))
	}
	t.Logf("%d connections checked over %d endpoints and %d ports, %d allowed", checked, len(env.endpoints), len(probes), allowed)
}

func TestScenarioLonghorn(t *testing.T) {
	env := loadScenario(t, "testdata/scenarios/longhorn")
	const (
		apiserver   = "10.0.0.10"
		node        = "10.0.1.7"
		backupstore = "198.51.100.5"
	)
	env.add(ExternalEndpoint(apiserver))
	env.add(ExternalEndpoint(node))
	env.add(ExternalEndpoint(backupstore))
	ns := "longhorn-system/"
	checkScenario(t, env, []flow{
		// Longhorn manager, ingress.
		{ns + "longhorn-manager", ns + "longhorn-manager", "9500"},
		{ns + "longhorn-ui", ns + "longhorn-manager", "9500"},
		{ns + "longhorn-csi-plugin", ns + "longhorn-manager", "9500"},
		{ns + "recurring-job", ns + "longhorn-manager", "9500"},
		{ns + "longhorn-driver-deployer", ns + "longhorn-manager", "9500"},
		{apiserver, ns + "longhorn-manager", "9501,9502"},
		{ns + "share-manager", ns + "longhorn-manager", "9503"},
		// Longhorn manager, egress.
		{ns + "longhorn-manager", ns + "instance-manager", "8500-8504"},
		{ns + "longhorn-manager", ns + "backing-image-manager", "8000"},
		{ns + "longhorn-manager", ns + "backing-image-data-source", "8000"},
		{ns + "longhorn-manager", backupstore, "443"},
		{ns + "longhorn-manager", apiserver, "6443"},
		// Instance manager, ingress.
		{ns + "instance-manager", ns + "instance-manager", "10000-30000"},
		{node, ns + "instance-manager", "3260"},
		{ns + "backing-image-data-source", ns + "instance-manager", "10000-30000"},
	})
}

func TestScenarioKannika(t *testing.T) {
	env := loadScenario(t, "testdata/scenarios/kannika")
	sys, data := "kannika-system/", "kannika-data/"
	checkScenario(t, env, []flow{
		// The API server scrapes backup and restore pods.
		{sys + "kannika-api", data + "backup-orders", "9000"},
		{sys + "kannika-api", data + "restore-orders", "9000"},
		// Backup and restore pods push events to the event gateway.
		{data + "backup-orders", sys + "kannika-api", "8082"},
		{data + "restore-orders", sys + "kannika-api", "8082"},
		// Inside the system namespace.
		{sys + "console", sys + "kannika-api", "8080"},
	})
}

func flinkTable() []flow {
	ns := "event-automation/"
	return []flow{
		// Ingress from anywhere.
		{"*", ns + "ep-operator", "8443"},
		{"*", ns + "flink-operator", "9443"},
		{"*", ns + "event-processing", "8443"},
		{"*", ns + "flink-jobmanager", "8081"},
		{"*", ns + "flink-taskmanager", "8081"},
		// Inside the Event Processing instance.
		{ns + "event-processing", ns + "event-processing", "7000,3000,8888"},
		// Event Processing egress: job submission and Kafka.
		{ns + "event-processing", ns + "flink-jobmanager", "8081"},
		{ns + "event-processing", "kafka/kafka-broker-0", "9092"},
		// Flink pods among themselves.
		{ns + "flink-jobmanager", ns + "flink-jobmanager", "6123,6124"},
		{ns + "flink-jobmanager", ns + "flink-taskmanager", "6123,6124"},
		{ns + "flink-taskmanager", ns + "flink-jobmanager", "6123,6124"},
		{ns + "flink-taskmanager", ns + "flink-taskmanager", "6123,6124"},
		// Operators: the Flink operator drives the job manager's REST API,
		// both reach the Kubernetes API server.
		{ns + "flink-operator", ns + "flink-jobmanager", "8081"},
		{ns + "flink-operator", "10.0.0.10", "6443"},
		{ns + "ep-operator", "10.0.0.10", "6443"},
	}
}

func flinkEnv(t *testing.T) *scenarioEnv {
	env := loadScenario(t, "testdata/scenarios/flink")
	env.add(Endpoint{Namespace: "kafka", Name: "kafka-broker-0", Labels: map[string]string{"strimzi.io/kind": "Kafka"},
		Ports: []corev1.ContainerPort{{Name: "clients", ContainerPort: 9092}}})
	env.add(ExternalEndpoint("10.0.0.10"))
	return env
}

func TestScenarioFlink(t *testing.T) {
	env := flinkEnv(t)
	checkScenario(t, env, flinkTable())
}

// The vendor's handwritten Flink policies restrict ingress only. Compared
// with the generated ones on ingress to the Flink pods, they differ exactly
// where the vendor's policies and its own table disagree:
//   - the table opens 8081 on job and task managers to anywhere; the
//     handwritten policies only to Flink pods, the operator (job manager) and
//     Event Processing (job manager);
//   - the handwritten operator policy also opens 443, which the table does
//     not list.
func TestScenarioFlinkAgainstVendorPolicies(t *testing.T) {
	env := flinkEnv(t)
	if len(env.manifests) != 0 {
		t.Fatalf("the scenario itself holds NetworkPolicies: %d", len(env.manifests))
	}
	vendor := loadScenario(t, "testdata/scenarios/flink/vendor").manifests
	if len(vendor) != 6 {
		t.Fatalf("vendor policies: %d", len(vendor))
	}
	gen, err := NewEvaluator(env.policies)
	if err != nil {
		t.Fatal(err)
	}
	ven, err := NewEvaluator(vendor)
	if err != nil {
		t.Fatal(err)
	}
	ns := "event-automation/"
	flinkPods := map[string]bool{ns + "flink-jobmanager": true, ns + "flink-taskmanager": true}
	knownDifference := func(from, to string, p Port) bool {
		if p.Protocol != corev1.ProtocolTCP {
			return false
		}
		switch {
		case to == ns+"flink-jobmanager" && p.Number == 8081:
			return !flinkPods[from] && from != ns+"flink-operator" && from != ns+"event-processing"
		case to == ns+"flink-taskmanager" && p.Number == 8081:
			return !flinkPods[from]
		case to == ns+"flink-operator" && p.Number == 443:
			return true
		}
		return false
	}
	var bad []string
	compared := 0
	for i, from := range env.endpoints {
		for j, to := range env.endpoints {
			if !flinkPods[env.keys[j]] && env.keys[j] != ns+"flink-operator" {
				continue
			}
			for _, n := range []int32{443, 6122, 6123, 6124, 6125, 8080, 8081, 8082, 8443, 9249, 9443} {
				for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
					p := Port{n, proto}
					g, v := gen.Reach(from, to, p).Ingress.Allowed, ven.Reach(from, to, p).Ingress.Allowed
					compared++
					if (g != v) != knownDifference(env.keys[i], env.keys[j], p) {
						bad = append(bad, fmt.Sprintf("%s -> %s %s: generated %v, vendor %v", env.keys[i], env.keys[j], p, g, v))
					}
				}
			}
		}
	}
	if len(bad) > 0 {
		t.Errorf("generated and vendor policies differ unexpectedly:\n%s", strings.Join(bad, "\n"))
	}
	t.Logf("%d ingress verdicts compared", compared)
}
