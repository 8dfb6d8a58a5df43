package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/netguard/netguard/rules"
)

// grantImpersonation lets user impersonate the users named.
func grantImpersonation(t *testing.T, ctx context.Context, user string, targets ...string) {
	t.Helper()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	name := "impersonate-for-" + user
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}, ResourceNames: targets}},
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = cs.RbacV1().ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// impersonating returns a clientset for user (no groups, no rights but
// impersonation) acting as target.
func impersonating(t *testing.T, user, target string) kubernetes.Interface {
	t.Helper()
	cfg, _, err := testCluster.AddUser(user)
	if err != nil {
		t.Fatal(err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: target}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// Impersonation carries no rights of its own past netguard: admission sees
// the impersonated user. Someone allowed to impersonate an ordinary user
// cannot edit managed policies through them. Impersonating netguard's own
// identity is another matter: netguard cannot tell it from itself, so who may
// impersonate its ServiceAccount is an RBAC decision (docs/security.md).
func TestImpersonationAndManagedPolicies(t *testing.T) {
	startNetguard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ns = "sec-impersonation"
	if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	waitForPolicy(t, ctx, ns, rules.DefaultDenyPolicyName, "")
	// Both targets may edit NetworkPolicies here, so RBAC is not what stops
	// the first: netguard is.
	grantNetworkPolicyEdit(t, ctx, ns,
		rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "plain-user"},
		rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: netguardUser},
	)
	grantImpersonation(t, ctx, "impersonator", "plain-user")
	grantImpersonation(t, ctx, "impersonator-of-netguard", netguardUser)

	asPlain := impersonating(t, "impersonator", "plain-user")
	var err error
	eventually(t, 30*time.Second, "RBAC lets plain-user read policies", func() error {
		_, err = asPlain.NetworkingV1().NetworkPolicies(ns).Get(ctx, rules.DefaultDenyPolicyName, metav1.GetOptions{})
		return err
	})
	err = asPlain.NetworkingV1().NetworkPolicies(ns).Delete(ctx, rules.DefaultDenyPolicyName, metav1.DeleteOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `admission webhook "networkpolicies.netguard.io" denied the request`) ||
		!strings.Contains(err.Error(), `user "plain-user" is neither`) {
		t.Fatalf("impersonating plain-user, delete the default-deny: want netguard's denial, got %v", err)
	}
	np, err := asPlain.NetworkingV1().NetworkPolicies(ns).Get(ctx, rules.DefaultDenyPolicyName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	np.Spec.PolicyTypes = nil
	if _, err := asPlain.NetworkingV1().NetworkPolicies(ns).Update(ctx, np, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "is managed by netguard") {
		t.Fatalf("impersonating plain-user, weaken the default-deny: want netguard's denial, got %v", err)
	}

	// The boundary: as netguard, the same delete is netguard's own.
	asNetguard := impersonating(t, "impersonator-of-netguard", netguardUser)
	eventually(t, 30*time.Second, "impersonating netguard", func() error {
		return asNetguard.NetworkingV1().NetworkPolicies(ns).Delete(ctx, rules.DefaultDenyPolicyName, metav1.DeleteOptions{})
	})
	// netguard puts it back.
	waitForPolicy(t, ctx, ns, rules.DefaultDenyPolicyName, np.UID)
}
