// Package chart tests the Helm chart in this directory: it renders the chart
// with Helm's Go SDK for the value sets a platform team uses, asserts on the
// objects, and applies every render to a real API server as a server-side dry
// run. .helmignore keeps these files out of the packaged chart.
package chart

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartv2util "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// kubeVersion is the control plane the tests run against (hack/envtest-assets.sh).
const kubeVersion = "v1.36.3"

var (
	chartOnce   sync.Once
	loadedChart *chartv2.Chart
	errChart    error
)

func loadChart(t *testing.T) *chartv2.Chart {
	t.Helper()
	chartOnce.Do(func() { loadedChart, errChart = loader.LoadDir(".") })
	if errChart != nil {
		t.Fatalf("load chart: %v", errChart)
	}
	return loadedChart
}

// release is one render of the chart, as `helm install` would send it.
type release struct {
	Name, Namespace string
	// Objects are the rendered manifests in Helm's install order.
	Objects []*unstructured.Unstructured
	// Files are the rendered templates by path, as Helm stores them in the
	// release and sorts them again on uninstall.
	Files map[string]string
	Notes string
}

// valueSet is a named set of user values, as in `helm install -f`.
type valueSet struct {
	name   string
	values string
}

// valueSets are the installs the chart promises to support; every one is
// asserted on below and server-side applied as a dry run in apiserver_test.go.
var valueSets = []valueSet{
	{name: "defaults"},
	{name: "self-managed", values: `
certManager:
  enabled: false
`},
	// The first step of a rollout: nothing is denied, everything is audited
	// and warned about, and an outage of netguard blocks no NetworkPolicy write.
	{name: "audit-only", values: `
config:
  defaults:
    enforce: privileged
    audit: restricted
    warn: restricted
webhooks:
  validating:
    failurePolicy: Ignore
`},
	// A lab or a small cluster: one replica, no PDB, no leader election.
	{name: "single-replica", values: `
replicaCount: 1
leaderElection:
  enabled: false
`},
	// A tuned production install: Prometheus Operator, a corporate issuer, the
	// control plane's real address, extra excluded namespaces.
	{name: "tuned", values: `
replicaCount: 3
image:
  digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
metrics:
  serviceMonitor:
    enabled: true
    labels:
      release: kube-prometheus-stack
certManager:
  issuerRef:
    name: corp-ca
    kind: ClusterIssuer
webhooks:
  timeoutSeconds: 3
  excludedNamespaces: [tenant-sandbox, kube-system]
networkPolicy:
  apiServer:
    cidrs: [172.18.0.2/32, "fd00:10::/64"]
    ports: [6443]
  metrics:
    namespaceSelector:
      matchLabels:
        kubernetes.io/metadata.name: observability
    podSelector:
      matchLabels:
        app.kubernetes.io/name: prometheus
        prometheus: k8s
config:
  exemptions:
    usernames: ["system:serviceaccount:argocd:argocd-application-controller"]
  platformIdentities:
    groups: [platform-admins]
`},
}

func parseValues(t *testing.T, s string) map[string]any {
	t.Helper()
	vals := map[string]any{}
	if err := yaml.Unmarshal([]byte(s), &vals); err != nil {
		t.Fatalf("values: %v", err)
	}
	return vals
}

func capabilities(t *testing.T) *common.Capabilities {
	t.Helper()
	caps := common.DefaultCapabilities.Copy()
	kv, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	caps.KubeVersion = *kv
	return caps
}

// renderChart renders the chart as `helm install NAME -n NAMESPACE -f values`
// does: schema validation, templates, hooks and manifests sorted by kind.
func renderChart(t *testing.T, name, namespace, values string) (*release, error) {
	t.Helper()
	ch := loadChart(t)
	caps := capabilities(t)
	if !chartv2util.IsCompatibleRange(ch.Metadata.KubeVersion, kubeVersion) {
		return nil, fmt.Errorf("chart kubeVersion %q does not accept %s", ch.Metadata.KubeVersion, kubeVersion)
	}
	opts := common.ReleaseOptions{Name: name, Namespace: namespace, Revision: 1, IsInstall: true}
	vals, err := chartutil.ToRenderValuesWithSchemaValidation(ch, parseValues(t, values), opts, caps, false)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(ch, vals)
	if err != nil {
		return nil, err
	}
	r := &release{Name: name, Namespace: namespace}
	for path, content := range files {
		if strings.HasSuffix(path, "NOTES.txt") {
			r.Notes = content
			delete(files, path)
		}
	}
	r.Files = files
	hooks, manifests, err := releaseutil.SortManifests(files, caps.APIVersions, releaseutil.InstallOrder)
	if err != nil {
		return nil, err
	}
	if len(hooks) > 0 {
		return nil, fmt.Errorf("the chart has %d hooks; these tests do not run hooks", len(hooks))
	}
	for _, m := range manifests {
		js, err := yaml.YAMLToJSON([]byte(m.Content))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Name, err)
		}
		if string(js) == "null" {
			continue
		}
		// UnmarshalJSON keeps integers as int64, as the API machinery does.
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("%s: %w", m.Name, err)
		}
		r.Objects = append(r.Objects, u)
	}
	return r, nil
}

// mustRender renders a value set that must succeed.
func mustRender(t *testing.T, vs valueSet) *release {
	t.Helper()
	r, err := renderChart(t, "netguard", "netguard-system", vs.values)
	if err != nil {
		t.Fatalf("render %s: %v", vs.name, err)
	}
	return r
}

func valueSetNamed(t *testing.T, name string) valueSet {
	t.Helper()
	for _, vs := range valueSets {
		if vs.name == name {
			return vs
		}
	}
	t.Fatalf("no value set %q", name)
	return valueSet{}
}

// find returns the one object of kind and name, or nil.
func (r *release) find(kind, name string) *unstructured.Unstructured {
	for _, o := range r.Objects {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func (r *release) ofKind(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range r.Objects {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// get decodes the object of kind and name into a typed object, failing the
// test if there is none.
func get[T any](t *testing.T, r *release, kind, name string) *T {
	t.Helper()
	u := r.find(kind, name)
	if u == nil {
		t.Fatalf("no %s %q in the render; have %s", kind, name, r.summary())
	}
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("%s %q does not decode strictly: %v", kind, name, err)
	}
	return out
}

func (r *release) summary() string {
	var s []string
	for _, o := range r.Objects {
		s = append(s, o.GetKind()+"/"+o.GetName())
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// yamlDiff returns "" when a and b marshal to the same YAML, and both
// otherwise, line-numbered where they first differ.
func yamlDiff(a, b any) string {
	ya, yb := toYAML(a), toYAML(b)
	if ya == yb {
		return ""
	}
	la, lb := strings.Split(ya, "\n"), strings.Split(yb, "\n")
	line := 0
	for line < len(la) && line < len(lb) && la[line] == lb[line] {
		line++
	}
	return fmt.Sprintf("first difference at line %d\n--- chart\n%s\n--- go\n%s", line+1, ya, yb)
}
