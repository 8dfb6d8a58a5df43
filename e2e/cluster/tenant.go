package cluster

import (
	"context"
	"fmt"
	"slices"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// AddTenant returns a REST config and a kubeconfig path for user, a tenant
// as a real cluster has them: in no group but system:authenticated, and
// bound in namespace by a RoleBinding to the built-in ClusterRole role
// ("admin", "edit" or "view"), which the controller manager's
// clusterrole-aggregation controller fills. It returns once the API server
// lets user list NetworkPolicies in namespace, which needs that aggregation
// (Options.ControllerManager).
func (c *Cluster) AddTenant(ctx context.Context, user, namespace, role string) (*rest.Config, string, error) {
	cfg, kc, err := c.AddUser(user)
	if err != nil {
		return nil, "", err
	}
	cs, err := c.Clientset()
	if err != nil {
		return nil, "", err
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user + "-" + role, Namespace: namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	if _, err := cs.RbacV1().RoleBindings(namespace).Create(ctx, binding, createOpts); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, "", fmt.Errorf("bind %s to ClusterRole %s in %s: %w", user, role, namespace, err)
	}
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               user,
		Groups:             []string{"system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: namespace, Verb: "list", Group: "networking.k8s.io", Resource: "networkpolicies"},
	}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, createOpts)
		if err == nil && r.Status.Allowed {
			return cfg, kc, nil
		}
		if time.Now().After(deadline) {
			return nil, "", fmt.Errorf("%s may not list NetworkPolicies in %s 30s after its RoleBinding to %q (is the clusterrole-aggregation controller running?): %v", user, namespace, role, err)
		}
		select {
		case <-ctx.Done():
			return nil, "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// grants reports whether rules allow verb on group's resource.
func grants(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	return slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool {
		return slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && (slices.Contains(r.Verbs, verb) || slices.Contains(r.Verbs, "*"))
	})
}
