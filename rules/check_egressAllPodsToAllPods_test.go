package rules_test

import "testing"

func TestEgressAllPodsToAllPods(t *testing.T) {
	runCheckCases(t, "egressAllPodsToAllPods", []checkCase{
		{
			name: "all pods to all pods",
			spec: `
podSelector: {}
policyTypes: [Egress]
egress:
- to: [{podSelector: {}}]
  ports: [{port: 8080}]`,
			want: []string{`[egressAllPodsToAllPods] spec.egress[0].to[0]: with spec.podSelector {} this lets every pod in namespace "team-a" send traffic to every pod in it; select the client pods in spec.podSelector or the server pods in podSelector`},
		},
		{
			name: "all pods to the database",
			spec: `
podSelector: {}
policyTypes: [Egress]
egress:
- to: [{podSelector: {matchLabels: {app: db}}}]
  ports: [{port: 5432}]`,
		},
		{
			name: "ignored without Egress in policyTypes",
			spec: `
podSelector: {}
policyTypes: [Ingress]
egress:
- to: [{podSelector: {}}]`,
		},
	})
}
