// Package cluster starts a real local control plane (etcd, kube-apiserver and,
// optionally, kube-controller-manager) from the binaries that
// hack/envtest-assets.sh builds into bin/k8s. The e2e tests and `make run`
// share it, so what a new user sees is what the tests prove.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Options shape the control plane.
type Options struct {
	// AssetsDir holds etcd, kube-apiserver, kube-controller-manager and kubectl.
	AssetsDir string
	// CRDDirs are installed before Start returns.
	CRDDirs []string
	// ControllerManager also runs kube-controller-manager, so garbage collection
	// and namespace deletion behave as in a real cluster.
	ControllerManager bool
	// AuditLog turns on the API server's audit log at Metadata level, written to
	// Cluster.AuditLogPath.
	AuditLog bool
	// Log receives the controller manager's output; nil discards it.
	Log io.Writer
	// APIServerLog receives kube-apiserver's output; nil discards it.
	APIServerLog io.Writer
}

// Cluster is a running control plane.
type Cluster struct {
	env *envtest.Environment
	// Config is an admin (system:masters) REST config.
	Config *rest.Config
	// Dir holds the kubeconfig, audit log and other state; Stop removes it.
	Dir            string
	KubeconfigPath string
	AuditLogPath   string
	KubectlPath    string
	kcm            *exec.Cmd
	kcmDone        chan error
}

// FindAssets returns the assets directory: $KUBEBUILDER_ASSETS, or bin/k8s in
// the repository that contains the working directory.
func FindAssets() (string, error) {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			assets := filepath.Join(dir, "bin", "k8s")
			if _, err := os.Stat(filepath.Join(assets, "kube-apiserver")); err != nil {
				return "", fmt.Errorf("control plane binaries missing in %s: run `make envtest-assets`", assets)
			}
			return assets, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory and KUBEBUILDER_ASSETS is unset")
		}
		dir = parent
	}
}

// Start brings up the control plane and waits until it serves.
func Start(ctx context.Context, o Options) (c *Cluster, retErr error) {
	if o.AssetsDir == "" {
		d, err := FindAssets()
		if err != nil {
			return nil, err
		}
		o.AssetsDir = d
	}
	dir, err := os.MkdirTemp("", "netguard-cluster-")
	if err != nil {
		return nil, err
	}
	c = &Cluster{Dir: dir, KubectlPath: filepath.Join(o.AssetsDir, "kubectl")}
	defer func() {
		if retErr != nil {
			_ = c.Stop()
		}
	}()

	env := &envtest.Environment{
		BinaryAssetsDirectory: o.AssetsDir,
		CRDDirectoryPaths:     o.CRDDirs,
		ErrorIfCRDPathMissing: true,
		// kube-apiserver stops listening at once on SIGTERM but then waits
		// for its long-lived connections (watches) for up to a minute;
		// envtest kills it after this. Clients cannot tell the two apart.
		ControlPlaneStopTimeout: 5 * time.Second,
	}
	api := env.ControlPlane.GetAPIServer()
	// A directory of our own keeps the API server's certificates across
	// RestartAPIServer: envtest removes and regenerates a directory it made.
	api.CertDir = filepath.Join(dir, "apiserver")
	api.Out, api.Err = o.APIServerLog, o.APIServerLog

	if err := os.MkdirAll(api.CertDir, 0o700); err != nil {
		return c, err
	}
	if o.AuditLog {
		c.AuditLogPath = filepath.Join(dir, "audit.log")
		policy := filepath.Join(dir, "audit-policy.yaml")
		// Metadata level carries the admission webhooks' audit annotations.
		if err := os.WriteFile(policy, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"), 0o600); err != nil {
			return c, err
		}
		api.Configure().Set("audit-policy-file", policy).Set("audit-log-path", c.AuditLogPath).Set("audit-log-mode", "blocking")
	}
	c.env = env
	if _, err := env.Start(); err != nil {
		return c, fmt.Errorf("start control plane: %w", err)
	}
	admin, err := env.AddUser(envtest.User{Name: "netguard-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return c, fmt.Errorf("add admin user: %w", err)
	}
	c.Config = admin.Config()
	kc, err := admin.KubeConfig()
	if err != nil {
		return c, err
	}
	c.KubeconfigPath = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(c.KubeconfigPath, kc, 0o600); err != nil {
		return c, err
	}
	if o.ControllerManager {
		if err := c.startControllerManager(ctx, o); err != nil {
			return c, err
		}
	}
	return c, nil
}

// AddUser returns a REST config and a kubeconfig path for a user with the
// given groups, authenticated by client certificate.
func (c *Cluster) AddUser(name string, groups ...string) (*rest.Config, string, error) {
	u, err := c.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return nil, "", err
	}
	kc, err := u.KubeConfig()
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(c.Dir, "kubeconfig-"+strings.NewReplacer(":", "_", "/", "_").Replace(name))
	return u.Config(), path, os.WriteFile(path, kc, 0o600)
}

// controllers are the kube-controller-manager controllers a real cluster
// runs that anything netguard does, or anything a person trying it does,
// depends on: ownerReference garbage collection (every cascade mode) and
// namespace deletion; the workload controllers, whose pods carry the
// generated policies' labels; the ServiceAccount "default" pods need; the
// aggregation that fills the built-in admin, edit and view ClusterRoles,
// without which a namespace admin cannot even read a NetworkPolicy; Jobs,
// CronJobs, and the Endpoints and EndpointSlices of Services. Left out:
// what needs a kubelet, a cloud or signing keys (nodes, service account
// tokens, certificates, volumes).
var controllers = []string{
	"garbagecollector", "namespace",
	"deployment", "replicaset", "statefulset", "daemonset", "replicationcontroller", "job", "cronjob", "ttl-after-finished", "podgc", "disruption",
	"serviceaccount", "resourcequota", "clusterrole-aggregation",
	"endpoint", "endpointslice", "endpointslicemirroring",
}

func (c *Cluster) startControllerManager(ctx context.Context, o Options) error {
	bin := filepath.Join(o.AssetsDir, "kube-controller-manager")
	// Its own identity, as in a real cluster, so admission sees who acts.
	_, kc, err := c.AddUser("system:kube-controller-manager", "system:masters")
	if err != nil {
		return err
	}
	args := []string{
		"--kubeconfig=" + kc,
		"--authentication-kubeconfig=" + kc,
		"--authorization-kubeconfig=" + kc,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port=0",
		"--controllers=" + strings.Join(controllers, ","),
		"--use-service-account-credentials=false",
		"--concurrent-gc-syncs=5",
	}
	cmd := exec.Command(bin, args...)
	out := o.Log
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start kube-controller-manager: %w", err)
	}
	c.kcm = cmd
	c.kcmDone = make(chan error, 1)
	go func() { c.kcmDone <- cmd.Wait() }()

	// Ready when the service account controller has created "default" in a
	// fresh namespace: that proves the controller manager reached the server.
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-c.kcmDone:
			return fmt.Errorf("kube-controller-manager exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		if _, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", getOpts); err != nil {
			continue
		}
		// And the built-in roles tenants are bound to are filled.
		if role, err := cs.RbacV1().ClusterRoles().Get(ctx, "admin", getOpts); err == nil && grants(role.Rules, "networking.k8s.io", "networkpolicies", "delete") {
			return nil
		}
	}
	return errors.New("kube-controller-manager did not become ready within 60s")
}

// StopAPIServer stops kube-apiserver; etcd keeps running with the data.
// It is killed if it has not exited 5 seconds after SIGTERM (see
// ControlPlaneStopTimeout in Start).
func (c *Cluster) StopAPIServer() error {
	err := c.env.ControlPlane.GetAPIServer().Stop()
	if err != nil && strings.Contains(err.Error(), "timeout waiting for process") {
		return nil // killed
	}
	return err
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, on the same
// port, with the same certificates, so that every client and user works as
// before. It returns once the API server serves.
func (c *Cluster) StartAPIServer() error {
	return c.env.ControlPlane.GetAPIServer().Start()
}

// RestartAPIServer stops kube-apiserver, waits down, and starts it again.
func (c *Cluster) RestartAPIServer(down time.Duration) error {
	if err := c.StopAPIServer(); err != nil {
		return fmt.Errorf("stop kube-apiserver: %w", err)
	}
	time.Sleep(down)
	if err := c.StartAPIServer(); err != nil {
		return fmt.Errorf("start kube-apiserver again: %w", err)
	}
	return nil
}

// Clientset returns an admin clientset.
func (c *Cluster) Clientset() (*kubernetes.Clientset, error) {
	return kubernetes.NewForConfig(c.Config)
}

// Kubectl runs kubectl against the cluster as admin and returns its combined output.
func (c *Cluster) Kubectl(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	return c.KubectlAs(ctx, c.KubeconfigPath, stdin, args...)
}

// KubectlAs runs kubectl with the given kubeconfig.
func (c *Cluster) KubectlAs(ctx context.Context, kubeconfig string, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.KubectlPath, append([]string{"--kubeconfig=" + kubeconfig}, args...)...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Stop stops the controller manager, then the API server and etcd, and removes Dir.
func (c *Cluster) Stop() error {
	var errs []error
	if c.kcm != nil && c.kcm.Process != nil {
		_ = c.kcm.Process.Signal(os.Interrupt)
		select {
		case <-c.kcmDone:
		case <-time.After(10 * time.Second):
			_ = c.kcm.Process.Kill()
			<-c.kcmDone
		}
	}
	if c.env != nil {
		if err := c.env.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Dir != "" {
		errs = append(errs, os.RemoveAll(c.Dir))
	}
	return errors.Join(errs...)
}

// EnsureNamespace creates ns with labels, or updates its labels.
func (c *Cluster) EnsureNamespace(ctx context.Context, name string, labels map[string]string) error {
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{}
	ns.Name = name
	ns.Labels = labels
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, createOpts); err == nil {
		return nil
	}
	cur, err := cs.CoreV1().Namespaces().Get(ctx, name, getOpts)
	if err != nil {
		return err
	}
	if cur.Labels == nil {
		cur.Labels = map[string]string{}
	}
	for k, v := range labels {
		cur.Labels[k] = v
	}
	_, err = cs.CoreV1().Namespaces().Update(ctx, cur, updateOpts)
	return err
}
