package rules

/*
egressWidePortRange: an egress rule may reach at most 1024 ports per protocol
of a peer.

Inspects: spec.egress[*].ports (port and endPort), in a policy whose effective
policyTypes include Egress.

Allowed: as ingressWidePortRange, for destination ports: at most 1024 port
numbers per protocol for any peer, counted over the rule's entries and the
rules whose peers cover it.
*/

func checkEgressWidePortRange() Check {
	return Check{
		ID:    "egressWidePortRange",
		Level: LevelRestricted,
		Versions: []VersionedCheck{
			{MinimumVersion: MajorMinorVersion(1, 0), Func: egressWidePortRange_1_0},
		},
	}
}

func egressWidePortRange_1_0(a *Analysis) []Violation { return widePortRangeViolations(a, &a.Egress) }
