package rules

import networkingv1 "k8s.io/api/networking/v1"

/*
ingressFromOtherNamespaces: an ingress rule may admit pods of its own
namespace only.

Inspects: spec.ingress[*].from[*].namespaceSelector (with its podSelector), in
a policy whose effective policyTypes include Ingress.

Allowed: no namespaceSelector, or one that pins kubernetes.io/metadata.name to
the policy's namespace, through matchLabels or an In expression whose only
value is that name (other requirements may be added: they only narrow it).
Everything else can match another namespace and fails: {} and
kubernetes.io/metadata.name Exists (every namespace), NotIn, DoesNotExist,
pins to other names, other labels. A malformed requirement is ignored, which
makes the selector wider, never narrower.
*/

func checkIngressFromOtherNamespaces() Check {
	return Check{
		ID:    "ingressFromOtherNamespaces",
		Level: LevelBaseline,
		Versions: []VersionedCheck{
			{MinimumVersion: MajorMinorVersion(1, 0), Func: ingressFromOtherNamespaces_1_0},
		},
	}
}

func ingressFromOtherNamespaces_1_0(a *Analysis) []Violation {
	return peerViolations(&a.Ingress, func(p PeerAnalysis) (Violation, bool) {
		if p.Class != PeerAllNamespaces && p.Class != PeerOtherNamespaces {
			return Violation{}, false
		}
		return Violation{Field: p.Field + ".namespaceSelector", Message: otherNamespacesMessage(a, networkingv1.PolicyTypeIngress, p)}, true
	})
}
