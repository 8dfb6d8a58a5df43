package rules

import networkingv1 "k8s.io/api/networking/v1"

/*
egressToOtherNamespaces: an egress rule may reach pods of its own namespace
only.

Inspects: spec.egress[*].to[*].namespaceSelector (with its podSelector), in a
policy whose effective policyTypes include Egress.

Allowed: no namespaceSelector, or one pinned to the policy's namespace by
kubernetes.io/metadata.name (matchLabels, or In with that single value).
Reaching another namespace, including kube-system for DNS, needs a platform
NetworkProfile. Selectors are classified as for ingressFromOtherNamespaces.
*/

func checkEgressToOtherNamespaces() Check {
	return Check{
		ID:    "egressToOtherNamespaces",
		Level: LevelBaseline,
		Versions: []VersionedCheck{
			{MinimumVersion: MajorMinorVersion(1, 0), Func: egressToOtherNamespaces_1_0},
		},
	}
}

func egressToOtherNamespaces_1_0(a *Analysis) []Violation {
	return peerViolations(&a.Egress, func(p PeerAnalysis) (Violation, bool) {
		if p.Class != PeerAllNamespaces && p.Class != PeerOtherNamespaces {
			return Violation{}, false
		}
		return Violation{Field: p.Field + ".namespaceSelector", Message: otherNamespacesMessage(a, networkingv1.PolicyTypeEgress, p)}, true
	})
}
