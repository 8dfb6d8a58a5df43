package rules_test

import "testing"

func TestEgressToIPBlock(t *testing.T) {
	runCheckCases(t, "egressToIPBlock", []checkCase{
		{
			name: "one external resolver",
			spec: `
podSelector: {matchLabels: {app: worker}}
policyTypes: [Egress]
egress:
- to: [{ipBlock: {cidr: 1.1.1.1/32}}]
  ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]`,
			want: []string{"[egressToIPBlock] spec.egress[0].to[0].ipBlock: allows traffic to 1.1.1.1/32" + ipBlockAdvice},
		},
		{
			name: "everything but the cluster network is still external",
			spec: `
podSelector: {matchLabels: {app: worker}}
egress:
- to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}}]`,
			want: []string{"[egressToIPBlock] spec.egress[0].to[0].ipBlock: allows traffic to 0.0.0.0/0 except 10.0.0.0/8" + ipBlockAdvice},
		},
		{
			name: "quarters in two rules add up to every IPv4 address",
			spec: `
podSelector: {matchLabels: {app: worker}}
egress:
- to: [{ipBlock: {cidr: 0.0.0.0/2}}, {ipBlock: {cidr: 64.0.0.0/2}}]
- to: [{ipBlock: {cidr: 128.0.0.0/1}}]`,
			want: []string{
				"[egressToIPBlock] spec.egress[0].to[0].ipBlock: allows traffic to 0.0.0.0/2, and with the other ipBlocks in spec.egress every IPv4 address" + ipBlockAdvice,
				"[egressToIPBlock] spec.egress[0].to[1].ipBlock: allows traffic to 64.0.0.0/2, and with the other ipBlocks in spec.egress every IPv4 address" + ipBlockAdvice,
				"[egressToIPBlock] spec.egress[1].to[0].ipBlock: allows traffic to 128.0.0.0/1, and with the other ipBlocks in spec.egress every IPv4 address" + ipBlockAdvice,
			},
		},
		{
			name: "egress rules of a policy whose policyTypes lack Egress allow nothing",
			spec: `
podSelector: {matchLabels: {app: worker}}
policyTypes: [Ingress]
egress:
- to: [{ipBlock: {cidr: 0.0.0.0/0}}]`,
		},
	})
}
