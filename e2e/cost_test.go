package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// A tenant with NetworkPolicy rights in one namespace sends, as dry runs
// through the API server, a policy made to be slow to judge and the
// restricted-level bypasses. Each must come back as netguard's denial naming
// the rule; before the fix the large policy ran past the webhook's timeout
// (the API server answered "failed calling webhook ... context deadline
// exceeded" while netguard burnt a core for minutes), and the bypasses were
// allowed. No timing is asserted.
func TestTenantCannotStallOrBypassRestricted(t *testing.T) {
	startValidating(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for ns, labels := range map[string]map[string]string{
		"cost-baseline":   nil,
		"cost-restricted": {"netguard.io/enforce": "restricted"},
	} {
		if err := testCluster.EnsureNamespace(ctx, ns, labels); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	values := make([]string, 160000)
	for i := range values {
		values[i] = "v" + strconv.Itoa(i)
	}
	port := func(n int32) networkingv1.NetworkPolicyPort {
		p := intstr.FromInt32(n)
		return networkingv1.NetworkPolicyPort{Port: &p}
	}
	policy := func(name string, subject metav1.LabelSelector, rules ...networkingv1.NetworkPolicyIngressRule) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networkingv1.NetworkPolicySpec{PodSelector: subject, Ingress: rules}}
	}
	app := metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}
	dne := metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "no-such-label", Operator: metav1.LabelSelectorOpDoesNotExist}}}
	var slices []networkingv1.NetworkPolicyIngressRule
	for i := range int32(64) {
		p := port(1 + i*1024)
		end := min(65535, (i+1)*1024)
		p.EndPort = &end
		slices = append(slices, networkingv1.NetworkPolicyIngressRule{
			From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{fmt.Sprintf("l%d", i): "y"}}}},
			Ports: []networkingv1.NetworkPolicyPort{p},
		})
	}
	cases := []struct {
		ns, rule string
		np       *networkingv1.NetworkPolicy
	}{
		{"cost-baseline", "policySize", policy("huge-in", app, networkingv1.NetworkPolicyIngressRule{
			From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: values}}}}},
			Ports: []networkingv1.NetworkPolicyPort{port(8080)},
		})},
		{"cost-restricted", "ingressAllPodsFromAllPods", policy("does-not-exist", dne, networkingv1.NetworkPolicyIngressRule{
			From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &dne}},
			Ports: []networkingv1.NetworkPolicyPort{port(8080)},
		})},
		{"cost-restricted", "ingressAllPorts", policy("slices", app, slices...)},
	}
	for _, c := range cases {
		_, err := cs.NetworkingV1().NetworkPolicies(c.ns).Create(ctx, c.np, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if !apierrors.IsForbidden(err) || !strings.HasPrefix(err.Error(), webhookDenied) || !strings.Contains(err.Error(), "["+c.rule+"]") {
			msg := fmt.Sprint(err)
			if len(msg) > 600 {
				msg = msg[:600] + "..."
			}
			t.Errorf("%s/%s: want netguard's denial naming %s, got %s", c.ns, c.np.Name, c.rule, msg)
		}
	}
}
