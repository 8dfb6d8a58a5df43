package rules

import (
	"context"
	"net/netip"
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PeerClass is how far a peer of a rule reaches, seen from the policy's
// namespace. The checks decide on classes, never on how a peer is spelt.
type PeerClass string

const (
	// PeerAnywhere is every source or destination, in the cluster and outside
	// it: a rule without from/to (or with from: [] / to: []).
	PeerAnywhere PeerClass = "anywhere"
	// PeerIPBlock is a set of IP addresses (ipBlock cidr minus except),
	// usually outside the cluster. 0.0.0.0/0 with except is still one.
	PeerIPBlock PeerClass = "ipBlock"
	// PeerAllNamespaces is pods in every namespace: a namespaceSelector that
	// every namespace matches, such as {}.
	PeerAllNamespaces PeerClass = "allNamespaces"
	// PeerOtherNamespaces is pods in namespaces that can include ones other
	// than the policy's own: any namespaceSelector that does not pin
	// kubernetes.io/metadata.name to the policy's namespace.
	PeerOtherNamespaces PeerClass = "otherNamespaces"
	// PeerOwnNamespace is pods in the policy's namespace: a podSelector alone,
	// or a namespaceSelector pinned to the own namespace by name.
	PeerOwnNamespace PeerClass = "ownNamespace"
)

// Analysis is what a NetworkPolicy allows, reduced per effective direction to
// rules of classified peers and port sets. Equivalent spellings of a policy
// give the same classes, selectors, address sets and port sets.
//
// Shapes the API server would reject are reported in Problems and analysed as
// the broadest thing they could mean, so a malformed policy is never read as
// allowing less than it might.
type Analysis struct {
	// Policy is the analysed object, possibly nil.
	Policy *networkingv1.NetworkPolicy
	// Namespace is the policy's namespace; namespaceSelectors are classified
	// relative to it. When empty or not a valid name, no namespaceSelector
	// counts as the own namespace.
	Namespace string
	// Subject selects the pods the policy applies to (spec.podSelector).
	Subject NormalizedSelector
	// Ingress and Egress are the two directions. Rules of a direction that is
	// not Effective are analysed but allow nothing.
	Ingress, Egress DirectionAnalysis
	// Problems are the malformed shapes found, with their field paths.
	Problems field.ErrorList

	// limits are the limits the policy exceeds (limits.go); the policySize
	// check reports them, and the checks that compare peers pairwise do not
	// run on such a policy.
	limits []limitError
	// ctx, when set, stops the checks early once it is done.
	ctx context.Context
}

// stopped reports whether the evaluation's context is done.
func (a *Analysis) stopped() bool { return a.ctx != nil && a.ctx.Err() != nil }

// DirectionAnalysis is one direction of a policy.
type DirectionAnalysis struct {
	// Type is Ingress or Egress.
	Type networkingv1.PolicyType
	// Effective reports whether the direction is in the policy's effective
	// policyTypes: those listed, or when none are listed, Ingress always and
	// Egress when the policy has egress rules. Only an effective direction
	// isolates the selected pods and lets its rules allow traffic.
	Effective bool
	// Field is "spec.ingress" or "spec.egress".
	Field string
	// Rules are the rules in order.
	Rules []RuleAnalysis

	// overlap is built by the first check that merges ports over
	// overlapping peers and kept for the next.
	overlap *overlapIndex
}

// RuleAnalysis is one rule: traffic is allowed from (ingress) or to (egress)
// any of the peers, on any of the ports.
type RuleAnalysis struct {
	// Field is the rule: "spec.ingress[0]".
	Field string
	// Peers has at least one element: a rule without peers has one peer of
	// class PeerAnywhere whose Field is the rule's. A malformed peer may give
	// several, one per reading.
	Peers []PeerAnalysis
	// Ports is what the rule opens; every port of every protocol when the
	// rule lists no ports.
	Ports PortSet
	// PortEntries are the rule's ports entries, empty when it lists none.
	PortEntries []PortEntryAnalysis
}

// PeerAnalysis is one peer of a rule.
type PeerAnalysis struct {
	// Field is the peer: "spec.ingress[0].from[1]".
	Field string
	Class PeerClass
	// Pods selects the peer pods for the namespace classes; it matches all
	// pods when the peer has no podSelector.
	Pods NormalizedSelector
	// Namespaces is the peer's namespaceSelector, nil when it has none.
	Namespaces *NormalizedSelector
	// IPBlock is the peer's ipBlock as written, for class PeerIPBlock.
	IPBlock *networkingv1.IPBlock
	// Addresses are the addresses an ipBlock peer selects: cidr minus the
	// valid except entries; every address when cidr is malformed.
	Addresses AddressSet
}

// Directions returns the ingress and egress analyses, in that order.
func (a *Analysis) Directions() []*DirectionAnalysis {
	return []*DirectionAnalysis{&a.Ingress, &a.Egress}
}

// Addresses returns the union of the ipBlock peers of all rules.
func (d *DirectionAnalysis) Addresses() AddressSet {
	var sets []AddressSet
	for _, r := range d.Rules {
		for _, p := range r.Peers {
			if p.Class == PeerIPBlock {
				sets = append(sets, p.Addresses)
			}
		}
	}
	return UnionAddressSets(sets...)
}

// Covers reports whether peer p matches every endpoint peer q matches, as far
// as the policy alone tells (namespace labels other than the name are
// unknown). A false answer may be conservative.
func (a *Analysis) Covers(p, q PeerAnalysis) bool {
	switch {
	case p.Class == PeerAnywhere:
		return true
	case q.Class == PeerAnywhere:
		return false
	case p.Class == PeerIPBlock || q.Class == PeerIPBlock:
		return p.Class == q.Class && p.Addresses.Contains(q.Addresses)
	}
	// Both select pods: the namespaces and the pods must be covered.
	nsCovered := false
	switch p.Class {
	case PeerAllNamespaces:
		nsCovered = true
	case PeerOwnNamespace:
		nsCovered = q.Class == PeerOwnNamespace
	case PeerOtherNamespaces:
		switch q.Class {
		case PeerOwnNamespace:
			nsCovered = p.Namespaces != nil && p.Namespaces.matchesNamespaceByName(a.Namespace)
		case PeerOtherNamespaces:
			nsCovered = p.Namespaces != nil && q.Namespaces != nil && q.Namespaces.Implies(*p.Namespaces)
		}
	}
	return nsCovered && q.Pods.Implies(p.Pods)
}

// PortsFor returns the ports that endpoints matching peer p may use in
// direction d: the union of the ports of every rule with a peer that covers
// p, and the indices of those rules. A rule of a direction that is not
// effective allows nothing.
func (a *Analysis) PortsFor(d *DirectionAnalysis, p PeerAnalysis) (PortSet, []int) {
	if !d.Effective {
		return PortSet{}, nil
	}
	var (
		sets  []PortSet
		rules []int
	)
	for i, r := range d.Rules {
		for _, q := range r.Peers {
			if a.Covers(q, p) {
				sets = append(sets, r.Ports)
				rules = append(rules, i)
				break
			}
		}
	}
	return UnionPortSets(sets...), rules
}

// Analyze reduces np to what it allows. It never panics: a nil policy gives
// an Analysis with one Problem and no effective direction.
//
// Analyze does not enforce the limits of limits.go; Evaluate does, before it
// analyses.
func Analyze(np *networkingv1.NetworkPolicy) *Analysis {
	a := analyzeSpec(np)
	a.limits = checkLimits(np)
	return a
}

// analyzeSpec is Analyze without the limits.
func analyzeSpec(np *networkingv1.NetworkPolicy) *Analysis {
	a := newAnalysis(np)
	if np == nil {
		a.Problems = append(a.Problems, &field.Error{Type: field.ErrorTypeRequired, Field: "", BadValue: "", Detail: "no NetworkPolicy to evaluate"})
		return a
	}
	if np.Namespace != "" && !validNamespaceName(np.Namespace) {
		a.Problems = append(a.Problems, field.Invalid(field.NewPath("metadata", "namespace"), np.Namespace,
			"must be a valid namespace name; no namespaceSelector counts as this namespace"))
	}
	spec := field.NewPath("spec")
	var errs field.ErrorList
	a.Subject, errs = NormalizeSelector(&np.Spec.PodSelector, spec.Child("podSelector"))
	a.Problems = append(a.Problems, errs...)
	a.Ingress.Effective, a.Egress.Effective = a.effectiveTypes(np.Spec, spec.Child("policyTypes"))

	// Field paths are built as strings, and a *field.Path only for a
	// problem: they are needed for every rule, peer and port, and building
	// them element by element was a large part of the cost of a policy.
	if len(np.Spec.Ingress) > 0 {
		a.Ingress.Rules = make([]RuleAnalysis, 0, len(np.Spec.Ingress))
	}
	for i, r := range np.Spec.Ingress {
		a.Ingress.Rules = append(a.Ingress.Rules, a.analyzeRule(indexPath("spec.ingress", i), "from", r.From, r.Ports))
	}
	if len(np.Spec.Egress) > 0 {
		a.Egress.Rules = make([]RuleAnalysis, 0, len(np.Spec.Egress))
	}
	for i, r := range np.Spec.Egress {
		a.Egress.Rules = append(a.Egress.Rules, a.analyzeRule(indexPath("spec.egress", i), "to", r.To, r.Ports))
	}
	return a
}

// newAnalysis is the analysis of np before its spec is read: no rules.
func newAnalysis(np *networkingv1.NetworkPolicy) *Analysis {
	a := &Analysis{
		Policy:  np,
		Ingress: DirectionAnalysis{Type: networkingv1.PolicyTypeIngress, Field: "spec.ingress"},
		Egress:  DirectionAnalysis{Type: networkingv1.PolicyTypeEgress, Field: "spec.egress"},
	}
	if np != nil {
		a.Namespace = np.Namespace
	}
	return a
}

// indexPath is field.NewPath(path).Index(i).String().
func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// effectiveTypes applies the API's defaulting of policyTypes. An unknown
// value is read as the broadest thing it could mean: a case variant of a
// type as that type, anything else as both.
func (a *Analysis) effectiveTypes(spec networkingv1.NetworkPolicySpec, path *field.Path) (ingress, egress bool) {
	if len(spec.PolicyTypes) == 0 {
		return true, len(spec.Egress) > 0
	}
	for i, t := range spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		default:
			detail := `must be "Ingress" or "Egress"; treated as both`
			switch strings.ToLower(string(t)) {
			case "ingress":
				ingress, detail = true, `must be "Ingress" or "Egress"; treated as "Ingress"`
			case "egress":
				egress, detail = true, `must be "Ingress" or "Egress"; treated as "Egress"`
			default:
				ingress, egress = true, true
			}
			a.Problems = append(a.Problems, field.Invalid(path.Index(i), string(t), detail))
		}
	}
	return ingress, egress
}

// analyzeRule analyses the rule at path, such as "spec.ingress[0]".
func (a *Analysis) analyzeRule(path string, peersName string, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) RuleAnalysis {
	r := RuleAnalysis{Field: path}
	if len(peers) == 0 {
		r.Peers = []PeerAnalysis{{Field: path, Class: PeerAnywhere}}
	} else {
		r.Peers = make([]PeerAnalysis, 0, len(peers))
	}
	peersPath := path + "." + peersName
	for j, p := range peers {
		r.Peers = a.analyzePeer(r.Peers, p, indexPath(peersPath, j))
	}
	var errs field.ErrorList
	r.Ports, r.PortEntries, errs = analyzePorts(ports, path+".ports")
	a.Problems = append(a.Problems, errs...)
	return r
}

// analyzePeer appends the readings of the peer at path to out.
func (a *Analysis) analyzePeer(out []PeerAnalysis, p networkingv1.NetworkPolicyPeer, path string) []PeerAnalysis {
	n := len(out)
	hasSelector := p.PodSelector != nil || p.NamespaceSelector != nil
	if p.IPBlock != nil {
		out = append(out, a.analyzeIPBlock(p.IPBlock, path))
		if hasSelector {
			a.Problems = append(a.Problems, field.Forbidden(field.NewPath(path).Child("ipBlock"),
				"may not be combined with podSelector or namespaceSelector; both readings are checked"))
		}
	}
	if hasSelector {
		pods, errs := normalizeSelector(p.PodSelector, func() *field.Path { return field.NewPath(path).Child("podSelector") })
		a.Problems = append(a.Problems, errs...)
		peer := PeerAnalysis{Field: path, Class: PeerOwnNamespace, Pods: pods}
		if p.NamespaceSelector != nil {
			ns, errs := normalizeSelector(p.NamespaceSelector, func() *field.Path { return field.NewPath(path).Child("namespaceSelector") })
			a.Problems = append(a.Problems, errs...)
			peer.Namespaces = &ns
			peer.Class = namespaceScope(ns, a.Namespace)
		}
		out = append(out, peer)
	}
	if len(out) == n {
		a.Problems = append(a.Problems, field.Required(field.NewPath(path),
			"a peer needs podSelector, namespaceSelector or ipBlock; an empty peer is treated as any peer"))
		out = append(out, PeerAnalysis{Field: path, Class: PeerAnywhere})
	}
	return out
}

func (a *Analysis) analyzeIPBlock(b *networkingv1.IPBlock, path string) PeerAnalysis {
	peer := PeerAnalysis{Field: path, Class: PeerIPBlock, IPBlock: b.DeepCopy()}
	bp := func() *field.Path { return field.NewPath(path).Child("ipBlock") }
	prefix, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		a.Problems = append(a.Problems, field.Invalid(bp().Child("cidr"), b.CIDR,
			"must be a CIDR such as 10.0.0.0/8 or fd00::/8; treated as every address"))
		peer.Addresses = AllIPv4Addresses().Union(AllIPv6Addresses())
		return peer
	}
	block := AddressSetOf(prefix)
	var excepts []AddressSet
	for k, e := range b.Except {
		ep := func() *field.Path { return bp().Child("except").Index(k) }
		ex, err := netip.ParsePrefix(e)
		if err != nil {
			a.Problems = append(a.Problems, field.Invalid(ep(), e, "must be a CIDR such as 10.1.0.0/16; ignored, so the block is wider"))
			continue
		}
		exSet := AddressSetOf(ex)
		if !block.Contains(exSet) || block.Equal(exSet) {
			a.Problems = append(a.Problems, field.Invalid(ep(), e, "must be a strict subset of cidr "+prefix.String()+"; ignored, so the block is wider"))
			continue
		}
		excepts = append(excepts, exSet)
	}
	peer.Addresses = block.Subtract(UnionAddressSets(excepts...))
	return peer
}
