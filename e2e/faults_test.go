package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/netguard/netguard/certs"
	"github.com/netguard/netguard/e2e/cluster"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// The fault tests. Each is bounded in time and talks to netguard over
// loopback only: the load comes from the test itself, straight to the
// webhook port, the way the API server calls it (HTTP/2 over TLS).

// goodReview is an AdmissionReview of a policy that passes every level below
// managed, in namespace ns, with uid.
func goodReview(ns, uid string) []byte {
	np := webhooktest.GoodPolicy("hammer")
	np.Namespace = ns
	np.APIVersion, np.Kind = "networking.k8s.io/v1", "NetworkPolicy"
	raw, _ := json.Marshal(np)
	b, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID(uid),
			Kind:      metav1.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"},
			Resource:  metav1.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"},
			Name:      np.Name,
			Namespace: ns,
			Operation: admissionv1.Create,
			UserInfo:  authenticationv1.UserInfo{Username: "alice", Groups: []string{"system:authenticated"}},
			Object:    runtime.RawExtension{Raw: raw},
		},
	})
	return b
}

// webhookClient trusts pool and speaks HTTP/2, as the API server does;
// fresh makes every request use a new connection.
func webhookClient(pool *x509.CertPool, fresh bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: !fresh,
		DisableKeepAlives: fresh,
		DialContext:       (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func caPool(t *testing.T, bundles ...[]byte) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	for _, b := range bundles {
		if !pool.AppendCertsFromPEM(b) {
			t.Fatal("no certificate in the CA bundle")
		}
	}
	return pool
}

// outcome is one request of a hammer.
type outcome struct {
	at  time.Time
	err error
	// refused: no handler ever saw the request. Either the connection was
	// refused, or a new connection still in the kernel's accept backlog was
	// reset or closed (EOF) when the listener closed or the process exited.
	// A request on a reused keep-alive connection that fails is a failure:
	// netguard closes connections after each answer while it drains so that
	// this cannot happen. The API server meets neither once
	// readiness has failed, because the Service stops routing to the pod.
	refused bool
}

// hammer sends good reviews from several workers until stopped, with a short
// pause between requests so that it stays a bounded load on a small machine.
type hammer struct {
	url     string
	ns      string
	clients []*http.Client
	seq     atomic.Int64
	mu      sync.Mutex
	results []outcome
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startHammer(url, ns string, clients ...*http.Client) *hammer {
	h := &hammer{url: url + webhook.PathValidateNetworkPolicy, ns: ns, clients: clients, stop: make(chan struct{})}
	for _, c := range clients {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			for {
				select {
				case <-h.stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				h.record(h.call(c))
			}
		}()
	}
	return h
}

func (h *hammer) call(c *http.Client) outcome {
	uid := fmt.Sprintf("hammer-%d", h.seq.Add(1))
	req, err := http.NewRequest(http.MethodPost, h.url, bytes.NewReader(goodReview(h.ns, uid)))
	if err != nil {
		return outcome{at: time.Now(), err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	var reused atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { reused.Store(info.Reused) },
	}))
	resp, err := c.Do(req)
	now := time.Now()
	if err != nil {
		// On a new connection any error means the server closed it before
		// reading a request (the listener closed with it in the accept
		// backlog, or the process exited: reset, EOF, broken pipe): the
		// server finishes every request it has read before it stops, so no
		// handler saw this one. The test counts it as refused only after the
		// drain delay.
		refused := errors.Is(err, syscall.ECONNREFUSED) || !reused.Load()
		return outcome{at: now, err: err, refused: refused}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return outcome{at: now, err: fmt.Errorf("reading the answer: %w", err)}
	}
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &ar); err != nil || ar.Response == nil {
		return outcome{at: now, err: fmt.Errorf("HTTP %d, not an AdmissionReview: %s", resp.StatusCode, body)}
	}
	if string(ar.Response.UID) != uid || !ar.Response.Allowed {
		return outcome{at: now, err: fmt.Errorf("uid %q (sent %q), allowed=%v, result %+v", ar.Response.UID, uid, ar.Response.Allowed, ar.Response.Result)}
	}
	return outcome{at: now}
}

func (h *hammer) record(o outcome) {
	h.mu.Lock()
	h.results = append(h.results, o)
	h.mu.Unlock()
}

func (h *hammer) halt() []outcome {
	close(h.stop)
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]outcome(nil), h.results...)
}

// SIGTERM under load: /readyz fails first, requests during --shutdown-delay
// succeed, no request in flight fails when the server stops, and after that
// new connections are refused cleanly; netguard exits 0.
func TestFaultSIGTERMUnderLoad(t *testing.T) {
	const delay = 3 * time.Second
	ng := startNetguard(t, "--shutdown-delay="+delay.String())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := "fault-sigterm"
	if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	pool := caPool(t, ng.CABundle)
	h := startHammer(ng.WebhookURL, ns, webhookClient(pool, false), webhookClient(pool, false), webhookClient(pool, false), webhookClient(pool, true))
	time.Sleep(time.Second)

	term := time.Now()
	if err := ng.Terminate(); err != nil {
		t.Fatal(err)
	}
	var notReady time.Time
	for notReady.IsZero() && time.Since(term) < delay {
		resp, err := http.Get(ng.HealthURL + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			notReady = time.Now()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, err := ng.Wait(delay + 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	exited := time.Now()
	time.Sleep(500 * time.Millisecond) // new connections after the exit
	results := h.halt()

	if notReady.IsZero() {
		t.Fatalf("/readyz still answered 200 %s after SIGTERM", delay)
	}
	if d := notReady.Sub(term); d > time.Second {
		t.Errorf("/readyz failed %s after SIGTERM, want at once", d)
	}
	if code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	var before, during, refused, failed int
	var firstRefused time.Time
	for _, o := range results {
		switch {
		case o.err == nil && o.at.Before(term):
			before++
		case o.err == nil:
			during++
		case o.refused && o.at.After(term.Add(delay)):
			refused++
			if firstRefused.IsZero() || o.at.Before(firstRefused) {
				firstRefused = o.at
			}
		default:
			failed++
			if failed <= 5 {
				t.Errorf("a request failed %s after SIGTERM: %v", o.at.Sub(term).Round(time.Millisecond), o.err)
			}
		}
	}
	t.Logf("%d requests before SIGTERM, %d served after it, %d refused once stopped, %d failed; not ready after %s, exited after %s",
		before, during, refused, failed, notReady.Sub(term).Round(time.Millisecond), exited.Sub(term).Round(time.Millisecond))
	if failed > 0 {
		t.Errorf("%d requests failed", failed)
	}
	if before == 0 || during == 0 {
		t.Errorf("the hammer was not served before (%d) and after (%d) SIGTERM", before, during)
	}
	if refused == 0 {
		t.Errorf("no connection was refused after the server stopped")
	}
	if !firstRefused.IsZero() && firstRefused.Before(notReady) {
		t.Errorf("connections were refused before /readyz failed")
	}
}

// The serving certificate is replaced on disk, three times, while clients
// call: a new leaf from the same CA, one from a second CA (the clients trust
// both, as a caBundle does during a CA rotation), and one from the first CA
// again. Each is picked up without a restart and no request fails.
func TestFaultCertificateRotationUnderLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := "fault-rotation"
	if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caA, err := certs.NewCA("rotation-ca-a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caB, err := certs.NewCA("rotation-ca-b", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ca *certs.KeyPair) *certs.KeyPair {
		leaf, err := certs.NewServing(ca, []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return leaf
	}
	if err := certs.WriteServingDir(dir, caA, issue(caA)); err != nil {
		t.Fatal(err)
	}
	// Its own --cert-dir, and no webhook configuration: the API server keeps
	// trusting the shared test CA, and this test's clients call directly.
	l := newTestLog(t)
	ng, err := testCluster.StartNetguard(ctx, cluster.NetguardOptions{Binary: netguardBin, Log: l.buf, NoWait: true, KeepWebhooks: true, Args: []string{"--cert-dir=" + dir}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ng.Stop(context.Background()); err != nil {
			t.Errorf("stop netguard: %v", err)
		}
	})
	if err := ng.WaitReady(ctx, 60*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, l.buf.String())
	}
	pool := caPool(t, caA.CertPEM, caB.CertPEM)
	h := startHammer(ng.WebhookURL, ns, webhookClient(pool, false), webhookClient(pool, false), webhookClient(pool, true))

	served := func() ([]byte, error) {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(ng.WebhookURL, "https://"), &tls.Config{RootCAs: pool})
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Raw, nil
	}
	for i, ca := range []*certs.KeyPair{caA, caB, caA} {
		time.Sleep(time.Second)
		leaf := issue(ca)
		if err := certs.WriteServingDir(dir, ca, leaf); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, fmt.Sprintf("rotation %d served", i+1), func() error {
			raw, err := served()
			if err != nil {
				return err
			}
			if !bytes.Equal(raw, leaf.Cert.Raw) {
				return errors.New("still the old certificate")
			}
			return nil
		})
	}
	time.Sleep(time.Second)
	results := h.halt()
	var ok int
	for _, o := range results {
		if o.err != nil {
			t.Errorf("a request failed during rotation: %v", o.err)
			continue
		}
		ok++
	}
	t.Logf("%d requests over three rotations", ok)
	if ok == 0 {
		t.Fatal("no request was served")
	}
}

// probeNetguard sends one NetworkPolicy and one workload review straight to
// the webhook port and returns the responses.
func probeNetguard(t *testing.T, ng *cluster.Netguard, pool *x509.CertPool) (np, workload *admissionv1.AdmissionResponse) {
	t.Helper()
	c := webhookClient(pool, true)
	post := func(path string, body []byte) *admissionv1.AdmissionResponse {
		resp, err := c.Post(ng.WebhookURL+path, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("the webhook port does not answer: %v", err)
		}
		defer resp.Body.Close()
		var ar admissionv1.AdmissionReview
		if err := json.NewDecoder(resp.Body).Decode(&ar); err != nil || ar.Response == nil {
			t.Fatalf("not an AdmissionReview: %v", err)
		}
		return ar.Response
	}
	d := webhooktest.Deployment("fault-probe", "web", map[string]string{rules.AnnotationDependsOn: "api:8080"})
	d.APIVersion, d.Kind = "apps/v1", "Deployment"
	raw, _ := json.Marshal(d)
	w, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "probe-workload", Namespace: "fault-probe", Name: "web", Operation: admissionv1.Create,
			Kind:     metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
			Resource: metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
			UserInfo: authenticationv1.UserInfo{Username: "alice", Groups: []string{"system:authenticated"}}, Object: runtime.RawExtension{Raw: raw},
		},
	})
	return post(webhook.PathValidateNetworkPolicy, goodReview("fault-probe", "probe-np")), post(webhook.PathMutateWorkload, w)
}

// stopAPIServer stops kube-apiserver for the rest of the test, or until the
// test starts it again; it is always running again after the test.
func stopAPIServer(t *testing.T) (start func()) {
	t.Helper()
	if err := testCluster.StopAPIServer(); err != nil {
		t.Fatalf("stop kube-apiserver: %v", err)
	}
	var once sync.Once
	start = func() {
		once.Do(func() {
			if err := testCluster.StartAPIServer(); err != nil {
				t.Fatalf("start kube-apiserver again: %v", err)
			}
		})
	}
	t.Cleanup(start)
	return start
}

// The API server is away when netguard starts: netguard neither exits nor
// admits blindly. It is alive and not ready, denies NetworkPolicies with a
// retryable 503 and admits workloads with a warning; once the API server is
// back it becomes ready by itself and enforces.
func TestFaultAPIServerDownAtStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := stopAPIServer(t)
	l := newTestLog(t)
	ng, err := testCluster.StartNetguard(ctx, cluster.NetguardOptions{Binary: netguardBin, Log: l.buf, NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ng.Stop(context.Background()); err != nil {
			t.Errorf("stop netguard: %v", err)
		}
	})
	pool := caPool(t, ng.CABundle)
	eventually(t, 30*time.Second, "the webhook port and /healthz answer", func() error {
		resp, err := http.Get(ng.HealthURL + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/healthz %d", resp.StatusCode)
		}
		conn, err := tls.Dial("tcp", strings.TrimPrefix(ng.WebhookURL, "https://"), &tls.Config{RootCAs: pool})
		if err != nil {
			return err
		}
		return conn.Close()
	})
	time.Sleep(4 * time.Second) // several retries
	if ng.Exited() {
		t.Fatalf("netguard exited without an API server:\n%s", l.buf.String())
	}
	resp, err := http.Get(ng.HealthURL + "/readyz?verbose")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || !strings.Contains(string(body), "[-]lifecycle") {
		t.Errorf("/readyz %d without an API server:\n%s", resp.StatusCode, body)
	}
	np, w := probeNetguard(t, ng, pool)
	if np.Allowed || np.Result == nil || np.Result.Code != http.StatusServiceUnavailable {
		t.Errorf("a NetworkPolicy: allowed=%v result %+v, want a retryable 503 denial", np.Allowed, np.Result)
	}
	if !w.Allowed || len(w.Patch) != 0 || len(w.Warnings) == 0 {
		t.Errorf("a workload: allowed=%v patch %s warnings %q, want admitted unchanged with a warning", w.Allowed, w.Patch, w.Warnings)
	}
	if !strings.Contains(l.buf.String(), "the API server does not answer yet; not ready, retrying with backoff") {
		t.Errorf("netguard did not log why it is not ready:\n%s", l.buf.String())
	}

	start()
	if err := ng.WaitReady(ctx, 90*time.Second); err != nil {
		t.Fatalf("not ready after the API server came back: %v\n%s", err, l.buf.String())
	}
	if err := ng.InstallWebhooks(ctx); err != nil {
		t.Fatal(err)
	}
	assertEnforces(t, ctx, "fault-late-start")
}

// assertEnforces proves netguard works through the API server in a new
// namespace ns: the namespace gets its baseline, a policy from anywhere is
// denied, and an annotated Deployment has its policies when its create
// returns.
func assertEnforces(t *testing.T, ctx context.Context, ns string) {
	t.Helper()
	if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "a policy from anywhere is denied", func() error {
		_, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, webhooktest.AnywherePolicy("from-anywhere"), metav1.CreateOptions{})
		if err == nil {
			return errors.New("a policy from anywhere was admitted")
		}
		if !strings.Contains(err.Error(), "[ingressFromAnywhere]") {
			return err
		}
		return nil
	})
	eventually(t, 60*time.Second, "the namespace baseline", func() error {
		for _, name := range []string{rules.DefaultDenyPolicyName, rules.AllowDNSPolicyName} {
			if _, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		return nil
	})
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, webhooktest.Deployment(ns, "web", map[string]string{rules.AnnotationDependsOn: "api:8080"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := generatedNames(ctx, cs, ns, "Deployment/web")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "netguard.web.depends-on,netguard.web.to.api" {
		t.Errorf("policies of the new Deployment when its create returned: %v", got)
	}
}

// kube-apiserver restarts under a running netguard: netguard recovers on its
// own, without a restart, and then still denies a bad policy, writes a new
// namespace's baseline and gives a new workload its policies.
func TestFaultAPIServerRestart(t *testing.T) {
	ng := startNetguard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	assertEnforces(t, ctx, "fault-before-restart")

	start := stopAPIServer(t)
	time.Sleep(3 * time.Second)
	if ng.Exited() {
		t.Fatal("netguard exited while the API server was down")
	}
	start()
	if ng.Exited() {
		t.Fatal("netguard exited while the API server restarted")
	}
	assertEnforces(t, ctx, "fault-after-restart")
	if err := ng.WaitReady(ctx, 30*time.Second); err != nil {
		t.Errorf("not ready after the restart: %v", err)
	}
}
