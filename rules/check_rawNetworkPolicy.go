package rules

/*
rawNetworkPolicy: in a managed namespace nobody writes NetworkPolicies by
hand.

Inspects: nothing but the policy's existence.

Allowed: never. At level managed every NetworkPolicy is a violation; only
platform identities and the policies netguard generates from workload
annotations may write them. Which requests come from those identities is
decided by the admission configuration, which exempts them before this
package is asked.
*/

func checkRawNetworkPolicy() Check {
	return Check{
		ID:    "rawNetworkPolicy",
		Level: LevelManaged,
		Versions: []VersionedCheck{
			{MinimumVersion: MajorMinorVersion(1, 0), Func: rawNetworkPolicy_1_0},
		},
	}
}

func rawNetworkPolicy_1_0(*Analysis) []Violation {
	return []Violation{{Message: rawNetworkPolicyMessage}}
}
