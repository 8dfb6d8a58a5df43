// Package certs issues, stores and rotates the TLS certificates netguard's
// webhook server presents: for local runs, and for the self-managed ("without
// cert-manager") mode, where a Rotator keeps them in a Secret.
//
// It is built on crypto/x509 rather than cert-manager's Go packages, on
// purpose. cert-manager v1.21.2 builds with k8s.io v0.37, but its
// pkg/util/pki imports the cert-manager API types, its ACME fork, go-ldap,
// gateway-api and component-base logging: about ten modules beyond what
// controller-runtime brings, for a handful of five-line helpers. Its
// pkg/server/tls/authority keeps only a CA in the Secret, signs leaves in
// memory through a client-go informer, and replaces the CA without overlap;
// netguard needs the leaf in the Secret and on disk for controller-runtime's
// certwatcher, and the old CA kept in the caBundle while a CA rotation rolls
// out. What this package takes from cert-manager is the design: ECDSA keys in
// PKCS#8, a 365-day CA and a 7-day leaf, and renewal once two thirds of a
// certificate's lifetime has passed.
package certs
