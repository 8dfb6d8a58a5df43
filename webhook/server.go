package webhook

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
)

// Paths the webhook configurations point at (PathValidateNamespace is in
// namespacelabels.go). They are part of the install interface: the chart's
// templates/webhooks.yaml, the configurations `make run` and the e2e
// cluster register (configurations.go), and docs/install.md, "Webhooks".
const (
	PathValidateNetworkPolicy = "/validate-networkpolicy"
	PathMutateWorkload        = "/mutate-workload"
	PathValidateWorkload      = "/validate-workload"
)

// Server is netguard's admission side inside a controller-runtime manager.
type Server struct {
	cfg        *Config
	synced     atomic.Bool
	self       atomic.Pointer[string]
	draining   atomic.Bool
	namespaces namespaceLabeler
	injector   *injector
	apiReader  client.Reader
	// confirmations rate-limits the API server reads that confirm
	// dependency warnings; nil means no limit (tests).
	confirmations *rate.Limiter
	// confirmed keeps what the confirmations read for a second, so that
	// the namespace's next ones read nothing.
	confirmed confirmationCache
	// recorder records the Normal events of admission (policyEvents); nil
	// records nothing.
	recorder events.EventRecorder
}

// namespaceIgnored reports whether ns carries netguard.io/ignore. The webhook
// configurations keep such namespaces away from admission; the controller
// checks it here.
func (s *Server) namespaceIgnored(ctx context.Context, ns string) bool {
	labels, err := s.namespaces.NamespaceLabels(ctx, ns)
	if err != nil {
		return false
	}
	_, ok := labels[LabelIgnore]
	return ok
}

// enforceLevel is the namespace's enforce level; when it cannot be read, the
// strictest level, so that a wrong annotation is never waved through.
func (s *Server) enforceLevel(ctx context.Context, ns string) rules.Level {
	labels, err := s.namespaces.NamespaceLabels(ctx, ns)
	if err != nil {
		return rules.LevelManaged
	}
	p, _ := rules.PolicyForNamespace(s.cfg.Defaults, labels)
	return p.Enforce.Level
}

// isSelf reports whether user is netguard itself.
func (s *Server) isSelf(user string) bool {
	p := s.self.Load()
	return p != nil && *p != "" && user == *p
}

// Setup registers netguard's admission handlers and the runnables that make
// them ready. It needs no API server: the informers are registered once the
// manager runs, retrying with backoff until the API server answers. Requests
// that arrive before the caches are synced are denied with a retryable error,
// never admitted blindly.
func Setup(mgr manager.Manager, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: &cfg}
	if cfg.SelfUsername != "" {
		s.self.Store(&cfg.SelfUsername)
	}
	if err := mgr.Add(EveryReplica(s.waitForSync(mgr))); err != nil {
		return nil, err
	}
	if cfg.SelfUsername == "" {
		if err := mgr.Add(EveryReplica(s.discoverSelf(mgr))); err != nil {
			return nil, err
		}
	}
	s.namespaces = &cachedNamespaces{cache: mgr.GetCache(), live: mgr.GetAPIReader(), synced: &s.synced, poll: 2 * time.Second}
	writer, err := admissionWriter(mgr)
	if err != nil {
		return nil, err
	}
	s.injector = &injector{cache: mgr.GetCache(), client: writer, live: mgr.GetAPIReader(), generated: newGenerationCache(generationCacheSize), namespaces: s.namespaces,
		defaults: cfg.Defaults, crossNamespace: cfg.CrossNamespace}
	s.apiReader = mgr.GetAPIReader()
	s.confirmations = newConfirmationLimiter()
	s.recorder = mgr.GetEventRecorder("netguard")
	srv := mgr.GetWebhookServer()
	for path, h := range s.handlers() {
		srv.Register(path, h)
	}
	return s, nil
}

// admissionWriter is the client the injector writes policies with. The
// validating webhook writes a workload's policies while the API server waits
// for its answer, so a client-side rate limit turns into admission latency:
// client-go's default (5 requests a second, bursts of 10), in force when the
// rest.Config leaves QPS unset as a --kubeconfig one does, held every
// Deployment with 8 policies for 1.6 s. controller-runtime's in-cluster
// config already turns the limiter off and leaves flow control to the API
// server's priority and fairness; this does the same for any config that
// does not set a limit of its own.
func admissionWriter(mgr manager.Manager) (client.Client, error) {
	cfg := mgr.GetConfig()
	if cfg.QPS != 0 || cfg.RateLimiter != nil {
		return mgr.GetClient(), nil
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS = -1
	c, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return nil, fmt.Errorf("client for generated policies: %w", err)
	}
	return c, nil
}

// handlers are the admission endpoints by path. Each reads at most
// MaxRequestBytes of body. opts adjust each admission.Webhook (tests set its
// logger).
func (s *Server) handlers(opts ...func(*admission.Webhook)) map[string]http.Handler {
	hooks := map[string]*admission.Webhook{
		PathValidateNetworkPolicy:      {Handler: &networkPolicyValidator{cfg: s.cfg, isSelf: s.isSelf, namespaces: s.namespaces}},
		PathMutateWorkload:             {Handler: &workloadMutator{s: s}},
		PathValidateWorkload:           {Handler: &workloadApplier{s: s}},
		PathValidateNamespace:          {Handler: &namespaceLabelValidator{}},
		PathValidateLocalNetworkConfig: {Handler: &localValidator{s: s}},
	}
	out := make(map[string]http.Handler, len(hooks))
	for path, wh := range hooks {
		for _, o := range opts {
			o(wh)
		}
		h := serveReview(MaxRequestBytes, wh)
		if path == PathValidateNetworkPolicy {
			h = serveNetworkPolicyReview(MaxRequestBytes, wh)
			// Judging a policy is the work a tenant can make costly; the
			// workload webhooks fail open and are not limited here.
			h = concurrencyLimit(s.cfg.MaxConcurrentEvaluations, "networkpolicies", h)
		}
		out[path] = s.closeWhenDraining(h)
	}
	return out
}

// StartDraining makes every answer from now on carry "Connection: close".
// The API server talks HTTP/1.1 to the webhook and keeps connections alive;
// closing each one after its answer while netguard drains means no client
// holds an idle connection when the server stops, so none writes a request
// onto a connection the server is closing.
func (s *Server) StartDraining() { s.draining.Store(true) }

func (s *Server) closeWhenDraining(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r.WithContext(s.requestContext(r.Context())))
	})
}

// requestContext keeps a request's context from ending with the server's:
// the webhook server derives every request's context from the manager's,
// which ends when netguard stops, yet a request it has read is finished
// (graceful shutdown) and must not be denied as "stopped before it
// finished". The client going away still ends it, except while draining,
// when the server's own stop cannot be told apart from the client's; the
// review's deadline (reviewContext) bounds it in every case.
func (s *Server) requestContext(parent context.Context) context.Context {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	context.AfterFunc(parent, func() {
		if !s.draining.Load() {
			cancel()
		}
	})
	return ctx
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

// policyMetadata is a NetworkPolicy as the cache holds it: metadata only.
// Admission reads the policy under review from the request; the controllers
// need only labels, annotations, UIDs and owners of generated policies; and
// the background audit reads specs from the API server a namespace at a
// time. A spec in the cache would be most of netguard's memory in a cluster
// with many policies (BENCHMARKS.md, section 4).
func policyMetadata() *metav1.PartialObjectMetadata {
	np := &metav1.PartialObjectMetadata{}
	np.SetGroupVersionKind(networkPolicyGVK)
	return np
}

// policyMetadataList lists cached NetworkPolicies (policyMetadata).
func policyMetadataList() *metav1.PartialObjectMetadataList {
	l := &metav1.PartialObjectMetadataList{}
	l.SetGroupVersionKind(networkPolicyGVK.GroupVersion().WithKind("NetworkPolicyList"))
	return l
}

// workloadMetadataList is a list of workloads of kind as metadata: what the
// cache holds and what the audit pages through.
func workloadMetadataList(kind string) *metav1.PartialObjectMetadataList {
	l := &metav1.PartialObjectMetadataList{}
	l.SetGroupVersionKind(workloadGVK(kind).GroupVersion().WithKind(kind + "List"))
	return l
}

// workloadMetadata is a workload of kind as the cache holds it.
func workloadMetadata(kind string) *metav1.PartialObjectMetadata {
	o := &metav1.PartialObjectMetadata{}
	o.SetGroupVersionKind(workloadGVK(kind))
	return o
}

// admissionInformers are what admission reads: namespaces (as metadata only:
// labels are all netguard needs, and metadata keeps the cache small in
// clusters with many namespaces), NetworkPolicies (metadata only, see
// policyMetadata), NetworkProfiles, LocalNetworkConfigs, and Deployments, StatefulSets and
// DaemonSets as metadata (trimmed to netguard's annotations), to find the
// owner of a component (ownership.go).
func admissionInformers() []client.Object {
	out := []client.Object{namespaceMetadata(), policyMetadata(), &netguardv1alpha1.NetworkProfile{}, &netguardv1alpha1.LocalNetworkConfig{}}
	for _, kind := range workloadKinds {
		out = append(out, workloadMetadata(kind))
	}
	return out
}

// APIBackoff paces every retry against an unreachable API server, in the
// webhook and in serve's start-up steps: quickly at first, then every 30
// seconds, for ever (with RetryForever).
func APIBackoff() wait.Backoff {
	return wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: math.MaxInt32, Cap: 30 * time.Second}
}

// RetryForever calls cond at once and then after each of b's delays until it
// returns true or an error, or ctx ends. Unlike
// wait.ExponentialBackoffWithContext it never gives up: that one stops with
// ErrWaitTimeout once the delay reaches b.Cap, about a minute into an
// outage, which stopped the manager.
func RetryForever(ctx context.Context, b wait.Backoff, cond wait.ConditionWithContextFunc) error {
	return b.DelayFunc().Until(ctx, true, true, cond)
}

func (s *Server) waitForSync(mgr manager.Manager) func(context.Context) error {
	return func(ctx context.Context) error {
		log := logf.FromContext(ctx).WithName("caches")
		// Every informer admission reads is registered before waiting, so
		// that readiness covers all of them. Registering one needs its REST
		// mapping, so it waits for the API server.
		for _, o := range admissionInformers() {
			err := RetryForever(ctx, APIBackoff(), func(ctx context.Context) (bool, error) {
				if _, err := mgr.GetCache().GetInformer(ctx, o, cache.BlockUntilSynced(false)); err != nil {
					log.Info("cannot watch yet; retrying", "kind", fmt.Sprintf("%T", o), "error", err.Error())
					return false, nil
				}
				return true, nil
			})
			if err != nil {
				return nil // stopping
			}
		}
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
		if ctx.Err() != nil {
			return nil
		}
		s.synced.Store(true)
		log.Info("caches synced; admission is ready", "self", *s.self.Load())
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
		err = RetryForever(ctx, APIBackoff(), func(ctx context.Context) (bool, error) {
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
		if ctx.Err() != nil {
			return nil // stopping is not a failure
		}
		return err
	}
}

// EveryReplica is a runnable that runs on every replica, not only the
// leader: admission is served by all of them, and each replica starts up
// (serve's start-up steps) on its own.
type EveryReplica func(context.Context) error

func (f EveryReplica) Start(ctx context.Context) error { return f(ctx) }
func (f EveryReplica) NeedLeaderElection() bool        { return false }
