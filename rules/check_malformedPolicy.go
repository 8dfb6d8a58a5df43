package rules

/*
malformedPolicy: the policy must be one the API server accepts.

Inspects: the whole policy: metadata.namespace, spec.podSelector,
spec.policyTypes, every peer (podSelector, namespaceSelector, ipBlock) and
every ports entry.

Allowed: well-formed fields only. Fails on a missing policy, label selectors
with unknown operators, invalid keys or values, In/NotIn without values or
Exists/DoesNotExist with values; policyTypes other than Ingress and Egress;
invalid cidr or except entries, or except entries outside cidr; peers with no
selector or ipBlock, or ipBlock combined with a selector; ports outside
1-65535, invalid port names, endPort below port or without a numeric port,
and protocols other than TCP, UDP and SCTP.

The other checks read each malformed shape as the broadest thing it could
mean, so this check is not the only thing standing between a typo and an
allowed policy; it says precisely what to fix.
*/

func checkMalformedPolicy() Check {
	return Check{
		ID:    "malformedPolicy",
		Level: LevelBaseline,
		Versions: []VersionedCheck{
			{MinimumVersion: MajorMinorVersion(1, 0), Func: malformedPolicy_1_0},
		},
	}
}

func malformedPolicy_1_0(a *Analysis) []Violation {
	var out []Violation
	for _, e := range a.Problems {
		out = append(out, Violation{Field: e.Field, Message: malformedMessage(e)})
	}
	return out
}
