package rules

/*
ingressAllPorts: an ingress rule must name the ports it opens.

Inspects: spec.ingress[*].ports, in a policy whose effective policyTypes
include Ingress.

Allowed: rules whose ports leave no protocol fully open. Fails on a rule
without ports (every port of every protocol), an entry without port (every
port of its protocol, TCP when protocol is unset), a range 1-65535, and
entries or rules that add up to every port for peers they share. Rules are
merged per peer semantically: a rule for all pods of the namespace also
applies to a rule for some of them, so splitting a range over rules changes
nothing. Named ports are fine: they open only the port each selected pod
declares under that name.
Since v1.1 a peer is counted with every rule that has a peer which may select
an endpoint it selects too, not only one that covers it: peers on different
labels ({l1: y}, {l2: y}) both select a pod that carries both labels, and
that pod gets the ports of both rules. Peers are apart only when the policy
proves it (In lists without a common value, In against NotIn of its values,
Exists against DoesNotExist on one label, namespaces no namespace matches
both); unknown labels count as shared.
*/

func checkIngressAllPorts() Check {
	return Check{
		ID:    "ingressAllPorts",
		Level: LevelRestricted,
		Versions: []VersionedCheck{
			{MinimumVersion: MajorMinorVersion(1, 0), Func: ingressAllPorts_1_0},
			{MinimumVersion: MajorMinorVersion(1, 1), Func: ingressAllPorts_1_1},
		},
	}
}

func ingressAllPorts_1_0(a *Analysis) []Violation {
	return portBreadthViolations(a, &a.Ingress, mergeCovering, ProtocolPorts.All, allPortsMessage)
}

func ingressAllPorts_1_1(a *Analysis) []Violation {
	return portBreadthViolations(a, &a.Ingress, mergeOverlapping, ProtocolPorts.All, allPortsMessage)
}
