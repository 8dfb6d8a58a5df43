package webhook

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Paths the webhook configurations point at. They are part of the install
// interface (chart, make run, docs/webhooks.md).
const (
	PathValidateNetworkPolicy = "/validate-networkpolicy"
)

// Setup registers netguard's admission handlers on the manager's webhook server.
func Setup(mgr manager.Manager) error {
	srv := mgr.GetWebhookServer()
	srv.Register(PathValidateNetworkPolicy, &admission.Webhook{Handler: &networkPolicyValidator{}})
	return nil
}

// networkPolicyValidator admits everything and counts what it sees until the
// guardrails are wired in.
type networkPolicyValidator struct{}

func (v *networkPolicyValidator) Handle(_ context.Context, req admission.Request) admission.Response {
	admissionDecisions.WithLabelValues("networkpolicies", string(req.Operation), "allow", "enforce", "privileged").Inc()
	return admission.Allowed("")
}
