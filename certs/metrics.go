package certs

import (
	"context"
	"crypto/x509"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// expiryDesc is netguard_certificate_expiry_seconds. The value is computed
// at scrape time from the certificate's NotAfter, so it never goes stale
// between observations and turns negative once the certificate has expired.
var expiryDesc = prometheus.NewDesc(
	"netguard_certificate_expiry_seconds",
	"Seconds until the certificate netguard serves its webhooks with (cert=\"serving\") or the CA that signed it (cert=\"ca\") expires.",
	[]string{"cert"}, nil,
)

// expiryCollector holds the NotAfter of the certificates last observed.
type expiryCollector struct {
	mu       sync.Mutex
	notAfter map[string]time.Time
	now      func() time.Time
}

var expiry = &expiryCollector{notAfter: map[string]time.Time{}, now: time.Now}

func init() {
	metrics.Registry.MustRegister(expiry)
}

func (c *expiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- expiryDesc }

func (c *expiryCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for label, notAfter := range c.notAfter {
		ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, notAfter.Sub(now).Seconds(), label)
	}
}

// observe records the serving leaf and the CA in bundle that signed it. With
// no signer in bundle there is no "ca" series: a stale one would mislead.
func (c *expiryCollector) observe(serving *x509.Certificate, bundle []*x509.Certificate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notAfter["serving"] = serving.NotAfter
	if ca := issuerOf(serving, bundle); ca != nil {
		c.notAfter["ca"] = ca.NotAfter
	} else {
		delete(c.notAfter, "ca")
	}
}

// observeDir records the certificates in a serving directory.
func (c *expiryCollector) observeDir(dir string) error {
	serving, err := LoadKeyPairFromDir(dir)
	if err != nil {
		return err
	}
	var bundle []*x509.Certificate
	if caPEM, err := LoadCABundleFromDir(dir); err == nil {
		bundle, _ = ParseCertificates(caPEM)
	}
	c.observe(serving.Cert, bundle)
	return nil
}

// ExpiryWatcher keeps netguard_certificate_expiry_seconds in step with the
// certificate in Dir, whoever writes it: cert-manager through a mounted
// Secret, or the Rotator. It runs on every replica.
type ExpiryWatcher struct {
	Dir string
	// Interval between reads of Dir; one minute when zero.
	Interval time.Duration
}

// WatchExpiry runs an ExpiryWatcher on dir until ctx is done.
func WatchExpiry(ctx context.Context, dir string) error {
	return (&ExpiryWatcher{Dir: dir}).Start(ctx)
}

// Start reads Dir now and then every Interval until ctx is done. A read that
// fails is logged and the last observation kept: certwatcher keeps serving
// the last good certificate too.
func (w *ExpiryWatcher) Start(ctx context.Context) error {
	log := logf.FromContext(ctx).WithName("cert-expiry").WithValues("dir", w.Dir)
	interval := w.Interval
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := expiry.observeDir(w.Dir); err != nil {
			log.Error(err, "cannot read the serving certificate for the expiry metric")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// NeedLeaderElection is false: every replica serves, so every replica reports.
func (w *ExpiryWatcher) NeedLeaderElection() bool { return false }
