package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Shared logic of the check_*.go files: each check picks a direction and a
// peer class or port predicate, and the words of its messages.

// directionWords are the words messages use for a direction.
type directionWords struct {
	to       string // "from" or "to": traffic from/to a peer
	anyPeer  string // "any source" or "any destination"
	peerPods string // the pods a peer podSelector picks
}

func wordsFor(d *DirectionAnalysis) directionWords {
	if d.Type == networkingv1.PolicyTypeEgress {
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

// peerViolations returns a violation for every peer of the effective
// direction d whose class is in classes.
func peerViolations(d *DirectionAnalysis, classes []PeerClass, violation func(PeerAnalysis) Violation) []Violation {
	if !d.Effective {
		return nil
	}
	var out []Violation
	for _, r := range d.Rules {
		for _, p := range r.Peers {
			if slices.Contains(classes, p.Class) {
				out = append(out, violation(p))
			}
		}
	}
	return out
}

func anywhereViolations(d *DirectionAnalysis) []Violation {
	w := wordsFor(d)
	return peerViolations(d, []PeerClass{PeerAnywhere}, func(p PeerAnalysis) Violation {
		return Violation{Field: p.Field, Message: fmt.Sprintf(
			"allows traffic %s %s; select the %s with podSelector or use a NetworkProfile", w.to, w.anyPeer, w.peerPods)}
	})
}

func ipBlockViolations(d *DirectionAnalysis) []Violation {
	w := wordsFor(d)
	union := AddressSet{}
	if d.Effective {
		union = d.Addresses()
	}
	return peerViolations(d, []PeerClass{PeerIPBlock}, func(p PeerAnalysis) Violation {
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
		return Violation{Field: p.Field + ".ipBlock", Message: fmt.Sprintf(
			"allows traffic %s %s; IP addresses are outside the namespace and reserved for platform NetworkProfiles: use one instead", w.to, what)}
	})
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

func otherNamespacesViolations(a *Analysis, d *DirectionAnalysis) []Violation {
	w := wordsFor(d)
	return peerViolations(d, []PeerClass{PeerAllNamespaces, PeerOtherNamespaces}, func(p PeerAnalysis) Violation {
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
		return Violation{Field: p.Field + ".namespaceSelector", Message: fmt.Sprintf(
			"allows traffic %s %s %s; traffic across namespaces is reserved for platform NetworkProfiles: use one, or drop namespaceSelector to stay in %s",
			w.to, pods, where, namespaceWords(a))}
	})
}

func allPodsViolations(a *Analysis, d *DirectionAnalysis) []Violation {
	if !a.Subject.MatchesAll() {
		return nil
	}
	ns := namespaceWords(a)
	return dropEmpty(peerViolations(d, []PeerClass{PeerOwnNamespace}, func(p PeerAnalysis) Violation {
		if !p.Pods.MatchesAll() {
			return Violation{}
		}
		if d.Type == networkingv1.PolicyTypeEgress {
			return Violation{Field: p.Field, Message: fmt.Sprintf(
				"with spec.podSelector {} this lets every pod in %s send traffic to every pod in it; select the client pods in spec.podSelector or the server pods in podSelector", ns)}
		}
		return Violation{Field: p.Field, Message: fmt.Sprintf(
			"with spec.podSelector {} this lets every pod in %s accept traffic from every pod in it; select the server pods in spec.podSelector or the client pods in podSelector", ns)}
	}))
}

// allPodsViolations_1_1 is allPodsViolations with selectors judged by what
// they can match: a selector of only DoesNotExist and NotIn requirements
// matches every pod that lacks some labels, which in a namespace whose
// tenant labels the pods is every pod. Peers that together cover every pod
// ({x Exists} and {x DoesNotExist}; {x In [a]} and {x NotIn [a]}) always
// include such a selector: a pod without labels meets no In or Exists, so
// only a selector without them can match it.
func allPodsViolations_1_1(a *Analysis, d *DirectionAnalysis) []Violation {
	if !matchesUnlabeled(a.Subject) {
		return nil
	}
	ns := namespaceWords(a)
	subject := "spec.podSelector {}"
	if !a.Subject.MatchesAll() {
		subject = fmt.Sprintf("spec.podSelector %q, which matches every pod without those labels,", a.Subject.String())
	}
	return dropEmpty(peerViolations(d, []PeerClass{PeerOwnNamespace}, func(p PeerAnalysis) Violation {
		if !matchesUnlabeled(p.Pods) {
			return Violation{}
		}
		if a.Subject.MatchesAll() && p.Pods.MatchesAll() {
			return allPodsViolations(a, &DirectionAnalysis{Type: d.Type, Effective: true, Rules: []RuleAnalysis{{Peers: []PeerAnalysis{p}}}})[0]
		}
		peer := "every pod in it"
		if !p.Pods.MatchesAll() {
			peer = fmt.Sprintf("every pod in it without the labels of podSelector %q", p.Pods.String())
		}
		fix := "; select pods by a label they carry (matchLabels, In or Exists) in spec.podSelector or in podSelector"
		if d.Type == networkingv1.PolicyTypeEgress {
			return Violation{Field: p.Field, Message: fmt.Sprintf("with %s this lets every pod in %s send traffic to %s, in effect every pod%s", subject, ns, peer, fix)}
		}
		return Violation{Field: p.Field, Message: fmt.Sprintf("with %s this lets every pod in %s accept traffic from %s, in effect every pod%s", subject, ns, peer, fix)}
	}))
}

// matchesUnlabeled reports whether s matches a pod without labels: it has no
// In and no Exists requirement.
func matchesUnlabeled(s NormalizedSelector) bool {
	for _, r := range s.Requirements {
		if r.Operator != metav1.LabelSelectorOpDoesNotExist && r.Operator != metav1.LabelSelectorOpNotIn {
			return false
		}
	}
	return true
}

// dropEmpty removes zero violations, which peerViolations callbacks return
// for peers they accept.
func dropEmpty(vs []Violation) []Violation {
	return slices.DeleteFunc(vs, func(v Violation) bool { return v == Violation{} })
}

// portPredicate reports whether the ports of one protocol are too broad.
type portPredicate func(ProtocolPorts) bool

// peerMerge says which rules' ports a peer of a rule is counted with.
type peerMerge int

const (
	// mergeCovering (v1.0) counts a peer with the rules that have a peer
	// covering it: a rule for every pod also applies to a rule for some.
	mergeCovering peerMerge = iota
	// mergeOverlapping (v1.1) counts a peer with the rules that have a peer
	// which may select an endpoint it selects too: peers on different labels
	// ({l1: y} and {l2: y}) both select a pod that carries both labels, and
	// that pod gets the ports of both rules.
	mergeOverlapping
)

// portBreadthViolations finds the peers of effective rules whose ports,
// merged over every rule whose peers cover them (mergeCovering) or may
// select the same endpoints (mergeOverlapping), match pred for some
// protocol, and reports each at the narrowest field that explains it:
//
//  1. a rule without ports: the rule;
//  2. a single ports entry: the entry;
//  3. several entries of the rule together: the rule's ports;
//  4. the rule together with other rules whose peers cover one of its peers
//     (so splitting a rule in two changes nothing): that peer, naming the
//     other rules.
//
// describe renders what is too broad; its scope argument tells which case.
func portBreadthViolations(a *Analysis, d *DirectionAnalysis, merge peerMerge, pred portPredicate, describe func(scope string, set PortSet, protocols []corev1.Protocol) string) []Violation {
	if !d.Effective {
		return nil
	}
	matching := func(set PortSet, skip []corev1.Protocol) []corev1.Protocol {
		var out []corev1.Protocol
		for _, p := range portProtocols {
			if !slices.Contains(skip, p) && pred(set.Protocol(p)) {
				out = append(out, p)
			}
		}
		return out
	}
	// What each rule opens too broadly on its own, computed once: the
	// report below asks it for every peer of every contributing rule.
	ruleBroad := make([][]corev1.Protocol, len(d.Rules))
	for j := range d.Rules {
		ruleBroad[j] = matching(d.Rules[j].Ports, nil)
	}
	// Merging per peer compares every peer with every other. Past
	// maxMergedPeers (far beyond any real policy), or in a policy over the
	// limits, every peer is assumed to get the ports of every rule: more
	// findings, never fewer, and bounded work for the webhook.
	peers := 0
	for _, r := range d.Rules {
		peers += len(r.Peers)
	}
	pairwise := peers <= maxMergedPeers && len(a.limits) == 0
	var everything PortSet
	var allRules []int
	if !pairwise {
		sets := make([]PortSet, len(d.Rules))
		for i, r := range d.Rules {
			sets[i] = r.Ports
			allRules = append(allRules, i)
		}
		everything = UnionPortSets(sets...)
	}
	var (
		cover   *coverIndex
		overlap *overlapIndex
	)
	if pairwise {
		switch merge {
		case mergeCovering:
			cover = newCoverIndex(d, peers)
		case mergeOverlapping:
			overlap = overlapIndexFor(a, d, peers)
		}
	}
	var out []Violation
	for i, r := range d.Rules {
		if a.stopped() {
			return out
		}
		type peerPorts struct {
			set   PortSet
			rules []int
		}
		effective := make([]peerPorts, len(r.Peers))
		var broad []corev1.Protocol
		for k := range r.Peers {
			set, rules := everything, allRules
			switch {
			case cover != nil:
				set, rules = cover.portsFor(a, d, i, k)
			case overlap != nil:
				set, rules = overlap.portsFor(d, i, k)
			}
			effective[k] = peerPorts{set, rules}
			broad = append(broad, matching(set, broad)...)
		}
		if len(broad) == 0 {
			continue
		}
		// done starts with the protocols no peer of this rule gets too broadly.
		done := slices.DeleteFunc(slices.Clone(portProtocols), func(p corev1.Protocol) bool { return slices.Contains(broad, p) })
		if len(r.PortEntries) == 0 {
			if ps := matching(r.Ports, done); len(ps) > 0 {
				out = append(out, Violation{Field: r.Field, Message: describe("rule", r.Ports, ps)})
				done = append(done, ps...)
			}
		}
		for _, e := range r.PortEntries {
			if ps := matching(e.Ports, done); len(ps) > 0 {
				out = append(out, Violation{Field: e.Field, Message: describe("entry", e.Ports, ps)})
				done = append(done, ps...)
			}
		}
		if len(r.PortEntries) > 1 {
			if ps := matching(r.Ports, done); len(ps) > 0 {
				out = append(out, Violation{Field: r.Field + ".ports", Message: describe("entries", r.Ports, ps)})
				done = append(done, ps...)
			}
		}
		for k, p := range r.Peers {
			// A protocol that one of the contributing rules opens too
			// broadly on its own is reported at that rule, not again here.
			skip := slices.Clone(done)
			var others []string
			for _, j := range effective[k].rules {
				for _, proto := range ruleBroad[j] {
					if !slices.Contains(skip, proto) {
						skip = append(skip, proto)
					}
				}
				if j != i {
					others = append(others, d.Rules[j].Field)
				}
			}
			if ps := matching(effective[k].set, skip); len(ps) > 0 {
				out = append(out, Violation{Field: p.Field, Message: describe("together with "+joinWords(others), effective[k].set, ps)})
			}
		}
	}
	return out
}

// overlapIndex answers, for every peer of a direction, which rules have a
// peer that may select an endpoint it selects too (mergeOverlapping), and
// the union of those rules' ports. Two peers are disjoint only when the
// policy proves it: a label both constrain in ways no value meets (In lists
// without a common value, In against NotIn of all its values, Exists or In
// against DoesNotExist), or namespaces that no namespace matches both.
// Labels the policy does not constrain can be anything, so peers on
// different labels overlap: a pod may carry both.
//
// It is built once per direction and shared by the checks that ask.
type overlapIndex struct {
	// ns is the namespaces each peer selects, as a selector on namespace
	// labels; nil when unknown (any namespace).
	ns []*NormalizedSelector
	// keys has a bit for each label key of a peer's pod selector: peers
	// without a key in common always overlap in their pods.
	keys  []uint64
	first []int
	// firstIn is each peer's first In requirement, nil without one; byValue
	// lists the peers with an In requirement on a key that holds a value,
	// by key and value, and inKeys the keys of each peer's In requirements.
	// A peer whose In on the key of p's first In shares no value with it is
	// disjoint from p without a full comparison.
	firstIn []*SelectorRequirement
	byValue map[string][]int
	inKeys  [][]string
	mark    []uint32
	epoch   uint32
	// done, sets and rules keep each peer's answer once computed.
	done  []bool
	sets  []PortSet
	rules [][]int
	// memo keeps the union of the ports of a set of rules: most peers of a
	// policy get the same set.
	memo map[string]PortSet
}

// overlapIndexFor returns d's overlap index, building it on first use.
func overlapIndexFor(a *Analysis, d *DirectionAnalysis, peers int) *overlapIndex {
	if d.overlap == nil {
		d.overlap = newOverlapIndex(a, d, peers)
	}
	return d.overlap
}

func newOverlapIndex(a *Analysis, d *DirectionAnalysis, peers int) *overlapIndex {
	idx := &overlapIndex{
		ns: make([]*NormalizedSelector, 0, peers), keys: make([]uint64, 0, peers), first: make([]int, len(d.Rules)),
		firstIn: make([]*SelectorRequirement, 0, peers), inKeys: make([][]string, 0, peers),
		mark: make([]uint32, peers), done: make([]bool, peers), sets: make([]PortSet, peers), rules: make([][]int, peers),
	}
	// A few peers are compared faster than indexed.
	if peers > minIndexedPeers {
		idx.byValue = map[string][]int{}
	}
	var own *NormalizedSelector
	if validNamespaceName(a.Namespace) {
		own = &NormalizedSelector{Requirements: []SelectorRequirement{{Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpIn, Values: []string{a.Namespace}}}}
	}
	for i, r := range d.Rules {
		idx.first[i] = len(idx.ns)
		for k := range r.Peers {
			p := &r.Peers[k]
			x := len(idx.ns)
			var ns *NormalizedSelector
			switch {
			case p.Namespaces != nil:
				ns = p.Namespaces
			case p.Class == PeerOwnNamespace:
				ns = own
			}
			var (
				keys    uint64
				inKeys  []string
				firstIn *SelectorRequirement
			)
			if p.Class != PeerAnywhere && p.Class != PeerIPBlock {
				for m := range p.Pods.Requirements {
					q := &p.Pods.Requirements[m]
					keys |= uint64(1) << (fnv64(q.Key, "") % 64)
					if q.Operator != metav1.LabelSelectorOpIn {
						continue
					}
					if firstIn == nil {
						firstIn = q
					}
					inKeys = append(inKeys, q.Key)
					if idx.byValue == nil {
						continue
					}
					for _, v := range q.Values {
						kv := q.Key + "\x00" + v
						idx.byValue[kv] = append(idx.byValue[kv], x)
					}
				}
			}
			idx.ns = append(idx.ns, ns)
			idx.keys = append(idx.keys, keys)
			idx.firstIn = append(idx.firstIn, firstIn)
			idx.inKeys = append(idx.inKeys, inKeys)
		}
	}
	return idx
}

// mayOverlap reports whether peers p and q (at x and y in the index) may
// select a common endpoint; false only when the policy proves they do not.
// Peers sharing a value with the peer being answered for are marked.
func (idx *overlapIndex) mayOverlap(p, q *PeerAnalysis, x, y int) bool {
	switch {
	case p.Class == PeerAnywhere || q.Class == PeerAnywhere:
		return true
	case p.Class == PeerIPBlock && q.Class == PeerIPBlock:
		return !p.Addresses.Subtract(q.Addresses).Equal(p.Addresses)
	case p.Class == PeerIPBlock || q.Class == PeerIPBlock:
		return true // pod addresses may be in the block
	}
	if idx.ns[x] != nil && idx.ns[y] != nil && idx.ns[x] != idx.ns[y] && !selectorsMayOverlap(*idx.ns[x], *idx.ns[y]) {
		return false
	}
	if idx.keys[x]&idx.keys[y] == 0 {
		return true
	}
	if in := idx.firstIn[x]; in != nil && idx.byValue != nil && idx.mark[y] != idx.epoch && slices.Contains(idx.inKeys[y], in.Key) {
		return false // q's In on that key shares no value with p's
	}
	return selectorsMayOverlap(p.Pods, q.Pods)
}

// portsFor returns the union of the ports of the rules with a peer that may
// overlap d.Rules[i].Peers[k], and those rules; rule i is always one.
func (idx *overlapIndex) portsFor(d *DirectionAnalysis, i, k int) (PortSet, []int) {
	x := idx.first[i] + k
	if idx.done[x] {
		return idx.sets[x], idx.rules[x]
	}
	p := &d.Rules[i].Peers[k]
	idx.epoch++
	if in := idx.firstIn[x]; in != nil && idx.byValue != nil {
		for _, v := range in.Values {
			for _, y := range idx.byValue[in.Key+"\x00"+v] {
				idx.mark[y] = idx.epoch
			}
		}
	}
	var rules []int
	for j := range d.Rules {
		if j == i {
			rules = append(rules, j)
			continue
		}
		qs := d.Rules[j].Peers
		for m := range qs {
			if idx.mayOverlap(p, &qs[m], x, idx.first[j]+m) {
				rules = append(rules, j)
				break
			}
		}
	}
	set := d.Rules[i].Ports
	if len(rules) > 1 {
		key := make([]byte, 0, 4*len(rules))
		for _, j := range rules {
			key = strconv.AppendInt(key, int64(j), 36)
			key = append(key, ',')
		}
		var ok bool
		if idx.memo == nil {
			idx.memo = map[string]PortSet{}
		}
		if set, ok = idx.memo[string(key)]; !ok {
			sets := make([]PortSet, len(rules))
			for n, j := range rules {
				sets[n] = d.Rules[j].Ports
			}
			set = UnionPortSets(sets...)
			idx.memo[string(key)] = set
		}
	}
	idx.done[x], idx.sets[x], idx.rules[x] = true, set, rules
	return set, rules
}

// selectorsMayOverlap reports whether some object may match both s and t:
// false only when a key both constrain has no value (or absence) that meets
// all their requirements on it. Requirements are sorted by key, so the
// selectors are walked once.
func selectorsMayOverlap(s, t NormalizedSelector) bool {
	rs, rt := s.Requirements, t.Requirements
	var buf [8]SelectorRequirement
	i, j := 0, 0
	for i < len(rs) && j < len(rt) {
		switch k := rs[i].Key; {
		case k < rt[j].Key:
			i++
		case k > rt[j].Key:
			j++
		default:
			reqs := buf[:0]
			for ; i < len(rs) && rs[i].Key == k; i++ {
				reqs = append(reqs, rs[i])
			}
			for ; j < len(rt) && rt[j].Key == k; j++ {
				reqs = append(reqs, rt[j])
			}
			if !satisfiable(reqs) {
				return false
			}
		}
	}
	return true
}

// satisfiable reports whether one label (present with some value, or
// absent) meets every requirement of reqs, all on that label. Values are
// sorted; the work is linear in the shortest In list times the lists.
func satisfiable(reqs []SelectorRequirement) bool {
	var shortest []string
	exists, absent, ins := false, false, 0
	for _, r := range reqs {
		switch r.Operator {
		case metav1.LabelSelectorOpIn:
			exists = true
			ins++
			if shortest == nil || len(r.Values) < len(shortest) {
				shortest = r.Values
			}
		case metav1.LabelSelectorOpExists:
			exists = true
		case metav1.LabelSelectorOpDoesNotExist:
			absent = true
		}
	}
	if absent {
		return !exists
	}
	if ins == 0 {
		return true // NotIn and Exists leave infinitely many values
	}
candidates:
	for _, v := range shortest {
		for _, r := range reqs {
			switch r.Operator {
			case metav1.LabelSelectorOpIn:
				if !containsSorted(r.Values, v) {
					continue candidates
				}
			case metav1.LabelSelectorOpNotIn:
				if containsSorted(r.Values, v) {
					continue candidates
				}
			}
		}
		return true
	}
	return false
}

// coverIndex answers PortsFor for every peer of a direction. It is
// PortsFor's result, computed faster: merging compares every peer with every
// other, and 64-bit summaries of each peer's pod selector rule out most pairs
// before the full comparison (see peerBits).
type coverIndex struct {
	// need, anyOf and have are peerBits of each peer, in rule then peer order.
	need, anyOf, have []uint64
	// first is the index in the slices above of each rule's first peer.
	first []int
	// rule is the rule of each peer.
	rule []int
	// byValue lists, for a label key and value, the pod-class peers whose
	// first In requirement is on that key and has that value; always lists
	// the peers without an In requirement and those of other classes. Only
	// those two can cover a pod-class peer (see candidates).
	byValue map[string][]int
	always  []int
	// seen marks candidates already taken for the current peer, ruleSeen
	// the rules already found to cover it.
	seen, ruleSeen []uint32
	seenMark       uint32
}

func newCoverIndex(d *DirectionAnalysis, peers int) *coverIndex {
	bits := make([]uint64, 0, 3*peers) // one allocation for the three
	idx := &coverIndex{
		need: bits[0:0:peers], anyOf: bits[peers : peers : 2*peers], have: bits[2*peers : 2*peers : 3*peers],
		first: make([]int, len(d.Rules)), rule: make([]int, 0, peers),
	}
	// A few peers are compared faster than indexed.
	indexed := peers > minIndexedPeers
	if indexed {
		idx.byValue, idx.seen, idx.ruleSeen = map[string][]int{}, make([]uint32, peers), make([]uint32, len(d.Rules))
	}
	for i, r := range d.Rules {
		idx.first[i] = len(idx.need)
		for _, p := range r.Peers {
			x := len(idx.need)
			n, a, h := peerBits(p)
			idx.need = append(idx.need, n)
			idx.anyOf = append(idx.anyOf, a)
			idx.have = append(idx.have, h)
			idx.rule = append(idx.rule, i)
			if !indexed {
				continue
			}
			if in := firstIn(p); in != nil {
				for _, v := range in.Values {
					k := in.Key + "\x00" + v
					idx.byValue[k] = append(idx.byValue[k], x)
				}
			} else {
				idx.always = append(idx.always, x)
			}
		}
	}
	return idx
}

// minIndexedPeers is the number of peers in a direction above which
// coverIndex lists peers by label value.
const minIndexedPeers = 32

// firstIn is the first In requirement of a pod-class peer's pod selector,
// nil for a peer of another class or without one.
func firstIn(p PeerAnalysis) *SelectorRequirement {
	if p.Class == PeerAnywhere || p.Class == PeerIPBlock {
		return nil
	}
	for i := range p.Pods.Requirements {
		if p.Pods.Requirements[i].Operator == metav1.LabelSelectorOpIn {
			return &p.Pods.Requirements[i]
		}
	}
	return nil
}

// candidates calls fn with every peer that may cover the pod-class peer p,
// each once. A peer q of a pod class covers p only if p.Pods implies
// q.Pods, so if q has an In requirement on key K with values V, p has an In
// requirement on K whose values, never empty, are all in V: p's first value
// on K is in V, and q is listed under (K, that value). Peers without an In
// requirement, and those of other classes, are always candidates.
func (idx *coverIndex) candidates(p PeerAnalysis, fn func(x int)) {
	idx.seenMark++
	if idx.seenMark == 0 { // wrapped: clear the marks
		clear(idx.seen)
		clear(idx.ruleSeen)
		idx.seenMark = 1
	}
	visit := func(x int) {
		if idx.seen[x] != idx.seenMark {
			idx.seen[x] = idx.seenMark
			fn(x)
		}
	}
	for _, x := range idx.always {
		visit(x)
	}
	for _, r := range p.Pods.Requirements {
		if r.Operator != metav1.LabelSelectorOpIn {
			continue
		}
		for _, x := range idx.byValue[r.Key+"\x00"+r.Values[0]] {
			visit(x)
		}
	}
}

// mayCover reports whether peer x (as q) may cover peer y (as p); false
// means Covers is certainly false.
func (idx *coverIndex) mayCover(x, y int) bool {
	have := idx.have[y]
	return idx.need[x]&^have == 0 && (idx.anyOf[x] == 0 || idx.anyOf[x]&have != 0)
}

// peerBits summarises a peer of a pod class for Covers. q covers p only if
// p.Pods implies q.Pods, and that needs, for every requirement of q, a
// requirement of p on the same key; for an In requirement of q, an In
// requirement of p whose values (never empty once normalized) are all among
// q's. So:
//   - need has a bit for each key of q and each single-valued In of q, and
//     have has a bit for each key of p and each value of each In of p: q can
//     only cover p when need(q) is within have(p);
//   - anyOf has a bit for each value of q's first In with several values: one
//     of them must be in have(p).
//
// A shared bit proves nothing (bits are hashes), so a pair that passes is
// compared in full. Peers of other classes get no bits and are always
// compared.
func peerBits(p PeerAnalysis) (need, anyOf, have uint64) {
	if p.Class == PeerAnywhere || p.Class == PeerIPBlock {
		return 0, 0, 0
	}
	for _, r := range p.Pods.Requirements {
		b := uint64(1) << (fnv64(r.Key, "") % 64)
		need |= b
		have |= b
		if r.Operator != metav1.LabelSelectorOpIn {
			continue
		}
		var vb uint64
		for _, v := range r.Values {
			vb |= uint64(1) << (fnv64(r.Key, v) % 64)
		}
		have |= vb
		switch {
		case len(r.Values) == 1:
			need |= vb
		case anyOf == 0:
			anyOf = vb
		}
	}
	return need, anyOf, have
}

// fnv64 is FNV-1a of key, a zero byte and value.
func fnv64(key, value string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * 1099511628211
	}
	h = (h ^ 0) * 1099511628211
	for i := 0; i < len(value); i++ {
		h = (h ^ uint64(value[i])) * 1099511628211
	}
	return h
}

// portsFor is a.PortsFor(d, d.Rules[i].Peers[k]). When a single rule
// contributes, its PortSet is returned as is, not copied: callers only read.
func (idx *coverIndex) portsFor(a *Analysis, d *DirectionAnalysis, i, k int) (PortSet, []int) {
	if !d.Effective {
		return PortSet{}, nil
	}
	p := &d.Rules[i].Peers[k]
	y := idx.first[i] + k
	podPeer := p.Class != PeerAnywhere && p.Class != PeerIPBlock
	var rules []int
	if !podPeer || idx.byValue == nil {
		for j := range d.Rules {
			qs := d.Rules[j].Peers
			for m := range qs {
				q := &qs[m]
				if podPeer && q.Class != PeerAnywhere && q.Class != PeerIPBlock && !idx.mayCover(idx.first[j]+m, y) {
					continue
				}
				if a.Covers(*q, *p) {
					rules = append(rules, j)
					break
				}
			}
		}
	} else {
		idx.candidates(*p, func(x int) {
			j := idx.rule[x]
			if idx.ruleSeen[j] == idx.seenMark {
				return
			}
			q := &d.Rules[j].Peers[x-idx.first[j]]
			if q.Class != PeerAnywhere && q.Class != PeerIPBlock && !idx.mayCover(x, y) {
				return
			}
			if a.Covers(*q, *p) {
				idx.ruleSeen[j] = idx.seenMark
				rules = append(rules, j)
			}
		})
		slices.Sort(rules)
	}
	if len(rules) == 1 {
		return d.Rules[rules[0]].Ports, rules
	}
	sets := make([]PortSet, len(rules))
	for n, j := range rules {
		sets[n] = d.Rules[j].Ports
	}
	return UnionPortSets(sets...), rules
}

// joinProtocols is "TCP", "TCP and UDP", "TCP, UDP and SCTP".
func joinProtocols(ps []corev1.Protocol) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = string(p)
	}
	return joinWords(names)
}

// maxMergedPeers bounds the peers of one direction whose ports are merged
// pairwise; see portBreadthViolations.
const maxMergedPeers = 512

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

// restrictedMaxPorts is the most port numbers per protocol a peer may use at
// level restricted; see check_ingressWidePortRange.go.
const restrictedMaxPorts = 1024

func allPortsViolations(a *Analysis, d *DirectionAnalysis, merge peerMerge) []Violation {
	return portBreadthViolations(a, d, merge, ProtocolPorts.All, func(scope string, set PortSet, ps []corev1.Protocol) string {
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
	})
}

func widePortRangeViolations(a *Analysis, d *DirectionAnalysis, merge peerMerge) []Violation {
	wide := func(p ProtocolPorts) bool { return !p.All() && p.Count() > restrictedMaxPorts }
	return portBreadthViolations(a, d, merge, wide, func(scope string, set PortSet, ps []corev1.Protocol) string {
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
	})
}
