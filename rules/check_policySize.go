package rules

/*
policySize: a policy must stay within the limits netguard judges.

Inspects: the number of rules, peers and ports entries per rule and per
direction, ipBlock except entries, requirements per label selector, values
per In/NotIn expression, and selector values in the whole policy (limits.go,
docs/rules.md).

Allowed: a policy within every limit. The limits are far beyond real
policies; they keep the cost of judging any object the API server can store
to milliseconds, so that no tenant can stall admission for the cluster with
one large policy. A policy over a limit is denied (never allowed unjudged),
and nothing else is reported for it: the other checks do not run on it.

The check exists from v1.0 on: a namespace pinned to an older version of the
checks must not be a way around the cost bound.
*/

func checkPolicySize() Check {
	return Check{
		ID:    "policySize",
		Level: LevelBaseline,
		Versions: []VersionedCheck{
			{MinimumVersion: MajorMinorVersion(1, 0), Func: policySize_1_0},
		},
	}
}

func policySize_1_0(a *Analysis) []Violation {
	out := make([]Violation, 0, len(a.limits))
	for _, l := range a.limits {
		out = append(out, Violation{Field: l.field, Message: l.message})
	}
	return out
}
