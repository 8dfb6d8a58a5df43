package webhook

import "crypto/tls"

// TLSOptions are the webhook server's TLS settings for --tls-min-version:
// TLS 1.2 with ModernCipherSuites only, or TLS 1.3 only. `netguard serve` and the benchmark's
// floor server both use them, so that the floor pays for the same TLS.
func TLSOptions(minVersion uint16) []func(*tls.Config) {
	return []func(*tls.Config){func(c *tls.Config) {
		c.MinVersion = minVersion
		if minVersion == tls.VersionTLS12 {
			c.CipherSuites = ModernCipherSuites()
		}
	}}
}

// ModernCipherSuites are the TLS 1.2 AEAD suites with forward secrecy; TLS
// 1.3 suites are not configurable in Go and are all modern.
func ModernCipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}
