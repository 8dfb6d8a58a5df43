package rules_test

import "testing"

func TestEgressWidePortRange(t *testing.T) {
	runCheckCases(t, "egressWidePortRange", []checkCase{
		{
			name: "wide range to a pinned own-namespace peer",
			spec: `
podSelector: {matchLabels: {app: web}}
egress:
- to:
  - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: team-a}}
    podSelector: {matchLabels: {app: media}}
  ports: [{port: 16384, endPort: 32767, protocol: UDP}]`,
			want: []string{"[egressWidePortRange] spec.egress[0].ports[0]: allows 16384 UDP ports (16384-32767)" + widePortAdvice},
		},
		{
			name: "many small ranges",
			spec: `
podSelector: {matchLabels: {app: web}}
egress:
- to: [{podSelector: {matchLabels: {app: db}}}]
  ports:
  - {port: 1000, endPort: 1400}
  - {port: 2000, endPort: 2400}
  - {port: 3000, endPort: 3400}
  - {port: 4000, endPort: 4001}
  - {port: 5000}`,
			want: []string{"[egressWidePortRange] spec.egress[0].ports: together these entries allow 1206 TCP ports (1000-1400, 2000-2400, 3000-3400, 4000-4001, and 1 more)" + widePortAdvice},
		},
		{
			name: "small ranges to different peers",
			spec: `
podSelector: {matchLabels: {app: web}}
egress:
- to: [{podSelector: {matchLabels: {app: a}}}]
  ports: [{port: 1000, endPort: 1999}]
- to: [{podSelector: {matchLabels: {app: b}}}]
  ports: [{port: 2000, endPort: 2999}]`,
		},
	})
}
