package load

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/netguard/netguard/rules"
)

// echoServer answers AdmissionReviews like a webhook that allows everything,
// over TLS and HTTP/2 on 127.0.0.1.
func echoServer(t *testing.T) (*httptest.Server, []byte) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
		review.Request = nil
		_ = json.NewEncoder(w).Encode(review)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return srv, ca
}

// Both loops send well-formed reviews over HTTP/2, stop by themselves within
// their bounds and count what they sent. Nothing here asserts a time.
func TestLoopsAgainstAWebhook(t *testing.T) {
	srv, ca := echoServer(t)
	client, err := NewClient(ca)
	if err != nil {
		t.Fatal(err)
	}
	corpus, err := NewCorpus([]string{"team-a", "team-b"}, 20, DefaultMix)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Target: "echo", BaseURL: srv.URL, Client: client, Corpus: corpus, Duration: time.Second, MaxRequests: 50}

	open, err := OpenLoop(context.Background(), o, 100)
	if err != nil {
		t.Fatal(err)
	}
	if open.Errors != 0 || open.OK != 50 || !open.HTTP2 {
		t.Errorf("open loop: ok %d errors %d (%v) HTTP/2 %v; want 50 answers over HTTP/2 (the request cap)", open.OK, open.Errors, open.FirstErrors, open.HTTP2)
	}
	// The echo server allows the denied policies: 2 in 10 are unexpected.
	if open.Unexpected != 10 {
		t.Errorf("open loop: %d unexpected verdicts, want 10", open.Unexpected)
	}
	closed, err := ClosedLoop(context.Background(), o, 4)
	if err != nil {
		t.Fatal(err)
	}
	if closed.Errors != 0 || closed.OK == 0 || closed.OK > 50 {
		t.Errorf("closed loop: ok %d errors %d (%v); want 1-50 answers", closed.OK, closed.Errors, closed.FirstErrors)
	}
	if q := closed.Quantile(.5); q <= 0 || q > closed.Quantile(1) {
		t.Errorf("median %v outside (0, max %v]", q, closed.Quantile(1))
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, u := range []string{"https://127.0.0.1:9443", "https://localhost:9443", "https://[::1]:9443", "https://127.1.2.3"} {
		if err := CheckLoopback(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"https://10.0.0.1:9443", "https://example.com", "http://127.0.0.1:9443", "https://0.0.0.0:9443"} {
		if err := CheckLoopback(u); err == nil {
			t.Errorf("%s: accepted, want refused", u)
		}
	}
	if _, err := OpenLoop(context.Background(), Options{BaseURL: "https://192.0.2.1", Corpus: Corpus{{}}}, 10); err == nil {
		t.Error("OpenLoop to a non-loopback address: want an error")
	}
}

// celShape is rules.CELShapeExpression in Go, for the corpus's policies:
// podSelector-only peers with at most 16 matchLabels and no
// matchExpressions, no endPort, and at most rules.CELMaxSlots slots.
func celShape(np *networkingv1.NetworkPolicy) bool {
	slots := 0
	rule := func(peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) bool {
		slots += max(1, len(peers)) + max(1, len(ports))
		for _, p := range peers {
			if p.PodSelector == nil || p.NamespaceSelector != nil || p.IPBlock != nil || len(p.PodSelector.MatchExpressions) > 0 || len(p.PodSelector.MatchLabels) > 16 {
				return false
			}
		}
		for _, e := range ports {
			if e.EndPort != nil {
				return false
			}
		}
		return true
	}
	ok := len(np.Spec.PodSelector.MatchExpressions) == 0
	for _, r := range np.Spec.Ingress {
		ok = rule(r.From, r.Ports) && ok
	}
	for _, r := range np.Spec.Egress {
		ok = rule(r.To, r.Ports) && ok
	}
	return ok && slots <= rules.CELMaxSlots
}

// benchVAP is the benchmark's ValidatingAdmissionPolicy (hack/bench,
// vapValidations) in Go: every rule lists its peers, no ipBlock, a
// namespaceSelector only when it pins kubernetes.io/metadata.name to the
// policy's own namespace.
func benchVAP(np *networkingv1.NetworkPolicy) bool {
	peers := func(ps []networkingv1.NetworkPolicyPeer) bool {
		for _, p := range ps {
			if p.IPBlock != nil || (p.NamespaceSelector != nil && p.NamespaceSelector.MatchLabels[corev1.LabelMetadataName] != np.Namespace) {
				return false
			}
		}
		return len(ps) > 0
	}
	for _, r := range np.Spec.Ingress {
		if !peers(r.From) {
			return false
		}
	}
	for _, r := range np.Spec.Egress {
		if !peers(r.To) {
			return false
		}
	}
	return true
}

// The mixed corpus of section 3: every policy and its UPDATE is allowed at
// baseline and by the benchmark's VAP, and 4 of 10, exactly those expected,
// are outside the part netguard's admission policies decide in CEL, each for
// the reason it stands for.
func TestMixedPolicy(t *testing.T) {
	decided := 0
	for i := range 40 {
		np := MixedPolicy("team-a", fmt.Sprintf("mx-%d", i), i)
		for _, p := range []*networkingv1.NetworkPolicy{np, UpdatedPolicy(np, i)} {
			if v := rules.Evaluate(rules.LevelBaseline, rules.LatestVersion(), p); len(v) > 0 {
				t.Errorf("policy %d: denied at baseline: %v", i, v)
			}
			if !benchVAP(p) {
				t.Errorf("policy %d: denied by the benchmark's VAP", i)
			}
			if got, want := celShape(p), i%10 < 6; got != want {
				t.Errorf("policy %d: decided in CEL %v, want %v", i, got, want)
			}
		}
		if celShape(np) {
			decided++
		}
		in := np.Spec.Ingress[0]
		slots := 0
		for _, r := range np.Spec.Ingress {
			slots += max(1, len(r.From)) + max(1, len(r.Ports))
		}
		for _, r := range np.Spec.Egress {
			slots += max(1, len(r.To)) + max(1, len(r.Ports))
		}
		var why bool
		switch i % 10 {
		case 6:
			why = in.From[1].NamespaceSelector != nil && in.From[1].PodSelector != nil
		case 7:
			why = len(in.From[0].PodSelector.MatchExpressions) > 0
		case 8:
			why = in.Ports[0].EndPort != nil && *in.Ports[0].EndPort-in.Ports[0].Port.IntVal == 10
		case 9:
			why = slots > rules.CELMaxSlots
		default:
			why = slots <= rules.CELMaxSlots
		}
		if !why {
			t.Errorf("policy %d (variant %d): not the shape it stands for: %+v", i, i%10, np.Spec)
		}
	}
	if decided != 24 {
		t.Errorf("%d of 40 decided in CEL, want 24", decided)
	}
	// The same evaluation denies what it should.
	for i := range 3 {
		if v := rules.Evaluate(rules.LevelBaseline, rules.LatestVersion(), DeniedPolicy("team-a", "bad", i)); len(v) == 0 {
			t.Errorf("DeniedPolicy %d: allowed at baseline", i)
		}
	}
}
