package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// testNamespaces are the namespaces the in-process server knows: "team" at
// the default (enforce baseline) and "open" at privileged.
func testNamespaces() map[string]map[string]string {
	return map[string]map[string]string{
		"team": nil,
		"open": {rules.LabelEnforce: "privileged", rules.LabelWarn: "privileged", rules.LabelAudit: "privileged"},
	}
}

// newTestServer is a Server without a manager: the fake namespaces stand in
// for the informer cache, a fake client for the policy cache and the API
// server.
func newTestServer(synced bool) *Server {
	s := &Server{cfg: testConfig()}
	self := selfUser
	s.self.Store(&self)
	s.synced.Store(synced)
	s.namespaces = &fakeNamespaces{labels: testNamespaces()}
	c := fakeClient()
	s.injector = &injector{cache: c, client: c, live: c}
	s.apiReader = c
	return s
}

// fakeClient stands in for the API server and the informer cache, with
// server-side apply emulated (see emulateApply).
func fakeClient(objs ...client.Object) client.WithWatch {
	return fake.NewClientBuilder().WithScheme(NewScheme()).WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{Apply: emulateApply}).Build()
}

// httpsServer runs netguard's handlers in controller-runtime's webhook
// server, as `netguard serve` does: same TLS stack, same metrics wrapper,
// same body limit, on a loopback port.
type httpsServer struct {
	URL    string
	Client *http.Client
	CA     []byte
}

func startHTTPS(t *testing.T, s *Server, opts ...func(*admission.Webhook)) *httpsServer {
	t.Helper()
	dir, caPEM, pool := webhooktest.ServingDir(t)
	port := webhooktest.FreePort(t)
	srv := crwebhook.NewServer(crwebhook.Options{Host: "127.0.0.1", Port: port, CertDir: dir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }}})
	for path, h := range s.handlers(opts...) {
		srv.Register(path, h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("webhook server: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for srv.StartedChecker()(nil) != nil {
		if time.Now().After(deadline) {
			t.Fatal("webhook server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// HTTP/2, as the API server calls webhooks.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &httpsServer{URL: "https://127.0.0.1:" + strconv.Itoa(port), Client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, CA: caPEM}
}

// reply is what came back over HTTP.
type reply struct {
	status int
	body   []byte
	review *admissionv1.AdmissionReview
	st     *metav1.Status
}

func (r reply) String() string {
	return fmt.Sprintf("HTTP %d: %s", r.status, clip(string(r.body), 400))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// post sends body to path with the API server's content type.
func (h *httpsServer) post(t *testing.T, path string, body io.Reader, contentLength int64) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = contentLength
	resp, err := h.Client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: reading the response: %v", path, err)
	}
	r := reply{status: resp.StatusCode, body: b}
	var probe struct{ Kind string }
	_ = json.Unmarshal(b, &probe)
	if probe.Kind == "Status" {
		r.st = &metav1.Status{}
		if err := json.Unmarshal(b, r.st); err != nil {
			t.Fatalf("POST %s: a Status that does not decode: %v", path, err)
		}
		return r
	}
	r.review = &admissionv1.AdmissionReview{}
	if err := json.Unmarshal(b, r.review); err != nil || r.review.Response == nil {
		t.Fatalf("POST %s: the answer is neither an AdmissionReview nor a Status: %v; %s", path, err, r)
	}
	return r
}

func (h *httpsServer) postBytes(t *testing.T, path string, body []byte) reply {
	t.Helper()
	return h.post(t, path, bytes.NewReader(body), int64(len(body)))
}

var reviewUID atomic.Int64

// review wraps a request into the AdmissionReview the API server sends,
// with a fresh uid.
func review(req admissionv1.AdmissionRequest) []byte {
	if req.UID == "" {
		req.UID = types.UID("uid-" + strconv.FormatInt(reviewUID.Add(1), 10))
	}
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &req,
	})
	if err != nil {
		panic(err)
	}
	return b
}

// npRequest is a NetworkPolicy CREATE by alice with obj as the raw object.
func npRequest(ns string, obj []byte) admissionv1.AdmissionRequest {
	return admissionv1.AdmissionRequest{
		Kind:      metav1.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"},
		Resource:  metav1.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"},
		Namespace: ns,
		Operation: admissionv1.Create,
		UserInfo:  authenticationv1.UserInfo{Username: alice, Groups: []string{"system:authenticated"}},
		Object:    runtime.RawExtension{Raw: obj},
	}
}

// npJSON is goodPolicy as the API server encodes it.
func npJSON(t testing.TB, ns string) []byte {
	np := webhooktest.GoodPolicy("web")
	np.Namespace = ns
	np.APIVersion, np.Kind = "networking.k8s.io/v1", "NetworkPolicy"
	b, err := json.Marshal(np)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deployReview is a CREATE of d by alice.
func deployReview(t testing.TB, d *appsv1.Deployment) admissionv1.AdmissionRequest {
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return deployReviewRaw(d.Namespace, d.Name, raw)
}

func deployReviewRaw(ns, name string, raw []byte) admissionv1.AdmissionRequest {
	return admissionv1.AdmissionRequest{
		Kind:      metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
		Resource:  metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
		Namespace: ns,
		Name:      name,
		Operation: admissionv1.Create,
		UserInfo:  authenticationv1.UserInfo{Username: alice, Groups: []string{"system:authenticated"}},
		Object:    runtime.RawExtension{Raw: raw},
	}
}

// admissionRequest adapts a wire request for the handlers' own methods.
func admissionRequest(r admissionv1.AdmissionRequest) admission.Request {
	if r.UID == "" {
		r.UID = types.UID("uid-" + strconv.FormatInt(reviewUID.Add(1), 10))
	}
	return admission.Request{AdmissionRequest: r}
}
