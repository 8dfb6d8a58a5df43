package chart

import (
	"testing"

	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netguard/netguard/webhook"
)

// TestConfigurationsMatchGo keeps the chart's webhook configurations and
// webhook.ValidatingConfiguration / webhook.MutatingConfiguration (what
// `make run` and the e2e tests install) the same in every field the API server
// acts on. Labels, annotations and the caBundle differ on purpose: the chart
// adds Helm's labels and cert-manager's injection.
func TestConfigurationsMatchGo(t *testing.T) {
	for _, tc := range []struct {
		set      string
		timeout  int32
		excluded []string
	}{
		{set: "defaults", timeout: 5, excluded: []string{"kube-system", "netguard-system"}},
		{set: "tuned", timeout: 3, excluded: []string{"kube-system", "netguard-system", "tenant-sandbox"}},
	} {
		t.Run(tc.set, func(t *testing.T) {
			r := mustRender(t, valueSetNamed(t, tc.set))
			opts := webhook.ConfigurationOptions{
				ClientConfig: func(path string) admissionregistrationv1.WebhookClientConfig {
					return admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
						Namespace: r.Namespace, Name: "netguard", Path: &path, Port: new(int32(443)),
					}}
				},
				ExcludedNamespaces: tc.excluded,
				TimeoutSeconds:     tc.timeout,
				SelfUsername:       "system:serviceaccount:" + r.Namespace + ":netguard",
			}
			gotV := get[admissionregistrationv1.ValidatingWebhookConfiguration](t, r, "ValidatingWebhookConfiguration", webhook.ValidatingConfigurationName)
			wantV := webhook.ValidatingConfiguration(opts)
			compareConfiguration(t, gotV.ObjectMeta, wantV.ObjectMeta, gotV.Webhooks, wantV.Webhooks)
			gotM := get[admissionregistrationv1.MutatingWebhookConfiguration](t, r, "MutatingWebhookConfiguration", webhook.MutatingConfigurationName)
			wantM := webhook.MutatingConfiguration(opts)
			compareConfiguration(t, gotM.ObjectMeta, wantM.ObjectMeta, gotM.Webhooks, wantM.Webhooks)
		})
	}
}

func compareConfiguration(t *testing.T, got, want metav1.ObjectMeta, gotWebhooks, wantWebhooks any) {
	t.Helper()
	if got.Name != want.Name {
		t.Errorf("name %q, want %q", got.Name, want.Name)
	}
	for k, v := range want.Labels {
		if got.Labels[k] != v {
			t.Errorf("%s: label %s=%q, want %q", got.Name, k, got.Labels[k], v)
		}
	}
	if diff := yamlDiff(gotWebhooks, wantWebhooks); diff != "" {
		t.Errorf("%s: the chart and the Go configuration differ:\n%s", got.Name, diff)
	}
}

// TestUninstallRemovesWebhooksFirst proves the uninstall order documented in
// docs/install.md with Helm's own sorter: both webhook configurations are
// deleted before the Deployment, so no write is left failing closed against a
// webhook that is gone.
func TestUninstallRemovesWebhooksFirst(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			r := mustRender(t, vs)
			_, manifests, err := releaseutil.SortManifests(r.Files, nil, releaseutil.UninstallOrder)
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, m := range manifests {
				kinds = append(kinds, m.Head.Kind)
			}
			if len(kinds) < 3 || kinds[0] != "ValidatingWebhookConfiguration" || kinds[1] != "MutatingWebhookConfiguration" {
				t.Errorf("uninstall order %v: want the validating, then the mutating webhook configuration first", kinds)
			}
		})
	}
}
