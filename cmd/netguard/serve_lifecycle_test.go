package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/netguard/netguard/webhook"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// The webhook server refuses old protocol versions and weak cipher suites:
// with --tls-min-version 1.2, TLS 1.2 with forward secrecy and AEAD only; with
// 1.3, nothing older. The server is controller-runtime's, configured as
// serve configures it.
func TestTLSSettings(t *testing.T) {
	dir, _, pool := webhooktest.ServingDir(t)
	type clientCase struct {
		name   string
		cfg    *tls.Config
		accept bool
	}
	tls12 := func(suites ...uint16) *tls.Config {
		return &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: suites}
	}
	for _, server := range []struct {
		flag    string
		clients []clientCase
	}{
		{"1.2", []clientCase{
			{"TLS 1.0", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, false},
			{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}, false},
			{"TLS 1.2, CBC with SHA-1", tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA), false},
			{"TLS 1.2, CBC with SHA-256", tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256), false},
			{"TLS 1.2, RSA key exchange", tls12(tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384), false},
			{"TLS 1.2, 3DES", tls12(tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA), false},
			{"TLS 1.2, ECDHE with AES-GCM", tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256), true},
			{"TLS 1.2, ECDHE with ChaCha20-Poly1305", tls12(tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256), true},
			{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, true},
		}},
		{"1.3", []clientCase{
			{"TLS 1.2, ECDHE with AES-GCM", tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256), false},
			{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, true},
		}},
	} {
		t.Run("--tls-min-version="+server.flag, func(t *testing.T) {
			v, err := parseTLSVersion(server.flag)
			if err != nil {
				t.Fatal(err)
			}
			port := webhooktest.FreePort(t)
			srv := crwebhook.NewServer(crwebhook.Options{Host: "127.0.0.1", Port: port, CertDir: dir, TLSOpts: webhook.TLSOptions(v)})
			srv.Register("/ok", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Start(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("webhook server: %v", err)
				}
			}()
			waitFor(t, 10*time.Second, func() error { return srv.StartedChecker()(nil) })
			addr := "127.0.0.1:" + strconv.Itoa(port)
			for _, c := range server.clients {
				t.Run(c.name, func(t *testing.T) {
					cfg := c.cfg.Clone()
					cfg.RootCAs = pool
					conn, err := tls.Dial("tcp", addr, cfg)
					if !c.accept {
						if err == nil {
							st := conn.ConnectionState()
							conn.Close()
							t.Fatalf("handshake succeeded with %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
						}
						// The server refused, with an alert; the client did offer.
						if !strings.Contains(err.Error(), "remote error: tls:") {
							t.Fatalf("want the server's alert, got %v", err)
						}
						t.Log(err)
						return
					}
					if err != nil {
						t.Fatalf("handshake: %v", err)
					}
					defer conn.Close()
					st := conn.ConnectionState()
					if st.Version < v {
						t.Errorf("negotiated %s below the minimum", tls.VersionName(st.Version))
					}
					if st.Version == tls.VersionTLS12 && !slices.Contains(webhook.ModernCipherSuites(), st.CipherSuite) {
						t.Errorf("negotiated %s", tls.CipherSuiteName(st.CipherSuite))
					}
				})
			}
		})
	}
}

func waitFor(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// unreachableKubeconfig points at a loopback port where nothing listens.
func unreachableKubeconfig(t *testing.T) string {
	t.Helper()
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- cluster: {server: "https://127.0.0.1:%d", insecure-skip-tls-verify: true}
  name: c
contexts:
- context: {cluster: c, user: u}
  name: c
current-context: c
users:
- name: u
  user: {token: not-a-token}
`, webhooktest.FreePort(t))
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Without an API server, serve neither exits nor admits blindly: it is alive
// and not ready, it denies NetworkPolicies with a retryable 503, admits
// workloads with a warning (the controller backfills them later), logs why
// it waits, and stops cleanly on a signal.
func TestServeWithoutAPIServer(t *testing.T) {
	dir, _, pool := webhooktest.ServingDir(t)
	ports := webhooktest.FreePorts(t, 2)
	health := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	logs := &webhooktest.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exited := make(chan int, 1)
	go func() {
		exited <- runContext(ctx, []string{"serve",
			"--kubeconfig", unreachableKubeconfig(t),
			"--cert-dir", dir,
			"--webhook-port", strconv.Itoa(ports[0]),
			"--health-probe-bind-address", "127.0.0.1:" + strconv.Itoa(ports[1]),
			"--metrics-bind-address", "0",
			"--shutdown-delay", "1s",
		}, ioStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: logs})
	}()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(path string) (int, string) {
		resp, err := client.Get(health + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor(t, 20*time.Second, func() error {
		if code, body := get("/healthz"); code != 200 {
			return fmt.Errorf("/healthz %d %s", code, body)
		}
		return nil
	})
	// Several retries, observed rather than waited for with a fixed sleep.
	retrying := "the API server does not answer yet; not ready, retrying with backoff"
	waitFor(t, 30*time.Second, func() error {
		if n := strings.Count(logs.String(), retrying); n < 2 {
			return fmt.Errorf("%d retries logged, want several:\n%s", n, logs)
		}
		return nil
	})
	select {
	case code := <-exited:
		t.Fatalf("serve exited with %d without an API server:\n%s", code, logs)
	default:
	}
	if code, body := get("/readyz?verbose"); code == 200 || !strings.Contains(body, "[-]lifecycle") || !strings.Contains(body, "[-]caches") {
		t.Errorf("/readyz answered %d:\n%s", code, body)
	}

	post := func(path string, req admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		t.Helper()
		body, _ := json.Marshal(admissionv1.AdmissionReview{Request: &req})
		body = append([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",`), body[1:]...)
		resp, err := client.Post("https://127.0.0.1:"+strconv.Itoa(ports[0])+path, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("the webhook port does not answer: %v", err)
		}
		defer resp.Body.Close()
		var out admissionv1.AdmissionReview
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Response == nil {
			t.Fatalf("not an AdmissionReview: %v", err)
		}
		return out.Response
	}
	np := admissionv1.AdmissionRequest{UID: "np", Namespace: "team", Operation: admissionv1.Create}
	np.Kind.Group, np.Kind.Version, np.Kind.Kind = "networking.k8s.io", "v1", "NetworkPolicy"
	np.UserInfo.Username = "alice"
	np.Object.Raw = []byte(`{"metadata":{"name":"p","namespace":"team"},"spec":{"podSelector":{},"ingress":[{}]}}`)
	if r := post(webhook.PathValidateNetworkPolicy, np); r.Allowed || r.Result == nil || r.Result.Code != http.StatusServiceUnavailable {
		t.Errorf("a NetworkPolicy without an API server: allowed=%v result %+v, want a 503 denial", r.Allowed, r.Result)
	}
	w := admissionv1.AdmissionRequest{UID: "w", Namespace: "team", Name: "web", Operation: admissionv1.Create}
	w.Kind.Group, w.Kind.Version, w.Kind.Kind = "apps", "v1", "Deployment"
	w.Object.Raw = []byte(`{"metadata":{"name":"web","namespace":"team","annotations":{"netguard.io/depends-on":"api:8080"}},"spec":{"template":{}}}`)
	if r := post(webhook.PathMutateWorkload, w); !r.Allowed || len(r.Patch) != 0 || len(r.Warnings) == 0 {
		t.Errorf("a workload without an API server: allowed=%v patch %s warnings %q, want allowed unchanged with a warning", r.Allowed, r.Patch, r.Warnings)
	}

	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit code %d after the signal:\n%s", code, logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop within 30s of the signal:\n%s", logs)
	}
}

// On a signal, /readyz fails at once, and the manager is stopped only after
// the delay. The bubble's clock makes "at once" and "after the delay" exact
// instants rather than wall-clock bounds.
func TestDrainFailsReadinessFirst(t *testing.T) {
	// drain calls signal.Notify. The runtime starts its signal goroutine and
	// channels on first use, and a first use inside the bubble is fatal
	// ("select on synctest channel from outside bubble"): use it once here.
	warm := make(chan os.Signal, 1)
	signal.Notify(warm, syscall.SIGUSR2)
	signal.Stop(warm)
	synctest.Test(t, func(t *testing.T) {
		const delay = 300 * time.Millisecond
		l := newLifecycle()
		l.started()
		if err := l.readyCheck()(nil); err != nil {
			t.Fatalf("ready before the signal: %v", err)
		}
		ctx, sigterm := context.WithCancel(t.Context())
		stopped := make(chan time.Time, 1)
		go l.drain(ctx, delay, discardLogger(), func() {}, func() { stopped <- time.Now() })
		start := time.Now()
		sigterm()
		synctest.Wait()
		if l.readyCheck()(nil) == nil {
			t.Fatal("still ready right after the signal")
		}
		select {
		case at := <-stopped:
			t.Fatalf("stopped %s after the signal, before the delay", at.Sub(start))
		default:
		}
		time.Sleep(delay)
		synctest.Wait()
		select {
		case at := <-stopped:
			if d := at.Sub(start); d != delay {
				t.Errorf("stopped %s after the signal, want after the delay %s", d, delay)
			}
		default:
			t.Fatalf("not stopped %s after the signal", delay)
		}
	})
}

func TestShutdownDelayFlag(t *testing.T) {
	if err := validateShutdownDelay(-time.Second); err == nil || !strings.Contains(err.Error(), "--shutdown-delay -1s: must not be negative") {
		t.Errorf("negative delay: %v", err)
	}
	if o := defaultServeOptions(); o.ShutdownDelay != 5*time.Second {
		t.Errorf("default --shutdown-delay %s, want 5s", o.ShutdownDelay)
	}
}

func discardLogger() logr.Logger { return logr.Discard() }

// The start-up retries go on past the backoff's cap, and each failure keeps
// /readyz failing with the reason.
func TestStartupRetriesOutlastTheCap(t *testing.T) {
	saved := startupBackoff
	defer func() { startupBackoff = saved }()
	startupBackoff.Duration, startupBackoff.Cap = time.Microsecond, 10*time.Microsecond
	l := newLifecycle()
	calls := 0
	err := l.retry(context.Background(), "a step", discardLogger(), func(context.Context) error {
		calls++
		if calls < 200 {
			return fmt.Errorf("failure %d", calls)
		}
		return nil
	})
	if err != nil || calls != 200 {
		t.Fatalf("gave up after %d calls: %v", calls, err)
	}
	if err := l.readyCheck()(nil); err == nil || err.Error() != "a step: failure 199" {
		t.Errorf("readiness says %v", err)
	}
}
