package rules_test

import "testing"

const ingressAnywhereMsg = "allows traffic from any source; select the client pods with podSelector or use a NetworkProfile"

func TestIngressFromAnywhere(t *testing.T) {
	runCheckCases(t, "ingressFromAnywhere", []checkCase{
		{
			name: "rule without from",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- ports: [{port: 8080}]`,
			want: []string{"[ingressFromAnywhere] spec.ingress[0]: " + ingressAnywhereMsg},
		},
		{
			name: "empty from list is the same as none",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: []
  ports: [{port: 8080}]`,
			want: []string{"[ingressFromAnywhere] spec.ingress[0]: " + ingressAnywhereMsg},
		},
		{
			name: "empty rule with defaulted policyTypes",
			spec: `
podSelector: {}
ingress:
- {}`,
			want: []string{"[ingressFromAnywhere] spec.ingress[0]: " + ingressAnywhereMsg},
		},
		{
			name: "empty peer is read as any source",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from:
  - podSelector: {matchLabels: {app: client}}
  - {}`,
			want: []string{"[ingressFromAnywhere] spec.ingress[0].from[1]: " + ingressAnywhereMsg},
		},
		{
			name: "several rules in field order",
			spec: `
podSelector: {}
ingress:
- ports: [{port: 1}]
- from: [{podSelector: {}}]
- ports: [{port: 2}]`,
			want: []string{
				"[ingressFromAnywhere] spec.ingress[0]: " + ingressAnywhereMsg,
				"[ingressFromAnywhere] spec.ingress[2]: " + ingressAnywhereMsg,
			},
		},
		{
			name: "ingress rules of a policy whose policyTypes lack Ingress allow nothing",
			spec: `
podSelector: {}
policyTypes: [Egress]
ingress:
- {}
egress:
- to: [{podSelector: {matchLabels: {app: db}}}]`,
		},
		{
			name: "podSelector peer",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{podSelector: {matchLabels: {app: client}}}]`,
		},
		{
			name: "deny all ingress",
			spec: `
podSelector: {}
policyTypes: [Ingress]`,
		},
	})
}
