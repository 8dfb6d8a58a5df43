package rules

/*
egressWidePortRange: an egress rule may reach at most 1024 ports per protocol
of a peer.

Inspects: spec.egress[*].ports (port and endPort), in a policy whose effective
policyTypes include Egress.

Allowed: as ingressWidePortRange, for destination ports: at most 1024 port
numbers per protocol for any peer, counted over the rule's entries and the
rules whose peers cover it.
Since v1.1 a peer is counted with every rule that has a peer which may select
an endpoint it selects too, not only one that covers it: peers on different
labels ({l1: y}, {l2: y}) both select a pod that carries both labels, and
that pod gets the ports of both rules. Peers are apart only when the policy
proves it (In lists without a common value, In against NotIn of its values,
Exists against DoesNotExist on one label, namespaces no namespace matches
both); unknown labels count as shared.
*/

func checkEgressWidePortRange() Check {
	return Check{
		ID:    "egressWidePortRange",
		Level: LevelRestricted,
		Versions: []VersionedCheck{
			{MinimumVersion: MajorMinorVersion(1, 0), Func: egressWidePortRange_1_0},
			{MinimumVersion: MajorMinorVersion(1, 1), Func: egressWidePortRange_1_1},
		},
	}
}

func egressWidePortRange_1_0(a *Analysis) []Violation {
	wide := func(p ProtocolPorts) bool { return !p.All() && p.Count() > restrictedMaxPorts }
	return portBreadthViolations(a, &a.Egress, mergeCovering, wide, widePortRangeMessage)
}

func egressWidePortRange_1_1(a *Analysis) []Violation {
	wide := func(p ProtocolPorts) bool { return !p.All() && p.Count() > restrictedMaxPorts }
	return portBreadthViolations(a, &a.Egress, mergeOverlapping, wide, widePortRangeMessage)
}
