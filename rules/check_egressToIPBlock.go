package rules

/*
egressToIPBlock: an egress rule may not reach IP addresses.

Inspects: spec.egress[*].to[*].ipBlock (cidr and except), in a policy whose
effective policyTypes include Egress.

Allowed: no ipBlock peer. Destinations by IP (an external API, a database
outside the cluster, the whole internet) are what platform NetworkProfiles
are for. 0.0.0.0/0 with except is still external; 0.0.0.0/1 plus
128.0.0.0/1 is reported as covering every IPv4 address.
*/

func checkEgressToIPBlock() Check {
	return Check{
		ID:    "egressToIPBlock",
		Level: LevelBaseline,
		Versions: []VersionedCheck{
			{MinimumVersion: MajorMinorVersion(1, 0), Func: egressToIPBlock_1_0},
		},
	}
}

func egressToIPBlock_1_0(a *Analysis) []Violation {
	d := &a.Egress
	if !d.Effective {
		return nil
	}
	union := d.Addresses()
	return peerViolations(d, func(p PeerAnalysis) (Violation, bool) {
		if p.Class != PeerIPBlock {
			return Violation{}, false
		}
		return Violation{Field: p.Field + ".ipBlock", Message: ipBlockMessage(d, union, p)}, true
	})
}
