package rules

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// Mechanics the check_*.go files share: walking a direction's peers, and
// reporting ports at the narrowest field that explains them. Nothing here
// decides what a check allows: a check passes its own peer test, port
// predicate and merge, and takes its words from messages.go, so that a
// change to one check (a new version) cannot change another. The indexes
// that merge ports per peer are in portindex.go.

// peerViolations calls violation with every peer of the effective direction
// d, in rule and peer order, and returns the violations it reports (ok).
func peerViolations(d *DirectionAnalysis, violation func(p PeerAnalysis) (v Violation, ok bool)) []Violation {
	if !d.Effective {
		return nil
	}
	var out []Violation
	for _, r := range d.Rules {
		for _, p := range r.Peers {
			if v, ok := violation(p); ok {
				out = append(out, v)
			}
		}
	}
	return out
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

// maxMergedPeers bounds the peers of one direction whose ports are merged
// pairwise; see portBreadthViolations.
const maxMergedPeers = 512

// restrictedMaxPorts is the most port numbers per protocol a peer may use at
// level restricted: the bound of ingressWidePortRange and
// egressWidePortRange, named in their message.
const restrictedMaxPorts = 1024
