package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	configv1alpha1 "github.com/netguard/netguard/api/config/v1alpha1"
	"github.com/netguard/netguard/certs"
	"github.com/netguard/netguard/webhook"
)

// serveOptions holds every flag of `netguard serve`. Flags override the
// --config file; see mergeConfig.
type serveOptions struct {
	WebhookPort            int
	CertDir                string
	CertName               string
	KeyName                string
	HealthProbeBindAddress string
	MetricsBindAddress     string
	PprofBindAddress       string
	Kubeconfig             string
	ConfigFile             string
	LogFormat              string
	LogLevel               string
	TLSMinVersion          string
	Namespace              string

	// Policy flags override the --config file field by field; see mergeFlags.
	DefaultEnforce, DefaultAudit, DefaultWarn       string
	ExemptUsernames, ExemptGroups, ExemptNamespaces []string
	PlatformUsernames, PlatformGroups               []string
	SelfUsername                                    string
	// ExcludedNamespaces never reach the webhooks (the chart's
	// webhooks.excludedNamespaces); the admission policies' bindings
	// exclude them too.
	ExcludedNamespaces []string
	// MaxConcurrentEvaluations is --max-concurrent-evaluations; it
	// overrides admission.maxConcurrentEvaluations.
	MaxConcurrentEvaluations int

	LeaderElect             bool
	LeaderElectionNamespace string
	DisableControllers      bool
	OrphanGrace             time.Duration
	// ShutdownDelay is how long serve keeps serving, not ready, after SIGTERM.
	ShutdownDelay time.Duration

	// CertMode is cert-manager (files in --cert-dir written by someone else)
	// or self-managed (netguard keeps a CA and leaf in a Secret; see certs.Rotator).
	CertMode           string
	CertSecretName     string
	WebhookServiceName string
	CertExtraSANs      []string

	auditServeOptions // the background audit: audit_serve.go
}

func defaultServeOptions() *serveOptions {
	return &serveOptions{
		WebhookPort:            9443,
		CertDir:                filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs"),
		CertName:               "tls.crt",
		KeyName:                "tls.key",
		HealthProbeBindAddress: ":8081",
		MetricsBindAddress:     ":8080",
		PprofBindAddress:       "0",
		LogFormat:              "json",
		LogLevel:               "info",
		TLSMinVersion:          "1.2",
		Namespace:              envOr("POD_NAMESPACE", "netguard-system"),
		CertMode:               "cert-manager",
		CertSecretName:         "netguard-webhook-tls",
		WebhookServiceName:     "netguard",
		ShutdownDelay:          5 * time.Second,
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func (o *serveOptions) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.WebhookPort, "webhook-port", o.WebhookPort, "HTTPS port of the admission webhook server")
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir, "directory holding the serving certificate and key; reloaded when they change on disk")
	fs.StringVar(&o.CertName, "cert-name", o.CertName, "file name of the serving certificate inside --cert-dir")
	fs.StringVar(&o.KeyName, "key-name", o.KeyName, "file name of the serving key inside --cert-dir")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, "address of /healthz and /readyz; \"0\" disables them")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "address of the Prometheus /metrics endpoint; \"0\" disables it")
	fs.StringVar(&o.PprofBindAddress, "pprof-bind-address", o.PprofBindAddress, "address of Go's /debug/pprof profiling endpoints, e.g. 127.0.0.1:6060; \"0\" disables them. Bind it to loopback: profiles reveal memory contents")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "path to a kubeconfig; empty uses $KUBECONFIG or the in-cluster config")
	fs.StringVar(&o.ConfigFile, "config", o.ConfigFile, "path to a NetguardConfiguration file (docs/configuration.md)")
	fs.StringVar(&o.LogFormat, "log-format", o.LogFormat, "log encoding: json or console")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "log level: debug, info or error")
	fs.StringVar(&o.TLSMinVersion, "tls-min-version", o.TLSMinVersion, "minimum TLS version of the webhook server: 1.2 or 1.3")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "netguard's own namespace, always exempt (default $POD_NAMESPACE or netguard-system)")
	fs.StringVar(&o.DefaultEnforce, "default-enforce", "", "enforce level for namespaces without a netguard.io/enforce label (overrides defaults.enforce)")
	fs.StringVar(&o.DefaultAudit, "default-audit", "", "audit level for namespaces without a netguard.io/audit label (overrides defaults.audit)")
	fs.StringVar(&o.DefaultWarn, "default-warn", "", "warn level for namespaces without a netguard.io/warn label (overrides defaults.warn)")
	fs.StringSliceVar(&o.ExemptUsernames, "exempt-usernames", nil, "users whose requests are never evaluated (replaces exemptions.usernames)")
	fs.StringSliceVar(&o.ExemptGroups, "exempt-groups", nil, "groups whose requests are never evaluated (replaces exemptions.groups)")
	fs.StringSliceVar(&o.ExemptNamespaces, "exempt-namespaces", nil, "namespaces never evaluated (replaces exemptions.namespaces; kube-system and --namespace are always exempt)")
	fs.StringSliceVar(&o.PlatformUsernames, "platform-usernames", nil, "users who may write netguard-managed policies (replaces platformIdentities.usernames)")
	fs.StringSliceVar(&o.PlatformGroups, "platform-groups", nil, "groups who may write netguard-managed policies (replaces platformIdentities.groups)")
	fs.StringSliceVar(&o.ExcludedNamespaces, "excluded-namespaces", nil, "namespaces the webhook configurations exclude besides kube-system and --namespace (the chart's webhooks.excludedNamespaces); the ValidatingAdmissionPolicy bindings netguard applies exclude them too")
	fs.StringVar(&o.SelfUsername, "self-username", "", "netguard's own username; empty asks the API server (SelfSubjectReview)")
	fs.IntVar(&o.MaxConcurrentEvaluations, "max-concurrent-evaluations", configv1alpha1.DefaultMaxConcurrentEvaluations, "NetworkPolicy reviews judged at once by this replica; more wait up to a second, then are answered 429 and counted in netguard_admission_shed_total (overrides admission.maxConcurrentEvaluations)")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "elect a leader among replicas for the controllers (webhooks run on every replica)")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default --namespace)")
	fs.StringVar(&o.CertMode, "cert-mode", o.CertMode, "cert-manager: serve the certificate another party writes to --cert-dir; self-managed: keep a CA and serving certificate in a Secret, inject the caBundle and rotate them")
	fs.StringVar(&o.CertSecretName, "cert-secret-name", o.CertSecretName, "self-managed mode: the Secret in --namespace that holds the CA and serving certificate")
	fs.StringVar(&o.WebhookServiceName, "webhook-service-name", o.WebhookServiceName, "self-managed mode: the webhook Service; the certificate is issued for <name>.<namespace>.svc")
	fs.StringSliceVar(&o.CertExtraSANs, "cert-extra-sans", nil, "self-managed mode: more DNS names or IP addresses for the serving certificate, e.g. 127.0.0.1 when the API server calls netguard by URL")
	fs.DurationVar(&o.OrphanGrace, "orphan-grace-period", webhook.DefaultOrphanGrace, "how long policies written during a workload's CREATE wait for it to be stored before they are removed as left over from a failed create, and how often policies orphaned by a --cascade=orphan deletion are looked at again while their pods run")
	fs.DurationVar(&o.ShutdownDelay, "shutdown-delay", o.ShutdownDelay, "after SIGTERM, how long to keep serving admission requests while /readyz reports not ready, so that the Service stops sending traffic before the webhook server stops")
	fs.BoolVar(&o.DisableControllers, "disable-controllers", false, "serve admission only: no backfill, repair or namespace baseline (for benchmarks and debugging)")
	o.addAuditFlags(fs)
}

// Validate checks every option and returns one error naming the flag and the fix.
func (o *serveOptions) Validate() error {
	var errs []error
	if o.WebhookPort < 1 || o.WebhookPort > 65535 {
		errs = append(errs, fmt.Errorf("--webhook-port %d: must be 1-65535", o.WebhookPort))
	}
	for _, a := range []struct{ flag, val string }{
		{"--health-probe-bind-address", o.HealthProbeBindAddress},
		{"--metrics-bind-address", o.MetricsBindAddress},
		{"--pprof-bind-address", o.PprofBindAddress},
	} {
		if err := validateBindAddress(a.val); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", a.flag, a.val, err))
		}
	}
	switch o.LogFormat {
	case "json", "console":
	default:
		errs = append(errs, fmt.Errorf("--log-format %q: must be json or console", o.LogFormat))
	}
	if _, err := parseLogLevel(o.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseTLSVersion(o.TLSMinVersion); err != nil {
		errs = append(errs, err)
	}
	if err := validateShutdownDelay(o.ShutdownDelay); err != nil {
		errs = append(errs, err)
	}
	for _, f := range []struct{ flag, val string }{
		{"--default-enforce", o.DefaultEnforce}, {"--default-audit", o.DefaultAudit}, {"--default-warn", o.DefaultWarn},
	} {
		if f.val == "" {
			continue
		}
		if _, err := parseLevelVersion(f.val); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.flag, err))
		}
	}
	switch o.CertMode {
	case "cert-manager":
	case "self-managed":
		if o.CertName != "tls.crt" || o.KeyName != "tls.key" {
			errs = append(errs, errors.New("--cert-mode self-managed writes tls.crt and tls.key: leave --cert-name and --key-name at their defaults"))
		}
	default:
		errs = append(errs, fmt.Errorf("--cert-mode %q: must be cert-manager or self-managed", o.CertMode))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if o.CertMode == "self-managed" {
		return nil // netguard writes the certificate itself before it serves
	}
	// The certificate is checked last: it is the most common start-up failure,
	// and the message should not be buried under flag errors.
	return o.validateCert()
}

func (o *serveOptions) validateCert() error {
	certPath := filepath.Join(o.CertDir, o.CertName)
	keyPath := filepath.Join(o.CertDir, o.KeyName)
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("serving certificate: %w; create it with cert-manager or the chart, or point --cert-dir at a directory holding %s and %s", err, o.CertName, o.KeyName)
		}
	}
	if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
		return fmt.Errorf("serving certificate %q with key %q: %w", certPath, keyPath, err)
	}
	return nil
}

func validateBindAddress(a string) error {
	if a == "0" {
		return nil
	}
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return errors.New("must be HOST:PORT, :PORT or 0")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errors.New("port must be 0-65535")
	}
	return nil
}

func parseLogLevel(s string) (zapcore.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return zapcore.DebugLevel, nil
	case "info":
		return zapcore.InfoLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	}
	return 0, fmt.Errorf("--log-level %q: must be debug, info or error", s)
}

func parseTLSVersion(s string) (uint16, error) {
	switch s {
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("--tls-min-version %q: must be 1.2 or 1.3", s)
}

// restConfig follows kubectl: --kubeconfig, then $KUBECONFIG, then in-cluster.
// Either way the client-side rate limiter is off unless the kubeconfig sets
// one, as controller-runtime's GetConfig does: netguard's reads and writes at
// admission happen while the API server waits for its answer, so client-go's
// default limit (5 requests a second, bursts of 10) turned into admission
// latency (a Deployment whose dependency warnings were confirmed with live
// lists waited 1.2 s). Flow control is the API server's priority and
// fairness.
func (o *serveOptions) restConfig() (*rest.Config, error) {
	if o.Kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %q: %w", o.Kubeconfig, err)
		}
		return withoutClientRateLimit(cfg), nil
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("no kubeconfig: set --kubeconfig or $KUBECONFIG, or run in a cluster: %w", err)
	}
	return withoutClientRateLimit(cfg), nil
}

// admissionPolicyResync is how often the leader re-applies the admission
// policies.
const admissionPolicyResync = time.Minute

// withoutClientRateLimit turns client-go's rate limiter off when cfg sets
// no limit of its own.
func withoutClientRateLimit(cfg *rest.Config) *rest.Config {
	if cfg.QPS == 0 && cfg.RateLimiter == nil {
		cfg.QPS = -1
	}
	return cfg
}

func init() {
	registerSubcommand("serve", func(streams ioStreams) *cobra.Command {
		o := defaultServeOptions()
		cmd := &cobra.Command{
			Use:   "serve",
			Short: "Run the admission webhook server and controllers",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if err := o.Validate(); err != nil {
					return usageError("%s", joinedOneLine(err))
				}
				cfg, err := loadServeConfig(o.ConfigFile)
				if err != nil {
					return usageError("%s", err.Error())
				}
				if err := o.mergeFlags(cmd.Flags(), cfg); err != nil {
					return usageError("%s", err.Error())
				}
				wcfg, err := o.webhookConfig(cfg)
				if err != nil {
					return usageError("%s", err.Error())
				}
				o.audit = backgroundAuditOptions(cfg, wcfg)
				if o.audit.Reports, err = o.reportOptions(); err != nil {
					return usageError("%s", err.Error())
				}
				return runServe(cmd, o, wcfg, streams)
			},
		}
		o.AddFlags(cmd.Flags())
		return cmd
	})
}

func joinedOneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

func runServe(cmd *cobra.Command, o *serveOptions, cfg webhook.Config, streams ioStreams) error {
	level, _ := parseLogLevel(o.LogLevel)
	logger := zap.New(
		zap.WriteTo(streams.ErrOut),
		zap.UseDevMode(false),
		zap.Level(level),
		func(zo *zap.Options) {
			if o.LogFormat == "console" {
				zo.Encoder = zapcore.NewConsoleEncoder(zapcore.EncoderConfig{
					TimeKey: "ts", LevelKey: "level", NameKey: "logger", MessageKey: "msg",
					EncodeTime: zapcore.ISO8601TimeEncoder, EncodeLevel: zapcore.CapitalLevelEncoder,
					EncodeDuration: zapcore.StringDurationEncoder, ConsoleSeparator: "  ",
				})
			}
		},
	)
	ctrl.SetLogger(logger)
	log := logger.WithName("serve")

	restCfg, err := o.restConfig()
	if err != nil {
		return usageError("%s", err.Error())
	}
	tlsMin, _ := parseTLSVersion(o.TLSMinVersion)
	leNamespace := o.LeaderElectionNamespace
	if leNamespace == "" {
		leNamespace = o.Namespace
	}
	// In self-managed mode the certificate comes from a Secret, which needs
	// the API server: the webhook server waits for it.
	var webhookServer crwebhook.Server = crwebhook.NewServer(crwebhook.Options{
		Port:     o.WebhookPort,
		CertDir:  o.CertDir,
		CertName: o.CertName,
		KeyName:  o.KeyName,
		TLSOpts:  webhook.TLSOptions(tlsMin),
	})
	certsReady := make(chan struct{})
	if o.CertMode == "self-managed" {
		webhookServer = &gatedWebhookServer{Server: webhookServer, open: certsReady}
	} else {
		close(certsReady)
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                  webhook.NewScheme(),
		Cache:                   webhook.CacheOptions(),
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        "netguard.netguard.io",
		LeaderElectionNamespace: leNamespace,
		// The new leader starts at once when the old one stops cleanly.
		LeaderElectionReleaseOnCancel: true,
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsBindAddress},
		HealthProbeBindAddress:        o.HealthProbeBindAddress,
		PprofBindAddress:              o.PprofBindAddress,
		WebhookServer:                 webhookServer,
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	// Nothing before mgr.Start talks to the API server, so that serve comes
	// up, not ready, when the API server is away; the steps that need it
	// run in the start-up runnable below.
	lc := newLifecycle()
	srv, err := webhook.Setup(mgr, cfg)
	if err != nil {
		return fmt.Errorf("set up webhooks: %w", err)
	}
	bootstrap, err := setupCertificates(mgr, o)
	if err != nil {
		return err
	}
	if err := webhook.SetupAudit(mgr, o.audit); err != nil {
		return fmt.Errorf("set up the background audit: %w", err)
	}
	startLog := log.WithName("start")
	policyOpts := webhook.AdmissionPolicyOptions{ExcludedNamespaces: append([]string{o.Namespace}, o.ExcludedNamespaces...)}
	// enableCELSkip lets the webhook skip what the admission policies decide
	// once they answer (webhook/celskip.go). When they do not, it keeps
	// judging every write: slower, never less safe, so serve goes on.
	enableCELSkip := func(ctx context.Context) {
		if err := webhook.EnableCELSkip(ctx, mgr.GetClient(), mgr.GetAPIReader(), &cfg, policyOpts, webhook.CELSkipOptions{}); err != nil && ctx.Err() == nil {
			startLog.Error(err, "the NetworkPolicy webhook will judge every write, including those the admission policies decide")
		}
	}
	err = mgr.Add(webhook.EveryReplica(func(ctx context.Context) error {
		if err := lc.waitForAPIServer(ctx, restCfg, mgr.GetRESTMapper(), startLog); err != nil {
			return nil // stopping
		}
		if bootstrap != nil {
			if err := lc.retry(ctx, "self-managed certificates", startLog, bootstrap); err != nil {
				return nil
			}
			close(certsReady)
		}
		// The webhook skips the writes the admission policies decide: they
		// must exist before netguard is ready (docs/admission.md).
		if err := lc.retry(ctx, "admission policies", startLog, func(ctx context.Context) error {
			return webhook.ApplyAdmissionPolicies(ctx, mgr.GetClient(), &cfg, policyOpts)
		}); err != nil {
			return nil
		}
		enableCELSkip(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if !o.DisableControllers {
			if err := srv.SetupControllers(mgr, webhook.ControllerOptions{OrphanGrace: o.OrphanGrace}); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("set up controllers: %w", err)
			}
		}
		lc.started()
		return nil
	}))
	if err != nil {
		return err
	}
	// The leader keeps the admission policies as its configuration says, and
	// the webhook's skip of what they decide: a policy deleted or edited by
	// hand, or a configuration replaced, is restored within a minute.
	// The start-up runnable has just applied both: the first pass is a
	// period later.
	err = mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		if !lc.waitStarted(ctx) {
			return nil
		}
		tick := time.NewTicker(admissionPolicyResync)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
			if err := webhook.ApplyAdmissionPolicies(ctx, mgr.GetClient(), &cfg, policyOpts); err != nil {
				if ctx.Err() == nil {
					startLog.Error(err, "could not restore the admission policies; retrying in a minute")
				}
				continue
			}
			// A configuration replaced since (kubectl replace, helm upgrade
			// --force) gets its skip back.
			enableCELSkip(ctx)
		}
	}))
	if err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("lifecycle", lc.readyCheck()); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("webhook", webhookServer.StartedChecker()); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("caches", srv.ReadyCheck()); err != nil {
		return err
	}
	log.Info("starting netguard", "version", currentVersion().Version, "webhookPort", o.WebhookPort, "certDir", o.CertDir, "configFile", o.ConfigFile,
		"enforce", cfg.Defaults.Enforce.String(), "audit", cfg.Defaults.Audit.String(), "warn", cfg.Defaults.Warn.String(), "exemptNamespaces", cfg.ExemptNamespaces,
		"shutdownDelay", o.ShutdownDelay.String())
	mgrCtx, stop := context.WithCancel(context.Background())
	defer stop()
	go lc.drain(cmd.Context(), o.ShutdownDelay, log, srv.StartDraining, stop)
	if err := mgr.Start(mgrCtx); err != nil {
		return fmt.Errorf("manager stopped: %w", err)
	}
	log.Info("netguard stopped")
	return nil
}

// setupCertificates adds the self-managed rotation, or, in cert-manager
// mode, only watches the expiry of what is on disk for the metric. In
// self-managed mode it returns the step that fills --cert-dir from the
// Secret, which needs the API server and must succeed before the webhook
// server starts.
func setupCertificates(mgr ctrl.Manager, o *serveOptions) (func(context.Context) error, error) {
	if o.CertMode != "self-managed" {
		return nil, mgr.Add(&certs.ExpiryWatcher{Dir: o.CertDir})
	}
	svc := o.WebhookServiceName + "." + o.Namespace + ".svc"
	dnsNames := []string{svc, svc + ".cluster.local"}
	var ips []net.IP
	for _, san := range o.CertExtraSANs {
		if ip := net.ParseIP(san); ip != nil {
			ips = append(ips, ip)
		} else {
			dnsNames = append(dnsNames, san)
		}
	}
	r := &certs.Rotator{
		IPAddresses:                     ips,
		SecretNamespace:                 o.Namespace,
		SecretName:                      o.CertSecretName,
		CertDir:                         o.CertDir,
		DNSNames:                        dnsNames,
		ValidatingWebhookConfigurations: []string{webhook.ValidatingConfigurationName},
		MutatingWebhookConfigurations:   []string{webhook.MutatingConfigurationName},
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("self-managed certificates: %w", err)
	}
	return r.Bootstrap, nil
}
