package rules

import (
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The port-merging indexes of portBreadthViolations: for each peer of a
// direction, which rules' ports it gets. coverIndex answers for the v1.0
// checks (rules with a peer covering it), overlapIndex for the v1.1 checks
// (rules with a peer that may select an endpoint it selects too). Both
// compare every peer with every other, and rule out most pairs before the
// full comparison with 64-bit hashed summaries and an index by label value.
// They hold mechanics only: which peers count as covering or overlapping is
// Analysis.Covers and selectorsMayOverlap. bench_equivalence_test.go holds
// coverIndex to Analysis.PortsFor (TestCoverIndexIsPortsFor) and overlapIndex
// to every endpoint two peers both select (TestOverlapIndexIsSound).

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
	h *= 1099511628211 // the zero byte: h ^ 0 is h
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
