package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/netguard/netguard/rules"
)

// The bypass corpus: every trick we know for getting broad connectivity past
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
type bypass struct {
	name string
	// spec is the NetworkPolicy's spec as raw JSON; obj, when set, replaces
	// the whole object.
	spec, obj string
	// rules are the violations a denial must name, in order; empty means the
	// policy must be allowed and open nothing.
	rules []string
	// code is the denial's result code: 403, or 422 for shapes the API server
	// rejects, or 400 for what netguard cannot read as the API server would.
	code int32
}

const (
	fromPods  = `{"podSelector":{"matchLabels":{"app":"frontend"}}}`
	tcp8080   = `"ports":[{"protocol":"TCP","port":8080}]`
	backendSe = `"podSelector":{"matchLabels":{"app":"backend"}}`
)

func ingressFrom(peers string) string {
	return `{` + backendSe + `,"policyTypes":["Ingress"],"ingress":[{"from":[` + peers + `],` + tcp8080 + `}]}`
}

func egressTo(peers string) string {
	return `{` + backendSe + `,"policyTypes":["Egress"],"egress":[{"to":[` + peers + `],` + tcp8080 + `}]}`
}

func nsSel(sel string) string { return `{"namespaceSelector":` + sel + `}` }

func bypassCorpus() []bypass {
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
	return []bypass{
		// Addresses: any ipBlock crosses the namespace boundary.
		{name: "0.0.0.0/0", spec: ingressFrom(`{"ipBlock":{"cidr":"0.0.0.0/0"}}`), rules: []string{ipIn}, code: 403},
		{name: "0.0.0.0/0 split in halves", spec: ingressFrom(`{"ipBlock":{"cidr":"0.0.0.0/1"}},{"ipBlock":{"cidr":"128.0.0.0/1"}}`), rules: []string{ipIn}, code: 403},
		{name: "0.0.0.0/0 split across rules", spec: `{` + backendSe + `,"ingress":[{"from":[{"ipBlock":{"cidr":"0.0.0.0/1"}}]},{"from":[{"ipBlock":{"cidr":"128.0.0.0/1"}}]}]}`, rules: []string{ipIn}, code: 403},
		{name: "0.0.0.0/0 with except", spec: ingressFrom(`{"ipBlock":{"cidr":"0.0.0.0/0","except":["10.0.0.0/8"]}}`), rules: []string{ipIn}, code: 403},
		{name: "a host route", spec: egressTo(`{"ipBlock":{"cidr":"169.254.169.254/32"}}`), rules: []string{ipOut}, code: 403},
		{name: "::/0", spec: egressTo(`{"ipBlock":{"cidr":"::/0"}}`), rules: []string{ipOut}, code: 403},
		{name: "IPv4-mapped IPv6", spec: egressTo(`{"ipBlock":{"cidr":"::ffff:0:0/96"}}`), rules: []string{ipOut}, code: 403},
		{name: "IPv4-mapped IPv6, dotted", spec: ingressFrom(`{"ipBlock":{"cidr":"::ffff:0.0.0.0/96"}}`), rules: []string{ipIn}, code: 403},
		{name: "host bits set", spec: egressTo(`{"ipBlock":{"cidr":"8.8.8.8/0"}}`), rules: []string{ipOut}, code: 403},
		{name: "except everything", spec: egressTo(`{"ipBlock":{"cidr":"10.0.0.0/8","except":["10.0.0.0/8"]}}`), rules: []string{ipOut, malformed}, code: 422},

		// Namespaces: only a pin to the own namespace by name stays inside.
		{name: "namespaceSelector {}", spec: ingressFrom(nsSel(`{}`)), rules: []string{otherIn}, code: 403},
		{name: "namespaceSelector {} with podSelector {}", spec: ingressFrom(`{"namespaceSelector":{},"podSelector":{}}`), rules: []string{otherIn}, code: 403},
		{name: "NotIn the own namespace", spec: ingressFrom(nsSel(`{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"NotIn","values":["team"]}]}`)), rules: []string{otherIn}, code: 403},
		{name: "name Exists", spec: ingressFrom(nsSel(`{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"Exists"}]}`)), rules: []string{otherIn}, code: 403},
		{name: "DoesNotExist", spec: egressTo(nsSel(`{"matchExpressions":[{"key":"quarantine","operator":"DoesNotExist"}]}`)), rules: []string{otherOut}, code: 403},
		{name: "a label other than the name", spec: ingressFrom(nsSel(`{"matchLabels":{"team":"a"}}`)), rules: []string{otherIn}, code: 403},
		{name: "the name label of another namespace", spec: ingressFrom(nsSel(`{"matchLabels":{"kubernetes.io/metadata.name":"prod"}}`)), rules: []string{otherIn}, code: 403},
		{name: "In with two values, one the own", spec: ingressFrom(nsSel(`{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"In","values":["team","prod"]}]}`)), rules: []string{otherIn}, code: 403},
		{name: "the name key in another case", spec: ingressFrom(nsSel(`{"matchLabels":{"kubernetes.io/Metadata.name":"team"}}`)), rules: []string{otherIn}, code: 403},
		{name: "the name key with an invalid prefix", spec: ingressFrom(nsSel(`{"matchLabels":{"Kubernetes.io/metadata.name":"team"}}`)), rules: []string{otherIn, malformed}, code: 422},
		{name: "a pin plus a wider expression is still the pin", spec: ingressFrom(nsSel(`{"matchLabels":{"kubernetes.io/metadata.name":"team"},"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"In","values":["team","prod"]}]}`))},
		{name: "a pin by In with one value", spec: ingressFrom(nsSel(`{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"In","values":["team"]}]}`))},
		{name: "cluster DNS directly", spec: egressTo(`{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"kube-system"}},"podSelector":{"matchLabels":{"k8s-app":"kube-dns"}}}`), rules: []string{otherOut}, code: 403},

		// Peers and rules that mean "anything".
		{name: "rule without from", spec: `{` + backendSe + `,"ingress":[{` + tcp8080 + `}]}`, rules: []string{anyIn}, code: 403},
		{name: "from: []", spec: ingressFrom(``), rules: []string{anyIn}, code: 403},
		{name: "empty peer", spec: ingressFrom(`{}`), rules: []string{anyIn, malformed}, code: 422},
		{name: "peer with only an unknown field", spec: egressTo(`{"nodeSelector":{}}`), rules: []string{anyOut, malformed}, code: 422},
		{name: "egress rule without to", spec: `{` + backendSe + `,"policyTypes":["Egress"],"egress":[{}]}`, rules: []string{anyOut}, code: 403},
		{name: "egress rules and no policyTypes: Egress is implied", spec: `{` + backendSe + `,"egress":[{"to":[{"ipBlock":{"cidr":"0.0.0.0/0"}}]}]}`, rules: []string{ipOut}, code: 403},
		{name: "policyTypes: [] with egress rules", spec: `{` + backendSe + `,"policyTypes":[],"egress":[{"to":[{"ipBlock":{"cidr":"0.0.0.0/0"}}]}]}`, rules: []string{ipOut}, code: 403},
		{name: "one good rule and one open rule", spec: `{` + backendSe + `,"ingress":[{"from":[` + fromPods + `]},{}]}`, rules: []string{anyIn}, code: 403},

		// Rules a direction does not enforce allow nothing.
		{name: "egress to the internet with policyTypes [Ingress]", spec: `{` + backendSe + `,"policyTypes":["Ingress"],"ingress":[{"from":[` + fromPods + `]}],"egress":[{"to":[{"ipBlock":{"cidr":"0.0.0.0/0"}}]}]}`},
		{name: "ingress from anywhere with policyTypes [Egress]", spec: `{` + backendSe + `,"policyTypes":["Egress"],"ingress":[{}],"egress":[{"to":[` + fromPods + `]}]}`},

		// Ports: spellings the API server rejects are read as every port.
		{name: "port 0", spec: `{` + backendSe + `,"ingress":[{"from":[` + fromPods + `],"ports":[{"port":0}]}]}`, rules: []string{malformed}, code: 422},
		{name: "endPort below port", spec: `{` + backendSe + `,"ingress":[{"from":[` + fromPods + `],"ports":[{"port":8080,"endPort":1}]}]}`, rules: []string{malformed}, code: 422},
		{name: "protocol in lower case", spec: `{` + backendSe + `,"ingress":[{"from":[` + fromPods + `],"ports":[{"protocol":"tcp","port":8080}]}]}`, rules: []string{malformed}, code: 422},
		{name: "protocol ALL", spec: `{` + backendSe + `,"egress":[{"to":[` + fromPods + `],"ports":[{"protocol":"ALL"}]}]}`, rules: []string{malformed}, code: 422},
		{name: "a named port stays in the namespace", spec: `{` + backendSe + `,"ingress":[{"from":[` + fromPods + `],"ports":[{"port":"http"}]}]}`},
		{name: "every port, inside the namespace only", spec: `{` + backendSe + `,"ingress":[{"from":[{"podSelector":{}}]}]}`},

		// JSON spellings: read as the API server reads them.
		// A repeated array is decoded into the elements already there (Go's
		// decoder and the API server's alike): {} keeps the earlier from.
		{name: "duplicate key, an open rule last", obj: `{"metadata":{"name":"p","namespace":"team"},"spec":{` + backendSe + `,"ingress":[{"from":[` + fromPods + `]}],"ingress":[{}]}}`},
		{name: "duplicate key, a longer open list last", obj: `{"metadata":{"name":"p","namespace":"team"},"spec":{` + backendSe + `,"ingress":[{"from":[` + fromPods + `]}],"ingress":[{},{}]}}`, rules: []string{anyIn}, code: 403},
		{name: "duplicate key in another case", obj: `{"metadata":{"name":"p","namespace":"team"},"spec":{` + backendSe + `,"ingress":[{}],"Ingress":[{"from":[` + fromPods + `]}]}}`, rules: []string{anyIn}, code: 403},
		{name: "a field in another case is not the field", obj: `{"metadata":{"name":"p","namespace":"team"},"spec":{` + backendSe + `,"INGRESS":[{}]}}`},
		{name: "unknown fields are ignored", obj: `{"metadata":{"name":"p","namespace":"team"},"spec":{` + backendSe + `,"allowAll":true,"ingress":[{"from":[` + fromPods + `],"bypass":"yes"}]}}`},
		{name: "an object in another namespace", obj: `{"metadata":{"name":"p","namespace":"prod"},"spec":` + ingressFrom(nsSel(`{"matchLabels":{"kubernetes.io/metadata.name":"prod"}}`)) + `}`, code: 400},
		{name: "an object of another API version", obj: `{"apiVersion":"networking.k8s.io/v1beta1","kind":"NetworkPolicy","metadata":{"name":"p"},"spec":{}}`, code: 400},

		// Borrowing netguard's own identity for a policy.
		{name: "the managed-by label", obj: `{"metadata":{"name":"p","namespace":"team","labels":{"app.kubernetes.io/managed-by":"netguard"}},"spec":` + ingressFrom(nsSel(`{}`)) + `}`, code: 403},
		{name: "the default-deny's name", obj: `{"metadata":{"name":"netguard-default-deny","namespace":"team"},"spec":` + ingressFrom(nsSel(`{}`)) + `}`, code: 403},
		{name: "the managed-by label in another case is just a label", obj: `{"metadata":{"name":"p","namespace":"team","labels":{"app.kubernetes.io/managed-by":"Netguard"}},"spec":` + ingressFrom(nsSel(`{}`)) + `}`, rules: []string{otherIn}, code: 403},

		// And at managed level nothing raw passes, however narrow.
		{name: "managed level: a narrow policy", spec: ingressFrom(fromPods), rules: []string{raw}, code: 403},

		// Cost: a policy larger than netguard judges is denied, at every
		// level from baseline up, before anything else is computed.
		{name: "40,000 values in one In", spec: ingressFrom(`{"podSelector":{"matchExpressions":[{"key":"app","operator":"In","values":` + jsonValues("v", 40000) + `}]}}`), rules: []string{size}, code: 403},
		{name: "two namespace In lists of 80,000", spec: ingressFrom(nsSel(`{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"In","values":` + jsonValues("a", 80000) + `},{"key":"kubernetes.io/metadata.name","operator":"In","values":` + jsonValues("b", 80000) + `}]}`)), rules: []string{size}, code: 403},

		// At restricted, selectors are judged by what they can match.
		{name: "restricted level: every pod from every pod by DoesNotExist", spec: `{"podSelector":{"matchExpressions":[{"key":"no-such-label","operator":"DoesNotExist"}]},"ingress":[{"from":[{"podSelector":{"matchExpressions":[{"key":"no-such-label","operator":"DoesNotExist"}]}}],` + tcp8080 + `}]}`, rules: []string{allPodsIn}, code: 403},
		{name: "restricted level: x Exists and x DoesNotExist cover every pod", spec: `{"podSelector":{},"ingress":[{"from":[{"podSelector":{"matchExpressions":[{"key":"x","operator":"Exists"}]}},{"podSelector":{"matchExpressions":[{"key":"x","operator":"DoesNotExist"}]}}],` + tcp8080 + `}]}`, rules: []string{allPodsIn}, code: 403},
		{name: "restricted level: x In [a] and x NotIn [a] cover every pod", spec: `{"podSelector":{},"policyTypes":["Egress"],"egress":[{"to":[{"podSelector":{"matchExpressions":[{"key":"x","operator":"In","values":["a"]}]}},{"podSelector":{"matchExpressions":[{"key":"x","operator":"NotIn","values":["a"]}]}}],` + tcp8080 + `}]}`, rules: []string{allPodsOut}, code: 403},
		{name: "restricted level: 1024-port slices on different labels add up to every port", spec: portSlices(64), rules: []string{allPortsIn}, code: 403},
		{name: "restricted level: two 1024-port slices on different labels", spec: portSlices(2), rules: []string{widePortsIn}, code: 403},
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

// TestBypassCorpus runs every trick against the validator at baseline, or at
// the level its name starts with.
func TestBypassCorpus(t *testing.T) {
	v, _ := newValidator(testConfig(), map[string]map[string]string{
		"team":    nil,
		"managed": {rules.LabelEnforce: "managed"},
		"strict":  {rules.LabelEnforce: "restricted"},
	})
	for _, c := range bypassCorpus() {
		t.Run(c.name, func(t *testing.T) {
			ns := "team"
			switch {
			case strings.HasPrefix(c.name, "managed level"):
				ns = "managed"
			case strings.HasPrefix(c.name, "restricted level"):
				ns = "strict"
			}
			obj := c.obj
			if obj == "" {
				obj = `{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"p","namespace":"` + ns + `"},"spec":` + c.spec + `}`
			}
			if !json.Valid([]byte(obj)) {
				t.Fatalf("the case is not JSON: %s", obj)
			}
			resp := v.Handle(context.Background(), admissionRequest(npRequest(ns, []byte(obj))))
			if c.code == 0 {
				if !resp.Allowed {
					t.Fatalf("denied, want allowed: %+v", resp.Result)
				}
				opensNothing(t, ns, obj)
				return
			}
			if resp.Allowed || resp.Result == nil {
				t.Fatalf("allowed, want a %d denial naming %v", c.code, c.rules)
			}
			if resp.Result.Code != c.code {
				t.Errorf("code %d, want %d: %s", resp.Result.Code, c.code, resp.Result.Message)
			}
			msg := resp.Result.Message
			for _, id := range c.rules {
				if !strings.Contains(msg, "["+id+"]") {
					t.Errorf("the denial does not name %s: %s", id, msg)
				}
			}
			t.Log(msg)
		})
	}
}

// opensNothing decodes the policy as the API server would and proves, with
// the connectivity evaluator, that on top of the namespace baseline it lets
// no connection cross the namespace boundary, in either direction, except the
// baseline's own DNS.
func opensNothing(t *testing.T, ns, obj string) {
	t.Helper()
	np, err := decodeNetworkPolicy("object", []byte(obj))
	if err != nil {
		t.Fatal(err)
	}
	np.Namespace = ns
	policies := append(rules.NamespaceBaseline(ns, rules.BaselineOptions{}), np)
	e, err := rules.NewEvaluator(policies)
	if err != nil {
		t.Fatal(err)
	}
	named := []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	inside := []rules.Endpoint{
		{Namespace: ns, Name: "backend", Labels: map[string]string{"app": "backend"}, Ports: named},
		{Namespace: ns, Name: "frontend", Labels: map[string]string{"app": "frontend"}, Ports: named},
	}
	outside := []rules.Endpoint{
		{Namespace: "prod", Name: "client", Labels: map[string]string{"app": "frontend"}, NamespaceLabels: map[string]string{"team": "a"}, Ports: named},
		{Namespace: "kube-system", Name: "coredns", Labels: map[string]string{"k8s-app": "kube-dns"}, Ports: named},
		rules.ExternalEndpoint("8.8.8.8"),
		rules.ExternalEndpoint("10.1.2.3"),
		rules.ExternalEndpoint("2001:db8::1"),
		rules.ExternalEndpoint("::ffff:8.8.8.8"),
	}
	ports := []rules.Port{{Number: 8080, Protocol: corev1.ProtocolTCP}, {Number: 443, Protocol: corev1.ProtocolTCP}, {Number: 53, Protocol: corev1.ProtocolUDP}}
	for _, in := range inside {
		for _, out := range outside {
			for _, p := range ports {
				for _, v := range []rules.Verdict{e.Reach(in, out, p), e.Reach(out, in, p)} {
					if !v.Allowed {
						continue
					}
					if v.To.Name == "coredns" && p.Number == 53 && v.Egress.AllowedBy[0].Name == rules.AllowDNSPolicyName {
						continue // the baseline's DNS allowance
					}
					t.Errorf("%s -> %s on %s is open: %s", v.From, v.To, p, v.Reason())
				}
			}
		}
	}
}

// The corpus summary in docs/security.md lists every case by name.
func TestBypassCorpusIsDocumented(t *testing.T) {
	doc := readDoc(t, "security.md")
	for _, c := range bypassCorpus() {
		if !strings.Contains(doc, c.name) {
			t.Errorf("docs/security.md does not list the bypass %q", c.name)
		}
	}
}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
