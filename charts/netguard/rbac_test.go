package chart

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/netguard/netguard/webhook"
)

// access is one request as the authorizer sees it. A list or watch with a
// metadata.name field selector carries that name.
type access struct {
	verb, group, resource, namespace, name string
}

func (a access) String() string {
	s := a.verb + " " + a.resource
	if a.group != "" {
		s += "." + a.group
	}
	if a.name != "" {
		s += " " + a.name
	}
	if a.namespace != "" {
		return s + " in " + a.namespace
	}
	return s + " (cluster)"
}

func each(verbs []string, group string, resources []string, namespace, name string) []access {
	var out []access
	for _, r := range resources {
		for _, v := range verbs {
			out = append(out, access{v, group, r, namespace, name})
		}
	}
	return out
}

// serveNeeds is what `netguard serve` does in every mode; ns is its namespace.
func serveNeeds(ns string) []access {
	var out []access
	out = append(out, each([]string{"get", "list", "watch"}, "", []string{"namespaces"}, "", "")...)
	for _, where := range []string{"", "team-a"} {
		out = append(out, each([]string{"get", "list", "watch", "create", "update", "patch", "delete"}, "networking.k8s.io", []string{"networkpolicies"}, where, "")...)
		out = append(out, each([]string{"get", "list", "watch", "patch"}, "apps", []string{"deployments", "statefulsets", "daemonsets"}, where, "")...)
		out = append(out, each([]string{"get", "list", "watch", "patch"}, "batch", []string{"jobs", "cronjobs"}, where, "")...)
		out = append(out, each([]string{"create", "patch"}, "", []string{"events"}, where, "")...)
		out = append(out, each([]string{"create", "patch"}, "events.k8s.io", []string{"events"}, where, "")...)
		// Bare Pods are workloads; list also finds whether pods a
		// --cascade=orphan deletion left still run.
		out = append(out, each([]string{"get", "list", "watch", "patch"}, "", []string{"pods"}, where, "")...)
	}
	out = append(out, each([]string{"get", "list", "watch"}, "netguard.io", []string{"networkprofiles"}, "", "")...)
	// status.usedBy.
	out = append(out, each([]string{"update", "patch"}, "netguard.io", []string{"networkprofiles/status"}, "", "dns")...)
	out = append(out, access{"create", "authentication.k8s.io", "selfsubjectreviews", "", ""})
	// The admission policies serve applies (server-side apply names the
	// object, so create is checked by name).
	for _, name := range webhook.AdmissionPolicyNames {
		out = append(out, each([]string{"get", "create", "update", "patch"}, "admissionregistration.k8s.io", []string{"validatingadmissionpolicies", "validatingadmissionpolicybindings"}, "", name)...)
	}
	// The match condition not-decided-in-cel, added to its own validating
	// configuration once those policies answer (webhook.EnableCELSkip).
	out = append(out, each([]string{"get", "patch"}, "admissionregistration.k8s.io", []string{"validatingwebhookconfigurations"}, "", "netguard-validating")...)
	return out
}

func leaseNeeds(ns string) []access {
	return each([]string{"get", "list", "watch", "create", "update", "patch"}, "coordination.k8s.io", []string{"leases"}, ns, "")
}

func selfManagedNeeds(ns, secret string) []access {
	out := []access{{"create", "", "secrets", ns, ""}}
	out = append(out, each([]string{"get", "list", "watch", "update", "patch"}, "", []string{"secrets"}, ns, secret)...)
	out = append(out, each([]string{"get", "list", "watch", "update", "patch"}, "admissionregistration.k8s.io", []string{"validatingwebhookconfigurations"}, "", "netguard-validating")...)
	out = append(out, each([]string{"get", "list", "watch", "update", "patch"}, "admissionregistration.k8s.io", []string{"mutatingwebhookconfigurations"}, "", "netguard-mutating")...)
	return out
}

// beyondNeeds is more than netguard may do in any mode.
func beyondNeeds(ns, secret string) []access {
	out := []access{
		// Secrets anywhere else, or all of them.
		{"get", "", "secrets", "kube-system", secret},
		{"list", "", "secrets", "kube-system", ""},
		{"list", "", "secrets", "", ""},
		{"watch", "", "secrets", "", ""},
		{"get", "", "secrets", ns, "some-other-secret"},
		{"list", "", "secrets", ns, ""},
		{"delete", "", "secrets", ns, secret},
		{"create", "", "secrets", "kube-system", ""},
		{"get", "", "configmaps", "kube-system", "kubeadm-config"},
		// Workloads: patch the record, never create, replace or delete.
		{"delete", "apps", "deployments", "team-a", "web"},
		{"create", "apps", "deployments", "team-a", ""},
		{"update", "apps", "deployments", "team-a", "web"},
		{"patch", "apps", "deployments/scale", "team-a", "web"},
		// Pods: read and label, never create, delete, or read logs.
		{"create", "", "pods", "team-a", ""},
		{"delete", "", "pods", "team-a", "web-1"},
		{"update", "", "pods", "team-a", "web-1"},
		{"get", "", "pods/log", "team-a", "web-1"},
		{"create", "", "pods/exec", "team-a", "web-1"},
		{"delete", "batch", "jobs", "team-a", "web"},
		{"create", "batch", "cronjobs", "team-a", ""},
		{"create", "", "serviceaccounts/token", ns, "netguard"},
		{"deletecollection", "networking.k8s.io", "networkpolicies", "team-a", ""},
		// Other admission policies, and deleting netguard's.
		{"patch", "admissionregistration.k8s.io", "validatingadmissionpolicies", "", "someone-elses"},
		{"delete", "admissionregistration.k8s.io", "validatingadmissionpolicies", "", "networkpolicies.netguard.io"},
		{"list", "admissionregistration.k8s.io", "validatingadmissionpolicybindings", "", ""},
		// Profiles belong to the platform team.
		{"create", "netguard.io", "networkprofiles", "", ""},
		{"update", "netguard.io", "networkprofiles", "", "dns"},
		{"delete", "netguard.io", "networkprofiles", "", "dns"},
		{"patch", "netguard.io", "networkprofiles", "", "dns"},
		// Namespace labels choose the levels: reading them only.
		{"patch", "", "namespaces", "", "team-a"},
		{"update", "", "namespaces", "", "team-a"},
		{"delete", "", "namespaces", "", "team-a"},
		{"delete", "", "events", "team-a", ""},
		// Leases elsewhere.
		{"update", "coordination.k8s.io", "leases", "kube-system", "kube-controller-manager"},
		{"create", "coordination.k8s.io", "leases", "default", ""},
		{"delete", "coordination.k8s.io", "leases", ns, "netguard"},
		// Other webhook configurations, or making new ones.
		{"patch", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "someone-elses"},
		{"patch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "someone-elses"},
		{"patch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "netguard-validating"},
		{"list", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", ""},
		{"create", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", ""},
		{"delete", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "netguard-validating"},
		// No way up.
		{"escalate", "rbac.authorization.k8s.io", "clusterroles", "", ""},
		{"bind", "rbac.authorization.k8s.io", "clusterroles", "", "cluster-admin"},
		{"create", "rbac.authorization.k8s.io", "rolebindings", ns, ""},
		{"impersonate", "", "users", "", "admin"},
		{"update", "apiextensions.k8s.io", "customresourcedefinitions", "", "networkprofiles.netguard.io"},
		{"list", "", "nodes", "", ""},
	}
	return out
}

// TestRBACAgainstAPIServer creates the chart's ServiceAccount and RBAC for
// real and asks the API server, as that ServiceAccount, for everything serve
// needs (allowed) and for more (denied). Each mode has its own release and
// namespace.
func TestRBACAgainstAPIServer(t *testing.T) {
	c := apiServer(t)
	ctx := context.Background()
	admin, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		set, release string
		want         func(ns string) []access
		deny         func(ns string) []access
	}{
		{
			set: "defaults", release: "netguard-cm",
			want: func(ns string) []access { return append(serveNeeds(ns), leaseNeeds(ns)...) },
			deny: func(ns string) []access {
				// cert-manager mode: no Secret, and of the webhook
				// configurations only a patch of the validating one.
				return append(beyondNeeds(ns, "netguard-cm-serving-cert"),
					access{"create", "", "secrets", ns, ""},
					access{"get", "", "secrets", ns, "netguard-cm-serving-cert"},
					access{"update", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "netguard-validating"},
					access{"get", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "netguard-mutating"},
					access{"patch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "netguard-mutating"})
			},
		},
		{
			set: "self-managed", release: "netguard-sm",
			want: func(ns string) []access {
				return append(append(serveNeeds(ns), leaseNeeds(ns)...), selfManagedNeeds(ns, "netguard-sm-webhook-tls")...)
			},
			deny: func(ns string) []access { return beyondNeeds(ns, "netguard-sm-webhook-tls") },
		},
		{
			set: "single-replica", release: "netguard-one",
			want: serveNeeds,
			deny: func(ns string) []access {
				return append(beyondNeeds(ns, "x"), access{"create", "coordination.k8s.io", "leases", ns, ""}, access{"get", "", "secrets", ns, "x"})
			},
		},
	} {
		t.Run(tc.set, func(t *testing.T) {
			ns := tc.release
			restrictedNamespace(t, c, ns)
			r, err := renderChart(t, tc.release, ns, valueSetNamed(t, tc.set).values)
			if err != nil {
				t.Fatal(err)
			}
			createRBAC(t, c.Config, r)
			user := fmt.Sprintf("system:serviceaccount:%s:%s", ns, tc.release)
			groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
			// The authorizer reads RBAC from informers: a review right
			// after the create may not see the new bindings yet. Wait
			// until everything serve needs is allowed, or 30 seconds.
			var denied []string
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				denied = nil
				for _, a := range tc.want(ns) {
					if ok, why := review(t, admin, user, groups, a); !ok {
						denied = append(denied, fmt.Sprintf("%s: denied, but serve needs it (%s)", a, why))
					}
				}
				if len(denied) == 0 || time.Now().After(deadline) {
					break
				}
			}
			for _, d := range denied {
				t.Error(d)
			}
			for _, a := range tc.deny(ns) {
				if ok, why := review(t, admin, user, groups, a); ok {
					t.Errorf("%s: allowed (%s); netguard must not have it", a, why)
				}
			}
			if tc.set == "self-managed" {
				checkImpersonated(t, ctx, c.Config, admin, ns, user, groups, "netguard-sm-webhook-tls")
			}
		})
	}
}

// createRBAC creates the ServiceAccount and RBAC objects of r for real, and
// removes them when the test ends.
func createRBAC(t *testing.T, cfg *rest.Config, r *release) {
	t.Helper()
	ctx := context.Background()
	a := newApplier(t, cfg)
	kinds := []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
	var created []*unstructured.Unstructured
	for _, o := range r.Objects {
		if !slices.Contains(kinds, o.GetKind()) {
			continue
		}
		if err := a.apply(ctx, o, false); err != nil {
			t.Fatalf("create %s %s: %v", o.GetKind(), o.GetName(), err)
		}
		created = append(created, o)
	}
	if len(created) < 3 {
		t.Fatalf("only %d RBAC objects rendered: %s", len(created), r.summary())
	}
	t.Cleanup(func() {
		for _, o := range created {
			if err := a.delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("delete %s %s: %v", o.GetKind(), o.GetName(), err)
			}
		}
	})
}

func review(t *testing.T, admin kubernetes.Interface, user string, groups []string, a access) (bool, string) {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: a.verb, Group: a.group, Resource: a.resource, Namespace: a.namespace, Name: a.name,
		},
	}}
	if res, sub, ok := strings.Cut(a.resource, "/"); ok {
		sar.Spec.ResourceAttributes.Resource, sar.Spec.ResourceAttributes.Subresource = res, sub
	}
	out, err := admin.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SubjectAccessReview %s: %v", a, err)
	}
	return out.Status.Allowed, out.Status.Reason
}

// checkImpersonated makes real requests as the ServiceAccount in
// self-managed mode: the Secret netguard keeps is readable (also listed by
// name, as a cache limited to it would), nothing else is.
func checkImpersonated(t *testing.T, ctx context.Context, admin *rest.Config, adminCS kubernetes.Interface, ns, user string, groups []string, secret string) {
	t.Helper()
	for _, name := range []string{secret, "some-other-secret"} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: map[string]string{"k": "v"}}
		if _, err := adminCS.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	cfg := rest.CopyConfig(admin)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	expect := func(what string, err error, forbidden bool) {
		t.Helper()
		switch {
		case forbidden && !apierrors.IsForbidden(err):
			t.Errorf("%s as %s: %v, want Forbidden", what, user, err)
		case !forbidden && err != nil:
			t.Errorf("%s as %s: %v", what, user, err)
		}
	}
	_, err = sa.CoreV1().Secrets(ns).Get(ctx, secret, metav1.GetOptions{})
	expect("get its Secret", err, false)
	list, err := sa.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + secret})
	expect("list its Secret by name", err, false)
	if err == nil && len(list.Items) != 1 {
		t.Errorf("list its Secret by name: %d items", len(list.Items))
	}
	_, err = sa.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	expect("list every Secret of its namespace", err, true)
	_, err = sa.CoreV1().Secrets(ns).Get(ctx, "some-other-secret", metav1.GetOptions{})
	expect("get another Secret", err, true)
	_, err = sa.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
	expect("list kube-system Secrets", err, true)
	_, err = sa.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	expect("list namespaces", err, false)
	_, err = sa.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{})
	expect("list NetworkPolicies", err, false)
	err = sa.AppsV1().Deployments("default").Delete(ctx, "web", metav1.DeleteOptions{})
	expect("delete a Deployment", err, true)
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "netguard-chart-test"}}
	_, err = sa.CoordinationV1().Leases(ns).Create(ctx, lease, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	expect("create a Lease in its namespace", err, false)
	_, err = sa.CoordinationV1().Leases("default").Create(ctx, lease, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	expect("create a Lease in default", err, true)
	self, err := sa.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	expect("SelfSubjectReview", err, false)
	if err == nil && self.Status.UserInfo.Username != user {
		t.Errorf("SelfSubjectReview says %q, want %q", self.Status.UserInfo.Username, user)
	}
}
