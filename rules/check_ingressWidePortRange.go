package rules

/*
ingressWidePortRange: an ingress rule may open at most 1024 ports per
protocol to a peer.

Inspects: spec.ingress[*].ports (port and endPort), in a policy whose
effective policyTypes include Ingress.

Allowed: at most 1024 port numbers per protocol for any peer, counting the
union of the rule's entries and of the other rules whose peers cover it.
Without this limit ingressAllPorts would be evaded by 1-65534. Named ports do
not count. Workloads that need wide ranges (Longhorn instance managers use
10000-30000 between themselves, media servers use RTP ranges) belong in a
namespace at level baseline.
*/

func checkIngressWidePortRange() Check {
	return Check{
		ID:    "ingressWidePortRange",
		Level: LevelRestricted,
		Versions: []VersionedCheck{
			{MinimumVersion: MajorMinorVersion(1, 0), Func: ingressWidePortRange_1_0},
		},
	}
}

func ingressWidePortRange_1_0(a *Analysis) []Violation { return widePortRangeViolations(a, &a.Ingress) }
