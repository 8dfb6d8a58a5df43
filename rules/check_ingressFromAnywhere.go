package rules

import networkingv1 "k8s.io/api/networking/v1"

/*
ingressFromAnywhere: an ingress rule must name its sources.

Inspects: spec.ingress[*].from, in a policy whose effective policyTypes
include Ingress.

Allowed: every ingress rule lists at least one peer. A rule without from, or
with from: [], allows traffic from any source, inside the cluster or outside
it; so does a peer with none of podSelector, namespaceSelector and ipBlock,
which the API server rejects. Traffic from outside the namespace is reserved
for platform NetworkProfiles.
*/

func checkIngressFromAnywhere() Check {
	return Check{
		ID:    "ingressFromAnywhere",
		Level: LevelBaseline,
		Versions: []VersionedCheck{
			{MinimumVersion: MajorMinorVersion(1, 0), Func: ingressFromAnywhere_1_0},
		},
	}
}

func ingressFromAnywhere_1_0(a *Analysis) []Violation {
	return peerViolations(&a.Ingress, func(p PeerAnalysis) (Violation, bool) {
		if p.Class != PeerAnywhere {
			return Violation{}, false
		}
		return Violation{Field: p.Field, Message: anywhereMessage(networkingv1.PolicyTypeIngress)}, true
	})
}
