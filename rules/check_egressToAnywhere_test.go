package rules_test

import "testing"

const egressAnywhereMsg = "allows traffic to any destination; select the destination pods with podSelector or use a NetworkProfile"

func TestEgressToAnywhere(t *testing.T) {
	runCheckCases(t, "egressToAnywhere", []checkCase{
		{
			name: "rule without to, Egress defaulted from the rules",
			spec: `
podSelector: {matchLabels: {app: web}}
egress:
- ports: [{port: 53, protocol: UDP}]`,
			want: []string{"[egressToAnywhere] spec.egress[0]: " + egressAnywhereMsg},
		},
		{
			name: "empty to list",
			spec: `
podSelector: {matchLabels: {app: web}}
policyTypes: [Egress]
egress:
- to: []`,
			want: []string{"[egressToAnywhere] spec.egress[0]: " + egressAnywhereMsg},
		},
		{
			name: "empty peer",
			spec: `
podSelector: {matchLabels: {app: web}}
policyTypes: [Ingress, Egress]
egress:
- to: [{}]
  ports: [{port: 443}]`,
			want: []string{"[egressToAnywhere] spec.egress[0].to[0]: " + egressAnywhereMsg},
		},
		{
			name: "egress rules of a policy whose policyTypes lack Egress allow nothing",
			spec: `
podSelector: {}
policyTypes: [Ingress]
egress:
- {}`,
		},
		{
			name: "a lower-case policy type counts as that type",
			spec: `
podSelector: {}
policyTypes: [Ingress, egress]
egress:
- {}`,
			want: []string{"[egressToAnywhere] spec.egress[0]: " + egressAnywhereMsg},
		},
		{
			name: "an unknown policy type counts as both",
			spec: `
podSelector: {}
policyTypes: [Ingress, Sideways]
egress:
- {}`,
			want: []string{"[egressToAnywhere] spec.egress[0]: " + egressAnywhereMsg},
		},
		{
			name: "empty egress list is not an egress rule",
			spec: `
podSelector: {}
egress: []`,
		},
		{
			name: "podSelector destination",
			spec: `
podSelector: {matchLabels: {app: web}}
egress:
- to: [{podSelector: {matchLabels: {app: db}}}]
  ports: [{port: 5432}]`,
		},
	})
}
