package rules

// The connectivity evaluator answers "may A open a connection to B on this
// port?" under NetworkPolicy semantics, without a cluster:
//
//   - A policy's policyTypes default to [Ingress], plus Egress when it has
//     egress rules.
//   - A pod that no policy selects for a direction is unrestricted in that
//     direction; once one selects it, only the union of all those policies'
//     rules is allowed.
//   - A connection needs both the source's egress and the destination's
//     ingress to allow it.
//   - A rule with no peers matches every peer; a rule with no ports matches
//     every port. A port with no number matches every port of its protocol
//     (TCP when unset); endPort makes a range.
//   - A named port is resolved at the destination pod's container ports (for
//     egress too), so it never matches an address outside the pod network.
//   - A peer's podSelector alone means pods of the policy's namespace;
//     namespaceSelector alone means all pods of the matching namespaces; both
//     means the matching pods of the matching namespaces.
//   - ipBlock (with except) matches addresses outside the pod network only.
//     Whether it matches pod IPs is left to each network plugin by the API, so
//     the evaluator does not guess.

import (
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Endpoint is one side of a connection: a pod, or an address outside the pod
// network (External).
type Endpoint struct {
	Namespace string
	Name      string
	Labels    map[string]string
	// NamespaceLabels are the labels of the pod's namespace. The API server
	// always sets kubernetes.io/metadata.name, so the evaluator adds it when
	// missing.
	NamespaceLabels map[string]string
	IP              string
	// Ports are the pod's container ports; named ports in policies resolve
	// against them.
	Ports []corev1.ContainerPort
	// External marks an address outside the pod network: no policy selects
	// it, and only rules without peers or with a matching ipBlock match it.
	External bool
}

// ExternalEndpoint is an address outside the pod network.
func ExternalEndpoint(ip string) Endpoint { return Endpoint{IP: ip, External: true} }

// String names the endpoint: "namespace/name", or the IP of an external one.
func (e Endpoint) String() string {
	if e.External {
		return e.IP
	}
	return e.Namespace + "/" + e.Name
}

func (e Endpoint) namespaceLabels() labels.Set {
	set := labels.Set{}
	for k, v := range e.NamespaceLabels {
		set[k] = v
	}
	set[corev1.LabelMetadataName] = e.Namespace
	return set
}

// Port is a destination port and protocol. An empty Protocol means TCP.
type Port struct {
	Number   int32
	Protocol corev1.Protocol
}

func (p Port) protocol() corev1.Protocol { return defaultTCP(p.Protocol) }

// defaultTCP applies the API's default protocol.
func defaultTCP(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// String renders the port as "8080/TCP".
func (p Port) String() string { return strconv.Itoa(int(p.Number)) + "/" + string(p.protocol()) }

// ParsePort reads "8080", "8080/udp" or "53/UDP". A port name is not a Port:
// resolve it at the destination with ResolvePort.
func ParsePort(s string) (Port, error) {
	num, proto, hasProto := strings.Cut(s, "/")
	p := Port{Protocol: corev1.ProtocolTCP}
	if hasProto {
		switch strings.ToUpper(proto) {
		case "TCP":
		case "UDP":
			p.Protocol = corev1.ProtocolUDP
		case "SCTP":
			p.Protocol = corev1.ProtocolSCTP
		default:
			return Port{}, fmt.Errorf("protocol %q must be TCP, UDP or SCTP", proto)
		}
	}
	n, ok := portNumber(num)
	if !ok {
		return Port{}, fmt.Errorf("port %q must be 1-65535", num)
	}
	p.Number = n
	return p, nil
}

// ResolvePort finds the number of the container port called name with the
// given protocol (TCP when empty) on the destination pod.
func ResolvePort(to Endpoint, name string, protocol corev1.Protocol) (Port, bool) {
	want := defaultTCP(protocol)
	for _, cp := range to.Ports {
		if cp.Name == name && defaultTCP(cp.Protocol) == want {
			return Port{Number: cp.ContainerPort, Protocol: want}, true
		}
	}
	return Port{}, false
}

// PolicyRef names a NetworkPolicy.
type PolicyRef struct{ Namespace, Name string }

func (r PolicyRef) String() string { return r.Namespace + "/" + r.Name }

// Side is the verdict of one direction: the source's egress or the
// destination's ingress.
type Side struct {
	// Restricted is true when at least one policy selects the pod for this
	// direction. An unrestricted side allows every connection.
	Restricted bool
	Allowed    bool
	// SelectedBy lists the policies that select the pod for this direction,
	// sorted.
	SelectedBy []PolicyRef
	// AllowedBy lists the policies with a rule that admits the connection,
	// sorted.
	AllowedBy []PolicyRef
}

// Verdict says whether a connection is allowed and which policies decided it.
type Verdict struct {
	From, To Endpoint
	Port     Port
	Allowed  bool
	// Egress is the source's side; an external source is never restricted.
	Egress Side
	// Ingress is the destination's side; an external destination is never
	// restricted.
	Ingress Side
}

// Reason explains the verdict in one line, naming the deciding policies.
func (v Verdict) Reason() string {
	var parts []string
	if !v.Allowed {
		if v.Egress.Restricted && !v.Egress.Allowed {
			parts = append(parts, fmt.Sprintf("egress of %s is restricted by %s and none of them allows %s on %s", v.From, refList(v.Egress.SelectedBy), v.To, v.Port))
		}
		if v.Ingress.Restricted && !v.Ingress.Allowed {
			parts = append(parts, fmt.Sprintf("ingress of %s is restricted by %s and none of them allows %s on %s", v.To, refList(v.Ingress.SelectedBy), v.From, v.Port))
		}
		return "denied: " + strings.Join(parts, "; ")
	}
	side := func(what string, e Endpoint, s Side) string {
		if e.External {
			return fmt.Sprintf("%s of %s is outside the pod network", what, e)
		}
		if !s.Restricted {
			return fmt.Sprintf("%s of %s is not restricted by any policy", what, e)
		}
		return fmt.Sprintf("%s of %s allowed by %s", what, e, refList(s.AllowedBy))
	}
	return "allowed: " + side("egress", v.From, v.Egress) + "; " + side("ingress", v.To, v.Ingress)
}

func refList(refs []PolicyRef) string {
	s := make([]string, len(refs))
	for i, r := range refs {
		s[i] = r.String()
	}
	return strings.Join(s, ", ")
}

// Evaluator holds NetworkPolicies prepared for evaluation.
type Evaluator struct {
	byNamespace map[string][]compiledPolicy
}

type compiledPolicy struct {
	ref      PolicyRef
	pods     labels.Selector
	ingress  bool
	egress   bool
	inRules  []compiledRule
	outRules []compiledRule
}

type compiledRule struct {
	peers []compiledPeer // empty: every peer
	ports []networkingv1.NetworkPolicyPort
}

type compiledPeer struct {
	namespace string          // the policy's namespace, for a peer without namespaceSelector
	ns        labels.Selector // nil: the policy's namespace only
	pods      labels.Selector // nil: every pod
	cidr      *netip.Prefix
	except    []netip.Prefix
}

// NewEvaluator prepares policies. It fails on a selector or CIDR that the API
// server would reject, naming the policy and field.
func NewEvaluator(policies []*networkingv1.NetworkPolicy) (*Evaluator, error) {
	e := &Evaluator{byNamespace: map[string][]compiledPolicy{}}
	for _, np := range policies {
		if np == nil {
			continue
		}
		cp, err := compilePolicy(np)
		if err != nil {
			return nil, fmt.Errorf("networkpolicy %q in namespace %q: %w", np.Name, np.Namespace, err)
		}
		e.byNamespace[np.Namespace] = append(e.byNamespace[np.Namespace], cp)
	}
	return e, nil
}

func compilePolicy(np *networkingv1.NetworkPolicy) (compiledPolicy, error) {
	cp := compiledPolicy{ref: PolicyRef{Namespace: np.Namespace, Name: np.Name}}
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		return cp, fmt.Errorf("spec.podSelector: %w", err)
	}
	cp.pods = sel
	if len(np.Spec.PolicyTypes) == 0 {
		cp.ingress = true
		cp.egress = len(np.Spec.Egress) > 0
	}
	for _, t := range np.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			cp.ingress = true
		case networkingv1.PolicyTypeEgress:
			cp.egress = true
		}
	}
	for i, r := range np.Spec.Ingress {
		cr, err := compileRule(np.Namespace, r.From, r.Ports)
		if err != nil {
			return cp, fmt.Errorf("spec.ingress[%d].from%s", i, err)
		}
		cp.inRules = append(cp.inRules, cr)
	}
	for i, r := range np.Spec.Egress {
		cr, err := compileRule(np.Namespace, r.To, r.Ports)
		if err != nil {
			return cp, fmt.Errorf("spec.egress[%d].to%s", i, err)
		}
		cp.outRules = append(cp.outRules, cr)
	}
	return cp, nil
}

// compileRule returns errors that start with the peer's index ("[0]..."), to
// be appended to the caller's field path.
func compileRule(namespace string, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) (compiledRule, error) {
	cr := compiledRule{ports: ports}
	for i, p := range peers {
		c := compiledPeer{namespace: namespace}
		if p.IPBlock != nil {
			pfx, err := netip.ParsePrefix(p.IPBlock.CIDR)
			if err != nil {
				return cr, fmt.Errorf("[%d].ipBlock.cidr: %q is not a CIDR", i, p.IPBlock.CIDR)
			}
			pfx = pfx.Masked()
			c.cidr = &pfx
			for j, ex := range p.IPBlock.Except {
				e, err := netip.ParsePrefix(ex)
				if err != nil {
					return cr, fmt.Errorf("[%d].ipBlock.except[%d]: %q is not a CIDR", i, j, ex)
				}
				c.except = append(c.except, e.Masked())
			}
			cr.peers = append(cr.peers, c)
			continue
		}
		if p.NamespaceSelector != nil {
			s, err := metav1.LabelSelectorAsSelector(p.NamespaceSelector)
			if err != nil {
				return cr, fmt.Errorf("[%d].namespaceSelector: %v", i, err)
			}
			c.ns = s
		}
		if p.PodSelector != nil {
			s, err := metav1.LabelSelectorAsSelector(p.PodSelector)
			if err != nil {
				return cr, fmt.Errorf("[%d].podSelector: %v", i, err)
			}
			c.pods = s
		}
		if p.NamespaceSelector == nil && p.PodSelector == nil {
			// The API server rejects an empty peer; treat it as matching
			// nothing rather than everything.
			c.pods = labels.Nothing()
		}
		cr.peers = append(cr.peers, c)
	}
	return cr, nil
}

func (p compiledPeer) matches(e Endpoint) bool {
	if p.cidr != nil {
		if !e.External {
			return false
		}
		addr, err := netip.ParseAddr(e.IP)
		if err != nil {
			return false
		}
		addr = addr.Unmap()
		if !p.cidr.Contains(addr) {
			return false
		}
		for _, ex := range p.except {
			if ex.Contains(addr) {
				return false
			}
		}
		return true
	}
	if e.External {
		return false
	}
	if p.ns == nil {
		if e.Namespace != p.namespace {
			return false
		}
	} else if !p.ns.Matches(e.namespaceLabels()) {
		return false
	}
	return p.pods == nil || p.pods.Matches(labels.Set(e.Labels))
}

func (r compiledRule) matches(peer, dst Endpoint, port Port) bool {
	if len(r.peers) > 0 {
		ok := false
		for _, p := range r.peers {
			if p.matches(peer) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.ports) == 0 {
		return true
	}
	for _, p := range r.ports {
		if portMatches(p, dst, port) {
			return true
		}
	}
	return false
}

func portMatches(p networkingv1.NetworkPolicyPort, dst Endpoint, port Port) bool {
	proto := corev1.ProtocolTCP
	if p.Protocol != nil {
		proto = *p.Protocol
	}
	if proto != port.protocol() {
		return false
	}
	if p.Port == nil {
		return true
	}
	if p.Port.Type == intstr.String {
		if dst.External {
			return false
		}
		resolved, ok := ResolvePort(dst, p.Port.StrVal, proto)
		return ok && resolved.Number == port.Number
	}
	if p.EndPort != nil {
		return p.Port.IntVal <= port.Number && port.Number <= *p.EndPort
	}
	return p.Port.IntVal == port.Number
}

// side evaluates one direction for pod (the pod the policies would select),
// with peer at the other end and dst the destination of the connection.
func (e *Evaluator) side(egress bool, pod, peer, dst Endpoint, port Port) Side {
	var s Side
	if pod.External {
		s.Allowed = true
		return s
	}
	podLabels := labels.Set(pod.Labels)
	for _, cp := range e.byNamespace[pod.Namespace] {
		if (egress && !cp.egress) || (!egress && !cp.ingress) || !cp.pods.Matches(podLabels) {
			continue
		}
		s.Restricted = true
		s.SelectedBy = append(s.SelectedBy, cp.ref)
		rules := cp.inRules
		if egress {
			rules = cp.outRules
		}
		for _, r := range rules {
			if r.matches(peer, dst, port) {
				s.AllowedBy = append(s.AllowedBy, cp.ref)
				break
			}
		}
	}
	sortRefs(s.SelectedBy)
	sortRefs(s.AllowedBy)
	s.Allowed = !s.Restricted || len(s.AllowedBy) > 0
	return s
}

func sortRefs(r []PolicyRef) {
	sort.Slice(r, func(i, j int) bool {
		if r[i].Namespace != r[j].Namespace {
			return r[i].Namespace < r[j].Namespace
		}
		return r[i].Name < r[j].Name
	})
}

// Reach decides whether from may open a connection to to on port.
func (e *Evaluator) Reach(from, to Endpoint, port Port) Verdict {
	port.Protocol = port.protocol()
	v := Verdict{From: from, To: to, Port: port}
	v.Egress = e.side(true, from, to, to, port)
	v.Ingress = e.side(false, to, from, to, port)
	v.Allowed = v.Egress.Allowed && v.Ingress.Allowed
	return v
}

// Matrix is the connectivity between every pair of a set of endpoints.
type Matrix struct {
	Endpoints []Endpoint
	// Checked[i][j] are the ports tried from Endpoints[i] to Endpoints[j].
	Checked [][][]Port
	// Allowed[i][j] are those of Checked[i][j] that are allowed.
	Allowed [][][]Port
}

// Matrix evaluates every ordered pair of endpoints (a pod to itself
// included). With ports given, each pair is tried on those; without, on the
// destination's container ports, so the matrix shows which of a pod's
// declared ports each peer may use.
func (e *Evaluator) Matrix(endpoints []Endpoint, ports []Port) Matrix {
	n := len(endpoints)
	m := Matrix{Endpoints: endpoints, Checked: make([][][]Port, n), Allowed: make([][][]Port, n)}
	for i, from := range endpoints {
		m.Checked[i] = make([][]Port, n)
		m.Allowed[i] = make([][]Port, n)
		for j, to := range endpoints {
			try := ports
			if len(try) == 0 {
				try = containerPorts(to)
			}
			m.Checked[i][j] = try
			for _, p := range try {
				if e.Reach(from, to, p).Allowed {
					m.Allowed[i][j] = append(m.Allowed[i][j], p)
				}
			}
		}
	}
	return m
}

// containerPorts lists an endpoint's distinct container ports in order.
func containerPorts(e Endpoint) []Port {
	var out []Port
	seen := map[Port]bool{}
	for _, cp := range e.Ports {
		p := Port{Number: cp.ContainerPort, Protocol: defaultTCP(cp.Protocol)}
		if p.Number < 1 || seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Protocol != out[j].Protocol {
			return out[i].Protocol < out[j].Protocol
		}
		return out[i].Number < out[j].Number
	})
	return out
}

// Write prints the matrix for people: one row per source, one column per
// destination (numbered as the rows), each cell listing the allowed ports,
// "-" when none of the tried ports is allowed and "n/a" when there was no
// port to try.
func (m Matrix) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := []string{"FROM \\ TO"}
	for j := range m.Endpoints {
		header = append(header, fmt.Sprintf("[%d]", j+1))
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for i, from := range m.Endpoints {
		row := []string{fmt.Sprintf("[%d] %s", i+1, from)}
		for j := range m.Endpoints {
			switch {
			case len(m.Checked[i][j]) == 0:
				row = append(row, "n/a")
			case len(m.Allowed[i][j]) == 0:
				row = append(row, "-")
			default:
				ps := make([]string, len(m.Allowed[i][j]))
				for k, p := range m.Allowed[i][j] {
					ps[k] = p.String()
				}
				row = append(row, strings.Join(ps, ","))
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}
