package certs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// Defaults for the Rotator. The CA and leaf lifetimes are those of
// cert-manager's own webhook (pkg/server/tls/authority).
const (
	DefaultCACommonName       = "netguard-ca"
	DefaultCAValidity         = 365 * 24 * time.Hour
	DefaultServingValidity    = 7 * 24 * time.Hour
	DefaultRenewBefore        = 1.0 / 3
	DefaultCheckInterval      = time.Minute
	DefaultSyncInterval       = 30 * time.Second
	DefaultCAPropagationDelay = time.Minute
)

// Rotator keeps netguard's CA and serving certificate in a Secret, injects
// the CA bundle into netguard's webhook configurations, and rotates both
// certificates before they expire. It is netguard's "without cert-manager"
// mode.
//
// It runs as two manager runnables: the Rotator itself, on the leader only,
// creates and rotates the Secret and patches caBundle; DirSyncer, on every
// replica, copies the Secret to CertDir, where controller-runtime's
// certwatcher picks it up without a restart. Call SetupWithManager, then
// Bootstrap, then start the manager: the webhook server reads CertDir as it
// starts, before any runnable has run.
//
// Fields are read once, on first use; do not change them after that.
type Rotator struct {
	// Client writes the Secret and the webhook configurations.
	Client client.Client
	// Reader reads them. Use the manager's API reader (the default in
	// SetupWithManager): a cached client would watch every Secret in the
	// cluster to serve one.
	Reader client.Reader

	SecretNamespace, SecretName string
	// CertDir is the webhook server's certificate directory; it gets
	// tls.crt, tls.key and ca.crt.
	CertDir string
	// DNSNames and IPAddresses go into the serving certificate, typically
	// the webhook Service's names "<svc>.<ns>.svc" and "<svc>.<ns>.svc.cluster.local".
	DNSNames    []string
	IPAddresses []net.IP
	// Names of the ValidatingWebhookConfiguration and
	// MutatingWebhookConfiguration objects whose webhooks all get caBundle.
	ValidatingWebhookConfigurations []string
	MutatingWebhookConfigurations   []string

	CACommonName    string
	CAValidity      time.Duration
	ServingValidity time.Duration
	// RenewBefore is the fraction of a certificate's lifetime that may
	// remain before it is renewed, in (0, 1); DefaultRenewBefore when zero.
	RenewBefore float64
	// CheckInterval is how often the leader checks the Secret and caBundle.
	CheckInterval time.Duration
	// SyncInterval is how often each replica reads the Secret into CertDir.
	SyncInterval time.Duration
	// CAPropagationDelay is how long a new CA sits in the caBundle before
	// the leaf moves to it, so API servers trust it by then.
	CAPropagationDelay time.Duration

	once    sync.Once
	initErr error
	nudge   chan struct{} // the leader tells this replica's DirSyncer the Secret changed
	dirMu   sync.Mutex
	now     func() time.Time
}

func (r *Rotator) init() error {
	r.once.Do(func() {
		if r.Reader == nil && r.Client != nil {
			r.Reader = r.Client
		}
		if r.CACommonName == "" {
			r.CACommonName = DefaultCACommonName
		}
		setDefault(&r.CAValidity, DefaultCAValidity)
		setDefault(&r.ServingValidity, DefaultServingValidity)
		setDefault(&r.CheckInterval, DefaultCheckInterval)
		setDefault(&r.SyncInterval, DefaultSyncInterval)
		setDefault(&r.CAPropagationDelay, DefaultCAPropagationDelay)
		if r.RenewBefore == 0 {
			r.RenewBefore = DefaultRenewBefore
		}
		if r.now == nil {
			r.now = time.Now
		}
		r.nudge = make(chan struct{}, 1)
		r.initErr = r.validate()
	})
	return r.initErr
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

func (r *Rotator) validate() error {
	var errs []error
	if r.Client == nil {
		errs = append(errs, errors.New("rotator: Client is nil; call SetupWithManager or set it"))
	}
	if r.SecretNamespace == "" || r.SecretName == "" {
		errs = append(errs, fmt.Errorf("rotator: Secret %q is incomplete; set both SecretNamespace and SecretName", r.secretKey()))
	}
	if r.CertDir == "" {
		errs = append(errs, errors.New("rotator: CertDir is empty; set it to the webhook server's certificate directory"))
	}
	if len(r.DNSNames) == 0 && len(r.IPAddresses) == 0 {
		errs = append(errs, errors.New("rotator: no DNSNames or IPAddresses; add the webhook Service's DNS names"))
	}
	if r.RenewBefore <= 0 || r.RenewBefore >= 1 {
		errs = append(errs, fmt.Errorf("rotator: RenewBefore is %v; it must be a fraction between 0 and 1, such as 0.33", r.RenewBefore))
	}
	for name, d := range map[string]time.Duration{"CAValidity": r.CAValidity, "ServingValidity": r.ServingValidity, "CheckInterval": r.CheckInterval, "SyncInterval": r.SyncInterval, "CAPropagationDelay": r.CAPropagationDelay} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("rotator: %s is %s; it must be positive", name, d))
		}
	}
	if r.ServingValidity >= r.CAValidity {
		errs = append(errs, fmt.Errorf("rotator: ServingValidity %s is not shorter than CAValidity %s; the CA must outlive the certificates it signs", r.ServingValidity, r.CAValidity))
	}
	return errors.Join(errs...)
}

func (r *Rotator) secretKey() types.NamespacedName {
	return types.NamespacedName{Namespace: r.SecretNamespace, Name: r.SecretName}
}

func (r *Rotator) policy() issuePolicy {
	return issuePolicy{
		caName:           r.CACommonName,
		caValidity:       r.CAValidity,
		servingValidity:  r.ServingValidity,
		renewBefore:      r.RenewBefore,
		propagationDelay: r.CAPropagationDelay,
		dnsNames:         r.DNSNames,
		ips:              r.IPAddresses,
	}
}

// SetupWithManager fills Client and Reader from mgr when unset and adds the
// Rotator (leader only) and its DirSyncer (every replica) to mgr.
func (r *Rotator) SetupWithManager(mgr manager.Manager) error {
	if r.Client == nil {
		r.Client = mgr.GetClient()
	}
	if r.Reader == nil {
		r.Reader = mgr.GetAPIReader()
	}
	if err := r.init(); err != nil {
		return err
	}
	if err := mgr.Add(r); err != nil {
		return err
	}
	return mgr.Add(r.DirSyncer())
}

// Bootstrap fills CertDir from the Secret so the webhook server can start.
// If the Secret is missing or unusable it makes a new one; replicas racing to
// do so are kept apart by the API server's optimistic concurrency, and the
// leader takes over from there.
func (r *Rotator) Bootstrap(ctx context.Context) error {
	if err := r.init(); err != nil {
		return err
	}
	err := retry.OnError(retry.DefaultBackoff, func(err error) bool {
		return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)
	}, func() error {
		now := r.now()
		s, st, err := r.load(ctx, now)
		if err != nil {
			return err
		}
		if st == nil {
			next, _, err := r.policy().plan(nil, "", now)
			if err != nil {
				return err
			}
			if err := r.store(ctx, s, next); err != nil {
				return err
			}
			logf.FromContext(ctx).Info("created certificate Secret", "secret", r.secretKey().String())
			st = next
		}
		return r.writeDir(st)
	})
	if err != nil {
		return fmt.Errorf("bootstrap serving certificate from Secret %q: %w", r.secretKey(), err)
	}
	return nil
}

// Start runs the leader's loop until ctx is done. Failures are logged and
// retried on the next check: a missed rotation is not worth stopping the
// webhook for, and certificates are renewed well before they expire.
func (r *Rotator) Start(ctx context.Context) error {
	if err := r.init(); err != nil {
		return err
	}
	log := logf.FromContext(ctx).WithName("cert-rotator").WithValues("secret", r.secretKey().String())
	ctx = logf.IntoContext(ctx, log)
	// A failed check (a conflict, an API server under load) is retried soon,
	// with backoff up to the check interval: a missing caBundle blocks the
	// fail-closed webhook until it is fixed.
	newBackoff := func() wait.Backoff {
		return wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.1, Steps: math.MaxInt32, Cap: r.CheckInterval}
	}
	backoff := newBackoff()
	for {
		next := r.CheckInterval
		if err := r.rotate(ctx); err != nil {
			next = backoff.Step()
			log.Error(err, "certificate rotation check failed; retrying", "after", next.Round(time.Millisecond))
		} else {
			backoff = newBackoff()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(next):
		}
	}
}

// NeedLeaderElection is true: one writer for the Secret and caBundle.
func (r *Rotator) NeedLeaderElection() bool { return true }

// rotate is one leader check: repair or renew the Secret as needed, then make
// every webhook's caBundle match it.
func (r *Rotator) rotate(ctx context.Context) error {
	if err := r.init(); err != nil {
		return err
	}
	log := logf.FromContext(ctx)
	now := r.now()
	s, st, err := r.load(ctx, now)
	if err != nil {
		return err
	}
	var force string
	if s != nil {
		force = s.Annotations[RotateAnnotation]
	}
	switch force {
	case "", RotateServing, RotateCA:
	default:
		log.Info("ignoring unknown rotation request; removing it", "annotation", RotateAnnotation, "value", force, "want", []string{RotateServing, RotateCA})
	}
	next, reasons, err := r.policy().plan(st, force, now)
	if err != nil {
		return err
	}
	if len(reasons) > 0 || force != "" {
		if err := r.store(ctx, s, next); err != nil {
			return err
		}
		if len(reasons) > 0 {
			log.Info("updated certificate Secret", "reasons", reasons, "servingNotAfter", next.serving.Cert.NotAfter, "caNotAfter", next.ca.Cert.NotAfter, "bundledCAs", len(next.bundle))
		}
		select {
		case r.nudge <- struct{}{}:
		default:
		}
	}
	return r.injectCABundle(ctx, EncodeCertificates(next.bundle...))
}

// load reads the Secret. It returns a nil Secret when there is none, and a
// nil state when there is none or its content is unusable; an unusable
// Secret is logged and never used.
func (r *Rotator) load(ctx context.Context, now time.Time) (*corev1.Secret, *secretState, error) {
	s := &corev1.Secret{}
	if err := r.Reader.Get(ctx, r.secretKey(), s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("read Secret %q: %w", r.secretKey(), err)
	}
	st, err := parseSecret(s, now)
	if err != nil {
		logf.FromContext(ctx).Error(err, "certificate Secret is unusable; replacing it with a new CA and serving certificate, and not using its content", "secret", r.secretKey().String())
		return s, nil, nil
	}
	return s, st, nil
}

// store writes st to the Secret, creating it when cur is nil. An update
// carries cur's resourceVersion, so a concurrent writer makes it fail with a
// conflict instead of being overwritten. It clears RotateAnnotation.
func (r *Rotator) store(ctx context.Context, cur *corev1.Secret, st *secretState) error {
	if cur == nil {
		s := &corev1.Secret{
			Type: corev1.SecretTypeTLS,
			Data: st.data(),
		}
		s.Namespace, s.Name = r.SecretNamespace, r.SecretName
		s.Labels = map[string]string{"app.kubernetes.io/managed-by": "netguard"}
		s.Annotations = map[string]string{CARotatedAtAnnotation: st.caRotatedAt.UTC().Format(time.RFC3339)}
		if err := r.Client.Create(ctx, s); err != nil {
			return fmt.Errorf("create Secret %q: %w", r.secretKey(), err)
		}
		return nil
	}
	s := cur.DeepCopy()
	s.Data = st.data()
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	delete(s.Annotations, RotateAnnotation)
	s.Annotations[CARotatedAtAnnotation] = st.caRotatedAt.UTC().Format(time.RFC3339)
	if err := r.Client.Update(ctx, s); err != nil {
		return fmt.Errorf("update Secret %q: %w", r.secretKey(), err)
	}
	return nil
}

// injectCABundle sets caBundle on every webhook of the configured
// configurations, patching only those that differ. A configuration that does
// not exist yet is logged and retried on the next check.
func (r *Rotator) injectCABundle(ctx context.Context, bundle []byte) error {
	var errs []error
	for _, name := range r.ValidatingWebhookConfigurations {
		obj := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		errs = append(errs, r.patchCABundle(ctx, "ValidatingWebhookConfiguration", name, obj, func() bool {
			changed := false
			for i := range obj.Webhooks {
				changed = setBundle(&obj.Webhooks[i].ClientConfig, bundle) || changed
			}
			return changed
		}))
	}
	for _, name := range r.MutatingWebhookConfigurations {
		obj := &admissionregistrationv1.MutatingWebhookConfiguration{}
		errs = append(errs, r.patchCABundle(ctx, "MutatingWebhookConfiguration", name, obj, func() bool {
			changed := false
			for i := range obj.Webhooks {
				changed = setBundle(&obj.Webhooks[i].ClientConfig, bundle) || changed
			}
			return changed
		}))
	}
	return errors.Join(errs...)
}

func setBundle(cc *admissionregistrationv1.WebhookClientConfig, bundle []byte) bool {
	if bytes.Equal(cc.CABundle, bundle) {
		return false
	}
	cc.CABundle = bundle
	return true
}

func (r *Rotator) patchCABundle(ctx context.Context, kind, name string, obj client.Object, set func() bool) error {
	if err := r.Reader.Get(ctx, client.ObjectKey{Name: name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			logf.FromContext(ctx).Info("webhook configuration not found; will inject caBundle once it exists", "kind", kind, "name", name)
			return nil
		}
		return fmt.Errorf("read %s %q: %w", kind, name, err)
	}
	orig := obj.DeepCopyObject().(client.Object)
	if !set() {
		return nil
	}
	// The optimistic lock makes a concurrent edit (a Helm upgrade, say) fail
	// this patch rather than be overwritten by our copy of the webhook list.
	if err := r.Client.Patch(ctx, obj, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("patch caBundle of %s %q: %w", kind, name, err)
	}
	logf.FromContext(ctx).Info("injected caBundle", "kind", kind, "name", name)
	return nil
}

// DirSyncer returns the runnable that copies the Secret into CertDir on
// every replica, at SyncInterval and whenever this replica's leader changed
// the Secret.
func (r *Rotator) DirSyncer() manager.Runnable { return dirSyncer{r} }

type dirSyncer struct{ r *Rotator }

func (d dirSyncer) NeedLeaderElection() bool { return false }

func (d dirSyncer) Start(ctx context.Context) error {
	r := d.r
	if err := r.init(); err != nil {
		return err
	}
	log := logf.FromContext(ctx).WithName("cert-dir-sync").WithValues("secret", r.secretKey().String(), "dir", r.CertDir)
	ctx = logf.IntoContext(ctx, log)
	t := time.NewTicker(r.SyncInterval)
	defer t.Stop()
	for {
		if err := r.syncDir(ctx); err != nil {
			log.Error(err, "cannot update the serving certificate directory; keeping the current files")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-r.nudge:
		}
	}
}

// syncDir copies a usable Secret into CertDir. It never writes an unusable
// one: the files on disk stay as they were until the leader repairs it.
func (r *Rotator) syncDir(ctx context.Context) error {
	if err := r.init(); err != nil {
		return err
	}
	s := &corev1.Secret{}
	if err := r.Reader.Get(ctx, r.secretKey(), s); err != nil {
		if apierrors.IsNotFound(err) {
			logf.FromContext(ctx).V(1).Info("certificate Secret does not exist yet; waiting for the leader to create it")
			return nil
		}
		return fmt.Errorf("read Secret %q: %w", r.secretKey(), err)
	}
	st, err := parseSecret(s, r.now())
	if err != nil {
		return fmt.Errorf("not copying Secret %q to %q: %w", r.secretKey(), r.CertDir, err)
	}
	return r.writeDir(st)
}

// writeDir writes st to CertDir unless the files already hold it, so an
// unchanged Secret never wakes certwatcher.
func (r *Rotator) writeDir(st *secretState) error {
	r.dirMu.Lock()
	defer r.dirMu.Unlock()
	caPEM := EncodeCertificates(st.bundle...)
	want := map[string][]byte{CAFile: caPEM, CertFile: st.serving.CertPEM, KeyFile: st.serving.KeyPEM}
	same := true
	for name, data := range want {
		if have, err := os.ReadFile(filepath.Join(r.CertDir, name)); err != nil || !bytes.Equal(have, data) {
			same = false
			break
		}
	}
	if !same {
		if err := writeServingFiles(r.CertDir, caPEM, st.serving.CertPEM, st.serving.KeyPEM); err != nil {
			return err
		}
	}
	expiry.observe(st.serving.Cert, st.bundle)
	return nil
}
