package load

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
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
