package rules

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The API server's own CEL decides part of what the checks decide: a
// ValidatingAdmissionPolicy evaluates the expressions built here, and the
// webhook is called only for the rest (docs/admission.md, "Decided in the
// API server"). This file holds the expressions as plain strings, so that
// the package stays free of a CEL library; the webhook package wraps them
// into the API objects.
//
// The part is chosen so that CEL reaches exactly the verdict and the
// messages of Evaluate, at every level and version, without set algebra:
//
//   - every peer is a podSelector alone (own namespace), with matchLabels
//     only, or the rule has no peers (anywhere); no namespaceSelector, no
//     ipBlock;
//   - no ports entry has endPort, so no port union can reach the 1024 ports
//     of the *WidePortRange checks or every port of *AllPorts except through
//     a rule without ports or an entry without port, which CEL reports where
//     Evaluate does;
//   - the policy is small: CELMaxSlots bounds the violations it can have, so
//     that the joined message stays under the API server's 5 KiB limit for
//     a messageExpression, and it is far below every limit of limits.go;
//   - it is not a managed policy (reserved name, managed-by label).
//
// Within that part no check's v1.0 and v1.1 behaviours differ, and
// malformedPolicy finds nothing the API server has not already rejected:
// it validates the object before any validating admission runs.

// CELMaxSlots bounds, for a policy CEL decides, the sum over its rules of
// max(1, peers) + max(1, ports entries). A rule can have at most that many
// violations (one per peer or one "anywhere", one per entry or one "every
// port"), so CEL never reports more than CELMaxSlots violations plus
// rawNetworkPolicy.
const CELMaxSlots = 12

// celMaxLabels bounds matchLabels per selector in a policy CEL decides.
const celMaxLabels = 16

// CELManagedExpression is true when the NetworkPolicy o (a CEL variable
// name: object or oldObject) is one netguard manages, as IsManagedPolicy,
// or has no name yet: the webhook judges those.
func CELManagedExpression(o string) string {
	return fmt.Sprintf(`(!has(%[1]s.metadata.name) || %[1]s.metadata.name == '' || %[1]s.metadata.name == %[2]s || %[1]s.metadata.name == %[3]s || %[1]s.metadata.name.startsWith(%[4]s) || (has(%[1]s.metadata.labels) && %[5]s in %[1]s.metadata.labels && %[1]s.metadata.labels[%[5]s] == %[6]s))`,
		o, celString(DefaultDenyPolicyName), celString(AllowDNSPolicyName), celString(GeneratedPolicyPrefix), celString(LabelManagedBy), celString(ManagedByValue))
}

// CELShapeExpression is true when the spec of object is in the part CEL
// decides (see above). Sizes are tested before anything is iterated, so
// that its cost stays small for any object.
func CELShapeExpression() string {
	sel := func(s string) string {
		return fmt.Sprintf(`(!has(%[1]s.matchExpressions) || size(%[1]s.matchExpressions) == 0) && (!has(%[1]s.matchLabels) || size(%[1]s.matchLabels) <= %[2]d)`, s, celMaxLabels)
	}
	dir := func(d, peers string) string {
		return fmt.Sprintf(`(!has(object.spec.%[1]s) || (size(object.spec.%[1]s) <= %[3]d && object.spec.%[1]s.all(r, (!has(r.%[2]s) || (size(r.%[2]s) <= %[3]d && r.%[2]s.all(p, has(p.podSelector) && !has(p.namespaceSelector) && !has(p.ipBlock) && %[4]s))) && (!has(r.ports) || (size(r.ports) <= %[3]d && r.ports.all(e, !has(e.endPort)))))))`,
			d, peers, CELMaxSlots, sel("p.podSelector"))
	}
	slots := func(d, peers string) string {
		return fmt.Sprintf(`(has(object.spec.%[1]s) ? object.spec.%[1]s.map(r, (has(r.%[2]s) && size(r.%[2]s) > 1 ? size(r.%[2]s) : 1) + (has(r.ports) && size(r.ports) > 1 ? size(r.ports) : 1)).sum() : 0)`, d, peers)
	}
	return `has(object.spec) && (!has(object.spec.podSelector) || (` + sel("object.spec.podSelector") + `))` +
		` && (!has(object.spec.policyTypes) || (size(object.spec.policyTypes) <= 2 && object.spec.policyTypes.all(t, t == 'Ingress' || t == 'Egress')))` +
		` && ` + dir("ingress", "from") + ` && ` + dir("egress", "to") +
		` && ` + slots("ingress", "from") + ` + ` + slots("egress", "to") + fmt.Sprintf(` <= %d`, CELMaxSlots)
}

// CELDecidedExpression is true for a CREATE or UPDATE whose new object CEL
// decides completely: a shape CELShapeExpression accepts, and neither the
// object nor the old one managed.
func CELDecidedExpression() string {
	return `object != null && !` + CELManagedExpression("object") + ` && (oldObject == null || !` + CELManagedExpression("oldObject") + `) && ` + CELShapeExpression()
}

// CELLevel is how a ValidatingAdmissionPolicy finds one mode's level and
// version, as PolicyForNamespace does, from a map of namespace labels named
// by labels.
type CELLevel struct {
	// Level, Version and LevelVersion are CEL expressions of the level
	// name, the version ("latest" or "v1.0") and LevelVersion.String().
	Level, Version, LevelVersion string
	// LevelInvalid and VersionInvalid are true when the label is set to a
	// value that is not a level or a version.
	LevelInvalid, VersionInvalid string
}

// celVersionPattern is versionPattern, in RE2 as CEL's matches reads it.
const celVersionPattern = `^v([1-9][0-9]{0,5})\\.(0|[1-9][0-9]{0,5})$`

// CELLevelFor returns the expressions for one mode (enforce, audit or warn)
// with the cluster default def; labels is a CEL expression of a
// map(string, string).
func CELLevelFor(labels, mode string, def LevelVersion) CELLevel {
	levelLabel, versionLabel := "netguard.io/"+mode, "netguard.io/"+mode+"-version"
	names := make([]string, len(allLevels))
	for i, l := range allLevels {
		names[i] = celString(string(l))
	}
	lv := func(k string) string { return labels + "[" + celString(k) + "]" }
	has := func(k string) string { return celString(k) + " in " + labels }
	validLevel := lv(levelLabel) + " in [" + strings.Join(names, ", ") + "]"
	validVersion := "(" + lv(versionLabel) + " == 'latest' || " + lv(versionLabel) + ".matches('" + celVersionPattern + "'))"
	defVersion := def.Version.String()
	out := CELLevel{
		Level: fmt.Sprintf(`(%s ? (%s ? %s : %s) : %s)`, has(levelLabel), validLevel, lv(levelLabel), celString(string(LevelManaged)), celString(string(def.Level))),
		Version: fmt.Sprintf(`(%s ? (%s ? %s : 'latest') : (%s ? 'latest' : %s))`,
			has(versionLabel), validVersion, lv(versionLabel), has(levelLabel), celString(defVersion)),
		LevelInvalid:   fmt.Sprintf(`(%s && !(%s))`, has(levelLabel), validLevel),
		VersionInvalid: fmt.Sprintf(`(%s && !%s)`, has(versionLabel), validVersion),
	}
	out.LevelVersion = fmt.Sprintf(`(%[2]s == 'latest' ? %[1]s : %[1]s + ':' + %[2]s)`, out.Level, out.Version)
	return out
}

// CELRank is the rank of a level given as a CEL string expression, as
// Level.Rank: -1 for an unknown level, which callers never pass.
func CELRank(level string) string {
	expr := "-1"
	for i := len(allLevels) - 1; i >= 0; i-- {
		expr = fmt.Sprintf(`(%s == %s ? %d : %s)`, level, celString(string(allLevels[i])), i, expr)
	}
	return expr
}

// The violations CEL reports, check by check, in check ID order:
// egressAllPodsToAllPods, egressAllPorts, egressToAnywhere,
// ingressAllPodsFromAllPods, ingressAllPorts, ingressFromAnywhere,
// rawNetworkPolicy; the other checks find nothing in this part. Each part
// is a gate (the level's rank and the direction), a walk of the rules and
// a predicate per rule, peer or ports entry. CELViolationsExpression words
// every match; CELCleanExpression only asks whether there is one, with the
// same gates and predicates, so that the two cannot disagree.
type celPart struct {
	// gate is a CEL bool: the check applies at the rank.
	gate string
	// violations is a CEL list of strings, evaluated when gate holds.
	violations string
	// any is a CEL bool, true when violations is not empty, evaluated
	// when gate holds.
	any string
}

func celParts(rank, namespace string) []celPart {
	t := celTemplatesOnce()
	ingressOn := `(!has(object.spec.policyTypes) || size(object.spec.policyTypes) == 0 || 'Ingress' in object.spec.policyTypes)`
	egressOn := `((!has(object.spec.policyTypes) || size(object.spec.policyTypes) == 0) ? (has(object.spec.egress) && size(object.spec.egress) > 0) : 'Egress' in object.spec.policyTypes)`
	subjectAll := `(!has(object.spec.podSelector) || !has(object.spec.podSelector.matchLabels) || size(object.spec.podSelector.matchLabels) == 0)`
	ns := func(tpl string) string {
		before, after, _ := strings.Cut(tpl, celNamespacePlaceholder)
		return celString(before) + " + " + namespace + " + " + celString(after)
	}
	type dir struct {
		name, peers, on               string
		allPods, allPorts, anywhere   string
		allPodsMsg, rulePorts, anyMsg string
		entryPorts                    map[corev1.Protocol]string
	}
	dirs := map[string]dir{}
	for _, d := range []struct{ name, peers, on string }{{"egress", "to", egressOn}, {"ingress", "from", ingressOn}} {
		m := t[d.name]
		dirs[d.name] = dir{name: d.name, peers: d.peers, on: d.on, allPods: m.allPodsID, allPorts: m.allPortsID, anywhere: m.anywhereID,
			allPodsMsg: m.allPods, rulePorts: m.rulePorts, anyMsg: m.anywhere, entryPorts: m.entryPorts}
	}
	rules := func(d dir) string { return `(has(object.spec.` + d.name + `) ? object.spec.` + d.name + ` : [])` }
	prefix := func(id string) string { return celString("[" + id + "] ") }
	allPods := func(d dir) celPart {
		peer := `(!has(p.podSelector.matchLabels) || size(p.podSelector.matchLabels) == 0)`
		return celPart{
			gate: fmt.Sprintf(`%d <= %s && %s && %s`, LevelRestricted.Rank(), rank, d.on, subjectAll),
			violations: fmt.Sprintf(`%[1]s.transformList(i, r, has(r.%[2]s) ? r.%[2]s.transformList(j, p, %[3]s, %[4]s + 'spec.%[5]s[' + string(i) + '].%[2]s[' + string(j) + ']: ' + %[6]s) : []).flatten()`,
				rules(d), d.peers, peer, prefix(d.allPods), d.name, ns(d.allPodsMsg)),
			any: fmt.Sprintf(`%[1]s.exists(r, has(r.%[2]s) && r.%[2]s.exists(p, %[3]s))`, rules(d), d.peers, peer),
		}
	}
	allPorts := func(d dir) celPart {
		proto := `(has(e.protocol) ? e.protocol : 'TCP')`
		entryMsg := fmt.Sprintf(`(%s == 'UDP' ? %s : (%s == 'SCTP' ? %s : %s))`, proto, celString(d.entryPorts[corev1.ProtocolUDP]), proto, celString(d.entryPorts[corev1.ProtocolSCTP]), celString(d.entryPorts[corev1.ProtocolTCP]))
		noPorts := `(!has(r.ports) || size(r.ports) == 0)`
		// An entry without port opens every port of its protocol; a later
		// one of the same protocol in the same rule adds nothing new and
		// is not reported again. The first such entry always is, so
		// whether there is a violation depends on the entry alone.
		first := `!r.ports.exists(m, f, m < k && !has(f.port) && (has(f.protocol) ? f.protocol : 'TCP') == ` + proto + `)`
		return celPart{
			gate: fmt.Sprintf(`%d <= %s && %s`, LevelRestricted.Rank(), rank, d.on),
			violations: fmt.Sprintf(`%[1]s.transformList(i, r, %[2]s ? [%[3]s + 'spec.%[4]s[' + string(i) + ']: ' + %[5]s] : r.ports.transformList(k, e, !has(e.port) && %[6]s, %[3]s + 'spec.%[4]s[' + string(i) + '].ports[' + string(k) + ']: ' + %[7]s)).flatten()`,
				rules(d), noPorts, prefix(d.allPorts), d.name, celString(d.rulePorts), first, entryMsg),
			any: fmt.Sprintf(`%[1]s.exists(r, %[2]s || r.ports.exists(e, !has(e.port)))`, rules(d), noPorts),
		}
	}
	anywhere := func(d dir) celPart {
		rule := fmt.Sprintf(`(!has(r.%[1]s) || size(r.%[1]s) == 0)`, d.peers)
		return celPart{
			gate: fmt.Sprintf(`%d <= %s && %s`, LevelBaseline.Rank(), rank, d.on),
			violations: fmt.Sprintf(`%[1]s.transformList(i, r, %[2]s, %[3]s + 'spec.%[4]s[' + string(i) + ']: ' + %[5]s)`,
				rules(d), rule, prefix(d.anywhere), d.name, celString(d.anyMsg)),
			any: fmt.Sprintf(`%s.exists(r, %s)`, rules(d), rule),
		}
	}
	raw := celPart{gate: fmt.Sprintf(`%d <= %s`, LevelManaged.Rank(), rank), violations: "[" + celString(t["raw"].raw) + "]", any: "true"}
	e, i := dirs["egress"], dirs["ingress"]
	return []celPart{allPods(e), allPorts(e), anywhere(e), allPods(i), allPorts(i), anywhere(i), raw}
}

// CELViolationsExpression is a CEL list of strings: the violations,
// formatted as Violation.String, in Evaluate's order, of the object at the
// level whose rank is the CEL int expression rank, for an object
// CELDecidedExpression accepts. namespace is a CEL string expression of the
// policy's namespace.
func CELViolationsExpression(rank, namespace string) string {
	var parts []string
	for _, p := range celParts(rank, namespace) {
		parts = append(parts, fmt.Sprintf(`(%s ? %s : [])`, p.gate, p.violations))
	}
	return strings.Join(parts, " + ")
}

// CELCleanExpression is a CEL bool, true exactly when
// CELViolationsExpression(rank, ...) is empty. It builds no list and no
// string, so that a write without violations (the common case) costs the
// API server a walk of the spec: the API server evaluates a policy's
// validations, their messages and its audit annotations each with their
// own variables, so a list of violations would be built once for each.
func CELCleanExpression(rank string) string {
	var parts []string
	for _, p := range celParts(rank, `""`) {
		parts = append(parts, fmt.Sprintf(`(%s && %s)`, p.gate, p.any))
	}
	return "!(" + strings.Join(parts, " || ") + ")"
}

// celNamespacePlaceholder stands for the namespace in the templates.
const celNamespacePlaceholder = "cel-namespace-placeholder"

type celTemplates struct {
	allPodsID, allPortsID, anywhereID string
	allPods, rulePorts, anywhere, raw string
	entryPorts                        map[corev1.Protocol]string
}

// celTemplatesOnce takes the wording of the violations CEL reports from
// the checks themselves, by evaluating a policy that has each, so that the
// two never drift apart.
func celTemplatesOnce() map[string]celTemplates {
	out := map[string]celTemplates{}
	for _, d := range []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress} {
		tcp, udp, sctp := corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP
		// Rule 0: from every pod, no ports; rule 1: anywhere, an entry
		// without port per protocol.
		rule0 := []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}
		ports1 := []networkingv1.NetworkPolicyPort{{Protocol: &tcp}, {Protocol: &udp}, {Protocol: &sctp}}
		np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: celNamespacePlaceholder}}
		np.Spec.PolicyTypes = []networkingv1.PolicyType{d}
		if d == networkingv1.PolicyTypeIngress {
			np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: rule0}, {Ports: ports1}}
		} else {
			np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{To: rule0}, {Ports: ports1}}
		}
		name := strings.ToLower(string(d))
		peers := map[networkingv1.PolicyType]string{networkingv1.PolicyTypeIngress: "from", networkingv1.PolicyTypeEgress: "to"}[d]
		t := celTemplates{entryPorts: map[corev1.Protocol]string{}}
		for _, v := range Evaluate(LevelRestricted, LatestVersion(), np) {
			switch v.Field {
			case "spec." + name + "[0]." + peers + "[0]":
				t.allPodsID, t.allPods = v.Rule, v.Message
			case "spec." + name + "[0]":
				t.allPortsID, t.rulePorts = v.Rule, v.Message
			case "spec." + name + "[1]":
				t.anywhereID, t.anywhere = v.Rule, v.Message
			case "spec." + name + "[1].ports[0]":
				t.entryPorts[tcp] = v.Message
			case "spec." + name + "[1].ports[1]":
				t.entryPorts[udp] = v.Message
			case "spec." + name + "[1].ports[2]":
				t.entryPorts[sctp] = v.Message
			}
		}
		out[name] = t
	}
	for _, v := range Evaluate(LevelManaged, LatestVersion(), &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "n"}}) {
		if v.Field == "" {
			out["raw"] = celTemplates{raw: "[" + v.Rule + "] " + v.Message}
		}
	}
	return out
}

// celString quotes s as a CEL string literal.
func celString(s string) string {
	return strconv.Quote(s)
}
