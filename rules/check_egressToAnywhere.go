package rules

import networkingv1 "k8s.io/api/networking/v1"

/*
egressToAnywhere: an egress rule must name its destinations.

Inspects: spec.egress[*].to, in a policy whose effective policyTypes include
Egress (listed, or defaulted because the policy has egress rules).

Allowed: every egress rule lists at least one peer. A rule without to, or with
to: [], allows traffic to any destination, inside the cluster or outside it
(the internet, the API server, other namespaces); so does a peer with none of
podSelector, namespaceSelector and ipBlock. Destinations outside the namespace
are reserved for platform NetworkProfiles.
*/

func checkEgressToAnywhere() Check {
	return Check{
		ID:    "egressToAnywhere",
		Level: LevelBaseline,
		Versions: []VersionedCheck{
			{MinimumVersion: MajorMinorVersion(1, 0), Func: egressToAnywhere_1_0},
		},
	}
}

func egressToAnywhere_1_0(a *Analysis) []Violation {
	return peerViolations(&a.Egress, func(p PeerAnalysis) (Violation, bool) {
		if p.Class != PeerAnywhere {
			return Violation{}, false
		}
		return Violation{Field: p.Field, Message: anywhereMessage(networkingv1.PolicyTypeEgress)}, true
	})
}
