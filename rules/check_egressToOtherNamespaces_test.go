package rules_test

import "testing"

func TestEgressToOtherNamespaces(t *testing.T) {
	runCheckCases(t, "egressToOtherNamespaces", []checkCase{
		{
			name: "cluster DNS in kube-system",
			spec: `
podSelector: {}
policyTypes: [Egress]
egress:
- to:
  - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
    podSelector: {matchLabels: {k8s-app: kube-dns}}
  ports: [{port: 53, protocol: UDP}]`,
			want: []string{`[egressToOtherNamespaces] spec.egress[0].to[0].namespaceSelector: allows traffic to pods matching k8s-app=kube-dns in namespaces other than "team-a" (namespaceSelector kubernetes.io/metadata.name=kube-system)` + crossNamespaceAdvice},
		},
		{
			name: "all namespaces",
			spec: `
podSelector: {matchLabels: {app: web}}
egress:
- to: [{namespaceSelector: {}, podSelector: {matchLabels: {app: api}}}]`,
			want: []string{`[egressToOtherNamespaces] spec.egress[0].to[0].namespaceSelector: allows traffic to pods matching app=api in every namespace` + crossNamespaceAdvice},
		},
		{
			name: "own namespace by name",
			spec: `
podSelector: {matchLabels: {app: web}}
egress:
- to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: team-a}}, podSelector: {matchLabels: {app: api}}}]`,
		},
		{
			name: "rules ignored without Egress in policyTypes",
			spec: `
podSelector: {matchLabels: {app: web}}
policyTypes: [Ingress]
egress:
- to: [{namespaceSelector: {}}]`,
		},
	})
}
