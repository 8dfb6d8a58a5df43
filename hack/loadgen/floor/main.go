// Command floor is the baseline netguard is measured against. Two floors:
// with -minimal the honest one (minimal.go), the fastest no-op webhook;
// without, a controller-runtime webhook server with netguard's TLS settings and paths
// whose handlers allow everything. What it costs is what any
// controller-runtime webhook costs (TLS, HTTP/2, decoding and encoding the
// AdmissionReview); netguard's own work is the difference.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/netguard/netguard/webhook"
)

func main() {
	port := flag.Int("port", 9443, "HTTPS port, bound on 127.0.0.1")
	certDir := flag.String("cert-dir", "", "directory with tls.crt and tls.key")
	minimal := flag.Bool("minimal", false, "serve the honest floor (minimal.go) instead of the controller-runtime one")
	flag.Parse()
	log.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *minimal {
		if err := serveMinimal(ctx, *port, *certDir); err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
			os.Exit(1)
		}
		return
	}
	srv := crwebhook.NewServer(crwebhook.Options{
		Host:    "127.0.0.1",
		Port:    *port,
		CertDir: *certDir,
		// The same as `netguard serve` with its default --tls-min-version 1.2.
		TLSOpts: webhook.TLSOptions(tls.VersionTLS12),
	})
	allow := admission.HandlerFunc(func(context.Context, admission.Request) admission.Response { return admission.Allowed("") })
	for _, p := range []string{webhook.PathValidateNetworkPolicy, webhook.PathMutateWorkload, webhook.PathValidateWorkload} {
		srv.Register(p, &admission.Webhook{Handler: allow})
	}
	if err := srv.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}
