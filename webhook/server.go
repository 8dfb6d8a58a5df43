package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Paths the webhook configurations point at. They are part of the install
// interface (chart, make run, docs/webhooks.md).
const (
	PathValidateNetworkPolicy = "/validate-networkpolicy"
)

// Server is netguard's admission side inside a controller-runtime manager.
type Server struct {
	cfg    *Config
	synced atomic.Bool
	self   atomic.Pointer[string]
}

// isSelf reports whether user is netguard itself.
func (s *Server) isSelf(user string) bool {
	p := s.self.Load()
	return p != nil && *p != "" && user == *p
}

// Setup registers netguard's admission handlers and the runnables that make
// them ready. Requests that arrive before the caches are synced are denied
// with a retryable error, never admitted blindly.
func Setup(mgr manager.Manager, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: &cfg}
	if cfg.SelfUsername != "" {
		s.self.Store(&cfg.SelfUsername)
	}
	// Namespaces are read as metadata only: labels are all netguard needs, and
	// metadata keeps the cache small in clusters with many namespaces.
	if _, err := mgr.GetCache().GetInformer(context.Background(), namespaceMetadata()); err != nil {
		return nil, fmt.Errorf("namespace informer: %w", err)
	}
	if err := mgr.Add(everyReplica(s.waitForSync(mgr))); err != nil {
		return nil, err
	}
	if cfg.SelfUsername == "" {
		if err := mgr.Add(everyReplica(s.discoverSelf(mgr))); err != nil {
			return nil, err
		}
	}
	ns := &cachedNamespaces{cache: mgr.GetCache(), live: mgr.GetAPIReader(), synced: &s.synced, poll: 2 * time.Second}
	srv := mgr.GetWebhookServer()
	srv.Register(PathValidateNetworkPolicy, &admission.Webhook{Handler: &networkPolicyValidator{cfg: s.cfg, isSelf: s.isSelf, namespaces: ns}})
	return s, nil
}

// ReadyCheck fails until the caches are synced and netguard knows its own
// identity.
func (s *Server) ReadyCheck() healthz.Checker {
	return func(_ *http.Request) error {
		if !s.synced.Load() {
			return errors.New("caches not synced")
		}
		return nil
	}
}

func namespaceMetadata() *metav1.PartialObjectMetadata {
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(namespaceGVK)
	return ns
}

func (s *Server) waitForSync(mgr manager.Manager) func(context.Context) error {
	return func(ctx context.Context) error {
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return nil // stopping
		}
		if ctx.Err() != nil {
			return nil
		}
		// Self discovery runs first when needed; readiness waits for both.
		for s.self.Load() == nil && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
		s.synced.Store(true)
		logf.FromContext(ctx).Info("caches synced; admission is ready", "self", *s.self.Load())
		<-ctx.Done()
		return nil
	}
}

// discoverSelf asks the API server who netguard is (a SelfSubjectReview), so
// that its own writes to managed policies are recognised whatever credential
// it runs with. It retries with backoff while the API server is unreachable.
func (s *Server) discoverSelf(mgr manager.Manager) func(context.Context) error {
	return func(ctx context.Context) error {
		cs, err := kubernetes.NewForConfig(mgr.GetConfig())
		if err != nil {
			return err
		}
		log := logf.FromContext(ctx).WithName("self")
		backoff := wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 1 << 30, Cap: 30 * time.Second}
		return wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
			r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
			if err != nil {
				log.Info("cannot learn netguard's own identity yet; retrying", "error", err.Error())
				return false, nil
			}
			name := r.Status.UserInfo.Username
			s.self.Store(&name)
			log.Info("netguard's own identity", "username", name)
			return true, nil
		})
	}
}

// everyReplica is a runnable that runs on every replica, not only the leader:
// admission is served by all of them.
type everyReplica func(context.Context) error

func (f everyReplica) Start(ctx context.Context) error { return f(ctx) }
func (f everyReplica) NeedLeaderElection() bool        { return false }
