package e2e

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestFoundationRequestReachesWebhook proves the wiring: the API server calls
// netguard over TLS for a NetworkPolicy write, and kubectl works against the
// same server.
func TestFoundationRequestReachesWebhook(t *testing.T) {
	ng := startNetguard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	before := decisions(t, ng.Metrics)
	ns := "foundation"
	if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "same-namespace", Namespace: ns},
		Spec: networkingv1.NetworkPolicySpec{
			// A namespaceSelector goes to the webhook; simpler policies
			// are decided in the API server (docs/admission.md).
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
				PodSelector:       &metav1.LabelSelector{},
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "foundation"}},
			}}}},
		},
	}
	if _, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create NetworkPolicy: %v", err)
	}
	after := decisions(t, ng.Metrics)
	if after <= before {
		t.Fatalf("netguard_admission_decisions_total for CREATE networkpolicies did not grow: before %v, after %v", before, after)
	}

	// Only hand-written policies: netguard adds its namespace baseline too.
	out, err := testCluster.Kubectl(ctx, nil, "get", "networkpolicies", "-n", ns, "-l", "!app.kubernetes.io/managed-by", "-o", "name")
	if err != nil {
		t.Fatalf("kubectl: %v\n%s", err, out)
	}
	if strings.TrimSpace(out) != "networkpolicy.networking.k8s.io/same-namespace" {
		t.Fatalf("kubectl get networkpolicies: %q", out)
	}
}

var decisionLine = regexp.MustCompile(`(?m)^netguard_admission_decisions_total\{([^}]*)\} (\S+)$`)

// decisions sums netguard_admission_decisions_total for CREATE on networkpolicies.
func decisions(t *testing.T, metrics func() (string, error)) float64 {
	t.Helper()
	text, err := metrics()
	if err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	var sum float64
	for _, m := range decisionLine.FindAllStringSubmatch(text, -1) {
		if strings.Contains(m[1], `operation="CREATE"`) && strings.Contains(m[1], `resource="networkpolicies"`) {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("metric value %q: %v", m[2], err)
			}
			sum += v
		}
	}
	return sum
}
