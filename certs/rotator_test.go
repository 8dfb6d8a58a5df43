package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

const (
	testNamespace = "netguard-system"
	testSecret    = "netguard-webhook-tls"
	testVWC       = "netguard"
	testMWC       = "netguard-defaults"
)

var secretKey = client.ObjectKey{Namespace: testNamespace, Name: testSecret}

func webhookConfigs() []client.Object {
	return []client.Object{
		&admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: testVWC},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{
				{Name: "networkpolicies.netguard.io"},
				{Name: "networkprofiles.netguard.io"},
			},
		},
		&admissionregistrationv1.MutatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: testMWC},
			Webhooks:   []admissionregistrationv1.MutatingWebhook{{Name: "workloads.netguard.io"}},
		},
	}
}

// calls counts writes per kind and verb, as "Patch ValidatingWebhookConfiguration".
type calls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) add(verb string, obj client.Object) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[verb+" "+fmt.Sprintf("%T", obj)[len("*v1."):]]++
}

func (c *calls) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

func (c *calls) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.n {
		n += v
	}
	return n
}

func newFakeClient(objs ...client.Object) (client.WithWatch, *calls) {
	cs := &calls{n: map[string]int{}}
	c := fake.NewClientBuilder().WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			cs.add("Create", obj)
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			cs.add("Update", obj)
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			cs.add("Patch", obj)
			return c.Patch(ctx, obj, patch, opts...)
		},
	}).Build()
	return c, cs
}

// clock is a settable time source for the Rotator.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestRotator(t *testing.T, c client.Client, clk *clock) *Rotator {
	t.Helper()
	r := &Rotator{
		Client:                          c,
		SecretNamespace:                 testNamespace,
		SecretName:                      testSecret,
		CertDir:                         filepath.Join(t.TempDir(), "certs"),
		DNSNames:                        []string{"netguard.netguard-system.svc", "localhost"},
		IPAddresses:                     []net.IP{net.ParseIP("127.0.0.1")},
		ValidatingWebhookConfigurations: []string{testVWC},
		MutatingWebhookConfigurations:   []string{testMWC},
		CAValidity:                      30 * 24 * time.Hour,
		ServingValidity:                 7 * 24 * time.Hour,
	}
	if clk != nil {
		r.now = clk.now
	}
	return r
}

// logBuffer captures what the code under test logs.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *logBuffer) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.lines = append(b.lines, prefix+" "+args)
	}, funcr.Options{Verbosity: 1})
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

func getSecret(t *testing.T, c client.Client) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	if err := c.Get(context.Background(), secretKey, s); err != nil {
		t.Fatalf("get Secret: %v", err)
	}
	return s
}

func mustParse(t *testing.T, s *corev1.Secret, now time.Time) *secretState {
	t.Helper()
	st, err := parseSecret(s, now)
	if err != nil {
		t.Fatalf("Secret does not parse: %v", err)
	}
	return st
}

// caBundles returns the caBundle of every webhook in the test configurations.
func caBundles(t *testing.T, c client.Client) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Name: testVWC}, vwc); err != nil {
		t.Fatal(err)
	}
	for _, w := range vwc.Webhooks {
		out[w.Name] = w.ClientConfig.CABundle
	}
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Name: testMWC}, mwc); err != nil {
		t.Fatal(err)
	}
	for _, w := range mwc.Webhooks {
		out[w.Name] = w.ClientConfig.CABundle
	}
	return out
}

func assertBundlesEverywhere(t *testing.T, c client.Client, want []byte) {
	t.Helper()
	for name, got := range caBundles(t, c) {
		if !bytes.Equal(got, want) {
			t.Errorf("webhook %q caBundle holds %d bytes, want the Secret's ca.crt (%d bytes)", name, len(got), len(want))
		}
	}
}

func annotate(t *testing.T, c client.Client, value string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s := &corev1.Secret{}
		if err := c.Get(context.Background(), secretKey, s); err != nil {
			return err
		}
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[RotateAnnotation] = value
		return c.Update(context.Background(), s)
	})
	if err != nil {
		t.Fatalf("annotate Secret: %v", err)
	}
}

func TestRotatorCreatesSecretWhenMissing(t *testing.T) {
	c, _ := newFakeClient(webhookConfigs()...)
	clk := &clock{t: time.Now()}
	r := newTestRotator(t, c, clk)
	if err := r.rotate(context.Background()); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	s := getSecret(t, c)
	if s.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret type %q, want %q", s.Type, corev1.SecretTypeTLS)
	}
	st := mustParse(t, s, clk.now())
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(s.Data[SecretCACertKey])
	for _, name := range []string{"netguard.netguard-system.svc", "localhost", "127.0.0.1"} {
		if _, err := st.serving.Cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("serving certificate does not verify for %q against ca.crt: %v", name, err)
		}
	}
	assertBundlesEverywhere(t, c, s.Data[SecretCACertKey])
}

func TestBootstrapFillsCertDir(t *testing.T) {
	c, _ := newFakeClient(webhookConfigs()...)
	r := newTestRotator(t, c, nil)
	if err := r.Bootstrap(context.Background()); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	s := getSecret(t, c)
	got, err := LoadKeyPairFromDir(r.CertDir)
	if err != nil {
		t.Fatalf("LoadKeyPairFromDir: %v", err)
	}
	if !bytes.Equal(got.CertPEM, s.Data[SecretCertKey]) {
		t.Error("CertDir does not hold the Secret's tls.crt")
	}
	if bundle, _ := LoadCABundleFromDir(r.CertDir); !bytes.Equal(bundle, s.Data[SecretCACertKey]) {
		t.Error("CertDir does not hold the Secret's ca.crt")
	}
	if bytes.Contains(readAll(t, r.CertDir), s.Data[SecretCAKeyKey]) {
		t.Error("the CA key was written to CertDir")
	}
}

func TestRotatorReusesValidSecret(t *testing.T) {
	c, cs := newFakeClient(webhookConfigs()...)
	first := newTestRotator(t, c, nil)
	if err := first.rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := getSecret(t, c)
	writes := cs.total()

	// A new replica, or the next leader, with the same settings.
	r := newTestRotator(t, c, nil)
	ctx := context.Background()
	if err := r.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := r.rotate(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.syncDir(ctx); err != nil {
			t.Fatal(err)
		}
	}
	after := getSecret(t, c)
	if after.ResourceVersion != before.ResourceVersion || !equalData(after.Data, before.Data) {
		t.Error("a valid Secret was rewritten")
	}
	if n := cs.total() - writes; n != 0 {
		t.Errorf("%d API writes for a valid Secret and caBundle, want none", n)
	}
	got, err := LoadKeyPairFromDir(r.CertDir)
	if err != nil || !bytes.Equal(got.CertPEM, before.Data[SecretCertKey]) {
		t.Errorf("CertDir does not hold the existing serving certificate (err %v)", err)
	}
}

func TestRotatorRenewsLeafNearExpiry(t *testing.T) {
	c, _ := newFakeClient(webhookConfigs()...)
	clk := &clock{t: time.Now()}
	r := newTestRotator(t, c, clk)
	ctx := context.Background()
	if err := r.rotate(ctx); err != nil {
		t.Fatal(err)
	}
	orig := getSecret(t, c)

	// 7-day leaf, renewed when less than a third remains: not yet at 4 days.
	clk.add(4 * 24 * time.Hour)
	if err := r.rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if s := getSecret(t, c); s.ResourceVersion != orig.ResourceVersion {
		t.Fatal("leaf renewed with more than a third of its lifetime left")
	}

	clk.add(24 * time.Hour)
	if err := r.rotate(ctx); err != nil {
		t.Fatal(err)
	}
	s := getSecret(t, c)
	if bytes.Equal(s.Data[SecretCertKey], orig.Data[SecretCertKey]) || bytes.Equal(s.Data[SecretKeyKey], orig.Data[SecretKeyKey]) {
		t.Fatal("leaf and key not renewed with less than a third of the lifetime left")
	}
	for _, k := range []string{SecretCACertKey, SecretCAKeyKey} {
		if !bytes.Equal(s.Data[k], orig.Data[k]) {
			t.Errorf("%q changed on a leaf renewal", k)
		}
	}
	st := mustParse(t, s, clk.now())
	if left := st.serving.Cert.NotAfter.Sub(clk.now()); left < 6*24*time.Hour {
		t.Errorf("renewed leaf has %s left, want a fresh 7 days", left)
	}
}

func TestRotatorCARotationKeepsBothCAs(t *testing.T) {
	c, _ := newFakeClient(webhookConfigs()...)
	t0 := time.Now()
	clk := &clock{t: t0}
	r := newTestRotator(t, c, clk) // CA 30 days, leaf 7 days
	ctx := context.Background()
	step := func(d time.Duration) *secretState {
		t.Helper()
		clk.add(d)
		if err := r.rotate(ctx); err != nil {
			t.Fatal(err)
		}
		s := getSecret(t, c)
		assertBundlesEverywhere(t, c, s.Data[SecretCACertKey])
		return mustParse(t, s, clk.now())
	}
	st0 := step(0)
	ca1 := st0.ca.Cert
	st := step(19 * 24 * time.Hour) // leaf renewed by CA1; CA1 has 11 days left
	if !st.ca.Cert.Equal(ca1) {
		t.Fatal("CA rotated with more than a third of its lifetime left")
	}
	leaf1 := st.serving.Cert

	st = step(2 * 24 * time.Hour) // CA1 has 9 of 30 days left: rotate
	ca2 := st.ca.Cert
	if ca2.Equal(ca1) {
		t.Fatal("CA not rotated with less than a third of its lifetime left")
	}
	if len(st.bundle) != 2 || !st.bundle[0].Equal(ca2) || !st.bundle[1].Equal(ca1) {
		t.Fatalf("bundle during CA rotation has %d CAs, want the new CA then the old one", len(st.bundle))
	}
	if !st.serving.Cert.Equal(leaf1) {
		t.Fatal("leaf replaced in the same step as the CA; API servers may not trust the new CA yet")
	}
	// A client holding the bundle trusts the leaf still served by every replica.
	verifyAgainst(t, leaf1, st.bundle, clk.now())

	st = step(30 * time.Second) // within CAPropagationDelay
	if !st.serving.Cert.Equal(leaf1) {
		t.Fatal("leaf moved to the new CA before CAPropagationDelay passed")
	}
	st = step(time.Minute)
	if issuerOf(st.serving.Cert, st.bundle) == nil || !issuerOf(st.serving.Cert, st.bundle).Equal(ca2) {
		t.Fatal("leaf did not move to the new CA after CAPropagationDelay")
	}
	if len(st.bundle) != 2 {
		t.Fatalf("old CA left the bundle before it expired (%d CAs)", len(st.bundle))
	}
	verifyAgainst(t, st.serving.Cert, st.bundle, clk.now())
	verifyAgainst(t, leaf1, st.bundle, clk.now())

	clk.t = t0.Add(30*24*time.Hour + time.Hour) // CA1 has expired
	st = step(0)
	if len(st.bundle) != 1 || !st.bundle[0].Equal(ca2) {
		t.Fatalf("bundle after the old CA expired has %d CAs, want only the new one", len(st.bundle))
	}
}

func verifyAgainst(t *testing.T, leaf *x509.Certificate, bundle []*x509.Certificate, now time.Time) {
	t.Helper()
	roots := x509.NewCertPool()
	for _, c := range bundle {
		roots.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: roots, CurrentTime: now}); err != nil {
		t.Errorf("leaf %s does not verify against the bundle: %v", leaf.SerialNumber, err)
	}
}

func TestRotatorForcedRotation(t *testing.T) {
	c, _ := newFakeClient(webhookConfigs()...)
	r := newTestRotator(t, c, nil)
	ctx := context.Background()
	if err := r.rotate(ctx); err != nil {
		t.Fatal(err)
	}
	orig := mustParse(t, getSecret(t, c), time.Now())

	annotate(t, c, RotateServing)
	if err := r.rotate(ctx); err != nil {
		t.Fatal(err)
	}
	s := getSecret(t, c)
	st := mustParse(t, s, time.Now())
	if st.serving.Cert.Equal(orig.serving.Cert) || !st.ca.Cert.Equal(orig.ca.Cert) {
		t.Error(`rotate=serving did not replace just the leaf`)
	}
	if _, ok := s.Annotations[RotateAnnotation]; ok {
		t.Error("rotation request left on the Secret")
	}

	annotate(t, c, RotateCA)
	if err := r.rotate(ctx); err != nil {
		t.Fatal(err)
	}
	st2 := mustParse(t, getSecret(t, c), time.Now())
	if st2.ca.Cert.Equal(orig.ca.Cert) || len(st2.bundle) != 2 || !st2.serving.Cert.Equal(st.serving.Cert) {
		t.Error("rotate=ca did not start a CA rotation that keeps the old CA and leaf")
	}

	annotate(t, c, "everything")
	before := getSecret(t, c)
	if err := r.rotate(ctx); err != nil {
		t.Fatal(err)
	}
	s = getSecret(t, c)
	if _, ok := s.Annotations[RotateAnnotation]; ok {
		t.Error("an unknown rotation request was left on the Secret")
	}
	if !equalData(s.Data, before.Data) {
		t.Error("an unknown rotation request changed the certificates")
	}
}

func TestRotatorPatchesCABundleOnlyWhenChanged(t *testing.T) {
	c, cs := newFakeClient(webhookConfigs()...)
	r := newTestRotator(t, c, nil)
	r.ValidatingWebhookConfigurations = append(r.ValidatingWebhookConfigurations, "not-installed-yet")
	ctx := context.Background()
	if err := r.rotate(ctx); err != nil {
		t.Fatalf("rotate with a missing webhook configuration: %v", err)
	}
	if v, m := cs.get("Patch ValidatingWebhookConfiguration"), cs.get("Patch MutatingWebhookConfiguration"); v != 1 || m != 1 {
		t.Fatalf("first injection patched validating %d and mutating %d times, want once each", v, m)
	}
	if err := r.rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if v, m := cs.get("Patch ValidatingWebhookConfiguration"), cs.get("Patch MutatingWebhookConfiguration"); v != 1 || m != 1 {
		t.Errorf("caBundle patched again although unchanged (validating %d, mutating %d)", v, m)
	}

	// Someone resets one webhook's caBundle: only that configuration is patched.
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Name: testVWC}, vwc); err != nil {
		t.Fatal(err)
	}
	vwc.Webhooks[1].ClientConfig.CABundle = []byte("stale")
	if err := c.Update(ctx, vwc); err != nil {
		t.Fatal(err)
	}
	if err := r.rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if v, m := cs.get("Patch ValidatingWebhookConfiguration"), cs.get("Patch MutatingWebhookConfiguration"); v != 2 || m != 1 {
		t.Errorf("after one stale caBundle: validating %d, mutating %d patches, want 2 and 1", v, m)
	}
	assertBundlesEverywhere(t, c, getSecret(t, c).Data[SecretCACertKey])
}

func TestRotatorReplacesUnusableSecret(t *testing.T) {
	good, _, err := (issuePolicy{caName: "good", caValidity: 30 * 24 * time.Hour, servingValidity: time.Hour, renewBefore: DefaultRenewBefore, dnsNames: []string{"localhost"}}).plan(nil, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	foreignCA := mustCA(t, time.Hour)
	foreignLeaf := mustServing(t, foreignCA, time.Hour)
	expiredCA, err := newCA("expired", time.Now().Add(-48*time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(map[string][]byte)
		reason string
	}{
		{"ca.crt is not PEM", func(d map[string][]byte) { d[SecretCACertKey] = []byte("not a certificate") }, "no PEM"},
		{"ca.key belongs to another CA", func(d map[string][]byte) { d[SecretCAKeyKey] = foreignCA.KeyPEM }, "does not match"},
		{"tls.key does not match tls.crt", func(d map[string][]byte) { d[SecretKeyKey] = foreignLeaf.KeyPEM }, "does not match"},
		{"leaf from a foreign CA", func(d map[string][]byte) { d[SecretCertKey], d[SecretKeyKey] = foreignLeaf.CertPEM, foreignLeaf.KeyPEM }, "not signed by any CA"},
		{"ca.crt holds a leaf", func(d map[string][]byte) { d[SecretCACertKey] = good.serving.CertPEM }, "is not a CA"},
		{"tls.key missing", func(d map[string][]byte) { delete(d, SecretKeyKey) }, "is missing"},
		{"current CA expired", func(d map[string][]byte) {
			d[SecretCACertKey], d[SecretCAKeyKey] = expiredCA.CertPEM, expiredCA.KeyPEM
		}, "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := good.data()
			tt.mutate(data)
			corrupt := &corev1.Secret{Data: data, Type: corev1.SecretTypeOpaque}
			corrupt.Namespace, corrupt.Name = testNamespace, testSecret
			c, _ := newFakeClient(append(webhookConfigs(), corrupt)...)
			r := newTestRotator(t, c, nil)
			var logs logBuffer
			ctx := logf.IntoContext(context.Background(), logs.logger())

			// A replica never copies it to disk.
			if err := r.syncDir(ctx); err == nil || !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("syncDir error = %v, want one saying %q", err, tt.reason)
			}
			if _, err := os.Stat(r.CertDir); !os.IsNotExist(err) {
				t.Error("syncDir wrote an unusable Secret to CertDir")
			}

			// The leader replaces it, with a warning naming the Secret and why.
			if err := r.rotate(ctx); err != nil {
				t.Fatal(err)
			}
			if l := logs.String(); !strings.Contains(l, "unusable") || !strings.Contains(l, testSecret) || !strings.Contains(l, tt.reason) {
				t.Errorf("no warning naming the Secret and %q; logs:\n%s", tt.reason, l)
			}
			s := getSecret(t, c)
			st := mustParse(t, s, time.Now())
			for k, v := range data {
				if bytes.Equal(s.Data[k], v) {
					t.Errorf("%q kept from the unusable Secret", k)
				}
			}
			assertBundlesEverywhere(t, c, s.Data[SecretCACertKey])
			if err := r.syncDir(ctx); err != nil {
				t.Fatal(err)
			}
			got, err := LoadKeyPairFromDir(r.CertDir)
			if err != nil || !got.Cert.Equal(st.serving.Cert) {
				t.Errorf("CertDir does not hold the replacement (err %v)", err)
			}
		})
	}

	t.Run("bootstrap replaces it too", func(t *testing.T) {
		data := good.data()
		data[SecretCACertKey] = []byte("junk")
		corrupt := &corev1.Secret{Data: data}
		corrupt.Namespace, corrupt.Name = testNamespace, testSecret
		c, _ := newFakeClient(corrupt)
		r := newTestRotator(t, c, nil)
		if err := r.Bootstrap(context.Background()); err != nil {
			t.Fatal(err)
		}
		st := mustParse(t, getSecret(t, c), time.Now())
		if got, err := LoadKeyPairFromDir(r.CertDir); err != nil || !got.Cert.Equal(st.serving.Cert) {
			t.Errorf("CertDir does not hold the replacement (err %v)", err)
		}
	})
}

func TestRotatorRunnables(t *testing.T) {
	var r Rotator
	var _ manager.Runnable = &r
	if !r.NeedLeaderElection() {
		t.Error("the Rotator must run on the leader only")
	}
	if le, ok := r.DirSyncer().(manager.LeaderElectionRunnable); !ok || le.NeedLeaderElection() {
		t.Error("the DirSyncer must run on every replica")
	}
	if (&ExpiryWatcher{}).NeedLeaderElection() {
		t.Error("the ExpiryWatcher must run on every replica")
	}
}

func TestRotatorValidate(t *testing.T) {
	c, _ := newFakeClient()
	tests := []struct {
		name   string
		mutate func(*Rotator)
		want   string
	}{
		{"no client", func(r *Rotator) { r.Client = nil }, "Client is nil"},
		{"no secret name", func(r *Rotator) { r.SecretName = "" }, "SecretName"},
		{"no cert dir", func(r *Rotator) { r.CertDir = "" }, "CertDir is empty"},
		{"no names", func(r *Rotator) { r.DNSNames, r.IPAddresses = nil, nil }, "no DNSNames or IPAddresses"},
		{"renew fraction", func(r *Rotator) { r.RenewBefore = 1.5 }, "RenewBefore is 1.5"},
		{"leaf outlives CA", func(r *Rotator) { r.ServingValidity = 60 * 24 * time.Hour }, "not shorter than CAValidity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRotator(t, c, nil)
			tt.mutate(r)
			if err := r.Bootstrap(context.Background()); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestRotationUnderTLSLoad serves HTTPS on loopback from CertDir through
// controller-runtime's certwatcher, as the webhook server does, while a client
// that trusts the webhooks' caBundle (as an API server does) keeps calling it
// across a leaf rotation and a CA rotation. No request may fail.
func TestRotationUnderTLSLoad(t *testing.T) {
	c, _ := newFakeClient(webhookConfigs()...)
	r := newTestRotator(t, c, nil)
	r.CheckInterval, r.SyncInterval, r.CAPropagationDelay = 50*time.Millisecond, 50*time.Millisecond, 300*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	if err := r.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	for _, run := range []func(context.Context) error{r.Start, r.DirSyncer().Start} {
		wg.Go(func() { _ = run(ctx) })
	}
	cw, err := certwatcher.New(filepath.Join(r.CertDir, CertFile), filepath.Join(r.CertDir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { _ = cw.Start(ctx) })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }),
		TLSConfig:         &tls.Config{GetCertificate: cw.GetCertificate, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 5 * time.Second,
	}
	wg.Go(func() { _ = srv.ServeTLS(ln, "", "") })
	defer srv.Close()

	deadline := time.Now().Add(10 * time.Second)
	for len(caBundles(t, c)["networkpolicies.netguard.io"]) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("caBundle never injected")
		}
		time.Sleep(10 * time.Millisecond)
	}

	const requests = 200
	var failures []string
	serials, issuers := map[string]bool{}, map[string]bool{}
	url := "https://" + ln.Addr().String() + "/"
	for i := range requests {
		switch i {
		case 40:
			annotate(t, c, RotateServing)
		case 100:
			annotate(t, c, RotateCA)
		}
		roots := x509.NewCertPool()
		vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		if err := c.Get(ctx, client.ObjectKey{Name: testVWC}, vwc); err != nil {
			t.Fatal(err)
		}
		roots.AppendCertsFromPEM(vwc.Webhooks[0].ClientConfig.CABundle)
		hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12},
			DisableKeepAlives: true, // a handshake per request, so every request sees the current certificate
		}}
		resp, err := hc.Get(url)
		if err != nil {
			failures = append(failures, fmt.Sprintf("request %d: %v", i, err))
		} else {
			leaf := resp.TLS.PeerCertificates[0]
			serials[leaf.SerialNumber.String()] = true
			issuers[fmt.Sprintf("%x", leaf.AuthorityKeyId)] = true
			_ = resp.Body.Close()
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed across rotations, first: %s", len(failures), requests, failures[0])
	}
	// Initial leaf, the rotated leaf, and the leaf from the new CA.
	if len(serials) < 3 || len(issuers) < 2 {
		t.Errorf("server presented %d leaves from %d CAs, want at least 3 from 2: the rotations did not reach it", len(serials), len(issuers))
	}
}

func equalData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// A failed check is retried within seconds, not after the check interval: a
// caBundle that is missing blocks the fail-closed webhook until it is there.
func TestRotatorRetriesFailuresSoon(t *testing.T) {
	base := fake.NewClientBuilder().WithObjects(webhookConfigs()...).Build()
	var failures atomic.Int32
	failures.Store(2)
	c := interceptor.NewClient(base, interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if failures.Add(-1) >= 0 {
				return errors.New("the API server is busy")
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
	})
	r := newTestRotator(t, c, nil)
	r.CheckInterval = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { _ = r.Start(ctx); close(done) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: testNamespace, Name: testSecret}, s); err == nil {
			all := true
			for _, b := range caBundles(t, c) {
				if !bytes.Equal(b, s.Data[SecretCACertKey]) {
					all = false
				}
			}
			if all {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("caBundle not injected within 15s after two failed patches, with a one-hour check interval")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	<-done
}
