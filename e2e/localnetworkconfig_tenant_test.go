package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook"
)

// A tenant with the built-in edit role, given LocalNetworkConfigs by the
// aggregated ClusterRole of docs/install.md: it may declare components, but
// not widen past its namespace's level, nor write the status.
func TestTenantLocalNetworkConfig(t *testing.T) {
	startNetguard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "netguard-localnetworkconfigs-edit", Labels: map[string]string{
			"rbac.authorization.k8s.io/aggregate-to-edit": "true", "rbac.authorization.k8s.io/aggregate-to-admin": "true"}},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"netguard.io"}, Resources: []string{"localnetworkconfigs"},
			Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}}},
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	const ns = "tenant-lnc"
	if err := testCluster.EnsureNamespace(ctx, ns, map[string]string{rules.LabelEnforce: "restricted"}); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := testCluster.AddTenant(ctx, "lnc-tenant", ns, "edit")
	if err != nil {
		t.Fatal(err)
	}
	tc, err := client.New(cfg, client.Options{Scheme: webhook.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	// The aggregation controller fills edit a moment after the role exists.
	var created *netguardv1alpha1.LocalNetworkConfig
	eventually(t, 30*time.Second, "tenant creates a LocalNetworkConfig", func() error {
		l := shopConfig(ns, "8080")
		if err := tc.Create(ctx, l); err != nil {
			return err
		}
		created = l
		return nil
	})
	if err := wantNames(ctx, cs, ns, rules.KindLocalNetworkConfig+"/shop", "netguard.frontend.depends-on", "netguard.frontend.to.backend")(); err != nil {
		t.Fatal(err)
	}

	t.Run("every port fails restricted", func(t *testing.T) {
		l := shopConfig(ns, "1-65535")
		l.Name = "wide"
		l.Spec.Components = map[string]netguardv1alpha1.LocalComponent{"gateway": {
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "gateway"}},
			DependsOn:   l.Spec.Components["frontend"].DependsOn,
		}}
		err := tc.Create(ctx, l)
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `violates netguard "restricted"`) || !strings.Contains(err.Error(), "spec.components[gateway].dependsOn") {
			t.Fatalf("create: %v", err)
		}
		if _, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, "netguard.gateway.depends-on", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("a denied LocalNetworkConfig wrote policies: %v", err)
		}
	})

	t.Run("the status is netguard's", func(t *testing.T) {
		cur := &netguardv1alpha1.LocalNetworkConfig{}
		if err := tc.Get(ctx, client.ObjectKeyFromObject(created), cur); err != nil {
			t.Fatal(err)
		}
		cur.Status.Policies = []string{"forged"}
		if err := tc.Status().Update(ctx, cur); !apierrors.IsForbidden(err) {
			t.Errorf("tenant status update: want forbidden, got %v", err)
		}
	})

	t.Run("selecting annotated pods by the component label is refused", func(t *testing.T) {
		l := shopConfig(ns, "8080")
		l.Name = "steal"
		l.Spec.Components = map[string]netguardv1alpha1.LocalComponent{"thief": {
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{rules.LabelComponent: "payments"}},
		}}
		if err := tc.Create(ctx, l); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "netguard.io/component") {
			t.Fatalf("create: %v", err)
		}
	})
}
