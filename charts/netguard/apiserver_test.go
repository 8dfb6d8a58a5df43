package chart

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/netguard/netguard/e2e/cluster"
)

// CRDs the chart's objects need besides its own: cert-manager's (the version
// certs/doc.go was checked against) and the Prometheus Operator's
// ServiceMonitor, read from their Go modules in the module cache.
const (
	certManagerModule        = "github.com/cert-manager/cert-manager"
	certManagerVersion       = "v1.21.2"
	prometheusOperatorModule = "github.com/prometheus-operator/prometheus-operator"
	prometheusOperatorVer    = "v0.85.0"
	fieldManager             = "netguard-chart-test"
)

var (
	clusterOnce sync.Once
	testCluster *cluster.Cluster
	errCluster  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if testCluster != nil {
		if err := testCluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop control plane:", err)
		}
	}
	os.Exit(code)
}

// apiServer starts one control plane for the package, on first use, with
// every CRD the chart's objects need.
func apiServer(t *testing.T) *cluster.Cluster {
	t.Helper()
	clusterOnce.Do(func() {
		var crds []string
		crds, errCluster = crdPaths()
		if errCluster != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		testCluster, errCluster = cluster.Start(ctx, cluster.Options{CRDDirs: crds})
		if errCluster == nil {
			// Hundreds of small requests: client-go's default 5 QPS would
			// make them a minute of waiting.
			testCluster.Config.QPS, testCluster.Config.Burst = 500, 1000
		}
	})
	if errCluster != nil {
		t.Fatalf("control plane: %v", errCluster)
	}
	return testCluster
}

func crdPaths() ([]string, error) {
	cm, err := moduleDir(certManagerModule, certManagerVersion)
	if err != nil {
		return nil, err
	}
	po, err := moduleDir(prometheusOperatorModule, prometheusOperatorVer)
	if err != nil {
		return nil, err
	}
	return []string{
		"crds",
		filepath.Join(cm, "deploy", "crds"),
		filepath.Join(po, "example", "prometheus-operator-crd", "monitoring.coreos.com_servicemonitors.yaml"),
	}, nil
}

// moduleDir returns a module's directory in the module cache, downloading it
// through the Go module proxy the first time. It runs outside this module so
// go.mod and go.sum stay as they are.
func moduleDir(path, version string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", path+"@"+version)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr != nil || info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: %v %s%s", path, version, err, info.Error, exitStderr(err))
	}
	return info.Dir, nil
}

func exitStderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// warnings collects the API server's Warning headers.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

// applier server-side applies unstructured objects as a given identity.
type applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
	warn   *warnings
}

func newApplier(t *testing.T, cfg *rest.Config) *applier {
	t.Helper()
	cfg = rest.CopyConfig(cfg)
	w := &warnings{}
	cfg.WarningHandler = w
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), warn: w}
}

func (a *applier) resource(u *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := u.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", gvk, err)
	}
	if m.Scope.Name() == "namespace" {
		return a.dyn.Resource(m.Resource).Namespace(u.GetNamespace()), nil
	}
	return a.dyn.Resource(m.Resource), nil
}

// apply server-side applies u with strict field validation: an unknown or
// duplicated field is an error, not a warning. dryRun leaves nothing behind.
func (a *applier) apply(ctx context.Context, u *unstructured.Unstructured, dryRun bool) error {
	ri, err := a.resource(u)
	if err != nil {
		return err
	}
	data, err := u.MarshalJSON()
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: fieldManager, Force: new(true), FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err = ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, opts)
	return err
}

func (a *applier) delete(ctx context.Context, u *unstructured.Unstructured) error {
	ri, err := a.resource(u)
	if err != nil {
		return err
	}
	return ri.Delete(ctx, u.GetName(), metav1.DeleteOptions{})
}

// restrictedNamespace makes ns, enforcing and warning at Pod Security
// "restricted", so a Deployment that falls short earns a warning.
func restrictedNamespace(t *testing.T, c *cluster.Cluster, ns string) {
	t.Helper()
	if err := c.EnsureNamespace(context.Background(), ns, map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/warn":    "restricted",
	}); err != nil {
		t.Fatal(err)
	}
}

// TestServerSideDryRun sends every object of every value set to a real
// kube-apiserver as `helm install` would create it, as a server-side apply dry
// run with strict field validation: schemas (built-in and CRDs), CEL
// matchConditions, RBAC and Pod Security all judge it. No warning is allowed.
func TestServerSideDryRun(t *testing.T) {
	c := apiServer(t)
	ctx := context.Background()
	restrictedNamespace(t, c, "netguard-system")
	a := newApplier(t, c.Config)

	// The check is only as good as the warnings reaching it: a privileged
	// Deployment must earn a Pod Security warning here.
	bad := mustRender(t, valueSetNamed(t, "defaults")).find("Deployment", "netguard").DeepCopy()
	containers, _, _ := unstructured.NestedSlice(bad.Object, "spec", "template", "spec", "containers")
	containers[0].(map[string]any)["securityContext"] = map[string]any{"privileged": true}
	if err := unstructured.SetNestedSlice(bad.Object, containers, "spec", "template", "spec", "containers"); err != nil {
		t.Fatal(err)
	}
	if err := a.apply(ctx, bad, true); err != nil {
		t.Fatalf("privileged control: %v", err)
	}
	if w := a.warn.take(); len(w) == 0 || !strings.Contains(strings.Join(w, "\n"), "PodSecurity") {
		t.Fatalf("a privileged Deployment earned no Pod Security warning (%q): the check below would prove nothing", w)
	}

	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			r := mustRender(t, vs)
			for _, o := range r.Objects {
				err := a.apply(ctx, o, true)
				if err != nil {
					t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
				}
				if w := a.warn.take(); len(w) > 0 {
					t.Errorf("%s %s: warnings:\n%s", o.GetKind(), o.GetName(), strings.Join(w, "\n"))
				}
			}
		})
	}
}
