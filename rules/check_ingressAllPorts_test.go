package rules_test

import "testing"

func TestIngressAllPorts(t *testing.T) {
	runCheckCases(t, "ingressAllPorts", []checkCase{
		{
			name: "rule without ports",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{podSelector: {matchLabels: {app: client}}}]`,
			want: []string{"[ingressAllPorts] spec.ingress[0]: allows every port of every protocol; list the ports in use under ports"},
		},
		{
			name: "empty ports list is the same as none",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{podSelector: {matchLabels: {app: client}}}]
  ports: []`,
			want: []string{"[ingressAllPorts] spec.ingress[0]: allows every port of every protocol; list the ports in use under ports"},
		},
		{
			name: "entry without port opens its protocol, TCP by default",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{podSelector: {matchLabels: {app: client}}}]
  ports: [{port: 53, protocol: UDP}, {}]`,
			want: []string{"[ingressAllPorts] spec.ingress[0].ports[1]: allows every TCP port; set port to the port in use (with endPort for a short range)"},
		},
		{
			name: "full range spelt with endPort",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{podSelector: {matchLabels: {app: client}}}]
  ports: [{port: 1, endPort: 65535, protocol: UDP}]`,
			want: []string{"[ingressAllPorts] spec.ingress[0].ports[0]: allows every UDP port; set port to the port in use (with endPort for a short range)"},
		},
		{
			name: "entries of one rule add up to every port",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{podSelector: {matchLabels: {app: client}}}]
  ports: [{port: 1, endPort: 40000}, {port: 40001, endPort: 65535}]`,
			want: []string{"[ingressAllPorts] spec.ingress[0].ports: together these entries allow every TCP port; list only the ports in use"},
		},
		{
			name: "a rule for all pods adds to a rule for some of them",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{podSelector: {}}]
  ports: [{port: 1, endPort: 1000}]
- from: [{podSelector: {matchLabels: {app: client}}}]
  ports: [{port: 1001, endPort: 65535}]`,
			// Since v1.1 both peers are reported: the client pods are among
			// every pod, so some pods of rule 0's peer get every port too.
			want: []string{
				"[ingressAllPorts] spec.ingress[0].from[0]: together with spec.ingress[1], this peer may use every TCP port; list only the ports in use",
				"[ingressAllPorts] spec.ingress[1].from[0]: together with spec.ingress[0], this peer may use every TCP port; list only the ports in use",
			},
		},
		{
			name: "rules for unrelated peers do not add up",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{podSelector: {matchLabels: {app: a}}}]
  ports: [{port: 1, endPort: 1000}]
- from: [{podSelector: {matchLabels: {app: b}}}]
  ports: [{port: 1001, endPort: 65535}]`,
		},
		{
			name: "malformed port counts as every port of its protocol",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{podSelector: {matchLabels: {app: client}}}]
  ports: [{port: 70000}]`,
			want: []string{"[ingressAllPorts] spec.ingress[0].ports[0]: allows every TCP port; set port to the port in use (with endPort for a short range)"},
		},
		{
			name: "numbers, short ranges and named ports",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{podSelector: {matchLabels: {app: client}}}]
  ports: [{port: 8080}, {port: metrics}, {port: 9000, endPort: 9010, protocol: SCTP}]`,
		},
	})
}
