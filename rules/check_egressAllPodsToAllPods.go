package rules

/*
egressAllPodsToAllPods: a policy may not let every pod of the namespace reach
every pod of the namespace.

Inspects: spec.podSelector and spec.egress[*].to[*] peers in the own
namespace, in a policy whose effective policyTypes include Egress.

Allowed: spec.podSelector selects some pods, or every own-namespace peer
selects some pods. Fails when spec.podSelector is {} and a peer's podSelector
is {} (or missing beside a pinned namespaceSelector), whatever the ports.
*/

func checkEgressAllPodsToAllPods() Check {
	return Check{
		ID:    "egressAllPodsToAllPods",
		Level: LevelRestricted,
		Versions: []VersionedCheck{
			{MinimumVersion: MajorMinorVersion(1, 0), Func: egressAllPodsToAllPods_1_0},
		},
	}
}

func egressAllPodsToAllPods_1_0(a *Analysis) []Violation { return allPodsViolations(a, &a.Egress) }
