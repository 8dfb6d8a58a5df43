package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/netguard/netguard/webhook"
)

// How `netguard serve` starts and stops, so that both failure modes are the
// deliberate ones (docs/security.md):
//
//   - It starts without the API server. The webhook server, /healthz and
//     /readyz come up at once; /readyz fails until the API server answers
//     and the caches are synced. Meanwhile a NetworkPolicy request is denied
//     with a retryable 503 and a workload is admitted with a warning. serve
//     retries with backoff and never exits because the API server is away.
//   - It stops without failing a request: on SIGTERM /readyz fails at once,
//     the webhook keeps serving for --shutdown-delay so that endpoints stop
//     sending it traffic, then the manager stops and the webhook server
//     finishes the requests in flight and refuses new connections.

// lifecycle is serve's readiness beyond controller-runtime's: not ready while
// it waits for the API server, and not ready once it is shutting down.
type lifecycle struct {
	waiting  atomic.Pointer[string]
	draining atomic.Bool
	// up is closed when the start-up steps are done.
	up     chan struct{}
	upOnce sync.Once
}

func newLifecycle() *lifecycle {
	l := &lifecycle{up: make(chan struct{})}
	msg := "waiting for the API server"
	l.waiting.Store(&msg)
	return l
}

// readyCheck is the /readyz check "lifecycle".
func (l *lifecycle) readyCheck() healthz.Checker {
	return func(*http.Request) error {
		if l.draining.Load() {
			return errors.New("shutting down")
		}
		if p := l.waiting.Load(); p != nil {
			return errors.New(*p)
		}
		return nil
	}
}

// apiKinds are what netguard's informers, controllers and certificate
// rotation map through the API server's discovery before they can start.
var apiKinds = []schema.GroupVersionKind{
	{Version: "v1", Kind: "Namespace"},
	{Version: "v1", Kind: "Secret"},
	{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"},
	{Group: "netguard.io", Version: "v1alpha1", Kind: "NetworkProfile"},
	{Group: "netguard.io", Version: "v1alpha1", Kind: "LocalNetworkConfig"},
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Group: "apps", Version: "v1", Kind: "StatefulSet"},
	{Group: "apps", Version: "v1", Kind: "DaemonSet"},
	{Group: "batch", Version: "v1", Kind: "Job"},
	{Group: "batch", Version: "v1", Kind: "CronJob"},
	{Version: "v1", Kind: "Pod"},
}

// startupBackoff paces retries against an API server that does not answer:
// the webhook's, so that start-up and the caches retry alike. Tests shorten
// it.
var startupBackoff = webhook.APIBackoff()

// waitForAPIServer returns once the API server answers and maps every kind
// in apiKinds (a missing CRD keeps it waiting, and says so), retrying with
// backoff and logging each failure. It returns ctx's error when ctx ends.
func (l *lifecycle) waitForAPIServer(ctx context.Context, cfg *rest.Config, mapper meta.RESTMapper, log logr.Logger) error {
	probeCfg := rest.CopyConfig(cfg)
	probeCfg.Timeout = 10 * time.Second
	dc, err := discovery.NewDiscoveryClientForConfig(probeCfg)
	if err != nil {
		return err
	}
	attempt := 0
	return webhook.RetryForever(ctx, startupBackoff, func(context.Context) (bool, error) {
		attempt++
		err := func() error {
			if _, err := dc.ServerVersion(); err != nil {
				return err
			}
			for _, gvk := range apiKinds {
				if _, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
					return err
				}
			}
			return nil
		}()
		if err != nil {
			msg := "waiting for the API server: " + err.Error()
			l.waiting.Store(&msg)
			log.Info("the API server does not answer yet; not ready, retrying with backoff", "attempt", attempt, "error", err.Error())
			return false, nil
		}
		if attempt > 1 {
			log.Info("the API server answers", "attempts", attempt)
		}
		return true, nil
	})
}

// retry runs f with startupBackoff until it succeeds or ctx ends.
func (l *lifecycle) retry(ctx context.Context, what string, log logr.Logger, f func(context.Context) error) error {
	return webhook.RetryForever(ctx, startupBackoff, func(ctx context.Context) (bool, error) {
		if err := f(ctx); err != nil {
			msg := what + ": " + err.Error()
			l.waiting.Store(&msg)
			log.Info("start-up step failed; not ready, retrying with backoff", "step", what, "error", err.Error())
			return false, nil
		}
		return true, nil
	})
}

// started marks the end of the start-up steps; readiness still waits for the
// caches.
func (l *lifecycle) started() {
	l.waiting.Store(nil)
	l.upOnce.Do(func() { close(l.up) })
}

// waitStarted waits for started and reports whether it came before ctx
// ended.
func (l *lifecycle) waitStarted(ctx context.Context) bool {
	select {
	case <-l.up:
		return true
	case <-ctx.Done():
		return false
	}
}

// gatedWebhookServer starts the webhook server only once open is closed: in
// self-managed mode the certificate comes from a Secret, so the server must
// wait for it.
type gatedWebhookServer struct {
	crwebhook.Server
	open <-chan struct{}
}

func (g *gatedWebhookServer) Start(ctx context.Context) error {
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil
	}
	return g.Server.Start(ctx)
}

// drain turns the end of ctx (SIGTERM or SIGINT) into a graceful stop: it
// fails readiness at once and starts closing connections after each answer
// (startDraining), waits delay while the webhook keeps serving, then calls
// stop. A second signal during the wait stops at once.
func (l *lifecycle) drain(ctx context.Context, delay time.Duration, log logr.Logger, startDraining, stop func()) {
	<-ctx.Done()
	l.draining.Store(true)
	startDraining()
	if delay > 0 {
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(again)
		log.Info("shutting down: /readyz reports not ready; serving admission requests until the delay ends", "shutdownDelay", delay.String())
		select {
		case <-time.After(delay):
		case <-again:
			log.Info("second signal: stopping at once")
		}
	}
	log.Info("stopping: the webhook server finishes the requests in flight and accepts no new connections")
	stop()
}

func validateShutdownDelay(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("--shutdown-delay %s: must not be negative", d)
	}
	return nil
}
