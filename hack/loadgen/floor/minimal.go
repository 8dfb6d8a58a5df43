package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/netguard/netguard/webhook"
)

// The honest floor (-minimal): the fastest no-op an admission webhook can
// be. It reads the review only as far as request.uid and answers allowed
// with a fixed response: no controller-runtime, no decoding of the object,
// no encoding library. Comparing netguard with it measures netguard against
// the plumbing itself (TLS, HTTP, the API server's call), not against a
// second copy of netguard's own framework.

// reviewUID is all of an AdmissionReview the honest floor reads.
type reviewUID struct {
	Request struct {
		UID string `json:"uid"`
	} `json:"request"`
}

// minimalHandler answers every review allowed; /healthz answers 200.
func minimalHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(http.StatusOK)
			return
		}
		var rev reviewUID
		if err := json.NewDecoder(io.LimitReader(r.Body, 7<<20)).Decode(&rev); err != nil || rev.Request.UID == "" {
			http.Error(w, "not an AdmissionReview with a request.uid", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":`+strconv.Quote(rev.Request.UID)+`,"allowed":true}}`)
	})
}

// serveMinimal serves the honest floor on 127.0.0.1:port with netguard's
// TLS settings until ctx is done.
func serveMinimal(ctx context.Context, port int, certDir string) error {
	cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key"))
	if err != nil {
		return err
	}
	// HTTP/2, as controller-runtime's server and the API server's client
	// speak it; ServeTLS configures it.
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	for _, f := range webhook.TLSOptions(tls.VersionTLS12) {
		f(cfg)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: minimalHandler(), TLSConfig: cfg, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ServeTLS(ln, "", ""); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}
