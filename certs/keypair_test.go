package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"
)

func mustCA(t *testing.T, validity time.Duration) *KeyPair {
	t.Helper()
	ca, err := NewCA("netguard-test-ca", validity)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

func mustServing(t *testing.T, ca *KeyPair, validity time.Duration) *KeyPair {
	t.Helper()
	leaf, err := NewServing(ca, []string{"netguard.netguard-system.svc", "localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, validity)
	if err != nil {
		t.Fatalf("NewServing: %v", err)
	}
	return leaf
}

func TestNewCA(t *testing.T) {
	ca := mustCA(t, 24*time.Hour)
	c := ca.Cert
	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("CA constraints: IsCA=%v BasicConstraintsValid=%v MaxPathLen=%d MaxPathLenZero=%v, want a CA limited to signing leaves", c.IsCA, c.BasicConstraintsValid, c.MaxPathLen, c.MaxPathLenZero)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA key usage %v lacks CertSign", c.KeyUsage)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", c.PublicKey)
	}
	if got := time.Until(c.NotAfter); got < 23*time.Hour || got > 24*time.Hour {
		t.Errorf("CA expires in %s, want about 24h", got)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}
	if _, err := tls.X509KeyPair(ca.CertPEM, ca.KeyPEM); err != nil {
		t.Errorf("CA PEM does not load as a key pair: %v", err)
	}
}

func TestNewServingVerifiesForEachNameAndIP(t *testing.T) {
	ca := mustCA(t, 24*time.Hour)
	dnsNames := []string{"netguard.netguard-system.svc", "netguard.netguard-system.svc.cluster.local", "localhost"}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	leaf, err := NewServing(ca, dnsNames, ips, time.Hour)
	if err != nil {
		t.Fatalf("NewServing: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	names := append([]string{}, dnsNames...)
	for _, ip := range ips {
		names = append(names, ip.String())
	}
	for _, name := range names {
		if _, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("leaf does not verify for %q: %v", name, err)
		}
	}
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: "evil.example.com", Roots: roots}); err == nil {
		t.Error("leaf verifies for a name it was not issued for")
	}
	other := mustCA(t, time.Hour)
	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(other.Cert)
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: otherRoots}); err == nil {
		t.Error("leaf verifies against a CA that did not sign it")
	}
	if leaf.Cert.IsCA {
		t.Error("leaf is a CA")
	}
	if _, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM); err != nil {
		t.Errorf("leaf PEM does not load as a key pair: %v", err)
	}
}

func TestNewServingCapsValidityAtCA(t *testing.T) {
	ca := mustCA(t, time.Hour)
	leaf := mustServing(t, ca, 24*time.Hour)
	if !leaf.Cert.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("leaf NotAfter %s, want the CA's %s", leaf.Cert.NotAfter, ca.Cert.NotAfter)
	}
}

func TestBadInputs(t *testing.T) {
	ca := mustCA(t, time.Hour)
	leaf := mustServing(t, ca, time.Hour)
	noKey := &KeyPair{Cert: ca.Cert, CertPEM: ca.CertPEM}
	names := []string{"localhost"}
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"CA without name", func() error { _, err := NewCA("", time.Hour); return err }, "common name is empty"},
		{"CA with zero validity", func() error { _, err := NewCA("x", 0); return err }, "not positive"},
		{"nil CA", func() error { _, err := NewServing(nil, names, nil, time.Hour); return err }, "CA is nil"},
		{"CA without key", func() error { _, err := NewServing(noKey, names, nil, time.Hour); return err }, "no private key"},
		{"leaf as CA", func() error { _, err := NewServing(leaf, names, nil, time.Hour); return err }, "is not a CA certificate"},
		{"no names", func() error { _, err := NewServing(ca, nil, nil, time.Hour); return err }, "no DNS names or IP addresses"},
		{"empty DNS name", func() error { _, err := NewServing(ca, []string{"a", ""}, nil, time.Hour); return err }, "DNS name [1] is empty"},
		{"bad IP", func() error { _, err := NewServing(ca, nil, []net.IP{{1, 2}}, time.Hour); return err }, "IP address [0] is not valid"},
		{"zero leaf validity", func() error { _, err := NewServing(ca, names, nil, 0); return err }, "not positive"},
		{"mismatched key", func() error { _, err := ParseKeyPair(leaf.CertPEM, ca.KeyPEM); return err }, "does not match"},
		{"not PEM", func() error { _, err := ParseKeyPair([]byte("junk"), nil); return err }, "no PEM"},
		{"key in bundle", func() error { _, err := ParseCertificates(append(ca.CertPEM, ca.KeyPEM...)); return err }, `is "PRIVATE KEY"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseKeyPairRoundTrip(t *testing.T) {
	ca := mustCA(t, time.Hour)
	got, err := ParseKeyPair(ca.CertPEM, ca.KeyPEM)
	if err != nil {
		t.Fatalf("ParseKeyPair: %v", err)
	}
	if !got.Cert.Equal(ca.Cert) || got.Key == nil {
		t.Error("parsed pair differs from the one encoded")
	}
	// As openssl ecparam -genkey writes it: curve parameters, then a SEC 1 key.
	sec1, err := x509.MarshalECPrivateKey(ca.Key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	opensslKey := append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...)
	if _, err := ParseKeyPair(ca.CertPEM, opensslKey); err != nil {
		t.Errorf("SEC 1 key after EC PARAMETERS: %v", err)
	}
	bundle, err := ParseCertificates(EncodeCertificates(ca.Cert, mustCA(t, time.Hour).Cert))
	if err != nil || len(bundle) != 2 || !bundle[0].Equal(ca.Cert) {
		t.Errorf("bundle round trip: %d certificates, err %v", len(bundle), err)
	}
}
