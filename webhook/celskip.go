package webhook

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/netguard/netguard/rules"
)

// The NetworkPolicy webhook skips the writes the admission policies decide
// (the match condition not-decided-in-cel). Skipping is safe only while
// those policies are in the API server's admission chain: with the
// condition and without the policies, a write CEL would deny (a policy from
// anywhere) would be judged by nobody. So the webhook configuration that the
// chart and `netguard manifests` install has no such condition, and the
// webhook judges every write until serve has applied the policies, seen the
// API server enforce them, and added the condition (EnableCELSkip). A
// configuration replaced later (helm upgrade --force, kubectl replace) loses
// the condition until serve next starts: slower, never less safe.

// DecidedInCELCondition is the match condition that sends the NetworkPolicy
// webhook only what the admission policies do not decide completely.
func DecidedInCELCondition() admissionregistrationv1.MatchCondition {
	return admissionregistrationv1.MatchCondition{Name: NotDecidedInCELCondition, Expression: NetworkPolicyMatchExpression()}
}

// CELSkipOptions tune EnableCELSkip.
type CELSkipOptions struct {
	// Configuration is the ValidatingWebhookConfiguration's name
	// (ValidatingConfigurationName when empty).
	Configuration string
	// Wait bounds how long the admission policies may take to reach the
	// admission chain (30 s when zero); Interval is the time between probes
	// (250 ms when zero).
	Wait, Interval time.Duration
}

// EnableCELSkip adds DecidedInCELCondition to the NetworkPolicy webhook, when
// the configuration exists and lacks it, once
// the API server enforces the admission policies: a server-side dry run of
// a policy from anywhere, in a namespace the enforce binding covers at
// baseline or stricter, must be denied by the policy netguard-enforce. With
// no such namespace there is nothing to judge yet, and the condition is
// added at once. When the policies do not answer within the wait, the
// condition is not added (the webhook keeps judging every write) and the
// error says why. The condition is written with server-side apply, field
// manager netguard, so the configuration's other fields keep their owners.
func EnableCELSkip(ctx context.Context, c client.Client, r client.Reader, cfg *Config, po AdmissionPolicyOptions, o CELSkipOptions) error {
	if o.Configuration == "" {
		o.Configuration = ValidatingConfigurationName
	}
	if o.Wait == 0 {
		o.Wait = 30 * time.Second
	}
	if o.Interval == 0 {
		o.Interval = 250 * time.Millisecond
	}
	log := logf.FromContext(ctx)
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := r.Get(ctx, client.ObjectKey{Name: o.Configuration}, vwc); err != nil {
		if apierrors.IsNotFound(err) {
			log.Info("no validating webhook configuration to add the CEL skip to yet", "configuration", o.Configuration)
			return nil
		}
		return fmt.Errorf("read ValidatingWebhookConfiguration %q: %w", o.Configuration, err)
	}
	if hasCELSkip(vwc) {
		return nil
	}
	ns, err := probeNamespace(ctx, r, cfg, po)
	if err != nil {
		return err
	}
	if ns != "" {
		deadline := time.Now().Add(o.Wait)
		for {
			active, why, err := enforcePolicyActive(ctx, c, ns)
			if err != nil {
				return err
			}
			if active {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the admission policy %s did not answer in namespace %q within %s (%s); the NetworkPolicy webhook keeps judging every write", AdmissionPolicyEnforce, ns, o.Wait, why)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(o.Interval):
			}
		}
	}
	if err := AddCELSkipCondition(ctx, c, o.Configuration); err != nil {
		return err
	}
	log.Info("the NetworkPolicy webhook now skips the writes the admission policies decide", "configuration", o.Configuration, "probedNamespace", ns)
	return nil
}

// AddCELSkipCondition writes DecidedInCELCondition into the NetworkPolicy
// webhook of the ValidatingWebhookConfiguration name, with server-side
// apply (field manager netguard, so the configuration's other fields keep
// their owners), without asking whether the admission policies answer:
// EnableCELSkip asks first.
func AddCELSkipCondition(ctx context.Context, c client.Client, name string) error {
	cond := DecidedInCELCondition()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": admissionregistrationv1.SchemeGroupVersion.String(),
		"kind":       "ValidatingWebhookConfiguration",
		"metadata":   map[string]any{"name": name},
		"webhooks": []any{map[string]any{
			"name":            networkPolicyWebhookName,
			"matchConditions": []any{map[string]any{"name": cond.Name, "expression": cond.Expression}},
		}},
	}}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("add the match condition %s to ValidatingWebhookConfiguration %q: %w", cond.Name, name, err)
	}
	return nil
}

// hasCELSkip reports whether vwc's NetworkPolicy webhook has the current
// DecidedInCELCondition.
func hasCELSkip(vwc *admissionregistrationv1.ValidatingWebhookConfiguration) bool {
	want := DecidedInCELCondition()
	for _, w := range vwc.Webhooks {
		if w.Name == networkPolicyWebhookName {
			return slices.Contains(w.MatchConditions, want)
		}
	}
	return false
}

// networkPolicyWebhookName is the NetworkPolicy webhook's name in the
// validating configuration.
const networkPolicyWebhookName = "networkpolicies.netguard.io"

// probeNamespace is a namespace the enforce binding covers whose level
// denies a policy from anywhere, or "" when there is none. It reads at most
// one page of namespaces.
func probeNamespace(ctx context.Context, r client.Reader, cfg *Config, po AdmissionPolicyOptions) (string, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(namespaceGVK.GroupVersion().WithKind("NamespaceList"))
	if err := r.List(ctx, list, client.Limit(500)); err != nil {
		return "", fmt.Errorf("list namespaces to probe the admission policies: %w", err)
	}
	excluded := bindingExcluded(cfg, po)
	for _, ns := range list.Items {
		if _, ignored := ns.Labels[LabelIgnore]; ignored || slices.Contains(excluded, ns.Name) || !ns.DeletionTimestamp.IsZero() {
			continue
		}
		p, _ := rules.PolicyForNamespace(cfg.Defaults, ns.Labels)
		if p.Enforce.Level.Rank() >= rules.LevelBaseline.Rank() {
			return ns.Name, nil
		}
	}
	return "", nil
}

// enforcePolicyActive dry-runs a policy from anywhere in ns and reports
// whether netguard-enforce denied it, and if not, what answered.
func enforcePolicyActive(ctx context.Context, c client.Client, ns string) (bool, string, error) {
	probe := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "netguard-probe-"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{}},
		},
	}
	err := c.Create(ctx, probe, client.DryRunAll, client.FieldOwner(FieldManager))
	switch {
	case err == nil:
		return false, "the dry run was admitted", nil
	case strings.Contains(err.Error(), "ValidatingAdmissionPolicy '"+AdmissionPolicyEnforce+"'"):
		return true, "", nil
	case ctx.Err() != nil:
		return false, "", ctx.Err()
	default:
		return false, err.Error(), nil
	}
}
