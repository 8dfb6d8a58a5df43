package rules

import (
	"fmt"
	"strconv"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Limits on what one NetworkPolicy may hold for netguard to judge it. The API
// server stores objects up to about 3 MiB, and any user who may create a
// NetworkPolicy in a guarded namespace may send one that large, to be
// evaluated on every request (warn and audit included). The limits are far
// beyond any real policy and keep the work on one policy to milliseconds: a
// policy over a limit is denied by policySize without being analysed further.
// docs/rules.md lists them.
const (
	// MaxRulesPerDirection bounds spec.ingress and spec.egress.
	MaxRulesPerDirection = 500
	// MaxPeersPerRule bounds a rule's from or to.
	MaxPeersPerRule = 500
	// MaxPeersPerDirection bounds the peers of all rules of a direction.
	MaxPeersPerDirection = 1000
	// MaxPortsPerRule bounds a rule's ports.
	MaxPortsPerRule = 256
	// MaxPortsPerDirection bounds the ports entries of all rules of a
	// direction.
	MaxPortsPerDirection = 1000
	// MaxExceptsPerIPBlock bounds an ipBlock's except.
	MaxExceptsPerIPBlock = 1000
	// MaxExceptsPerDirection bounds the except entries of all ipBlocks of a
	// direction.
	MaxExceptsPerDirection = 2000
	// MaxRequirementsPerSelector bounds matchLabels plus matchExpressions of
	// one label selector.
	MaxRequirementsPerSelector = 64
	// MaxValuesPerRequirement bounds the values of one In or NotIn
	// expression.
	MaxValuesPerRequirement = 1000
	// MaxSelectorValuesPerPolicy bounds the values of every selector of the
	// policy together (a matchLabels entry is one value).
	MaxSelectorValuesPerPolicy = 5000
)

// limitError is one limit a policy exceeds.
type limitError struct {
	field   string
	message string
}

// checkLimits returns the limits np exceeds, at most one per limit, in a
// single pass that allocates only for what it reports: it runs before the
// analysis, whose cost the limits bound.
func checkLimits(np *networkingv1.NetworkPolicy) []limitError {
	if np == nil || withinLimits(np) {
		return nil
	}
	var (
		out      []limitError
		reported = map[string]bool{}
		values   int
	)
	report := func(limit string, field func() string, message string) {
		if reported[limit] {
			return
		}
		reported[limit] = true
		out = append(out, limitError{field: field(), message: message})
	}
	selector := func(sel *metav1.LabelSelector, path func() string) {
		if sel == nil {
			return
		}
		if n := len(sel.MatchLabels) + len(sel.MatchExpressions); n > MaxRequirementsPerSelector {
			report("requirements", path, fmt.Sprintf("has %d requirements (matchLabels and matchExpressions together); netguard judges at most %d per selector: select by fewer labels", n, MaxRequirementsPerSelector))
		}
		values += len(sel.MatchLabels)
		for i, e := range sel.MatchExpressions {
			values += len(e.Values)
			if len(e.Values) > MaxValuesPerRequirement {
				report("values", func() string { return path() + ".matchExpressions[" + strconv.Itoa(i) + "].values" },
					fmt.Sprintf("has %d values; netguard judges at most %d values per requirement: give the selected pods or namespaces a label they share and select that", len(e.Values), MaxValuesPerRequirement))
			}
		}
	}
	direction := func(name, peersName string, n int, rule func(i int) ([]networkingv1.NetworkPolicyPeer, []networkingv1.NetworkPolicyPort)) {
		if n > MaxRulesPerDirection {
			report(name+"/rules", func() string { return "spec." + name },
				fmt.Sprintf("has %d rules; netguard judges at most %d per direction: merge rules that share ports, or split the policy", n, MaxRulesPerDirection))
		}
		peers, ports, excepts := 0, 0, 0
		for i := range n {
			rulePath := func() string { return indexPath("spec."+name, i) }
			ps, pts := rule(i)
			peers += len(ps)
			ports += len(pts)
			if len(ps) > MaxPeersPerRule {
				report(name+"/rulePeers", func() string { return rulePath() + "." + peersName },
					fmt.Sprintf("has %d peers; netguard judges at most %d per rule: select the peers by a label they share", len(ps), MaxPeersPerRule))
			}
			if len(pts) > MaxPortsPerRule {
				report(name+"/rulePorts", func() string { return rulePath() + ".ports" },
					fmt.Sprintf("has %d entries; netguard judges at most %d per rule: use port ranges (port and endPort) or named ports", len(pts), MaxPortsPerRule))
			}
			for j := range ps {
				p := &ps[j]
				peerPath := func() string { return indexPath(rulePath()+"."+peersName, j) }
				selector(p.PodSelector, func() string { return peerPath() + ".podSelector" })
				selector(p.NamespaceSelector, func() string { return peerPath() + ".namespaceSelector" })
				if p.IPBlock != nil {
					excepts += len(p.IPBlock.Except)
				}
				if p.IPBlock != nil && len(p.IPBlock.Except) > MaxExceptsPerIPBlock {
					report("excepts", func() string { return peerPath() + ".ipBlock.except" },
						fmt.Sprintf("has %d entries; netguard judges at most %d per ipBlock: except larger blocks", len(p.IPBlock.Except), MaxExceptsPerIPBlock))
				}
			}
		}
		if peers > MaxPeersPerDirection {
			report(name+"/peers", func() string { return "spec." + name },
				fmt.Sprintf("has %d peers in all; netguard judges at most %d per direction: select the peers by a label they share, or split the policy", peers, MaxPeersPerDirection))
		}
		if excepts > MaxExceptsPerDirection {
			report(name+"/excepts", func() string { return "spec." + name },
				fmt.Sprintf("has %d ipBlock except entries in all; netguard judges at most %d per direction: except larger blocks, or split the policy", excepts, MaxExceptsPerDirection))
		}
		if ports > MaxPortsPerDirection {
			report(name+"/ports", func() string { return "spec." + name },
				fmt.Sprintf("has %d ports entries in all; netguard judges at most %d per direction: use port ranges or named ports, or split the policy", ports, MaxPortsPerDirection))
		}
	}
	selector(&np.Spec.PodSelector, func() string { return "spec.podSelector" })
	direction("ingress", "from", len(np.Spec.Ingress), func(i int) ([]networkingv1.NetworkPolicyPeer, []networkingv1.NetworkPolicyPort) {
		return np.Spec.Ingress[i].From, np.Spec.Ingress[i].Ports
	})
	direction("egress", "to", len(np.Spec.Egress), func(i int) ([]networkingv1.NetworkPolicyPeer, []networkingv1.NetworkPolicyPort) {
		return np.Spec.Egress[i].To, np.Spec.Egress[i].Ports
	})
	if values > MaxSelectorValuesPerPolicy {
		report("policyValues", func() string { return "spec" },
			fmt.Sprintf("has %d label selector values in all; netguard judges at most %d per policy: select by labels the pods share, or split the policy", values, MaxSelectorValuesPerPolicy))
	}
	return out
}

// withinLimits is checkLimits' answer for the usual policy, which is within
// every limit: one pass that counts and builds nothing.
func withinLimits(np *networkingv1.NetworkPolicy) bool {
	values := 0
	selector := func(sel *metav1.LabelSelector) bool {
		if sel == nil {
			return true
		}
		if len(sel.MatchLabels)+len(sel.MatchExpressions) > MaxRequirementsPerSelector {
			return false
		}
		values += len(sel.MatchLabels)
		for i := range sel.MatchExpressions {
			n := len(sel.MatchExpressions[i].Values)
			if n > MaxValuesPerRequirement {
				return false
			}
			values += n
		}
		return true
	}
	peers := func(ps []networkingv1.NetworkPolicyPeer, ports int, total, totalPorts, excepts *int) bool {
		if len(ps) > MaxPeersPerRule || ports > MaxPortsPerRule {
			return false
		}
		*total += len(ps)
		*totalPorts += ports
		for i := range ps {
			p := &ps[i]
			if !selector(p.PodSelector) || !selector(p.NamespaceSelector) {
				return false
			}
			if p.IPBlock != nil {
				if len(p.IPBlock.Except) > MaxExceptsPerIPBlock {
					return false
				}
				*excepts += len(p.IPBlock.Except)
			}
		}
		return true
	}
	if !selector(&np.Spec.PodSelector) || len(np.Spec.Ingress) > MaxRulesPerDirection || len(np.Spec.Egress) > MaxRulesPerDirection {
		return false
	}
	var in, inPorts, inExcepts, out, outPorts, outExcepts int
	for i := range np.Spec.Ingress {
		if !peers(np.Spec.Ingress[i].From, len(np.Spec.Ingress[i].Ports), &in, &inPorts, &inExcepts) {
			return false
		}
	}
	for i := range np.Spec.Egress {
		if !peers(np.Spec.Egress[i].To, len(np.Spec.Egress[i].Ports), &out, &outPorts, &outExcepts) {
			return false
		}
	}
	return in <= MaxPeersPerDirection && out <= MaxPeersPerDirection &&
		inPorts <= MaxPortsPerDirection && outPorts <= MaxPortsPerDirection &&
		inExcepts <= MaxExceptsPerDirection && outExcepts <= MaxExceptsPerDirection &&
		values <= MaxSelectorValuesPerPolicy
}
