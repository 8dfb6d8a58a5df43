package webhooktest

import (
	"fmt"
	"strconv"
	"strings"
)

// The bypass corpus (webhook/bypass_test.go, and the e2e differential test
// of the admission policies): every trick we know for getting broad connectivity past
// the baseline level (the default). Each is sent as raw JSON, as a client
// could spell it, and must be denied with the named rules, or be allowed and
// shown to open nothing beyond the policy's own namespace on top of the
// namespace baseline (default-deny plus DNS).
//
// Most tricks cannot reach netguard through the API server at all: it decodes
// the request case-sensitively (last duplicate key wins, unknown fields
// dropped), validates the object, and sends netguard its own re-encoding.
// netguard reads the same way, so a direct caller cannot get a different
// verdict either.
type Bypass struct {
	Name string
	// Spec is the NetworkPolicy's spec as raw JSON; obj, when set, replaces
	// the whole object.
	Spec, Obj string
	// Rules are the violations a denial must name, in order; empty means the
	// policy must be allowed and open nothing.
	Rules []string
	// Code is the denial's result code: 403, or 422 for shapes the API server
	// rejects, or 400 for what netguard cannot read as the API server would.
	Code int32
}

const (
	// FromPods is a peer: the frontend pods.
	FromPods  = `{"podSelector":{"matchLabels":{"app":"frontend"}}}`
	tcp8080   = `"ports":[{"protocol":"TCP","port":8080}]`
	backendSe = `"podSelector":{"matchLabels":{"app":"backend"}}`
)

// IngressFrom is a spec: backend pods accept TCP 8080 from peers.
func IngressFrom(peers string) string {
	return `{` + backendSe + `,"policyTypes":["Ingress"],"ingress":[{"from":[` + peers + `],` + tcp8080 + `}]}`
}

// EgressTo is a spec: backend pods send TCP 8080 to peers.
func EgressTo(peers string) string {
	return `{` + backendSe + `,"policyTypes":["Egress"],"egress":[{"to":[` + peers + `],` + tcp8080 + `}]}`
}

// NsSel is a peer of the namespaceSelector sel.
func NsSel(sel string) string { return `{"namespaceSelector":` + sel + `}` }

// BypassCorpus returns the cases. A case whose name starts with "managed
// level" or "restricted level" is meant for a namespace at that level, the
// others for one at baseline.
func BypassCorpus() []Bypass {
	const (
		ipIn, ipOut   = "ingressFromIPBlock", "egressToIPBlock"
		otherIn       = "ingressFromOtherNamespaces"
		otherOut      = "egressToOtherNamespaces"
		anyIn, anyOut = "ingressFromAnywhere", "egressToAnywhere"
		malformed     = "malformedPolicy"
		raw           = "rawNetworkPolicy"
		size          = "policySize"
		allPodsIn     = "ingressAllPodsFromAllPods"
		allPodsOut    = "egressAllPodsToAllPods"
		allPortsIn    = "ingressAllPorts"
		widePortsIn   = "ingressWidePortRange"
	)
	return []Bypass{
		// Addresses: any ipBlock crosses the namespace boundary.
		{Name: "0.0.0.0/0", Spec: IngressFrom(`{"ipBlock":{"cidr":"0.0.0.0/0"}}`), Rules: []string{ipIn}, Code: 403},
		{Name: "0.0.0.0/0 split in halves", Spec: IngressFrom(`{"ipBlock":{"cidr":"0.0.0.0/1"}},{"ipBlock":{"cidr":"128.0.0.0/1"}}`), Rules: []string{ipIn}, Code: 403},
		{Name: "0.0.0.0/0 split across rules", Spec: `{` + backendSe + `,"ingress":[{"from":[{"ipBlock":{"cidr":"0.0.0.0/1"}}]},{"from":[{"ipBlock":{"cidr":"128.0.0.0/1"}}]}]}`, Rules: []string{ipIn}, Code: 403},
		{Name: "0.0.0.0/0 with except", Spec: IngressFrom(`{"ipBlock":{"cidr":"0.0.0.0/0","except":["10.0.0.0/8"]}}`), Rules: []string{ipIn}, Code: 403},
		{Name: "a host route", Spec: EgressTo(`{"ipBlock":{"cidr":"169.254.169.254/32"}}`), Rules: []string{ipOut}, Code: 403},
		{Name: "::/0", Spec: EgressTo(`{"ipBlock":{"cidr":"::/0"}}`), Rules: []string{ipOut}, Code: 403},
		{Name: "IPv4-mapped IPv6", Spec: EgressTo(`{"ipBlock":{"cidr":"::ffff:0:0/96"}}`), Rules: []string{ipOut}, Code: 403},
		{Name: "IPv4-mapped IPv6, dotted", Spec: IngressFrom(`{"ipBlock":{"cidr":"::ffff:0.0.0.0/96"}}`), Rules: []string{ipIn}, Code: 403},
		{Name: "host bits set", Spec: EgressTo(`{"ipBlock":{"cidr":"8.8.8.8/0"}}`), Rules: []string{ipOut}, Code: 403},
		{Name: "except everything", Spec: EgressTo(`{"ipBlock":{"cidr":"10.0.0.0/8","except":["10.0.0.0/8"]}}`), Rules: []string{ipOut, malformed}, Code: 422},

		// Namespaces: only a pin to the own namespace by name stays inside.
		{Name: "namespaceSelector {}", Spec: IngressFrom(NsSel(`{}`)), Rules: []string{otherIn}, Code: 403},
		{Name: "namespaceSelector {} with podSelector {}", Spec: IngressFrom(`{"namespaceSelector":{},"podSelector":{}}`), Rules: []string{otherIn}, Code: 403},
		{Name: "NotIn the own namespace", Spec: IngressFrom(NsSel(`{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"NotIn","values":["team"]}]}`)), Rules: []string{otherIn}, Code: 403},
		{Name: "name Exists", Spec: IngressFrom(NsSel(`{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"Exists"}]}`)), Rules: []string{otherIn}, Code: 403},
		{Name: "DoesNotExist", Spec: EgressTo(NsSel(`{"matchExpressions":[{"key":"quarantine","operator":"DoesNotExist"}]}`)), Rules: []string{otherOut}, Code: 403},
		{Name: "a label other than the name", Spec: IngressFrom(NsSel(`{"matchLabels":{"team":"a"}}`)), Rules: []string{otherIn}, Code: 403},
		{Name: "the name label of another namespace", Spec: IngressFrom(NsSel(`{"matchLabels":{"kubernetes.io/metadata.name":"prod"}}`)), Rules: []string{otherIn}, Code: 403},
		{Name: "In with two values, one the own", Spec: IngressFrom(NsSel(`{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"In","values":["team","prod"]}]}`)), Rules: []string{otherIn}, Code: 403},
		{Name: "the name key in another case", Spec: IngressFrom(NsSel(`{"matchLabels":{"kubernetes.io/Metadata.name":"team"}}`)), Rules: []string{otherIn}, Code: 403},
		{Name: "the name key with an invalid prefix", Spec: IngressFrom(NsSel(`{"matchLabels":{"Kubernetes.io/metadata.name":"team"}}`)), Rules: []string{otherIn, malformed}, Code: 422},
		{Name: "a pin plus a wider expression is still the pin", Spec: IngressFrom(NsSel(`{"matchLabels":{"kubernetes.io/metadata.name":"team"},"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"In","values":["team","prod"]}]}`))},
		{Name: "a pin by In with one value", Spec: IngressFrom(NsSel(`{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"In","values":["team"]}]}`))},
		{Name: "cluster DNS directly", Spec: EgressTo(`{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"kube-system"}},"podSelector":{"matchLabels":{"k8s-app":"kube-dns"}}}`), Rules: []string{otherOut}, Code: 403},

		// Peers and rules that mean "anything".
		{Name: "rule without from", Spec: `{` + backendSe + `,"ingress":[{` + tcp8080 + `}]}`, Rules: []string{anyIn}, Code: 403},
		{Name: "from: []", Spec: IngressFrom(``), Rules: []string{anyIn}, Code: 403},
		{Name: "empty peer", Spec: IngressFrom(`{}`), Rules: []string{anyIn, malformed}, Code: 422},
		{Name: "peer with only an unknown field", Spec: EgressTo(`{"nodeSelector":{}}`), Rules: []string{anyOut, malformed}, Code: 422},
		{Name: "egress rule without to", Spec: `{` + backendSe + `,"policyTypes":["Egress"],"egress":[{}]}`, Rules: []string{anyOut}, Code: 403},
		{Name: "egress rules and no policyTypes: Egress is implied", Spec: `{` + backendSe + `,"egress":[{"to":[{"ipBlock":{"cidr":"0.0.0.0/0"}}]}]}`, Rules: []string{ipOut}, Code: 403},
		{Name: "policyTypes: [] with egress rules", Spec: `{` + backendSe + `,"policyTypes":[],"egress":[{"to":[{"ipBlock":{"cidr":"0.0.0.0/0"}}]}]}`, Rules: []string{ipOut}, Code: 403},
		{Name: "one good rule and one open rule", Spec: `{` + backendSe + `,"ingress":[{"from":[` + FromPods + `]},{}]}`, Rules: []string{anyIn}, Code: 403},

		// Rules a direction does not enforce allow nothing.
		{Name: "egress to the internet with policyTypes [Ingress]", Spec: `{` + backendSe + `,"policyTypes":["Ingress"],"ingress":[{"from":[` + FromPods + `]}],"egress":[{"to":[{"ipBlock":{"cidr":"0.0.0.0/0"}}]}]}`},
		{Name: "ingress from anywhere with policyTypes [Egress]", Spec: `{` + backendSe + `,"policyTypes":["Egress"],"ingress":[{}],"egress":[{"to":[` + FromPods + `]}]}`},

		// Ports: spellings the API server rejects are read as every port.
		{Name: "port 0", Spec: `{` + backendSe + `,"ingress":[{"from":[` + FromPods + `],"ports":[{"port":0}]}]}`, Rules: []string{malformed}, Code: 422},
		{Name: "endPort below port", Spec: `{` + backendSe + `,"ingress":[{"from":[` + FromPods + `],"ports":[{"port":8080,"endPort":1}]}]}`, Rules: []string{malformed}, Code: 422},
		{Name: "protocol in lower case", Spec: `{` + backendSe + `,"ingress":[{"from":[` + FromPods + `],"ports":[{"protocol":"tcp","port":8080}]}]}`, Rules: []string{malformed}, Code: 422},
		{Name: "protocol ALL", Spec: `{` + backendSe + `,"egress":[{"to":[` + FromPods + `],"ports":[{"protocol":"ALL"}]}]}`, Rules: []string{malformed}, Code: 422},
		{Name: "a named port stays in the namespace", Spec: `{` + backendSe + `,"ingress":[{"from":[` + FromPods + `],"ports":[{"port":"http"}]}]}`},
		{Name: "every port, inside the namespace only", Spec: `{` + backendSe + `,"ingress":[{"from":[{"podSelector":{}}]}]}`},

		// JSON spellings: read as the API server reads them.
		// A repeated array is decoded into the elements already there (Go's
		// decoder and the API server's alike): {} keeps the earlier from.
		{Name: "duplicate key, an open rule last", Obj: `{"metadata":{"name":"p","namespace":"team"},"spec":{` + backendSe + `,"ingress":[{"from":[` + FromPods + `]}],"ingress":[{}]}}`},
		{Name: "duplicate key, a longer open list last", Obj: `{"metadata":{"name":"p","namespace":"team"},"spec":{` + backendSe + `,"ingress":[{"from":[` + FromPods + `]}],"ingress":[{},{}]}}`, Rules: []string{anyIn}, Code: 403},
		{Name: "duplicate key in another case", Obj: `{"metadata":{"name":"p","namespace":"team"},"spec":{` + backendSe + `,"ingress":[{}],"Ingress":[{"from":[` + FromPods + `]}]}}`, Rules: []string{anyIn}, Code: 403},
		{Name: "a field in another case is not the field", Obj: `{"metadata":{"name":"p","namespace":"team"},"spec":{` + backendSe + `,"INGRESS":[{}]}}`},
		{Name: "unknown fields are ignored", Obj: `{"metadata":{"name":"p","namespace":"team"},"spec":{` + backendSe + `,"allowAll":true,"ingress":[{"from":[` + FromPods + `],"bypass":"yes"}]}}`},
		{Name: "an object in another namespace", Obj: `{"metadata":{"name":"p","namespace":"prod"},"spec":` + IngressFrom(NsSel(`{"matchLabels":{"kubernetes.io/metadata.name":"prod"}}`)) + `}`, Code: 400},
		{Name: "an object of another API version", Obj: `{"apiVersion":"networking.k8s.io/v1beta1","kind":"NetworkPolicy","metadata":{"name":"p"},"spec":{}}`, Code: 400},

		// Borrowing netguard's own identity for a policy.
		{Name: "the managed-by label", Obj: `{"metadata":{"name":"p","namespace":"team","labels":{"app.kubernetes.io/managed-by":"netguard"}},"spec":` + IngressFrom(NsSel(`{}`)) + `}`, Code: 403},
		{Name: "the default-deny's name", Obj: `{"metadata":{"name":"netguard-default-deny","namespace":"team"},"spec":` + IngressFrom(NsSel(`{}`)) + `}`, Code: 403},
		{Name: "the managed-by label in another case is just a label", Obj: `{"metadata":{"name":"p","namespace":"team","labels":{"app.kubernetes.io/managed-by":"Netguard"}},"spec":` + IngressFrom(NsSel(`{}`)) + `}`, Rules: []string{otherIn}, Code: 403},

		// And at managed level nothing raw passes, however narrow.
		{Name: "managed level: a narrow policy", Spec: IngressFrom(FromPods), Rules: []string{raw}, Code: 403},

		// Cost: a policy larger than netguard judges is denied, at every
		// level from baseline up, before anything else is computed.
		{Name: "40,000 values in one In", Spec: IngressFrom(`{"podSelector":{"matchExpressions":[{"key":"app","operator":"In","values":` + jsonValues("v", 40000) + `}]}}`), Rules: []string{size}, Code: 403},
		{Name: "two namespace In lists of 80,000", Spec: IngressFrom(NsSel(`{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"In","values":` + jsonValues("a", 80000) + `},{"key":"kubernetes.io/metadata.name","operator":"In","values":` + jsonValues("b", 80000) + `}]}`)), Rules: []string{size}, Code: 403},

		// At restricted, selectors are judged by what they can match.
		{Name: "restricted level: every pod from every pod by DoesNotExist", Spec: `{"podSelector":{"matchExpressions":[{"key":"no-such-label","operator":"DoesNotExist"}]},"ingress":[{"from":[{"podSelector":{"matchExpressions":[{"key":"no-such-label","operator":"DoesNotExist"}]}}],` + tcp8080 + `}]}`, Rules: []string{allPodsIn}, Code: 403},
		{Name: "restricted level: x Exists and x DoesNotExist cover every pod", Spec: `{"podSelector":{},"ingress":[{"from":[{"podSelector":{"matchExpressions":[{"key":"x","operator":"Exists"}]}},{"podSelector":{"matchExpressions":[{"key":"x","operator":"DoesNotExist"}]}}],` + tcp8080 + `}]}`, Rules: []string{allPodsIn}, Code: 403},
		{Name: "restricted level: x In [a] and x NotIn [a] cover every pod", Spec: `{"podSelector":{},"policyTypes":["Egress"],"egress":[{"to":[{"podSelector":{"matchExpressions":[{"key":"x","operator":"In","values":["a"]}]}},{"podSelector":{"matchExpressions":[{"key":"x","operator":"NotIn","values":["a"]}]}}],` + tcp8080 + `}]}`, Rules: []string{allPodsOut}, Code: 403},
		{Name: "restricted level: 1024-port slices on different labels add up to every port", Spec: portSlices(64), Rules: []string{allPortsIn}, Code: 403},
		{Name: "restricted level: two 1024-port slices on different labels", Spec: portSlices(2), Rules: []string{widePortsIn}, Code: 403},
	}
}

// jsonValues is a JSON list of n label values.
func jsonValues(prefix string, n int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + prefix + strconv.Itoa(i) + `"`)
	}
	b.WriteByte(']')
	return b.String()
}

// portSlices is n rules, rule i from the pods labelled l<i>=y on the i-th
// slice of 1024 ports: a pod labelled with all of them gets every slice.
func portSlices(n int) string {
	var b strings.Builder
	b.WriteString(`{` + backendSe + `,"ingress":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"from":[{"podSelector":{"matchLabels":{"l%d":"y"}}}],"ports":[{"port":%d,"endPort":%d}]}`, i, 1+i*1024, min(65535, (i+1)*1024))
	}
	b.WriteString(`]}`)
	return b.String()
}
