package rules_test

import "testing"

func TestRawNetworkPolicy(t *testing.T) {
	const msg = "[rawNetworkPolicy] only platform identities and netguard's generated policies may write NetworkPolicies in this namespace; declare connections with netguard annotations and NetworkProfiles instead"
	runCheckCases(t, "rawNetworkPolicy", []checkCase{
		{name: "deny all", spec: "podSelector: {}\npolicyTypes: [Ingress, Egress]", want: []string{msg}},
		{name: "narrow policy", spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{podSelector: {matchLabels: {app: client}}}]
  ports: [{port: 8080}]`, want: []string{msg}},
	})
}
