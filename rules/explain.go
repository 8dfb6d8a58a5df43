package rules

// Explain traces one connection in the order a dataplane decides it: the
// source's egress, then the destination's ingress. For each side it lists
// every policy of the pod's namespace, whether it selects the pod for that
// direction (and why not), and for a selecting policy each rule: the peer
// and port that admitted the connection, or why every peer or port did not.
// It agrees with Reach, which a test checks over many connections.

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Explanation is the trace of one connection.
type Explanation struct {
	From    string    `json:"from"`
	To      string    `json:"to"`
	Port    string    `json:"port"`
	Allowed bool      `json:"allowed"`
	Egress  SideTrace `json:"egress"`
	Ingress SideTrace `json:"ingress"`
	verdict Verdict   // what Reach says, for Reason
}

// SideTrace is one direction: the source's egress or the destination's ingress.
type SideTrace struct {
	// Pod is the endpoint whose policies decide this side.
	Pod string `json:"pod"`
	// External is true for an address outside the pod network: no policy
	// applies to it.
	External bool `json:"external,omitempty"`
	// Restricted is true when a policy selects the pod for this direction.
	Restricted bool          `json:"restricted"`
	Allowed    bool          `json:"allowed"`
	Policies   []PolicyTrace `json:"policies"`
}

// PolicyTrace is one policy of the pod's namespace.
type PolicyTrace struct {
	Policy  string `json:"policy"`
	Selects bool   `json:"selects"`
	// NotSelected says why the policy does not apply to this side.
	NotSelected string      `json:"notSelected,omitempty"`
	Allowed     bool        `json:"allowed"`
	Rules       []RuleTrace `json:"rules,omitempty"`
}

// RuleTrace is one ingress or egress rule of a selecting policy.
type RuleTrace struct {
	// Field is the rule's path, "spec.egress[0]".
	Field   string `json:"field"`
	Allowed bool   `json:"allowed"`
	// Peer is the path of the peer that matched, or a note that the rule
	// has no peers (every peer); Port likewise for ports.
	Peer string `json:"peer,omitempty"`
	Port string `json:"port,omitempty"`
	// NotAllowed says why each peer or port did not match.
	NotAllowed []string `json:"notAllowed,omitempty"`
}

// Explain traces from -> to on port. Its Allowed equals Reach's.
func (e *Evaluator) Explain(from, to Endpoint, port Port) Explanation {
	port.Protocol = port.protocol()
	v := e.Reach(from, to, port)
	x := Explanation{From: from.String(), To: to.String(), Port: port.String(), verdict: v}
	x.Egress = e.traceSide(true, from, to, to, port)
	x.Ingress = e.traceSide(false, to, from, to, port)
	x.Allowed = x.Egress.Allowed && x.Ingress.Allowed
	return x
}

// Reason is Reach's one-line verdict.
func (x Explanation) Reason() string { return x.verdict.Reason() }

func (e *Evaluator) traceSide(egress bool, pod, peer, dst Endpoint, port Port) SideTrace {
	st := SideTrace{Pod: pod.String(), External: pod.External}
	if pod.External {
		st.Allowed = true
		return st
	}
	dir, ruleField := "Ingress", "spec.ingress"
	if egress {
		dir, ruleField = "Egress", "spec.egress"
	}
	podLabels := labels.Set(pod.Labels)
	for _, cp := range e.byNamespace[pod.Namespace] {
		pt := PolicyTrace{Policy: cp.ref.String()}
		applies := cp.ingress
		if egress {
			applies = cp.egress
		}
		switch {
		case !applies:
			pt.NotSelected = fmt.Sprintf("its policyTypes do not include %s", dir)
		case !cp.pods.Matches(podLabels):
			pt.NotSelected = fmt.Sprintf("spec.podSelector %s does not match %s's labels %s", selectorText(cp.pods), pod, labelsText(pod.Labels))
		default:
			pt.Selects = true
			st.Restricted = true
			rules := cp.inRules
			if egress {
				rules = cp.outRules
			}
			for i, r := range rules {
				rt := traceRule(fmt.Sprintf("%s[%d]", ruleField, i), egress, r, peer, dst, port)
				pt.Rules = append(pt.Rules, rt)
				if rt.Allowed {
					pt.Allowed = true
				}
			}
			if len(rules) == 0 {
				pt.Rules = []RuleTrace{{Field: ruleField, NotAllowed: []string{fmt.Sprintf("the policy has no %s rules: it denies every %s connection of the pods it selects", strings.ToLower(dir), strings.ToLower(dir))}}}
			}
		}
		if pt.Allowed {
			st.Allowed = true
		}
		st.Policies = append(st.Policies, pt)
	}
	if !st.Restricted {
		st.Allowed = true
	}
	return st
}

func traceRule(field string, egress bool, r compiledRule, peer, dst Endpoint, port Port) RuleTrace {
	rt := RuleTrace{Field: field}
	peerField := field + ".from"
	if egress {
		peerField = field + ".to"
	}
	peerOK := len(r.peers) == 0
	if peerOK {
		rt.Peer = peerField + " is empty: every peer"
	}
	for i, p := range r.peers {
		f := fmt.Sprintf("%s[%d]", peerField, i)
		if why := p.mismatch(peer); why != "" {
			rt.NotAllowed = append(rt.NotAllowed, f+": "+why)
			continue
		}
		rt.Peer, peerOK = f, true
		break
	}
	portOK := len(r.ports) == 0
	if portOK {
		rt.Port = field + ".ports is empty: every port"
	}
	for i, p := range r.ports {
		f := fmt.Sprintf("%s.ports[%d]", field, i)
		if why := portMismatch(p, dst, port); why != "" {
			rt.NotAllowed = append(rt.NotAllowed, f+": "+why)
			continue
		}
		rt.Port, portOK = f, true
		break
	}
	rt.Allowed = peerOK && portOK
	if rt.Allowed {
		rt.NotAllowed = nil
	}
	return rt
}

// mismatch says why p does not match e, "" when it does. It decides as
// compiledPeer.matches does.
func (p compiledPeer) mismatch(e Endpoint) string {
	if p.cidr != nil {
		if !e.External {
			return fmt.Sprintf("ipBlock %s matches addresses outside the pod network only, and %s is a pod", p.cidr, e)
		}
		addr, err := netip.ParseAddr(e.IP)
		if err != nil {
			return fmt.Sprintf("%q is not an IP address", e.IP)
		}
		addr = addr.Unmap()
		if !p.cidr.Contains(addr) {
			return fmt.Sprintf("ipBlock %s does not contain %s", p.cidr, addr)
		}
		for _, ex := range p.except {
			if ex.Contains(addr) {
				return fmt.Sprintf("ipBlock %s excepts %s, which contains %s", p.cidr, ex, addr)
			}
		}
		return ""
	}
	if e.External {
		return fmt.Sprintf("selects pods, and %s is outside the pod network", e)
	}
	if p.ns == nil {
		if e.Namespace != p.namespace {
			return fmt.Sprintf("without namespaceSelector it selects pods of namespace %s only, and %s is in %s", p.namespace, e, e.Namespace)
		}
	} else if !p.ns.Matches(e.namespaceLabels()) {
		return fmt.Sprintf("namespaceSelector %s does not match namespace %s's labels %s", selectorText(p.ns), e.Namespace, labelsText(e.namespaceLabels()))
	}
	if p.pods != nil && !p.pods.Matches(labels.Set(e.Labels)) {
		return fmt.Sprintf("podSelector %s does not match %s's labels %s", selectorText(p.pods), e, labelsText(e.Labels))
	}
	return ""
}

// portMismatch says why p does not match port at dst, "" when it does. It
// decides as portMatches does.
func portMismatch(p networkingv1.NetworkPolicyPort, dst Endpoint, port Port) string {
	proto := corev1.ProtocolTCP
	if p.Protocol != nil {
		proto = *p.Protocol
	}
	if proto != port.protocol() {
		return fmt.Sprintf("protocol %s, not %s", proto, port.protocol())
	}
	if p.Port == nil {
		return ""
	}
	if p.Port.Type == intstr.String {
		if dst.External {
			return fmt.Sprintf("named port %q resolves at a destination pod, and %s is outside the pod network", p.Port.StrVal, dst)
		}
		resolved, ok := ResolvePort(dst, p.Port.StrVal, proto)
		if !ok {
			return fmt.Sprintf("%s has no %s container port named %q", dst, proto, p.Port.StrVal)
		}
		if resolved.Number != port.Number {
			return fmt.Sprintf("named port %q is %d at %s, not %d", p.Port.StrVal, resolved.Number, dst, port.Number)
		}
		return ""
	}
	if p.EndPort != nil {
		if p.Port.IntVal <= port.Number && port.Number <= *p.EndPort {
			return ""
		}
		return fmt.Sprintf("range %d-%d does not contain %d", p.Port.IntVal, *p.EndPort, port.Number)
	}
	if p.Port.IntVal != port.Number {
		return fmt.Sprintf("port %d, not %d", p.Port.IntVal, port.Number)
	}
	return ""
}

func selectorText(s labels.Selector) string {
	if s.Empty() {
		return "{} (everything)"
	}
	return "{" + s.String() + "}"
}

func labelsText(l map[string]string) string {
	if len(l) == 0 {
		return "{} (none)"
	}
	return "{" + labels.Set(l).String() + "}"
}

// Write prints the trace for people, egress first.
func (x Explanation) Write(w *strings.Builder) {
	verdict := "denied"
	if x.Allowed {
		verdict = "allowed"
	}
	fmt.Fprintf(w, "%s -> %s on %s: %s\n", x.From, x.To, x.Port, verdict)
	side := func(n int, what string, st SideTrace) {
		fmt.Fprintf(w, "\n%d. %s of %s: ", n, what, st.Pod)
		switch {
		case st.External:
			fmt.Fprintf(w, "allowed (outside the pod network: no policy applies)\n")
			return
		case !st.Restricted:
			fmt.Fprintf(w, "allowed (no policy selects it for %s)\n", strings.ToLower(what))
		case st.Allowed:
			fmt.Fprintf(w, "allowed\n")
		default:
			fmt.Fprintf(w, "denied (policies select it, and no rule allows this connection)\n")
		}
		for _, pt := range st.Policies {
			if !pt.Selects {
				fmt.Fprintf(w, "   - %s does not select it: %s\n", pt.Policy, pt.NotSelected)
				continue
			}
			mark := "does not allow it"
			if pt.Allowed {
				mark = "allows it"
			}
			fmt.Fprintf(w, "   - %s selects it and %s\n", pt.Policy, mark)
			for _, rt := range pt.Rules {
				if rt.Allowed {
					fmt.Fprintf(w, "     %s allows it: peer %s, port %s\n", rt.Field, rt.Peer, rt.Port)
					continue
				}
				if !strings.Contains(rt.Field, "[") { // a policy without rules
					fmt.Fprintf(w, "     %s\n", strings.Join(rt.NotAllowed, "; "))
					continue
				}
				fmt.Fprintf(w, "     %s does not:\n", rt.Field)
				for _, why := range rt.NotAllowed {
					fmt.Fprintf(w, "       %s\n", why)
				}
			}
		}
	}
	side(1, "Egress", x.Egress)
	side(2, "Ingress", x.Ingress)
}
