package rules

/*
egressAllPorts: an egress rule must name the ports it reaches.

Inspects: spec.egress[*].ports, in a policy whose effective policyTypes
include Egress.

Allowed: as ingressAllPorts, for destination ports: no rule without ports, no
entry without port, no range 1-65535, and no set of entries or rules that
adds up to every port of a protocol for a peer.
*/

func checkEgressAllPorts() Check {
	return Check{
		ID:    "egressAllPorts",
		Level: LevelRestricted,
		Versions: []VersionedCheck{
			{MinimumVersion: MajorMinorVersion(1, 0), Func: egressAllPorts_1_0},
		},
	}
}

func egressAllPorts_1_0(a *Analysis) []Violation { return allPortsViolations(a, &a.Egress) }
