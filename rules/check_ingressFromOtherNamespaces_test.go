package rules_test

import "testing"

const crossNamespaceAdvice = `; traffic across namespaces is reserved for platform NetworkProfiles: use one, or drop namespaceSelector to stay in namespace "team-a"`

func TestIngressFromOtherNamespaces(t *testing.T) {
	const field = "[ingressFromOtherNamespaces] spec.ingress[0].from[0].namespaceSelector: "
	every := field + "allows traffic from pods in every namespace" + crossNamespaceAdvice
	runCheckCases(t, "ingressFromOtherNamespaces", []checkCase{
		{
			name: "empty namespaceSelector",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{namespaceSelector: {}}]`,
			want: []string{every},
		},
		{
			name: "name Exists matches every namespace",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: Exists}]}}]`,
			want: []string{every},
		},
		{
			name: "pinned to the own namespace by matchLabels",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from:
  - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: team-a}}
    podSelector: {matchLabels: {app: client}}`,
		},
		{
			name: "pinned to the own namespace by In",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from:
  - namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [team-a]}]}`,
		},
		{
			name: "pinned to the own namespace and narrowed further",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from:
  - namespaceSelector:
      matchLabels: {env: prod}
      matchExpressions:
      - {key: kubernetes.io/metadata.name, operator: In, values: [team-a]}
      - {key: tier, operator: NotIn, values: [legacy]}`,
		},
		{
			name: "In with a second name",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from:
  - namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [team-b, team-a]}]}`,
			want: []string{field + `allows traffic from pods in namespaces other than "team-a" (namespaceSelector kubernetes.io/metadata.name in (team-a,team-b))` + crossNamespaceAdvice},
		},
		{
			name: "NotIn",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from:
  - namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [kube-system]}]}`,
			want: []string{field + `allows traffic from pods in namespaces other than "team-a" (namespaceSelector kubernetes.io/metadata.name!=kube-system)` + crossNamespaceAdvice},
		},
		{
			name: "Exists on another label",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from:
  - namespaceSelector: {matchExpressions: [{key: team, operator: Exists}]}`,
			want: []string{field + `allows traffic from pods in namespaces other than "team-a" (namespaceSelector team)` + crossNamespaceAdvice},
		},
		{
			name: "DoesNotExist",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from:
  - namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: DoesNotExist}]}`,
			want: []string{field + `allows traffic from pods in namespaces other than "team-a" (namespaceSelector !kubernetes.io/metadata.name)` + crossNamespaceAdvice},
		},
		{
			name: "another namespace by name, some pods",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from:
  - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}
    podSelector: {matchLabels: {app: prometheus}}`,
			want: []string{field + `allows traffic from pods matching app=prometheus in namespaces other than "team-a" (namespaceSelector kubernetes.io/metadata.name=monitoring)` + crossNamespaceAdvice},
		},
		{
			name: "contradictory pins match no namespace",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from:
  - namespaceSelector:
      matchLabels: {kubernetes.io/metadata.name: team-a}
      matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [team-b]}]`,
		},
		{
			name: "a malformed pin is ignored, leaving every namespace",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from:
  - namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: in, values: [team-a]}]}`,
			want: []string{every},
		},
		{
			name:      "a pin with an invalid value is not the own namespace",
			namespace: "team-a",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from:
  - namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [team-a, "-bad-"]}]}`,
			want: []string{every},
		},
	})
}
