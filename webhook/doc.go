// Package webhook is netguard's thin adapter to the API server: it decodes
// AdmissionReviews, asks package rules for a verdict and maps it to a response.
// It also holds the controllers that keep generated policies true.
package webhook
