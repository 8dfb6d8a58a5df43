// Package certs issues, stores and rotates the TLS material netguard serves
// its webhooks with, for local runs and for the self-managed ("without
// cert-manager") mode.
//
// It is written on crypto/x509 rather than cert-manager's Go packages on
// purpose. cert-manager v1.21.2 builds with k8s.io v0.37.0, but its
// pkg/util/pki imports the cert-manager API types, its ACME fork, go-ldap,
// gateway-api and component-base logging (twelve new modules for a handful of
// five-line helpers), and its pkg/server/tls/authority keeps only a CA in the
// Secret, signs leaves in memory through a client-go informer, and replaces
// the CA without overlap. netguard needs the leaf in the Secret, on disk for
// controller-runtime's certwatcher, and the old CA kept in the caBundle while
// a CA rotation rolls out. The proven parts are kept: ECDSA keys in PKCS#8,
// and renewal once two thirds of a certificate's lifetime has passed, as
// cert-manager does for both its CA and its Certificates by default.
package certs
