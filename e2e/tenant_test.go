package e2e

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// A hostile tenant with create rights in one namespace (issue 14): it may
// not take another workload's component, widen a path past the namespace's
// level with an annotation, use a profile the platform did not offer to its
// namespace, or plant a policy under a name netguard generates.

// policyOwnedBy fails unless the policy exists and names ref as its workload.
func policyOwnedBy(t *testing.T, ctx context.Context, cs kubernetes.Interface, ns, name, ref string) {
	t.Helper()
	p, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("NetworkPolicy %s: %v", name, err)
	}
	if got := p.Annotations[rules.AnnotationWorkload]; got != ref {
		t.Fatalf("NetworkPolicy %s names workload %q, want %q", name, got, ref)
	}
}

func TestTenantComponentTakeover(t *testing.T) {
	startNetguard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("enforced: a second claimant is denied, naming the owner", func(t *testing.T) {
		const ns = "tenant-takeover"
		if err := testCluster.EnsureNamespace(ctx, ns, map[string]string{rules.LabelEnforce: "restricted"}); err != nil {
			t.Fatal(err)
		}
		deps := cs.AppsV1().Deployments(ns)
		if _, err := deps.Create(ctx, webhooktest.Deployment(ns, "payments", map[string]string{rules.AnnotationDependsOn: "db:5432"}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err := deps.Create(ctx, webhooktest.Deployment(ns, "evil", map[string]string{rules.AnnotationComponent: "payments", rules.AnnotationDependsOn: "db:5432 api:443"}), metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `Duplicate value: "payments"`) || !strings.Contains(err.Error(), "Deployment/payments") {
			t.Fatalf("create evil claiming payments: want a Duplicate error naming Deployment/payments, got %v", err)
		}
		policyOwnedBy(t, ctx, cs, ns, "netguard.payments.depends-on", "Deployment/payments")

		// An older workload cannot take the component over by changing its
		// annotation either.
		if _, err := deps.Create(ctx, webhooktest.Deployment(ns, "quiet", map[string]string{rules.AnnotationDependsOn: "db:5432"}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		q, err := deps.Get(ctx, "quiet", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		q.Annotations[rules.AnnotationComponent] = "payments"
		if _, err := deps.Update(ctx, q, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "Deployment/payments") {
			t.Fatalf("update quiet to claim payments: want a Duplicate error naming Deployment/payments, got %v", err)
		}
		policyOwnedBy(t, ctx, cs, ns, "netguard.payments.depends-on", "Deployment/payments")
	})

	t.Run("warned: the second claimant gets nothing, and removing it leaves the owner's policies", func(t *testing.T) {
		const ns = "tenant-takeover-warn"
		if err := testCluster.EnsureNamespace(ctx, ns, map[string]string{rules.LabelEnforce: "privileged"}); err != nil {
			t.Fatal(err)
		}
		deps := cs.AppsV1().Deployments(ns)
		if _, err := deps.Create(ctx, webhooktest.Deployment(ns, "payments", map[string]string{rules.AnnotationDependsOn: "db:5432"}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		warnings := &warningCollector{}
		cfg := rest.CopyConfig(testCluster.Config)
		cfg.WarningHandler = warnings
		wcs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		evil, err := wcs.AppsV1().Deployments(ns).Create(ctx, webhooktest.Deployment(ns, "evil", map[string]string{rules.AnnotationComponent: "payments", rules.AnnotationDependsOn: "api:443"}), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create evil in a namespace that enforces privileged: %v", err)
		}
		if got := strings.Join(warnings.get(), "\n"); !strings.Contains(got, "Duplicate value") || !strings.Contains(got, "Deployment/payments") {
			t.Errorf("warnings %q: want a Duplicate warning naming the owner Deployment/payments", got)
		}
		if got := evil.Spec.Template.Labels[rules.LabelComponent]; got != "" {
			t.Errorf("evil's pod template got %s=%q: its pods would receive payments' paths", rules.LabelComponent, got)
		}
		policyOwnedBy(t, ctx, cs, ns, "netguard.payments.depends-on", "Deployment/payments")
		if _, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, "netguard.payments.to.api", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("netguard.payments.to.api: evil's dependency was generated under payments' name (%v)", err)
		}

		// Dropping evil's annotations must not delete payments' policies.
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			evil, err := deps.Get(ctx, "evil", metav1.GetOptions{})
			if err != nil {
				return err
			}
			evil.Annotations = nil
			_, err = deps.Update(ctx, evil, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		policyOwnedBy(t, ctx, cs, ns, "netguard.payments.depends-on", "Deployment/payments")
		policyOwnedBy(t, ctx, cs, ns, "netguard.payments.to.db", "Deployment/payments")
	})
}

func TestTenantGeneratedPoliciesObeyLevel(t *testing.T) {
	startNetguard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	const ns = "tenant-level"
	if err := testCluster.EnsureNamespace(ctx, ns, map[string]string{rules.LabelEnforce: "restricted"}); err != nil {
		t.Fatal(err)
	}
	deps := cs.AppsV1().Deployments(ns)
	_, err = deps.Create(ctx, webhooktest.Deployment(ns, "web", map[string]string{rules.AnnotationDependsOn: "api:1-65535 api:1-65535/udp"}), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `violates netguard "restricted"`) ||
		!strings.Contains(err.Error(), `entry "api:1-65535"`) || !strings.Contains(err.Error(), "ingressAllPorts") || !strings.Contains(err.Error(), "egressAllPorts") {
		t.Fatalf("create web depending on every port of api: want a denial naming the entry and the checks, got %v", err)
	}
	for _, name := range []string{"netguard.web.depends-on", "netguard.web.to.api"} {
		if _, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("NetworkPolicy %s: want none written for a denied workload, got %v", name, err)
		}
	}
	// A narrow dependency passes.
	if _, err := deps.Create(ctx, webhooktest.Deployment(ns, "web", map[string]string{rules.AnnotationDependsOn: "api:8080"}), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create web depending on api:8080: %v", err)
	}

	// A profile's rules are the platform's grant: not judged by the level.
	c := profileClient(t)
	port, end := intstr.FromInt32(1), int32(65535)
	wide := &netguardv1alpha1.NetworkProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "tenant-level-wide"},
		Spec: netguardv1alpha1.NetworkProfileSpec{Egress: []networkingv1.NetworkPolicyEgressRule{{
			Ports: []networkingv1.NetworkPolicyPort{{Port: &port, EndPort: &end}},
		}}},
	}
	if err := c.Create(ctx, wide); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), wide) })
	if _, err := deps.Create(ctx, webhooktest.Deployment(ns, "scraper", map[string]string{rules.AnnotationProfiles: wide.Name}), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create a workload using a wide profile: %v", err)
	}
}

func TestTenantScopedProfiles(t *testing.T) {
	startNetguard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"tenant-kannika", "tenant-other"} {
		if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
			t.Fatal(err)
		}
	}
	c := profileClient(t)
	port := intstr.FromInt32(8080)
	scoped := &netguardv1alpha1.NetworkProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "tenant-kannika-armory"},
		Spec: netguardv1alpha1.NetworkProfileSpec{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "tenant-kannika"}},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kafka"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: &port}},
			}},
		},
	}
	if err := c.Create(ctx, scoped); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), scoped) })

	ann := map[string]string{rules.AnnotationProfiles: scoped.Name}
	_, err = cs.AppsV1().Deployments("tenant-other").Create(ctx, webhooktest.Deployment("tenant-other", "thief", ann), metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), `NetworkProfile "tenant-kannika-armory" is not offered to namespace "tenant-other"`) {
		t.Fatalf("use the profile outside its namespaces: want a denial naming the profile, got %v", err)
	}
	if _, err := cs.AppsV1().Deployments("tenant-kannika").Create(ctx, webhooktest.Deployment("tenant-kannika", "armory", ann), metav1.CreateOptions{}); err != nil {
		t.Fatalf("use the profile in its namespace: %v", err)
	}
	if _, err := cs.NetworkingV1().NetworkPolicies("tenant-kannika").Get(ctx, "netguard.armory.profile."+scoped.Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("the profile's policy in its namespace: %v", err)
	}
}

func TestTenantReservedPolicyNames(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	const ns = "tenant-reserved"
	// Before netguard runs (no webhooks): policies planted under the names
	// netguard will generate, each with fields netguard does not set.
	if err := testCluster.EnsureNamespace(ctx, ns, map[string]string{rules.LabelEnforce: "restricted"}); err != nil {
		t.Fatal(err)
	}
	planted := func(name string, spec networkingv1.NetworkPolicySpec) {
		np := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"planted-by": "tenant"}},
			Spec:       spec,
		}
		if _, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	everything := []networkingv1.NetworkPolicyIngressRule{{}}
	planted(rules.AllowDNSPolicyName, networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"role": "favoured"}},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		Ingress:     everything,
	})
	planted("netguard.web.to.api", networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"role": "favoured"}},
		Ingress:     everything,
		Egress:      []networkingv1.NetworkPolicyEgressRule{{}},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
	})

	startNetguard(t)

	want := func(np *networkingv1.NetworkPolicy) func() error {
		return func() error {
			live, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, np.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !rules.SameWrittenPolicy(live, np) {
				return fmt.Errorf("NetworkPolicy %s: labels %v spec %+v, want labels %v spec %+v", np.Name, live.Labels, live.Spec, np.Labels, np.Spec)
			}
			if others := rules.ForeignFieldManagers(live); len(others) > 0 {
				return fmt.Errorf("NetworkPolicy %s: field managers %v still hold fields", np.Name, others)
			}
			return nil
		}
	}
	var dns *networkingv1.NetworkPolicy
	for _, p := range rules.NamespaceBaseline(ns, rules.BaselineOptions{}) {
		if p.Name == rules.AllowDNSPolicyName {
			dns = p
		}
	}
	eventually(t, 30*time.Second, "the planted DNS allowance replaced whole", want(dns))

	d, err := cs.AppsV1().Deployments(ns).Create(ctx, webhooktest.Deployment(ns, "web", map[string]string{rules.AnnotationDependsOn: "api:8080"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gen, errs := rules.Generate(rules.Workload{Kind: "Deployment", Namespace: ns, Name: "web", Annotations: d.Annotations}, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, p := range gen.Policies {
		if p.Name == "netguard.web.to.api" {
			// Written during admission: replaced by the time the create returns.
			if err := want(p)(); err != nil {
				t.Fatal(err)
			}
		}
	}

	// While netguard runs a tenant cannot plant one.
	grantNetworkPolicyEdit(t, ctx, ns, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "squatter"})
	grantImpersonation(t, ctx, "squatter-impersonator", "squatter")
	asTenant := impersonating(t, "squatter-impersonator", "squatter")
	for _, name := range []string{"netguard.cache.to.db", "netguard-allow-dns-x", rules.AllowDNSPolicyName} {
		np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
		var err error
		eventually(t, 30*time.Second, "RBAC for the tenant", func() error {
			_, err = asTenant.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{})
			if apierrors.IsForbidden(err) && strings.Contains(err.Error(), "cannot create resource") {
				return err // RBAC not there yet
			}
			return nil
		})
		switch {
		case name == "netguard-allow-dns-x":
			// Not a reserved name: an ordinary policy, judged by level.
			if err != nil {
				t.Errorf("create %s: %v", name, err)
			}
		case name == rules.AllowDNSPolicyName:
			if !apierrors.IsAlreadyExists(err) && !apierrors.IsForbidden(err) {
				t.Errorf("create %s: want a refusal, got %v", name, err)
			}
		default:
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "is reserved for the policies netguard generates") {
				t.Errorf("create %s as a tenant: want netguard's denial, got %v", name, err)
			}
		}
	}
}

// profileClient is a controller-runtime client that knows NetworkProfiles.
func profileClient(t *testing.T) client.Client {
	t.Helper()
	c, err := client.New(testCluster.Config, client.Options{Scheme: webhook.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A namespace where a takeover already happened (written while netguard was
// not watching, or by an earlier version): two workloads claim payments, and
// the second one's policies have taken over payments' names. netguard's
// controller gives the policies back to the owner and removes what it would
// have injected into the other.
func TestTenantControllerRestoresTheOwner(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	const ns = "tenant-restore"
	if err := testCluster.EnsureNamespace(ctx, ns, map[string]string{rules.LabelEnforce: "restricted"}); err != nil {
		t.Fatal(err)
	}
	deps := cs.AppsV1().Deployments(ns)
	payments := webhooktest.Deployment(ns, "payments", map[string]string{rules.AnnotationDependsOn: "db:5432"})
	if _, err := deps.Create(ctx, payments, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The taker: created later, with payments' label and a record as
	// netguard used to inject them, and payments' policy names rewritten to
	// its own dependencies.
	evilAnn := map[string]string{rules.AnnotationComponent: "payments", rules.AnnotationDependsOn: "api:443"}
	evilW := rules.Workload{Kind: "Deployment", Namespace: ns, Name: "evil", Annotations: evilAnn}
	gen, errs := rules.Generate(evilW, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	evil := webhooktest.Deployment(ns, "evil", maps.Clone(evilAnn))
	evil.Annotations[rules.AnnotationGenerated] = gen.Record().String()
	evil.Spec.Template.Labels = maps.Clone(evil.Spec.Template.Labels) // the fixture shares it with the selector
	evil.Spec.Template.Labels[rules.LabelComponent] = "payments"
	// creationTimestamps have a resolution of one second: make evil's later.
	time.Sleep(1100 * time.Millisecond)
	if _, err := deps.Create(ctx, evil, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range gen.Policies {
		if _, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	startNetguard(t)

	eventually(t, 60*time.Second, "payments' policies back with payments", func() error {
		for _, name := range []string{"netguard.payments.depends-on", "netguard.payments.to.db"} {
			p, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if got := p.Annotations[rules.AnnotationWorkload]; got != "Deployment/payments" {
				return fmt.Errorf("%s names %s", name, got)
			}
		}
		if _, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, "netguard.payments.to.api", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("netguard.payments.to.api, which only evil declared, is still there (%v)", err)
		}
		return nil
	})
	eventually(t, 60*time.Second, "evil un-injected", func() error {
		d, err := deps.Get(ctx, "evil", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if _, ok := d.Annotations[rules.AnnotationGenerated]; ok {
			return fmt.Errorf("evil still carries its record")
		}
		if got, ok := d.Spec.Template.Labels[rules.LabelComponent]; ok {
			return fmt.Errorf("evil's pods still carry %s=%s", rules.LabelComponent, got)
		}
		return nil
	})
}
