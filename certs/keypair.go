package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"time"
)

// clockSkew backdates NotBefore so an API server whose clock runs a little
// behind ours does not reject a certificate issued a moment ago.
const clockSkew = 5 * time.Minute

// KeyPair is a certificate with its private key, parsed and PEM-encoded.
// Key is nil for a certificate whose key we do not hold.
type KeyPair struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
	KeyPEM  []byte
}

// NewCA returns a self-signed ECDSA P-256 CA that may sign leaf certificates
// only (path length zero), valid from now for validity.
func NewCA(commonName string, validity time.Duration) (*KeyPair, error) {
	return newCA(commonName, time.Now(), validity)
}

func newCA(commonName string, now time.Time, validity time.Duration) (*KeyPair, error) {
	if commonName == "" {
		return nil, errors.New("new CA: common name is empty; pass a name such as \"netguard-ca\"")
	}
	if validity <= 0 {
		return nil, fmt.Errorf("new CA %q: validity %s is not positive", commonName, validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("new CA %q: generate key: %w", commonName, err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	return sign(tmpl, tmpl, key, key)
}

// NewServing returns an ECDSA P-256 serverAuth leaf for dnsNames and ips,
// signed by ca. Its NotAfter is capped at the CA's: a leaf that outlives its
// CA cannot be verified anyway, and the cap keeps renewal timing honest.
func NewServing(ca *KeyPair, dnsNames []string, ips []net.IP, validity time.Duration) (*KeyPair, error) {
	return newServing(ca, dnsNames, ips, time.Now(), validity)
}

func newServing(ca *KeyPair, dnsNames []string, ips []net.IP, now time.Time, validity time.Duration) (*KeyPair, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("new serving certificate: CA is nil or has no private key; create one with NewCA or load ca.crt and ca.key")
	}
	if !ca.Cert.IsCA {
		return nil, fmt.Errorf("new serving certificate: %q is not a CA certificate", ca.Cert.Subject.CommonName)
	}
	if len(dnsNames) == 0 && len(ips) == 0 {
		return nil, errors.New("new serving certificate: no DNS names or IP addresses; pass at least one, such as \"netguard.netguard-system.svc\"")
	}
	for i, n := range dnsNames {
		if n == "" {
			return nil, fmt.Errorf("new serving certificate: DNS name [%d] is empty", i)
		}
	}
	for i, ip := range ips {
		if ip.To16() == nil {
			return nil, fmt.Errorf("new serving certificate: IP address [%d] is not valid", i)
		}
	}
	if validity <= 0 {
		return nil, fmt.Errorf("new serving certificate: validity %s is not positive", validity)
	}
	if !now.Before(ca.Cert.NotAfter) {
		return nil, fmt.Errorf("new serving certificate: CA %q expired at %s; rotate the CA first", ca.Cert.Subject.CommonName, ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("new serving certificate: generate key: %w", err)
	}
	tmpl := &x509.Certificate{
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		DNSNames:              append([]string(nil), dnsNames...),
		IPAddresses:           append([]net.IP(nil), ips...),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	// Verifiers use the SANs; the common name is only for people reading the
	// certificate, and X.509 caps it at 64 characters.
	switch {
	case len(dnsNames) > 0 && len(dnsNames[0]) <= 64:
		tmpl.Subject.CommonName = dnsNames[0]
	case len(dnsNames) == 0:
		tmpl.Subject.CommonName = ips[0].String()
	}
	return sign(tmpl, ca.Cert, key, ca.Key)
}

// sign issues tmpl for key, signed by parentKey. A nil SerialNumber makes
// crypto/x509 draw a random RFC 5280 serial.
func sign(tmpl, parent *x509.Certificate, key *ecdsa.PrivateKey, parentKey crypto.Signer) (*KeyPair, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, fmt.Errorf("sign certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate %q just signed: %w", tmpl.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key for %q: %w", tmpl.Subject.CommonName, err)
	}
	return &KeyPair{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// ParseKeyPair parses a PEM certificate and its PEM private key (PKCS#8,
// SEC 1 or PKCS#1) and checks that they belong together. Only the first
// certificate in certPEM is used. An empty keyPEM yields a KeyPair with a nil
// Key, for a CA whose key we do not hold.
func ParseKeyPair(certPEM, keyPEM []byte) (*KeyPair, error) {
	certs, err := ParseCertificates(certPEM)
	if err != nil {
		return nil, err
	}
	kp := &KeyPair{Cert: certs[0], CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certs[0].Raw})}
	if len(keyPEM) == 0 {
		return kp, nil
	}
	key, err := parsePrivateKey(keyPEM)
	if err != nil {
		return nil, err
	}
	if !publicKeysEqual(key.Public(), kp.Cert.PublicKey) {
		return nil, fmt.Errorf("private key does not match certificate %q", kp.Cert.Subject.CommonName)
	}
	kp.Key, kp.KeyPEM = key, keyPEM
	return kp, nil
}

// ParseCertificates parses every CERTIFICATE block in data, in order, and
// fails on anything else: a bundle with junk in it is not one to trust.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is %q, want \"CERTIFICATE\"", len(out)+1, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM \"CERTIFICATE\" block found")
	}
	return out, nil
}

// EncodeCertificates PEM-encodes certs in order.
func EncodeCertificates(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func parsePrivateKey(keyPEM []byte) (crypto.Signer, error) {
	block, rest := pem.Decode(keyPEM)
	// openssl ecparam -genkey writes the curve parameters before the key.
	for block != nil && block.Type == "EC PARAMETERS" {
		block, rest = pem.Decode(rest)
	}
	if block == nil {
		return nil, errors.New("no PEM private key block found")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block is %q, want \"PRIVATE KEY\"", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", block.Type, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign", key)
	}
	return signer, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}
