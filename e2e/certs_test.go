package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netguard/netguard/e2e/cluster"
	"github.com/netguard/netguard/webhook"
)

// Without cert-manager, netguard keeps its CA and serving certificate in a
// Secret, injects the caBundle into its webhook configurations, and the API
// server reaches it through that chain.
func TestSelfManagedCertificates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := newTestLog(t)
	ng, err := testCluster.StartNetguard(ctx, cluster.NetguardOptions{Binary: netguardBin, Log: l.buf, SelfManagedCerts: true})
	if err != nil {
		t.Fatalf("start netguard: %v\n%s", err, l.buf.String())
	}
	t.Cleanup(func() {
		if err := ng.Stop(context.Background()); err != nil {
			t.Errorf("stop netguard: %v", err)
		}
	})
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	secret, err := cs.CoreV1().Secrets("netguard-system").Get(ctx, "netguard-webhook-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Secret was not created: %v", err)
	}
	for _, k := range []string{"ca.crt", "ca.key", "tls.crt", "tls.key"} {
		if len(secret.Data[k]) == 0 {
			t.Errorf("Secret lacks %s", k)
		}
	}
	eventually(t, 60*time.Second, "caBundle injected", func() error {
		v, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, webhook.ValidatingConfigurationName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		m, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhook.MutatingConfigurationName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, b := range [][]byte{v.Webhooks[0].ClientConfig.CABundle, v.Webhooks[1].ClientConfig.CABundle, m.Webhooks[0].ClientConfig.CABundle} {
			if !bytes.Contains(b, bytes.TrimSpace(secret.Data["ca.crt"])) {
				return fmt.Errorf("caBundle does not hold the Secret's CA")
			}
		}
		return nil
	})
	ns := "self-managed-certs"
	if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	// A policy from anywhere is denied: the API server called netguard over
	// TLS verified against the injected CA (the webhook fails closed, so a
	// TLS failure would be a different error).
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "from-anywhere", Namespace: ns},
		Spec:       networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{}}},
	}
	eventually(t, 30*time.Second, "API server reaches netguard", func() error {
		_, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{})
		if err == nil {
			return fmt.Errorf("a policy from anywhere was admitted")
		}
		if !strings.Contains(err.Error(), "[ingressFromAnywhere]") {
			return err
		}
		return nil
	})
}
