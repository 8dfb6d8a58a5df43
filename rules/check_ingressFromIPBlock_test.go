package rules_test

import "testing"

const ipBlockAdvice = "; IP addresses are outside the namespace and reserved for platform NetworkProfiles: use one instead"

func TestIngressFromIPBlock(t *testing.T) {
	runCheckCases(t, "ingressFromIPBlock", []checkCase{
		{
			name: "whole IPv4 internet",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{ipBlock: {cidr: 0.0.0.0/0}}]
  ports: [{port: 443}]`,
			want: []string{"[ingressFromIPBlock] spec.ingress[0].from[0].ipBlock: allows traffic from every IPv4 address (0.0.0.0/0)" + ipBlockAdvice},
		},
		{
			name: "split halves add up to every IPv4 address",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from:
  - ipBlock: {cidr: 0.0.0.0/1}
  - ipBlock: {cidr: 128.0.0.0/1}`,
			want: []string{
				"[ingressFromIPBlock] spec.ingress[0].from[0].ipBlock: allows traffic from 0.0.0.0/1, and with the other ipBlocks in spec.ingress every IPv4 address" + ipBlockAdvice,
				"[ingressFromIPBlock] spec.ingress[0].from[1].ipBlock: allows traffic from 128.0.0.0/1, and with the other ipBlocks in spec.ingress every IPv4 address" + ipBlockAdvice,
			},
		},
		{
			name: "halves in separate rules",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{ipBlock: {cidr: "::/1"}}]
- from: [{ipBlock: {cidr: "8000::/1"}}]`,
			want: []string{
				"[ingressFromIPBlock] spec.ingress[0].from[0].ipBlock: allows traffic from ::/1, and with the other ipBlocks in spec.ingress every IPv6 address" + ipBlockAdvice,
				"[ingressFromIPBlock] spec.ingress[1].from[0].ipBlock: allows traffic from 8000::/1, and with the other ipBlocks in spec.ingress every IPv6 address" + ipBlockAdvice,
			},
		},
		{
			name: "whole IPv6 internet",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{ipBlock: {cidr: "::/0"}}]`,
			want: []string{"[ingressFromIPBlock] spec.ingress[0].from[0].ipBlock: allows traffic from every IPv6 address (::/0)" + ipBlockAdvice},
		},
		{
			name: "except does not make the internet internal",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8, 192.168.0.0/16]}}]`,
			want: []string{"[ingressFromIPBlock] spec.ingress[0].from[0].ipBlock: allows traffic from 0.0.0.0/0 except 10.0.0.0/8, 192.168.0.0/16" + ipBlockAdvice},
		},
		{
			name: "a single address",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{ipBlock: {cidr: 10.1.2.3/32}}]`,
			want: []string{"[ingressFromIPBlock] spec.ingress[0].from[0].ipBlock: allows traffic from 10.1.2.3/32" + ipBlockAdvice},
		},
		{
			name: "malformed cidr counts as every address",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{ipBlock: {cidr: 10.0.0.0/33}}]`,
			want: []string{`[ingressFromIPBlock] spec.ingress[0].from[0].ipBlock: allows traffic from every IP address (cidr "10.0.0.0/33" is not valid and counts as all)` + ipBlockAdvice},
		},
		{
			name: "ipBlock combined with a podSelector is checked as an ipBlock too",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {matchLabels: {app: client}}}]`,
			want: []string{"[ingressFromIPBlock] spec.ingress[0].from[0].ipBlock: allows traffic from 10.0.0.0/8" + ipBlockAdvice},
		},
		{
			name: "pods only",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{podSelector: {matchLabels: {app: client}}}]`,
		},
	})
}
