package rules

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The CEL messages are taken from the checks by evaluating sample policies;
// if a check moved a violation to another field, or stopped reporting it,
// a template would silently be empty. The e2e differential test
// (TestHybridSameVerdicts) compares the words on a real API server; this
// test fails first, without one.
func TestCELTemplatesTakenFromChecks(t *testing.T) {
	ts := celTemplatesOnce()
	for _, d := range []string{"ingress", "egress"} {
		c := ts[d]
		for name, v := range map[string]string{
			"allPods ID": c.allPodsID, "allPorts ID": c.allPortsID, "anywhere ID": c.anywhereID,
			"allPods": c.allPods, "rule ports": c.rulePorts, "anywhere": c.anywhere,
			"TCP entry": c.entryPorts[corev1.ProtocolTCP], "UDP entry": c.entryPorts[corev1.ProtocolUDP], "SCTP entry": c.entryPorts[corev1.ProtocolSCTP],
		} {
			if v == "" {
				t.Errorf("%s: no %s template", d, name)
			}
		}
		if !strings.Contains(c.allPods, celNamespacePlaceholder) {
			t.Errorf("%s: the allPods template %q does not name the namespace", d, c.allPods)
		}
		for _, id := range []string{c.allPodsID, c.allPortsID, c.anywhereID} {
			if !strings.Contains(CELViolationsExpression("variables.rank", "request.namespace"), `"[`+id+`] "`) {
				t.Errorf("the violations expression does not report %s", id)
			}
		}
	}
	if !strings.HasPrefix(ts["raw"].raw, "[rawNetworkPolicy] ") {
		t.Errorf("raw template %q", ts["raw"].raw)
	}
}

// The levels CEL ranks are Level.Rank's.
func TestCELRankListsEveryLevel(t *testing.T) {
	expr := CELRank("l")
	for _, l := range Levels() {
		if !strings.Contains(expr, `l == "`+string(l)+`" ? `) {
			t.Errorf("%s missing from %s", l, expr)
		}
	}
}
