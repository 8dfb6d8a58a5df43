package rules

/*
ingressFromIPBlock: an ingress rule may not admit IP addresses.

Inspects: spec.ingress[*].from[*].ipBlock (cidr and except), in a policy whose
effective policyTypes include Ingress.

Allowed: no ipBlock peer. Any ipBlock selects addresses by IP, usually outside
the cluster, so it crosses the namespace boundary whatever its size:
0.0.0.0/0, 0.0.0.0/0 with except, 10.0.0.0/8 and a single /32 all fail. The
message says when a block, alone or together with the other blocks of the
direction, covers every IPv4 or IPv6 address. A malformed cidr counts as
every address.
*/

func checkIngressFromIPBlock() Check {
	return Check{
		ID:    "ingressFromIPBlock",
		Level: LevelBaseline,
		Versions: []VersionedCheck{
			{MinimumVersion: MajorMinorVersion(1, 0), Func: ingressFromIPBlock_1_0},
		},
	}
}

func ingressFromIPBlock_1_0(a *Analysis) []Violation {
	d := &a.Ingress
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
