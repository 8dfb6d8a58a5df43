package rules_test

import "testing"

const widePortAdvice = "; at level restricted a peer may use at most 1024 ports per protocol: list the ports in use, or run the workload in a namespace at level baseline"

func TestIngressWidePortRange(t *testing.T) {
	runCheckCases(t, "ingressWidePortRange", []checkCase{
		{
			name: "replica port range between instance managers",
			spec: `
podSelector: {matchLabels: {app: instance-manager}}
ingress:
- from: [{podSelector: {matchLabels: {app: instance-manager}}}]
  ports: [{port: 10000, endPort: 30000}]`,
			want: []string{"[ingressWidePortRange] spec.ingress[0].ports[0]: allows 20001 TCP ports (10000-30000)" + widePortAdvice},
		},
		{
			name: "exactly 1024 ports",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{podSelector: {matchLabels: {app: client}}}]
  ports: [{port: 8000, endPort: 9023}]`,
		},
		{
			name: "1025 ports in two entries",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{podSelector: {matchLabels: {app: client}}}]
  ports: [{port: 8000, endPort: 9000}, {port: 9001, endPort: 9024}]`,
			want: []string{"[ingressWidePortRange] spec.ingress[0].ports: together these entries allow 1025 TCP ports (8000-9024)" + widePortAdvice},
		},
		{
			name: "every port is left to ingressAllPorts",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{podSelector: {matchLabels: {app: client}}}]
  ports: [{port: 1, endPort: 65535}]`,
		},
		{
			name: "1-65534 is not every port but is wide",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{podSelector: {matchLabels: {app: client}}}]
  ports: [{port: 1, endPort: 65534, protocol: UDP}]`,
			want: []string{"[ingressWidePortRange] spec.ingress[0].ports[0]: allows 65534 UDP ports (1-65534)" + widePortAdvice},
		},
	})
}
