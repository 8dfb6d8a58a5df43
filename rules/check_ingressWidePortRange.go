package rules

/*
ingressWidePortRange: an ingress rule may open at most 1024 ports per
protocol to a peer.

Inspects: spec.ingress[*].ports (port and endPort), in a policy whose
effective policyTypes include Ingress.

Allowed: at most 1024 port numbers per protocol for any peer, counting the
union of the rule's entries and of the other rules whose peers cover it.
Without this limit ingressAllPorts would be evaded by 1-65534. Named ports do
not count. Workloads that need wide ranges (Longhorn instance managers use
10000-30000 between themselves, media servers use RTP ranges) belong in a
namespace at level baseline.
Since v1.1 a peer is counted with every rule that has a peer which may select
an endpoint it selects too, not only one that covers it: peers on different
labels ({l1: y}, {l2: y}) both select a pod that carries both labels, and
that pod gets the ports of both rules. Peers are apart only when the policy
proves it (In lists without a common value, In against NotIn of its values,
Exists against DoesNotExist on one label, namespaces no namespace matches
both); unknown labels count as shared.
*/

func checkIngressWidePortRange() Check {
	return Check{
		ID:    "ingressWidePortRange",
		Level: LevelRestricted,
		Versions: []VersionedCheck{
			{MinimumVersion: MajorMinorVersion(1, 0), Func: ingressWidePortRange_1_0},
			{MinimumVersion: MajorMinorVersion(1, 1), Func: ingressWidePortRange_1_1},
		},
	}
}

func ingressWidePortRange_1_0(a *Analysis) []Violation {
	wide := func(p ProtocolPorts) bool { return !p.All() && p.Count() > restrictedMaxPorts }
	return portBreadthViolations(a, &a.Ingress, mergeCovering, wide, widePortRangeMessage)
}

func ingressWidePortRange_1_1(a *Analysis) []Violation {
	wide := func(p ProtocolPorts) bool { return !p.All() && p.Count() > restrictedMaxPorts }
	return portBreadthViolations(a, &a.Ingress, mergeOverlapping, wide, widePortRangeMessage)
}
