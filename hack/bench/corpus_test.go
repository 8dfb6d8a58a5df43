package main

import (
	"fmt"
	"testing"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/netguard/netguard/hack/loadgen/load"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// evalCEL evaluates p, a CEL bool, for a CREATE of np in its namespace.
func evalCEL(t *testing.T, p cel.Program, np *networkingv1.NetworkPolicy) bool {
	t.Helper()
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(np)
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := p.Eval(map[string]any{"object": obj, "oldObject": nil, "request": map[string]any{"namespace": np.Namespace, "operation": "CREATE"}})
	if err != nil {
		t.Fatalf("%s: %v", np.Name, err)
	}
	return v == types.True
}

// The mixed corpus of section 3: every policy and its UPDATE is allowed at
// baseline and by the benchmark's VAP, and 4 of 10, exactly those expected,
// are outside the part netguard's admission policies decide in CEL, each for
// the reason it stands for.
func TestMixedPolicy(t *testing.T) {
	shape := webhooktest.CEL(t, rules.CELShapeExpression())
	celShape := func(np *networkingv1.NetworkPolicy) bool { return evalCEL(t, shape, np) }
	var vap []cel.Program
	for _, v := range vapValidations {
		vap = append(vap, webhooktest.CEL(t, v.Expression))
	}
	benchVAP := func(np *networkingv1.NetworkPolicy) bool {
		for _, p := range vap {
			if !evalCEL(t, p, np) {
				return false
			}
		}
		return true
	}
	decided := 0
	for i := range 40 {
		np := load.MixedPolicy("team-a", fmt.Sprintf("mx-%d", i), i)
		for _, p := range []*networkingv1.NetworkPolicy{np, load.UpdatedPolicy(np, i)} {
			if v := rules.Evaluate(rules.LevelBaseline, rules.LatestVersion(), p); len(v) > 0 {
				t.Errorf("policy %d: denied at baseline: %v", i, v)
			}
			if !benchVAP(p) {
				t.Errorf("policy %d: denied by the benchmark's VAP", i)
			}
			if got, want := celShape(p), i%10 < 6; got != want {
				t.Errorf("policy %d: decided in CEL %v, want %v", i, got, want)
			}
		}
		if celShape(np) {
			decided++
		}
		in := np.Spec.Ingress[0]
		slots := 0
		for _, r := range np.Spec.Ingress {
			slots += max(1, len(r.From)) + max(1, len(r.Ports))
		}
		for _, r := range np.Spec.Egress {
			slots += max(1, len(r.To)) + max(1, len(r.Ports))
		}
		var why bool
		switch i % 10 {
		case 6:
			why = in.From[1].NamespaceSelector != nil && in.From[1].PodSelector != nil
		case 7:
			why = len(in.From[0].PodSelector.MatchExpressions) > 0
		case 8:
			why = in.Ports[0].EndPort != nil && *in.Ports[0].EndPort-in.Ports[0].Port.IntVal == 10
		case 9:
			why = slots > rules.CELMaxSlots
		default:
			why = slots <= rules.CELMaxSlots
		}
		if !why {
			t.Errorf("policy %d (variant %d): not the shape it stands for: %+v", i, i%10, np.Spec)
		}
	}
	if decided != 24 {
		t.Errorf("%d of 40 decided in CEL, want 24", decided)
	}
	// The same evaluations deny what they should.
	for i := range 3 {
		bad := load.DeniedPolicy("team-a", "bad", i)
		if v := rules.Evaluate(rules.LevelBaseline, rules.LatestVersion(), bad); len(v) == 0 {
			t.Errorf("DeniedPolicy %d: allowed at baseline", i)
		}
		if benchVAP(bad) {
			t.Errorf("DeniedPolicy %d: allowed by the benchmark's VAP", i)
		}
	}
}
