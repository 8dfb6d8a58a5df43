package rules

import networkingv1 "k8s.io/api/networking/v1"

/*
egressAllPodsToAllPods: a policy may not let every pod of the namespace reach
every pod of the namespace.

Inspects: spec.podSelector and spec.egress[*].to[*] peers in the own
namespace, in a policy whose effective policyTypes include Egress.

Allowed: spec.podSelector selects some pods, or every own-namespace peer
selects some pods. Fails when spec.podSelector is {} and a peer's podSelector
is {} (or missing beside a pinned namespaceSelector), whatever the ports.
Since v1.1 selectors are judged by what they can match: a selector of only
DoesNotExist and NotIn requirements matches every pod that lacks some
labels, in effect every pod, and counts as {}, for spec.podSelector and for
peers. Peers that together cover every pod ({x Exists} and
{x DoesNotExist}, {x In [a]} and {x NotIn [a]}) always include such a
selector, since a pod without labels meets no In or Exists.
*/

func checkEgressAllPodsToAllPods() Check {
	return Check{
		ID:    "egressAllPodsToAllPods",
		Level: LevelRestricted,
		Versions: []VersionedCheck{
			{MinimumVersion: MajorMinorVersion(1, 0), Func: egressAllPodsToAllPods_1_0},
			{MinimumVersion: MajorMinorVersion(1, 1), Func: egressAllPodsToAllPods_1_1},
		},
	}
}

func egressAllPodsToAllPods_1_0(a *Analysis) []Violation {
	if !a.Subject.MatchesAll() {
		return nil
	}
	return peerViolations(&a.Egress, func(p PeerAnalysis) (Violation, bool) {
		if p.Class != PeerOwnNamespace || !p.Pods.MatchesAll() {
			return Violation{}, false
		}
		return Violation{Field: p.Field, Message: allPodsMessage(a, networkingv1.PolicyTypeEgress)}, true
	})
}

// egressAllPodsToAllPods_1_1 counts a selector without In and Exists as {}: it
// matches every pod without some labels (see the doc block above).
func egressAllPodsToAllPods_1_1(a *Analysis) []Violation {
	if !matchesUnlabeled(a.Subject) {
		return nil
	}
	return peerViolations(&a.Egress, func(p PeerAnalysis) (Violation, bool) {
		if p.Class != PeerOwnNamespace || !matchesUnlabeled(p.Pods) {
			return Violation{}, false
		}
		return Violation{Field: p.Field, Message: allPodsUnlabeledMessage(a, networkingv1.PolicyTypeEgress, p)}, true
	})
}
