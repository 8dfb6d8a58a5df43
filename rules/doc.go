// Package rules is netguard's pure core: the semantic model of a NetworkPolicy,
// the default-deny guardrail checks, the policy generator and the connectivity
// evaluator.
//
// It imports only the standard library, k8s.io/api and k8s.io/apimachinery, so
// the webhook, the CLI and the audit all reach the same verdict from the same
// code, and every decision can be unit tested without a cluster.
package rules
