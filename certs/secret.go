package certs

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Keys of the self-managed Secret. tls.crt and tls.key make it a valid
// kubernetes.io/tls Secret; ca.crt is the bundle clients must trust and
// ca.key the key of its first certificate, the CA that signs new leaves.
const (
	SecretCACertKey = "ca.crt"
	SecretCAKeyKey  = "ca.key"
	SecretCertKey   = corev1.TLSCertKey
	SecretKeyKey    = corev1.TLSPrivateKeyKey
)

// Annotations on the self-managed Secret.
const (
	// RotateAnnotation asks the leader for a rotation: "serving" reissues the
	// leaf now, "ca" starts a CA rotation. The leader removes it when done.
	RotateAnnotation = "netguard.io/rotate"
	// CARotatedAtAnnotation records when the current CA joined ca.crt, so a
	// new leader knows whether the caBundle has had time to reach the API
	// servers before it serves a leaf that the new CA signed.
	CARotatedAtAnnotation = "netguard.io/ca-rotated-at"
)

// Values of RotateAnnotation.
const (
	RotateServing = "serving"
	RotateCA      = "ca"
)

// secretState is the parsed, consistent content of the Secret.
type secretState struct {
	ca          *KeyPair            // signs new leaves; bundle[0]
	bundle      []*x509.Certificate // ca.crt: the current CA first, then older CAs not yet expired
	serving     *KeyPair
	caRotatedAt time.Time // zero when unknown
}

// errUnusable marks a Secret whose content must not be used.
var errUnusable = errors.New("unusable")

// parseSecret reads the Secret's four keys and checks that they fit together:
// every certificate in ca.crt is a CA and the first has not expired, ca.key
// belongs to that first CA, tls.key belongs to tls.crt, and tls.crt was
// signed by a CA in ca.crt (unless it has expired, when its signer may have
// left the bundle). An expired or soon-expiring leaf is not an error: that is
// rotation's job.
func parseSecret(s *corev1.Secret, now time.Time) (*secretState, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errUnusable, fmt.Sprintf(format, args...))
	}
	for _, k := range []string{SecretCACertKey, SecretCAKeyKey, SecretCertKey, SecretKeyKey} {
		if len(s.Data[k]) == 0 {
			return nil, bad("key %q is missing or empty", k)
		}
	}
	bundle, err := ParseCertificates(s.Data[SecretCACertKey])
	if err != nil {
		return nil, bad("%q: %v", SecretCACertKey, err)
	}
	for i, c := range bundle {
		if !c.IsCA {
			return nil, bad("%q: certificate %d (%q) is not a CA", SecretCACertKey, i+1, c.Subject.CommonName)
		}
	}
	// Older CAs may have expired since the last check; plan drops them. The
	// current one signs new leaves and must not have.
	if !now.Before(bundle[0].NotAfter) {
		return nil, bad("%q: the current CA %q expired at %s", SecretCACertKey, bundle[0].Subject.CommonName, bundle[0].NotAfter.UTC().Format(time.RFC3339))
	}
	ca, err := ParseKeyPair(EncodeCertificates(bundle[0]), s.Data[SecretCAKeyKey])
	if err != nil {
		return nil, bad("%q does not fit the first certificate of %q: %v", SecretCAKeyKey, SecretCACertKey, err)
	}
	serving, err := ParseKeyPair(s.Data[SecretCertKey], s.Data[SecretKeyKey])
	if err != nil {
		return nil, bad("%q and %q: %v", SecretCertKey, SecretKeyKey, err)
	}
	if serving.Cert.IsCA {
		return nil, bad("%q is a CA certificate, not a serving certificate", SecretCertKey)
	}
	if now.Before(serving.Cert.NotAfter) && issuerOf(serving.Cert, bundle) == nil {
		return nil, bad("%q was not signed by any CA in %q", SecretCertKey, SecretCACertKey)
	}
	st := &secretState{ca: ca, bundle: bundle, serving: serving}
	if ts, ok := s.Annotations[CARotatedAtAnnotation]; ok {
		// A bad timestamp only costs the propagation wait; it does not make
		// the certificates unusable.
		st.caRotatedAt, _ = time.Parse(time.RFC3339, ts)
	}
	return st, nil
}

// issuerOf returns the CA in bundle whose key signed leaf, or nil.
func issuerOf(leaf *x509.Certificate, bundle []*x509.Certificate) *x509.Certificate {
	for _, ca := range bundle {
		if bytes.Equal(leaf.RawIssuer, ca.RawSubject) && leaf.CheckSignatureFrom(ca) == nil {
			return ca
		}
	}
	return nil
}

// data is the Secret content for st.
func (st *secretState) data() map[string][]byte {
	return map[string][]byte{
		SecretCACertKey: EncodeCertificates(st.bundle...),
		SecretCAKeyKey:  st.ca.KeyPEM,
		SecretCertKey:   st.serving.CertPEM,
		SecretKeyKey:    st.serving.KeyPEM,
	}
}

// issuePolicy is what plan needs from the Rotator's options.
type issuePolicy struct {
	caName           string
	caValidity       time.Duration
	servingValidity  time.Duration
	renewBefore      float64 // fraction of a certificate's lifetime
	propagationDelay time.Duration
	dnsNames         []string
	ips              []net.IP
}

// plan decides what the Secret should hold next. cur is nil when the Secret
// is missing or unusable. force is the RotateAnnotation value. It returns the
// next state and why it differs from cur; no reasons means keep cur as it is.
//
// The order matters for clients. A leaf that needs renewing is reissued by
// the CA clients already trust, before any CA rotation. A new CA is put
// first in the bundle with the old ones kept behind it, and the leaf moves to
// the new CA only once the bundle has been in place for propagationDelay,
// so no API server is handed a certificate from a CA it does not trust yet.
func (p issuePolicy) plan(cur *secretState, force string, now time.Time) (*secretState, []string, error) {
	if cur == nil {
		ca, err := newCA(p.caName, now, p.caValidity)
		if err != nil {
			return nil, nil, err
		}
		serving, err := newServing(ca, p.dnsNames, p.ips, now, p.servingValidity)
		if err != nil {
			return nil, nil, err
		}
		return &secretState{ca: ca, bundle: []*x509.Certificate{ca.Cert}, serving: serving, caRotatedAt: now}, []string{"new CA and serving certificate"}, nil
	}

	next := *cur
	var reasons []string

	issuer := issuerOf(cur.serving.Cert, cur.bundle)
	switch {
	case force == RotateServing:
		reasons = append(reasons, "serving rotation requested")
	case p.renewDue(cur.serving.Cert, now):
		reasons = append(reasons, "serving certificate is due for renewal")
	case !p.namesMatch(cur.serving.Cert):
		reasons = append(reasons, "serving certificate names differ from the configured names")
	case issuer != nil && !issuer.Equal(cur.ca.Cert) && now.Sub(cur.caRotatedAt) >= p.propagationDelay:
		reasons = append(reasons, "serving certificate moves to the new CA")
	}
	if len(reasons) > 0 {
		serving, err := newServing(cur.ca, p.dnsNames, p.ips, now, p.servingValidity)
		if err != nil {
			return nil, nil, err
		}
		next.serving = serving
	}

	if force == RotateCA || p.renewDue(cur.ca.Cert, now) {
		if force == RotateCA {
			reasons = append(reasons, "CA rotation requested")
		} else {
			reasons = append(reasons, "CA is due for renewal")
		}
		ca, err := newCA(p.caName, now, p.caValidity)
		if err != nil {
			return nil, nil, err
		}
		next.ca = ca
		next.bundle = append([]*x509.Certificate{ca.Cert}, cur.bundle...)
		next.caRotatedAt = now
	}

	// Old CAs stay trusted until they expire: a replica that has not yet
	// picked up its new leaf may still be serving one they signed.
	kept := slices.DeleteFunc(slices.Clone(next.bundle), func(c *x509.Certificate) bool {
		return !c.Equal(next.ca.Cert) && !now.Before(c.NotAfter)
	})
	if len(kept) != len(next.bundle) {
		reasons = append(reasons, "expired CA dropped from the bundle")
		next.bundle = kept
	}
	return &next, reasons, nil
}

// renewDue reports whether less than renewBefore of c's lifetime remains.
func (p issuePolicy) renewDue(c *x509.Certificate, now time.Time) bool {
	lifetime := c.NotAfter.Sub(c.NotBefore)
	return c.NotAfter.Sub(now) < time.Duration(float64(lifetime)*p.renewBefore)
}

func (p issuePolicy) namesMatch(c *x509.Certificate) bool {
	if !sameSet(c.DNSNames, p.dnsNames) {
		return false
	}
	have := make([]string, 0, len(c.IPAddresses))
	for _, ip := range c.IPAddresses {
		have = append(have, ip.String())
	}
	want := make([]string, 0, len(p.ips))
	for _, ip := range p.ips {
		want = append(want, ip.String())
	}
	return sameSet(have, want)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
