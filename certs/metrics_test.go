package certs

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// expirySeconds scrapes controller-runtime's registry, as /metrics does.
func expirySeconds(t *testing.T) map[string]float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "netguard_certificate_expiry_seconds" {
			continue
		}
		if f.GetType() != dto.MetricType_GAUGE {
			t.Errorf("metric type %v, want gauge", f.GetType())
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "cert" {
					out[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return out
}

func near(got, want float64) bool { return math.Abs(got-want) < 60 }

// TestWatchExpiryReportsTheCertificateOnDisk is the cert-manager mode: some
// other writer fills the directory and the metric follows it.
func TestWatchExpiryReportsTheCertificateOnDisk(t *testing.T) {
	ca := mustCA(t, 24*time.Hour)
	leaf := mustServing(t, ca, time.Hour)
	dir := t.TempDir()
	if err := WriteServingDir(dir, ca, leaf); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // one read, then return
	if err := WatchExpiry(ctx, dir); err != nil {
		t.Fatal(err)
	}
	got := expirySeconds(t)
	if !near(got["serving"], time.Hour.Seconds()) || !near(got["ca"], (24*time.Hour).Seconds()) {
		t.Errorf("netguard_certificate_expiry_seconds = %v, want serving≈3600 and ca≈86400", got)
	}

	// A newer certificate lands: the next read follows it.
	leaf2 := mustServing(t, ca, 2*time.Hour)
	if err := WriteServingDir(dir, ca, leaf2); err != nil {
		t.Fatal(err)
	}
	w := &ExpiryWatcher{Dir: dir, Interval: 10 * time.Millisecond}
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := expirySeconds(t); !near(got["serving"], (2 * time.Hour).Seconds()) {
		t.Errorf("serving expiry %v after the certificate changed, want ≈7200", got["serving"])
	}
}

// TestRotatorReportsExpiry is the self-managed mode: the replica that writes
// the directory reports what it wrote.
func TestRotatorReportsExpiry(t *testing.T) {
	c, _ := newFakeClient(webhookConfigs()...)
	r := newTestRotator(t, c, nil) // CA 30 days, leaf 7 days
	if err := r.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := expirySeconds(t)
	if !near(got["serving"], (7*24*time.Hour).Seconds()) || !near(got["ca"], (30*24*time.Hour).Seconds()) {
		t.Errorf("netguard_certificate_expiry_seconds = %v, want the 7-day leaf and 30-day CA", got)
	}
}

func TestExpiryGoesNegativeOnceExpired(t *testing.T) {
	c := &expiryCollector{notAfter: map[string]time.Time{}, now: time.Now}
	leaf := mustServing(t, mustCA(t, time.Hour), time.Hour)
	c.observe(leaf.Cert, nil)
	c.now = func() time.Time { return leaf.Cert.NotAfter.Add(time.Minute) }
	ch := make(chan prometheus.Metric, 4)
	go func() { c.Collect(ch); close(ch) }()
	var n int
	for m := range ch {
		var out dto.Metric
		if err := m.Write(&out); err != nil {
			t.Fatal(err)
		}
		if v := out.GetGauge().GetValue(); v != -60 {
			t.Errorf("expiry one minute after NotAfter = %v, want -60", v)
		}
		n++
	}
	if n != 1 {
		t.Errorf("%d series before any CA was seen, want only serving", n)
	}
}
