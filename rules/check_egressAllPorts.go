package rules

/*
egressAllPorts: an egress rule must name the ports it reaches.

Inspects: spec.egress[*].ports, in a policy whose effective policyTypes
include Egress.

Allowed: as ingressAllPorts, for destination ports: no rule without ports, no
entry without port, no range 1-65535, and no set of entries or rules that
adds up to every port of a protocol for a peer.
Since v1.1 a peer is counted with every rule that has a peer which may select
an endpoint it selects too, not only one that covers it: peers on different
labels ({l1: y}, {l2: y}) both select a pod that carries both labels, and
that pod gets the ports of both rules. Peers are apart only when the policy
proves it (In lists without a common value, In against NotIn of its values,
Exists against DoesNotExist on one label, namespaces no namespace matches
both); unknown labels count as shared.
*/

func checkEgressAllPorts() Check {
	return Check{
		ID:    "egressAllPorts",
		Level: LevelRestricted,
		Versions: []VersionedCheck{
			{MinimumVersion: MajorMinorVersion(1, 0), Func: egressAllPorts_1_0},
			{MinimumVersion: MajorMinorVersion(1, 1), Func: egressAllPorts_1_1},
		},
	}
}

func egressAllPorts_1_0(a *Analysis) []Violation {
	return portBreadthViolations(a, &a.Egress, mergeCovering, ProtocolPorts.All, allPortsMessage)
}

func egressAllPorts_1_1(a *Analysis) []Violation {
	return portBreadthViolations(a, &a.Egress, mergeOverlapping, ProtocolPorts.All, allPortsMessage)
}
