package rules_test

import "testing"

const allPodsIngressMsg = `with spec.podSelector {} this lets every pod in namespace "team-a" accept traffic from every pod in it; select the server pods in spec.podSelector or the client pods in podSelector`

func TestIngressAllPodsFromAllPods(t *testing.T) {
	runCheckCases(t, "ingressAllPodsFromAllPods", []checkCase{
		{
			name: "allow same namespace",
			spec: `
podSelector: {}
ingress:
- from: [{podSelector: {}}]
  ports: [{port: 8080}]`,
			want: []string{"[ingressAllPodsFromAllPods] spec.ingress[0].from[0]: " + allPodsIngressMsg},
		},
		{
			name: "own namespace by name without podSelector",
			spec: `
podSelector: {}
ingress:
- from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: team-a}}}]
  ports: [{port: 8080}]`,
			want: []string{"[ingressAllPodsFromAllPods] spec.ingress[0].from[0]: " + allPodsIngressMsg},
		},
		{
			name: "a malformed subject selector selects more",
			spec: `
podSelector: {matchExpressions: [{key: app, operator: Equals, values: [web]}]}
ingress:
- from: [{podSelector: {}}]
  ports: [{port: 8080}]`,
			want: []string{"[ingressAllPodsFromAllPods] spec.ingress[0].from[0]: " + allPodsIngressMsg},
		},
		{
			name: "some servers",
			spec: `
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{podSelector: {}}]
  ports: [{port: 8080}]`,
		},
		{
			name: "some clients",
			spec: `
podSelector: {}
ingress:
- from: [{podSelector: {matchLabels: {app: prometheus}}}]
  ports: [{port: metrics}]`,
		},
	})
}
