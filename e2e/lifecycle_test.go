package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// Lifecycle: nothing netguard does may wedge a normal cluster operation, and
// each step of a namespace's life does to traffic and to netguard's objects
// what docs/install.md ("Lifecycle") says. The tenant in these tests is a
// user bound to the built-in ClusterRole admin in its namespace, as a
// namespace owner is in a real cluster.

// tenant is a namespace owner: a clientset and kubectl flags for a user bound
// to the built-in ClusterRole admin in ns.
type tenant struct {
	name string
	cs   kubernetes.Interface
	kube []string // kubectl identity flags
}

func newTenant(t *testing.T, ctx context.Context, ns string) tenant {
	t.Helper()
	name := "tenant-of-" + ns
	cfg, kc, err := testCluster.AddTenant(ctx, name, ns, "admin")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tenant{name: name, cs: cs, kube: []string{"--kubeconfig=" + kc}}
}

// The built-in roles are filled (item 6 of issue 15): a namespace admin can
// work with NetworkPolicies and workloads in its namespace and nowhere else.
func TestLifecycleTenantHasTheBuiltInRoles(t *testing.T) {
	startNetguard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ns = "life-roles"
	if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	tn := newTenant(t, ctx, ns)
	waitForPolicy(t, ctx, ns, rules.DefaultDenyPolicyName, "")
	if _, err := tn.cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, rules.DefaultDenyPolicyName, metav1.GetOptions{}); err != nil {
		t.Fatalf("a namespace admin reads a NetworkPolicy: %v", err)
	}
	if _, err := tn.cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, webhooktest.GoodPolicy("backend-from-frontend"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("a namespace admin writes a NetworkPolicy the level allows: %v", err)
	}
	if _, err := tn.cs.AppsV1().Deployments(ns).Create(ctx, webhooktest.Deployment(ns, "web", map[string]string{rules.AnnotationDependsOn: "api:8080"}), metav1.CreateOptions{}); err != nil {
		t.Fatalf("a namespace admin creates an annotated Deployment: %v", err)
	}
	// RBAC, not netguard, keeps the tenant in its namespace.
	_, err := tn.cs.NetworkingV1().NetworkPolicies("default").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) || strings.Contains(err.Error(), "netguard") {
		t.Errorf("a namespace admin lists policies elsewhere: want RBAC's 403, got %v", err)
	}
}

// `kubectl delete --cascade=orphan` completes (item 1 of issue 15): the
// garbage collector may take the ownerReferences off generated policies.
// The orphaned policies stay while the orphaned pods run, a workload of the
// same name adopts them, and they go once nothing claims them.
func TestLifecycleOrphanCascade(t *testing.T) {
	_, log := startValidating(t, "--orphan-grace-period=2s", "--log-level=debug")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const ns = "life-orphan"
	if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	tn := newTenant(t, ctx, ns)
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	web := []string{"netguard.web.depends-on", "netguard.web.to.api"}

	t.Run("a Deployment deleted with --cascade=orphan is deleted; its policies stay for its pods", func(t *testing.T) {
		d := createDeployment(t, ctx, tn, "web", map[string]string{rules.AnnotationDependsOn: "api:8080"})
		eventually(t, 30*time.Second, "owned policies", ownedBy(ctx, cs, ns, web, d.UID))
		eventually(t, 30*time.Second, "pods of web", podsOf(ctx, cs, ns, "web", true))

		deleteWorkload(t, ctx, tn, "deployment", "web", "orphan")
		eventually(t, 30*time.Second, "log: orphaned policies kept", func() error {
			if !logHas(log.String(), "keeping generated policies whose workload was deleted: pods of their component still run", `"component":"web"`) {
				return errors.New("not logged yet")
			}
			return nil
		})
		if err := ownedBy(ctx, cs, ns, web, "")(); err != nil {
			t.Fatalf("orphaned policies: %v", err)
		}
	})

	t.Run("a Deployment of the same name adopts them", func(t *testing.T) {
		d := createDeployment(t, ctx, tn, "web", map[string]string{rules.AnnotationDependsOn: "api:8080"})
		eventually(t, 30*time.Second, "adopted policies", ownedBy(ctx, cs, ns, web, d.UID))
	})

	t.Run("once nothing claims them they go", func(t *testing.T) {
		deleteWorkload(t, ctx, tn, "deployment", "web", "orphan")
		// The orphaned ReplicaSet, with the pods, is deleted too.
		kubectl(t, ctx, tn.kube, "", "-n", ns, "delete", "replicasets", "-l", "app=web", "--timeout=60s").wantOKAnyOutput(t)
		eventually(t, 30*time.Second, "pods of web gone", podsOf(ctx, cs, ns, "web", false))
		eventually(t, 30*time.Second, "orphaned policies removed", wantNames(ctx, cs, ns, "Deployment/web"))
	})

	t.Run("a StatefulSet deleted with --cascade=orphan and recreated keeps its policies", func(t *testing.T) {
		sts := statefulSet(ns, "db", map[string]string{rules.AnnotationDependsOn: "api:8080"})
		s, err := tn.cs.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		db := []string{"netguard.db.depends-on", "netguard.db.to.api"}
		eventually(t, 30*time.Second, "owned policies", ownedBy(ctx, cs, ns, db, s.UID))
		eventually(t, 30*time.Second, "pods of db", podsOf(ctx, cs, ns, "db", true))
		deleteWorkload(t, ctx, tn, "statefulset", "db", "orphan")
		if err := ownedBy(ctx, cs, ns, db, "")(); err != nil {
			t.Fatalf("orphaned policies: %v", err)
		}
		s, err = tn.cs.AppsV1().StatefulSets(ns).Create(ctx, statefulSet(ns, "db", map[string]string{rules.AnnotationDependsOn: "api:8080"}), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "adopted policies", ownedBy(ctx, cs, ns, db, s.UID))
	})
}

// A namespace can leave default-deny (item 2 of issue 15): the baseline
// follows the namespace's effective enforce level, in whichever order the
// namespace and its labels are written, and the denial says so.
func TestLifecycleNamespaceLeavesDefaultDeny(t *testing.T) {
	startNetguard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	const ns = "life-legacy"
	// kubectl's order: create, then label.
	kubectl(t, ctx, admin(), "", "create", "namespace", ns).wantOK(t, "namespace/"+ns+" created\n", "")
	tn := newTenant(t, ctx, ns)
	eventually(t, 30*time.Second, "baseline of a new namespace", baselineIs(ctx, cs, ns, true))

	kubectl(t, ctx, tn.kube, "", "-n", ns, "delete", "networkpolicy", rules.DefaultDenyPolicyName).
		wantFail(t, "", "Error from server (Forbidden): "+webhookDenied+`networkpolicies.networking.k8s.io "netguard-default-deny" is forbidden: "netguard-default-deny" is managed by netguard: only netguard and platform identities may delete it, and user "`+tn.name+`" is neither; `+baselineFix+"\n")

	for _, step := range []struct {
		labels []string
		want   bool
	}{
		{[]string{"netguard.io/enforce=privileged"}, false},
		{[]string{"netguard.io/enforce=baseline"}, true},
		{[]string{"netguard.io/enforce=restricted"}, true},
		// Down from a guarded level, as the denial says.
		{[]string{"netguard.io/enforce=privileged"}, false},
		{[]string{"netguard.io/enforce-"}, true}, // the cluster default, baseline
		{[]string{"netguard.io/ignore="}, false},
		{[]string{"netguard.io/ignore-"}, true},
	} {
		kubectl(t, ctx, admin(), "", append([]string{"label", "namespace", ns, "--overwrite"}, step.labels...)...).wantOKAnyOutput(t)
		eventually(t, 30*time.Second, fmt.Sprintf("after %v the baseline is there: %v", step.labels, step.want), baselineIs(ctx, cs, ns, step.want))
	}
}

// TestLifecycle walks a namespace through its whole life with netguard, in
// the order of docs/install.md ("Lifecycle"), as its tenant.
func TestLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	platform, err := client.New(testCluster.Config, client.Options{Scheme: webhook.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	const ns = "life"
	// A namespace with running workloads before netguard is installed.
	if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	tn := newTenant(t, ctx, ns)
	createDeployment(t, ctx, tn, "frontend", nil)
	createDeployment(t, ctx, tn, "backend", nil)
	if !reach(t, ctx, tn, ns, "frontend", "backend", "8080") {
		t.Fatal("before install nothing isolates the pods")
	}

	ng, _ := startValidating(t, "--orphan-grace-period=2s")
	t.Run("install: every namespace above privileged gets default-deny", func(t *testing.T) {
		eventually(t, 30*time.Second, "baseline", baselineIs(ctx, cs, ns, true))
		if reach(t, ctx, tn, ns, "frontend", "backend", "8080") {
			t.Error("after install an undeclared connection is still allowed")
		}
	})

	web := []string{"netguard.web.depends-on", "netguard.web.to.api"}
	var webUID types.UID
	t.Run("annotate: the declared connection opens, nothing else", func(t *testing.T) {
		createDeployment(t, ctx, tn, "api", map[string]string{rules.AnnotationComponent: "api"})
		d := createDeployment(t, ctx, tn, "web", map[string]string{rules.AnnotationDependsOn: "api:8080"})
		webUID = d.UID
		eventually(t, 30*time.Second, "generated policies owned by web", ownedBy(ctx, cs, ns, web, d.UID))
		if !reach(t, ctx, tn, ns, "web", "api", "8080") {
			t.Error("web cannot reach api on 8080")
		}
		if reach(t, ctx, tn, ns, "web", "api", "9090") {
			t.Error("web reaches api on an undeclared port")
		}
		// The tenant cannot edit or delete what netguard generated.
		err := tn.cs.NetworkingV1().NetworkPolicies(ns).Delete(ctx, "netguard.web.to.api", metav1.DeleteOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "is managed by netguard") {
			t.Errorf("tenant deletes a generated policy: want netguard's 403, got %v", err)
		}
	})

	t.Run("raise the level: hand-written policies are judged stricter, generated ones stay", func(t *testing.T) {
		kubectl(t, ctx, admin(), "", "label", "namespace", ns, "netguard.io/enforce=restricted", "--overwrite").wantOKAnyOutput(t)
		eventually(t, 30*time.Second, "restricted enforced", func() error {
			_, err := tn.cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, webhooktest.SameNamespacePolicy("same-namespace"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `violates netguard "restricted"`) {
				return fmt.Errorf("want a restricted denial, got %v", err)
			}
			return nil
		})
		if err := baselineIs(ctx, cs, ns, true)(); err != nil {
			t.Error(err)
		}
		if err := ownedBy(ctx, cs, ns, web, webUID)(); err != nil {
			t.Error(err)
		}
	})

	t.Run("lower the level to privileged: default-deny goes, generated policies stay", func(t *testing.T) {
		kubectl(t, ctx, admin(), "", "label", "namespace", ns, "netguard.io/enforce=privileged", "--overwrite").wantOKAnyOutput(t)
		eventually(t, 30*time.Second, "baseline removed", baselineIs(ctx, cs, ns, false))
		if !reach(t, ctx, tn, ns, "frontend", "backend", "8080") {
			t.Error("at privileged, pods no policy selects are still isolated")
		}
		if err := ownedBy(ctx, cs, ns, web, webUID)(); err != nil {
			t.Error(err)
		}
		if !reach(t, ctx, tn, ns, "web", "api", "8080") {
			t.Error("web cannot reach api on 8080")
		}
	})

	t.Run("raise it again: default-deny comes back", func(t *testing.T) {
		kubectl(t, ctx, admin(), "", "label", "namespace", ns, "netguard.io/enforce=baseline", "--overwrite").wantOKAnyOutput(t)
		eventually(t, 30*time.Second, "baseline restored", baselineIs(ctx, cs, ns, true))
		if reach(t, ctx, tn, ns, "frontend", "backend", "8080") {
			t.Error("an undeclared connection is allowed under default-deny")
		}
	})

	t.Run("remove the annotations: the generated policies go", func(t *testing.T) {
		kubectl(t, ctx, tn.kube, "", "-n", ns, "annotate", "deployment", "web", rules.AnnotationDependsOn+"-").wantOKAnyOutput(t)
		eventually(t, 30*time.Second, "generated policies deleted", wantNames(ctx, cs, ns, "Deployment/web"))
		eventually(t, 30*time.Second, "record removed", func() error {
			d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if _, ok := d.Annotations[rules.AnnotationGenerated]; ok {
				return fmt.Errorf("record still there: %v", d.Annotations)
			}
			return nil
		})
		if reach(t, ctx, tn, ns, "web", "api", "8080") {
			t.Error("web still reaches api after its declaration was removed")
		}
	})

	for _, cascade := range []string{"background", "foreground", "orphan"} {
		t.Run("delete with --cascade="+cascade, func(t *testing.T) {
			kubectl(t, ctx, tn.kube, "", "-n", ns, "annotate", "deployment", "web", "--overwrite", rules.AnnotationDependsOn+"=api:8080").wantOKAnyOutput(t)
			d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 30*time.Second, "generated policies", ownedBy(ctx, cs, ns, web, d.UID))
			deleteWorkload(t, ctx, tn, "deployment", "web", cascade)
			if cascade == "orphan" {
				// The pods live on, and so do their policies.
				eventually(t, 30*time.Second, "pods of web", podsOf(ctx, cs, ns, "web", true))
				if err := ownedBy(ctx, cs, ns, web, "")(); err != nil {
					t.Fatal(err)
				}
				d = createDeployment(t, ctx, tn, "web", map[string]string{rules.AnnotationDependsOn: "api:8080"})
				eventually(t, 30*time.Second, "adopted by the new web", ownedBy(ctx, cs, ns, web, d.UID))
				return
			}
			eventually(t, 30*time.Second, "policies deleted with the workload", wantNames(ctx, cs, ns, "Deployment/web"))
			createDeployment(t, ctx, tn, "web", nil)
		})
	}

	profile := "life-scrape-from-monitoring" // profiles are cluster-wide: a name of this test's own
	policy := "netguard.api.profile." + profile
	t.Cleanup(func() {
		_ = platform.Delete(context.Background(), &netguardv1alpha1.NetworkProfile{ObjectMeta: metav1.ObjectMeta{Name: profile}})
	})
	t.Run("delete a profile: the policies stay, an event says why", func(t *testing.T) {
		if err := platform.Create(ctx, scrapeProfile(profile, 9090)); err != nil {
			t.Fatal(err)
		}
		kubectl(t, ctx, tn.kube, "", "-n", ns, "annotate", "deployment", "api", rules.AnnotationProfiles+"="+profile).wantOKAnyOutput(t)
		eventually(t, 30*time.Second, "profile policy", profilePort(ctx, cs, ns, policy, 9090))
		if err := platform.Delete(ctx, &netguardv1alpha1.NetworkProfile{ObjectMeta: metav1.ObjectMeta{Name: profile}}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "GenerationFailed event", func() error {
			evs, err := cs.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			for _, e := range evs.Items {
				if e.Regarding.Name == "api" && e.Reason == "GenerationFailed" && e.Type == corev1.EventTypeWarning {
					return nil
				}
			}
			return errors.New("no GenerationFailed event on Deployment api")
		})
		if err := profilePort(ctx, cs, ns, policy, 9090)(); err != nil {
			t.Errorf("a deleted profile cut the workload off: %v", err)
		}
	})

	t.Run("recreate the profile: its workloads follow it", func(t *testing.T) {
		if err := platform.Create(ctx, scrapeProfile(profile, 9100)); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "profile policy follows the new profile", profilePort(ctx, cs, ns, policy, 9100))
	})

	t.Run("uninstall: netguard's policies stay, and are the tenant's to remove", func(t *testing.T) {
		if err := ng.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if err := baselineIs(ctx, cs, ns, true)(); err != nil {
			t.Error(err)
		}
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := ownedBy(ctx, cs, ns, web, d.UID)(); err != nil {
			t.Errorf("generated policies after uninstall: %v", err)
		}
		if !reach(t, ctx, tn, ns, "web", "api", "8080") {
			t.Error("uninstalling cut web off from api")
		}
		kubectl(t, ctx, tn.kube, "", "-n", ns, "delete", "networkpolicy", "-l", rules.LabelManagedBy+"="+rules.ManagedByValue).wantOKAnyOutput(t)
		if err := baselineIs(ctx, cs, ns, false)(); err != nil {
			t.Error(err)
		}
	})
}

// ---- helpers ----

// wantOKAnyOutput is wantOK for commands whose output is not the point.
func (r kubectlResult) wantOKAnyOutput(t *testing.T) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("%s: %v\nstdout: %s\nstderr: %s", r.cmd, r.err, r.stdout, r.stderr)
	}
}

// createDeployment creates a Deployment as the tenant.
func createDeployment(t *testing.T, ctx context.Context, tn tenant, name string, annotations map[string]string) *appsv1.Deployment {
	t.Helper()
	d := webhooktest.Deployment("", name, annotations)
	d.Spec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080}, {ContainerPort: 9090}}
	ns := tenantNamespace(tn)
	d.Namespace = ns
	var out *appsv1.Deployment
	err := retry.OnError(retry.DefaultRetry, apierrors.IsAlreadyExists, func() error {
		// A deleted Deployment of the same name may still be on its way out.
		var err error
		out, err = tn.cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("create Deployment %s/%s as the tenant: %v", ns, name, err)
	}
	return out
}

func tenantNamespace(tn tenant) string { return strings.TrimPrefix(tn.name, "tenant-of-") }

func statefulSet(ns, name string, annotations map[string]string) *appsv1.StatefulSet {
	d := webhooktest.Deployment(ns, name, annotations)
	return &appsv1.StatefulSet{
		ObjectMeta: d.ObjectMeta,
		Spec:       appsv1.StatefulSetSpec{Selector: d.Spec.Selector, Template: d.Spec.Template, ServiceName: name},
	}
}

// deleteWorkload deletes kind/name as the tenant with kubectl, which waits
// until the object is gone: a wedged deletion fails here.
func deleteWorkload(t *testing.T, ctx context.Context, tn tenant, kind, name, cascade string) {
	t.Helper()
	r := kubectl(t, ctx, tn.kube, "", "-n", tenantNamespace(tn), "delete", kind, name, "--cascade="+cascade, "--wait=true", "--timeout=60s")
	if r.err != nil {
		t.Fatalf("%s: %v\nstdout: %s\nstderr: %s", r.cmd, r.err, r.stdout, r.stderr)
	}
}

// ownedBy checks that exactly names are generated for names' workload, each
// owned by uid alone, or by nothing when uid is empty.
func ownedBy(ctx context.Context, cs kubernetes.Interface, ns string, names []string, uid types.UID) func() error {
	return func() error {
		for _, name := range names {
			p, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			var got []types.UID
			for _, o := range p.OwnerReferences {
				got = append(got, o.UID)
			}
			want := []types.UID{uid}
			if uid == "" {
				want = nil
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("policy %s owner references %v, want %v", name, got, want)
			}
		}
		return nil
	}
}

// podsOf checks whether pods of component exist.
func podsOf(ctx context.Context, cs kubernetes.Interface, ns, component string, want bool) func() error {
	return func() error {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: rules.LabelComponent + "=" + component})
		if err != nil {
			return err
		}
		if got := len(pods.Items) > 0; got != want {
			return fmt.Errorf("%d pods of component %s", len(pods.Items), component)
		}
		return nil
	}
}

// baselineIs checks whether ns holds netguard's baseline pair.
func baselineIs(ctx context.Context, cs kubernetes.Interface, ns string, present bool) func() error {
	return func() error {
		for _, name := range []string{rules.DefaultDenyPolicyName, rules.AllowDNSPolicyName} {
			_, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{})
			switch {
			case err != nil && !apierrors.IsNotFound(err):
				return err
			case present && err != nil:
				return fmt.Errorf("%s/%s missing", ns, name)
			case !present && err == nil:
				return fmt.Errorf("%s/%s still there", ns, name)
			}
		}
		return nil
	}
}

func scrapeProfile(name string, port int32) *netguardv1alpha1.NetworkProfile {
	tcp := corev1.ProtocolTCP
	p := intstr.FromInt32(port)
	return &netguardv1alpha1.NetworkProfile{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: netguardv1alpha1.NetworkProfileSpec{
			Description: "Prometheus in the monitoring namespace scrapes metrics",
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "monitoring"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &p}},
			}},
		},
	}
}

// profilePort checks that the profile's policy opens port.
func profilePort(ctx context.Context, cs kubernetes.Interface, ns, name string, port int) func() error {
	return func() error {
		p, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got := p.Spec.Ingress[0].Ports[0].Port.IntValue(); got != port {
			return fmt.Errorf("%s opens port %d, want %d", name, got, port)
		}
		return nil
	}
}

// reach asks `netguard reach` whether pods of workload from may connect to
// pods of workload to on port under the policies the namespace holds now
// (--generated=false: what is in the cluster, not what would be), reading
// them as the tenant.
func reach(t *testing.T, ctx context.Context, tn tenant, ns, from, to, port string) bool {
	t.Helper()
	get := kubectl(t, ctx, tn.kube, "", "-n", ns, "get", "deployments,networkpolicies", "-o", "yaml")
	if get.err != nil {
		t.Fatalf("%s: %v\n%s", get.cmd, get.err, get.stderr)
	}
	cmd := exec.CommandContext(ctx, netguardBin, "reach", "-f", "-", "--generated=false", "--from", ns+"/"+from, "--to", ns+"/"+to, "--port", port)
	cmd.Stdin = strings.NewReader(get.stdout)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return true
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		return false
	}
	t.Fatalf("netguard reach %s -> %s:%s: %v\n%s%s", from, to, port, err, stdout.String(), stderr.String())
	return false
}
