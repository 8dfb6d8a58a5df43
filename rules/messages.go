package rules

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The wording of the checks' messages, in one place so that the voice stays
// one voice: what is allowed, where, and what to do instead. A message is
// an interface (the webhook denies with it, golden tests in webhook/ and
// cmd/netguard hold it): change a sentence here only with its tests. Which
// peers and ports a check reports is decided in its check_<id>.go file;
// nothing here decides.
//
// The limits of policySize word their own messages in limits.go, beside
// the limits they name.

// directionWords are the words messages use for a direction.
type directionWords struct {
	to       string // "from" or "to": traffic from/to a peer
	anyPeer  string // "any source" or "any destination"
	peerPods string // the pods a peer podSelector picks
}

func wordsFor(t networkingv1.PolicyType) directionWords {
	if t == networkingv1.PolicyTypeEgress {
		return directionWords{to: "to", anyPeer: "any destination", peerPods: "destination pods"}
	}
	return directionWords{to: "from", anyPeer: "any source", peerPods: "client pods"}
}

// namespaceWords names the policy's namespace in a message.
func namespaceWords(a *Analysis) string {
	if a.Namespace == "" {
		return "the policy's namespace"
	}
	return fmt.Sprintf("namespace %q", a.Namespace)
}

// anywhereMessage: ingressFromAnywhere, egressToAnywhere.
func anywhereMessage(t networkingv1.PolicyType) string {
	w := wordsFor(t)
	return fmt.Sprintf("allows traffic %s %s; select the %s with podSelector or use a NetworkProfile", w.to, w.anyPeer, w.peerPods)
}

// ipBlockMessage: ingressFromIPBlock, egressToIPBlock. union is every
// address of the ipBlock peers of direction d.
func ipBlockMessage(d *DirectionAnalysis, union AddressSet, p PeerAnalysis) string {
	w := wordsFor(d.Type)
	what := describeIPBlock(p)
	// Say when several blocks add up to a whole family, so that
	// 0.0.0.0/1 plus 128.0.0.0/1 reads like the 0.0.0.0/0 it is.
	mine := p.Addresses
	if union.AllIPv4() && !mine.AllIPv4() && !mine.Subtract(AllIPv6Addresses()).IsEmpty() {
		what += fmt.Sprintf(", and with the other ipBlocks in %s every IPv4 address", d.Field)
	}
	if union.AllIPv6() && !mine.AllIPv6() && !mine.Subtract(AllIPv4Addresses()).IsEmpty() {
		what += fmt.Sprintf(", and with the other ipBlocks in %s every IPv6 address", d.Field)
	}
	return fmt.Sprintf("allows traffic %s %s; IP addresses are outside the namespace and reserved for platform NetworkProfiles: use one instead", w.to, what)
}

func describeIPBlock(p PeerAnalysis) string {
	b := p.IPBlock
	if b == nil {
		return "IP addresses " + p.Addresses.String()
	}
	switch {
	case p.Addresses.AllIPv4() && p.Addresses.AllIPv6():
		return fmt.Sprintf("every IP address (cidr %q is not valid and counts as all)", b.CIDR)
	case p.Addresses.AllIPv4():
		return "every IPv4 address (" + b.CIDR + ")"
	case p.Addresses.AllIPv6():
		return "every IPv6 address (" + b.CIDR + ")"
	case len(b.Except) > 0:
		return b.CIDR + " except " + strings.Join(b.Except, ", ")
	}
	return b.CIDR
}

// otherNamespacesMessage: ingressFromOtherNamespaces,
// egressToOtherNamespaces, for a peer of class PeerAllNamespaces or
// PeerOtherNamespaces.
func otherNamespacesMessage(a *Analysis, t networkingv1.PolicyType, p PeerAnalysis) string {
	w := wordsFor(t)
	pods := "pods"
	if !p.Pods.MatchesAll() {
		pods = "pods matching " + p.Pods.String()
	}
	var where string
	switch {
	case p.Class == PeerAllNamespaces:
		where = "in every namespace"
	case a.Namespace == "":
		where = "in namespaces matching " + p.Namespaces.String() + ", which need not be the policy's own (it has no namespace)"
	default:
		where = fmt.Sprintf("in namespaces other than %q (namespaceSelector %s)", a.Namespace, p.Namespaces.String())
	}
	return fmt.Sprintf(
		"allows traffic %s %s %s; traffic across namespaces is reserved for platform NetworkProfiles: use one, or drop namespaceSelector to stay in %s",
		w.to, pods, where, namespaceWords(a))
}

// allPodsMessage: ingressAllPodsFromAllPods and egressAllPodsToAllPods, for
// spec.podSelector {} and a peer podSelector {}.
func allPodsMessage(a *Analysis, t networkingv1.PolicyType) string {
	ns := namespaceWords(a)
	if t == networkingv1.PolicyTypeEgress {
		return fmt.Sprintf(
			"with spec.podSelector {} this lets every pod in %s send traffic to every pod in it; select the client pods in spec.podSelector or the server pods in podSelector", ns)
	}
	return fmt.Sprintf(
		"with spec.podSelector {} this lets every pod in %s accept traffic from every pod in it; select the server pods in spec.podSelector or the client pods in podSelector", ns)
}

// allPodsUnlabeledMessage: the v1.1 AllPods checks, for a spec.podSelector
// and a peer that both match every pod without some labels. When both are
// {} it is allPodsMessage.
func allPodsUnlabeledMessage(a *Analysis, t networkingv1.PolicyType, p PeerAnalysis) string {
	if a.Subject.MatchesAll() && p.Pods.MatchesAll() {
		return allPodsMessage(a, t)
	}
	ns := namespaceWords(a)
	subject := "spec.podSelector {}"
	if !a.Subject.MatchesAll() {
		subject = fmt.Sprintf("spec.podSelector %q, which matches every pod without those labels,", a.Subject.String())
	}
	peer := "every pod in it"
	if !p.Pods.MatchesAll() {
		peer = fmt.Sprintf("every pod in it without the labels of podSelector %q", p.Pods.String())
	}
	fix := "; select pods by a label they carry (matchLabels, In or Exists) in spec.podSelector or in podSelector"
	if t == networkingv1.PolicyTypeEgress {
		return fmt.Sprintf("with %s this lets every pod in %s send traffic to %s, in effect every pod%s", subject, ns, peer, fix)
	}
	return fmt.Sprintf("with %s this lets every pod in %s accept traffic from %s, in effect every pod%s", subject, ns, peer, fix)
}

// allPortsMessage: ingressAllPorts, egressAllPorts; a describe function of
// portBreadthViolations.
func allPortsMessage(scope string, _ PortSet, ps []corev1.Protocol) string {
	what := "every " + joinProtocols(ps) + " port"
	if len(ps) == len(portProtocols) {
		what = "every port of every protocol"
	}
	switch scope {
	case "rule":
		return "allows " + what + "; list the ports in use under ports"
	case "entry":
		return "allows " + what + "; set port to the port in use (with endPort for a short range)"
	case "entries":
		return "together these entries allow " + what + "; list only the ports in use"
	}
	return scope + ", this peer may use " + what + "; list only the ports in use"
}

// widePortRangeMessage: ingressWidePortRange, egressWidePortRange; a
// describe function of portBreadthViolations.
func widePortRangeMessage(scope string, set PortSet, ps []corev1.Protocol) string {
	var parts []string
	for _, p := range ps {
		pp := set.Protocol(p)
		parts = append(parts, fmt.Sprintf("%d %s ports (%s)", pp.Count(), p, shortPorts(pp)))
	}
	what := strings.Join(parts, " and ")
	advice := fmt.Sprintf("; at level restricted a peer may use at most %d ports per protocol: list the ports in use, or run the workload in a namespace at level baseline", restrictedMaxPorts)
	switch scope {
	case "rule", "entry":
		return "allows " + what + advice
	case "entries":
		return "together these entries allow " + what + advice
	}
	return scope + ", this peer may use " + what + advice
}

// malformedMessage: malformedPolicy, for one field error of the analysis.
func malformedMessage(e *field.Error) string {
	return lowerFirst(e.ErrorBody()) + "; the API server rejects this, fix it"
}

// rawNetworkPolicyMessage: rawNetworkPolicy.
const rawNetworkPolicyMessage = "only platform identities and netguard's generated policies may write NetworkPolicies in this namespace; declare connections with netguard annotations and NetworkProfiles instead"

// joinProtocols is "TCP", "TCP and UDP", "TCP, UDP and SCTP".
func joinProtocols(ps []corev1.Protocol) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = string(p)
	}
	return joinWords(names)
}

// joinWords is "a", "a and b", "a, b and c"; after five words the rest are
// counted.
func joinWords(words []string) string {
	const shown = 5
	if len(words) > shown+1 {
		words = append(slices.Clone(words[:shown]), fmt.Sprintf("%d more", len(words)-shown))
	}
	if len(words) <= 1 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// shortPorts lists at most a few ranges of a protocol's ports.
func shortPorts(p ProtocolPorts) string {
	const shown = 4
	var parts []string
	for i, r := range p.Ranges {
		if i == shown {
			parts = append(parts, fmt.Sprintf("and %d more", len(p.Ranges)-shown))
			break
		}
		parts = append(parts, r.String())
	}
	return strings.Join(parts, ", ")
}

// lowerFirst lowercases the first letter, for messages built from
// apimachinery's field errors ("Invalid value: ...").
func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}
