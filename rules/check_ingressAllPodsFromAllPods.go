package rules

/*
ingressAllPodsFromAllPods: a policy may not open every pod of the namespace
to every pod of the namespace.

Inspects: spec.podSelector and spec.ingress[*].from[*] peers in the own
namespace (a podSelector alone, or with a namespaceSelector pinned to the own
namespace), in a policy whose effective policyTypes include Ingress.

Allowed: spec.podSelector selects some pods, or every own-namespace peer
selects some pods. Fails when spec.podSelector is {} and a peer's podSelector
is {} (or missing beside a pinned namespaceSelector): that undoes default-deny
inside the namespace, whatever the ports. Peers outside the namespace are
left to the baseline checks.
*/

func checkIngressAllPodsFromAllPods() Check {
	return Check{
		ID:    "ingressAllPodsFromAllPods",
		Level: LevelRestricted,
		Versions: []VersionedCheck{
			{MinimumVersion: MajorMinorVersion(1, 0), Func: ingressAllPodsFromAllPods_1_0},
		},
	}
}

func ingressAllPodsFromAllPods_1_0(a *Analysis) []Violation { return allPodsViolations(a, &a.Ingress) }
