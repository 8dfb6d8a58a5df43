package rules_test

import "testing"

func TestMalformedPolicy(t *testing.T) {
	const fix = "; the API server rejects this, fix it"
	runCheckCases(t, "malformedPolicy", []checkCase{
		{
			name: "selector operators, keys and values",
			spec: `
podSelector:
  matchLabels: {"bad key!": x}
  matchExpressions:
  - {key: app, operator: Equals, values: [web]}
  - {key: tier, operator: In}
  - {key: zone, operator: Exists, values: [a]}
  - {key: team, operator: NotIn, values: ["not valid"]}
policyTypes: [Ingress]`,
			want: []string{
				`[malformedPolicy] spec.podSelector.matchExpressions[0].operator: unsupported value: "Equals": supported values: "In", "NotIn", "Exists", "DoesNotExist"` + fix,
				`[malformedPolicy] spec.podSelector.matchExpressions[1].values: required value: operator In needs at least one value; this requirement is ignored, so the selector matches more` + fix,
				`[malformedPolicy] spec.podSelector.matchExpressions[2].values: forbidden: operator Exists takes no values; this requirement is ignored, so the selector matches more` + fix,
				`[malformedPolicy] spec.podSelector.matchExpressions[3].values[0]: invalid value: "not valid": invalid label value: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?'); this requirement is ignored, so the selector matches more` + fix,
				`[malformedPolicy] spec.podSelector.matchLabels[bad key!]: invalid value: "bad key!": invalid label key: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'); ignored, so the selector matches more` + fix,
			},
		},
		{
			name: "ipBlocks",
			spec: `
podSelector: {}
policyTypes: [Egress]
egress:
- to:
  - ipBlock: {cidr: not-a-cidr}
  - ipBlock: {cidr: 10.0.0.0/8, except: [192.168.0.0/16, 10.0.0.0/8, "10.1.0.0"]}
  - ipBlock: {cidr: 10.0.0.0/8}
    namespaceSelector: {}
  - {}`,
			want: []string{
				`[malformedPolicy] spec.egress[0].to[0].ipBlock.cidr: invalid value: "not-a-cidr": must be a CIDR such as 10.0.0.0/8 or fd00::/8; treated as every address` + fix,
				`[malformedPolicy] spec.egress[0].to[1].ipBlock.except[0]: invalid value: "192.168.0.0/16": must be a strict subset of cidr 10.0.0.0/8; ignored, so the block is wider` + fix,
				`[malformedPolicy] spec.egress[0].to[1].ipBlock.except[1]: invalid value: "10.0.0.0/8": must be a strict subset of cidr 10.0.0.0/8; ignored, so the block is wider` + fix,
				`[malformedPolicy] spec.egress[0].to[1].ipBlock.except[2]: invalid value: "10.1.0.0": must be a CIDR such as 10.1.0.0/16; ignored, so the block is wider` + fix,
				`[malformedPolicy] spec.egress[0].to[2].ipBlock: forbidden: may not be combined with podSelector or namespaceSelector; both readings are checked` + fix,
				`[malformedPolicy] spec.egress[0].to[3]: required value: a peer needs podSelector, namespaceSelector or ipBlock; an empty peer is treated as any peer` + fix,
			},
		},
		{
			name: "ports",
			spec: `
podSelector: {}
ingress:
- from: [{podSelector: {}}]
  ports:
  - {port: 0}
  - {port: 80, endPort: 70}
  - {port: http, endPort: 90}
  - {endPort: 90}
  - {port: "8080"}
  - {port: 53, protocol: ICMP}
  - {port: 65535, endPort: 65536}`,
			want: []string{
				`[malformedPolicy] spec.ingress[0].ports[0].port: invalid value: 0: must be between 1 and 65535; treated as every port` + fix,
				`[malformedPolicy] spec.ingress[0].ports[1].endPort: invalid value: 70: must be between port (80) and 65535; treated as every port` + fix,
				`[malformedPolicy] spec.ingress[0].ports[2].endPort: forbidden: endPort needs a numeric port; treated as every port` + fix,
				`[malformedPolicy] spec.ingress[0].ports[3].endPort: forbidden: endPort needs a numeric port; treated as every port` + fix,
				`[malformedPolicy] spec.ingress[0].ports[4].port: invalid value: "8080": must be a port number or a port name (up to 15 lowercase letters, digits and '-', with a letter); treated as every port` + fix,
				`[malformedPolicy] spec.ingress[0].ports[5].protocol: invalid value: "ICMP": must be "TCP", "UDP" or "SCTP"; treated as all three protocols` + fix,
				`[malformedPolicy] spec.ingress[0].ports[6].endPort: invalid value: 65536: must be between port (65535) and 65535; treated as every port` + fix,
			},
		},
		{
			name: "policy types",
			spec: `
podSelector: {}
policyTypes: [Ingress, egress, Both]`,
			want: []string{
				`[malformedPolicy] spec.policyTypes[1]: invalid value: "egress": must be "Ingress" or "Egress"; treated as "Egress"` + fix,
				`[malformedPolicy] spec.policyTypes[2]: invalid value: "Both": must be "Ingress" or "Egress"; treated as both` + fix,
			},
		},
		{
			name:      "invalid namespace",
			namespace: "Team_A",
			spec:      "podSelector: {}",
			want:      []string{`[malformedPolicy] metadata.namespace: invalid value: "Team_A": must be a valid namespace name; no namespaceSelector counts as this namespace` + fix},
		},
		{
			name: "well formed",
			spec: `
podSelector: {matchExpressions: [{key: app, operator: In, values: [web, api]}]}
ingress:
- from:
  - podSelector: {matchExpressions: [{key: tier, operator: DoesNotExist}]}
  - ipBlock: {cidr: "fd00::/8", except: ["fd00:1::/32"]}
  ports: [{port: 8000, endPort: 8010, protocol: SCTP}, {port: http-alt}]`,
		},
	})
}
