package rules_test

import "testing"

func TestEgressAllPorts(t *testing.T) {
	runCheckCases(t, "egressAllPorts", []checkCase{
		{
			name: "rule without ports",
			spec: `
podSelector: {matchLabels: {app: web}}
egress:
- to: [{podSelector: {matchLabels: {app: db}}}]`,
			want: []string{"[egressAllPorts] spec.egress[0]: allows every port of every protocol; list the ports in use under ports"},
		},
		{
			name: "one protocol left open",
			spec: `
podSelector: {matchLabels: {app: web}}
egress:
- to: [{podSelector: {matchLabels: {app: db}}}]
  ports: [{protocol: SCTP}, {protocol: UDP}]`,
			want: []string{
				"[egressAllPorts] spec.egress[0].ports[0]: allows every SCTP port; set port to the port in use (with endPort for a short range)",
				"[egressAllPorts] spec.egress[0].ports[1]: allows every UDP port; set port to the port in use (with endPort for a short range)",
			},
		},
		{
			name: "split over two rules with the same peer",
			spec: `
podSelector: {matchLabels: {app: web}}
egress:
- to: [{podSelector: {matchLabels: {app: db}}}]
  ports: [{port: 1, endPort: 32767}]
- to: [{podSelector: {matchLabels: {app: db}}}]
  ports: [{port: 32768, endPort: 65535}]`,
			want: []string{
				"[egressAllPorts] spec.egress[0].to[0]: together with spec.egress[1], this peer may use every TCP port; list only the ports in use",
				"[egressAllPorts] spec.egress[1].to[0]: together with spec.egress[0], this peer may use every TCP port; list only the ports in use",
			},
		},
		{
			name: "egress rules ignored without Egress in policyTypes",
			spec: `
podSelector: {matchLabels: {app: web}}
policyTypes: [Ingress]
egress:
- to: [{podSelector: {matchLabels: {app: db}}}]`,
		},
		{
			name: "named port",
			spec: `
podSelector: {matchLabels: {app: web}}
egress:
- to: [{podSelector: {matchLabels: {app: db}}}]
  ports: [{port: postgres}]`,
		},
	})
}
