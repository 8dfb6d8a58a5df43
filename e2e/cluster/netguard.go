package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/netguard/netguard/certs"

	"github.com/netguard/netguard/webhook"
)

// NetguardOptions start `netguard serve` as a separate process, as a cluster runs it.
type NetguardOptions struct {
	// Binary is the built netguard.
	Binary string
	// Kubeconfig it uses; defaults to a user "netguard" in system:masters.
	Kubeconfig string
	// Args are extra `serve` flags.
	Args []string
	// Log receives its output; nil discards it.
	Log io.Writer
	// KeepWebhooks leaves the webhook configurations in place on Stop, as a
	// crashed netguard would.
	KeepWebhooks bool
	// NoWait returns as soon as the process runs: no wait for /readyz and no
	// webhook configurations (the test calls WaitReady and InstallWebhooks).
	NoWait bool
	// SelfManagedCerts runs --cert-mode=self-managed in namespace
	// netguard-system: netguard issues its own certificate and injects the
	// caBundle; the webhook configurations start without one.
	SelfManagedCerts bool
}

// Netguard is a running `netguard serve`.
type Netguard struct {
	cluster    *Cluster
	cmd        *exec.Cmd
	done       chan error
	opts       NetguardOptions
	killed     bool
	WebhookURL string
	MetricsURL string
	HealthURL  string
	CertDir    string
	CABundle   []byte
}

// FreePort asks the kernel for an unused loopback port.
func FreePort() (int, error) {
	ports, err := FreePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// FreePorts asks the kernel for n distinct unused loopback ports. Each
// listener stays open until all n are picked: ports asked for one at a time
// can come back equal (a webhook and a metrics server on one port, and
// netguard exits with "address already in use").
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// EnsureServingCerts writes a CA and a serving certificate for 127.0.0.1 into
// dir, once, and returns the CA bundle.
func EnsureServingCerts(dir string) ([]byte, error) {
	if b, err := certs.LoadCABundleFromDir(dir); err == nil {
		return b, nil
	}
	ca, err := certs.NewCA("netguard-local-ca", 24*time.Hour)
	if err != nil {
		return nil, err
	}
	srv, err := certs.NewServing(ca, []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	if err := certs.WriteServingDir(dir, ca, srv); err != nil {
		return nil, err
	}
	return ca.CertPEM, nil
}

// StartNetguard runs netguard serve against the cluster, waits for /readyz and
// registers its webhook configurations with a URL clientConfig.
// NetguardUser is the username netguard runs as unless
// NetguardOptions.Kubeconfig says otherwise.
const NetguardUser = "netguard"

func (c *Cluster) StartNetguard(ctx context.Context, o NetguardOptions) (*Netguard, error) {
	if o.Kubeconfig == "" {
		// netguard runs as its own user, as with its ServiceAccount in a
		// cluster, so that the admin's writes are not mistaken for netguard's.
		_, kc, err := c.AddUser(NetguardUser, "system:masters")
		if err != nil {
			return nil, fmt.Errorf("netguard user: %w", err)
		}
		o.Kubeconfig = kc
	}
	n := &Netguard{cluster: c, opts: o, CertDir: filepath.Join(c.Dir, "netguard-certs")}
	var err error
	if o.SelfManagedCerts {
		n.CertDir = filepath.Join(c.Dir, "netguard-self-managed-certs")
		o.Args = append([]string{"--cert-mode=self-managed", "--namespace=netguard-system", "--cert-extra-sans=127.0.0.1"}, o.Args...)
		if err := c.EnsureNamespace(ctx, "netguard-system", nil); err != nil {
			return nil, err
		}
	} else {
		bundle, err := EnsureServingCerts(n.CertDir)
		if err != nil {
			return nil, fmt.Errorf("serving certs: %w", err)
		}
		n.CABundle = bundle
	}
	ports, err := FreePorts(3)
	if err != nil {
		return nil, err
	}
	n.WebhookURL = "https://127.0.0.1:" + strconv.Itoa(ports[0])
	n.MetricsURL = "http://127.0.0.1:" + strconv.Itoa(ports[1]) + "/metrics"
	n.HealthURL = "http://127.0.0.1:" + strconv.Itoa(ports[2])
	args := append([]string{"serve",
		// Tests stop netguard often; Args may set a delay of their own.
		"--shutdown-delay=0s",
		"--kubeconfig=" + o.Kubeconfig,
		"--cert-dir=" + n.CertDir,
		"--webhook-port=" + strconv.Itoa(ports[0]),
		"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(ports[1]),
		"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(ports[2]),
	}, o.Args...)
	cmd := exec.Command(o.Binary, args...)
	out := o.Log
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start netguard: %w", err)
	}
	n.cmd = cmd
	n.done = make(chan error, 1)
	go func() { n.done <- cmd.Wait() }()
	if o.NoWait {
		return n, nil
	}
	if o.SelfManagedCerts {
		// Registered first, without a caBundle: netguard injects its own.
		if err := n.InstallWebhooks(ctx); err != nil {
			_ = n.Stop(ctx)
			return nil, err
		}
	}
	if err := n.WaitReady(ctx, 60*time.Second); err != nil {
		_ = n.Stop(ctx)
		return nil, err
	}
	if !o.SelfManagedCerts {
		if err := n.InstallWebhooks(ctx); err != nil {
			_ = n.Stop(ctx)
			return nil, err
		}
	}
	n.waitAdmissionPolicies(ctx)
	if !o.SelfManagedCerts {
		// Installed after netguard was ready, the configuration has no
		// skip of what the admission policies decide: add it as serve does
		// once they answer (webhook.EnableCELSkip).
		if err := n.addCELSkip(ctx); err != nil {
			_ = n.Stop(ctx)
			return nil, err
		}
	}
	return n, nil
}

// addCELSkip adds the match condition not-decided-in-cel to the validating
// configuration, as serve does.
func (n *Netguard) addCELSkip(ctx context.Context) error {
	c, err := client.New(n.cluster.Config, client.Options{})
	if err != nil {
		return err
	}
	return webhook.AddCELSkipCondition(ctx, c, webhook.ValidatingConfigurationName)
}

// admissionProbeNamespace is where waitAdmissionPolicies probes.
const admissionProbeNamespace = "netguard-admission-probe"

// waitAdmissionPolicies waits, for at most 10s, until the API server
// enforces the ValidatingAdmissionPolicies serve applied before it was
// ready: it loads them asynchronously, and a write sent before then in the
// part they decide is judged by no one (docs/admission.md). It probes with
// a server-side dry run of a policy open to any source in a namespace at
// baseline. Best effort: a configuration that exempts the admin, or an old
// API server, leaves after 10s.
func (n *Netguard) waitAdmissionPolicies(ctx context.Context) {
	if err := n.cluster.EnsureNamespace(ctx, admissionProbeNamespace, map[string]string{"netguard.io/enforce": "baseline"}); err != nil {
		return
	}
	cs, err := n.cluster.Clientset()
	if err != nil {
		return
	}
	probe := []byte(`{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"probe"},"spec":{"podSelector":{},"ingress":[{}]}}`)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		err := cs.NetworkingV1().RESTClient().Post().Namespace(admissionProbeNamespace).Resource("networkpolicies").
			Param("dryRun", "All").Body(probe).SetHeader("Content-Type", "application/json").Do(ctx).Error()
		if err != nil && strings.Contains(err.Error(), "ValidatingAdmissionPolicy") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitReady polls /readyz until it answers 200.
func (n *Netguard) WaitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-n.done:
			n.done <- err
			return fmt.Errorf("netguard exited before it was ready: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := http.Get(n.HealthURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("netguard not ready within %s", timeout)
}

// InstallWebhooks creates or replaces netguard's webhook configurations.
func (n *Netguard) InstallWebhooks(ctx context.Context) error {
	cs, err := n.cluster.Clientset()
	if err != nil {
		return err
	}
	opts := webhook.ConfigurationOptions{
		ClientConfig: func(path string) admissionregistrationv1.WebhookClientConfig {
			u := n.WebhookURL + path
			return admissionregistrationv1.WebhookClientConfig{URL: &u, CABundle: n.CABundle}
		},
		ExcludedNamespaces: []string{"kube-system"},
		SelfUsername:       NetguardUser,
	}
	vwc := webhook.ValidatingConfiguration(opts)
	vapi := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	if cur, err := vapi.Get(ctx, vwc.Name, metav1.GetOptions{}); err == nil {
		vwc.ResourceVersion = cur.ResourceVersion
		if _, err := vapi.Update(ctx, vwc, metav1.UpdateOptions{}); err != nil {
			return err
		}
	} else if !apierrors.IsNotFound(err) {
		return err
	} else if _, err := vapi.Create(ctx, vwc, metav1.CreateOptions{}); err != nil {
		return err
	}
	mwc := webhook.MutatingConfiguration(opts)
	mapi := cs.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if cur, err := mapi.Get(ctx, mwc.Name, metav1.GetOptions{}); err == nil {
		mwc.ResourceVersion = cur.ResourceVersion
		_, err = mapi.Update(ctx, mwc, metav1.UpdateOptions{})
		return err
	} else if !apierrors.IsNotFound(err) {
		return err
	}
	_, err = mapi.Create(ctx, mwc, metav1.CreateOptions{})
	return err
}

// RemoveWebhooks deletes netguard's webhook configurations.
func (n *Netguard) RemoveWebhooks(ctx context.Context) error {
	cs, err := n.cluster.Clientset()
	if err != nil {
		return err
	}
	err = cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, webhook.ValidatingConfigurationName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	err = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, webhook.MutatingConfigurationName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return RemoveAdmissionPolicies(ctx, cs)
}

// RemoveAdmissionPolicies deletes the ValidatingAdmissionPolicies and
// bindings netguard serve applies at start: they outlive netguard on
// purpose (docs/security.md), so a test that is done with netguard removes
// them with its webhooks.
func RemoveAdmissionPolicies(ctx context.Context, cs kubernetes.Interface) error {
	for _, name := range webhook.AdmissionPolicyNames {
		err := cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		err = cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// Stop sends SIGTERM, waits for a clean exit, and removes the webhook
// configurations unless KeepWebhooks is set.
func (n *Netguard) Stop(ctx context.Context) error {
	var errs []error
	if !n.opts.KeepWebhooks {
		errs = append(errs, n.RemoveWebhooks(ctx))
	}
	if n.cmd != nil && n.cmd.Process != nil && !n.killed {
		_ = n.cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-n.done:
			n.done <- err
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				errs = append(errs, err)
			} else if ee != nil && ee.ExitCode() != 0 {
				errs = append(errs, fmt.Errorf("netguard exited with %d", ee.ExitCode()))
			}
		case <-time.After(30 * time.Second):
			_ = n.cmd.Process.Kill()
			errs = append(errs, errors.New("netguard did not stop within 30s of SIGTERM"))
		}
	}
	return errors.Join(errs...)
}

// Metrics fetches the Prometheus text exposition.
func (n *Netguard) Metrics() (string, error) {
	resp, err := http.Get(n.MetricsURL)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// NetworkPolicyReviews is how many NetworkPolicy reviews netguard has
// answered: the sum of netguard_admission_decisions_total for
// NetworkPolicies.
func (n *Netguard) NetworkPolicyReviews() (int, error) {
	m, err := n.Metrics()
	if err != nil {
		return 0, fmt.Errorf("read netguard's metrics: %w", err)
	}
	total := 0.0
	for _, line := range strings.Split(m, "\n") {
		if !strings.HasPrefix(line, "netguard_admission_decisions_total{") || !strings.Contains(line, `resource="networkpolicies"`) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("netguard's metrics: %q: %w", line, err)
		}
		total += v
	}
	return int(total), nil
}

// Kill stops netguard with SIGKILL and leaves its webhook configurations in
// place, as a crash would.
func (n *Netguard) Kill() error {
	n.opts.KeepWebhooks = true
	n.killed = true
	if n.cmd == nil || n.cmd.Process == nil {
		return nil
	}
	if err := n.cmd.Process.Kill(); err != nil {
		return err
	}
	err := <-n.done
	n.done <- err
	return nil
}

// PID is the netguard process's id.
func (n *Netguard) PID() int { return n.cmd.Process.Pid }

// Terminate sends SIGTERM, as the kubelet does, and returns at once.
func (n *Netguard) Terminate() error { return n.cmd.Process.Signal(syscall.SIGTERM) }

// Wait waits up to timeout for the process to exit and returns its exit code.
func (n *Netguard) Wait(timeout time.Duration) (int, error) {
	select {
	case err := <-n.done:
		n.done <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), nil
		}
		if err != nil {
			return -1, err
		}
		return 0, nil
	case <-time.After(timeout):
		return -1, fmt.Errorf("netguard still runs after %s", timeout)
	}
}

// Exited reports whether the process has ended.
func (n *Netguard) Exited() bool {
	select {
	case err := <-n.done:
		n.done <- err
		return true
	default:
		return false
	}
}
