package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// eventually polls f until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, timeout, err)
}

func generatedNames(ctx context.Context, cs kubernetes.Interface, ns, workloadRef string) ([]string, error) {
	list, err := cs.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{LabelSelector: rules.LabelManagedBy + "=" + rules.ManagedByValue})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range list.Items {
		if p.Annotations[rules.AnnotationWorkload] == workloadRef {
			names = append(names, p.Name)
		}
	}
	slices.Sort(names)
	return names, nil
}

func wantNames(ctx context.Context, cs kubernetes.Interface, ns, ref string, want ...string) func() error {
	return func() error {
		got, err := generatedNames(ctx, cs, ns, ref)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("generated policies for %s: %v, want %v", ref, got, want)
		}
		return nil
	}
}

// wantEvent checks, with kubectl as a user would, that the object name in ns
// has an event of reason whose message contains note.
func wantEvent(ctx context.Context, ns, name, reason, note string) func() error {
	return func() error {
		out, err := testCluster.Kubectl(ctx, nil, "-n", ns, "get", "events", "--field-selector", "involvedObject.name="+name+",reason="+reason,
			"-o", "jsonpath={range .items[*]}{.type} {.involvedObject.kind} {.message}{\"\\n\"}{end}")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "Normal ") && strings.Contains(line, note) {
				return nil
			}
		}
		return fmt.Errorf("no %s event with %q on %s/%s:\n%s", reason, note, ns, name, out)
	}
}

func TestInjection(t *testing.T) {
	startNetguard(t, "--platform-groups=platform-admins")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ns := "inject"
	if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}

	t.Run("a namespace created while netguard runs gets its default-deny and DNS allowance", func(t *testing.T) {
		eventually(t, 30*time.Second, "baseline", func() error {
			for _, name := range []string{rules.DefaultDenyPolicyName, rules.AllowDNSPolicyName} {
				if _, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
					return err
				}
			}
			return nil
		})
	})

	deps := cs.AppsV1().Deployments(ns)
	t.Run("create: policies exist before the call returns and are then owned by the workload", func(t *testing.T) {
		d, err := deps.Create(ctx, webhooktest.Deployment(ns, "web", map[string]string{rules.AnnotationDependsOn: "api:8080"}), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Spec.Template.Labels[rules.LabelComponent]; got != "web" {
			t.Errorf("pod template label %s=%q, want web", rules.LabelComponent, got)
		}
		rec, err := rules.ParseGeneratedRecord(d.Annotations[rules.AnnotationGenerated])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rec.Policies, []string{"netguard.web.depends-on", "netguard.web.to.api"}) {
			t.Errorf("record policies %v", rec.Policies)
		}
		// Written during admission: no waiting.
		for _, name := range rec.Policies {
			if _, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
				t.Fatalf("policy %s not there when the create returned: %v", name, err)
			}
		}
		eventually(t, 30*time.Second, "PoliciesGenerated event", wantEvent(ctx, ns, "web", "PoliciesGenerated", "netguard generated NetworkPolicies netguard.web.depends-on, netguard.web.to.api"))
		eventually(t, 20*time.Second, "ownerReferences", func() error {
			for _, name := range rec.Policies {
				p, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				if len(p.OwnerReferences) != 1 || p.OwnerReferences[0].UID != d.UID || p.OwnerReferences[0].Kind != "Deployment" {
					return fmt.Errorf("policy %s owner references %+v, want Deployment web %s", name, p.OwnerReferences, d.UID)
				}
			}
			return nil
		})
	})

	t.Run("update: a changed dependency changes the policies, a removed one deletes them", func(t *testing.T) {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			d, err := deps.Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			d.Annotations[rules.AnnotationDependsOn] = "cache:6379"
			_, err = deps.Update(ctx, d, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "after update", wantNames(ctx, cs, ns, "Deployment/web", "netguard.web.depends-on", "netguard.web.to.cache"))
		p, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, "netguard.web.to.cache", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Spec.Ingress[0].Ports[0].Port.IntValue(); got != 6379 {
			t.Errorf("port %d, want 6379", got)
		}
		eventually(t, 30*time.Second, "PoliciesPruned event", wantEvent(ctx, ns, "web", "PoliciesPruned", "netguard deleted NetworkPolicies no longer declared: netguard.web.to.api"))
	})

	t.Run("dry run creates nothing and lists what would be generated", func(t *testing.T) {
		out, err := testCluster.Kubectl(ctx, strings.NewReader(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: dry
  namespace: inject
  annotations:
    netguard.io/depends-on: api:8080
spec:
  selector: {matchLabels: {app: dry}}
  template:
    metadata: {labels: {app: dry}}
    spec: {containers: [{name: app, image: registry.example/app:1}]}
`), "apply", "--dry-run=server", "-f", "-")
		if err != nil {
			t.Fatalf("kubectl: %v\n%s", err, out)
		}
		for _, w := range []string{"would generate NetworkPolicy netguard.dry.depends-on", "would generate NetworkPolicy netguard.dry.to.api"} {
			if !strings.Contains(out, w) {
				t.Errorf("kubectl output lacks %q:\n%s", w, out)
			}
		}
		if names, _ := generatedNames(ctx, cs, ns, "Deployment/dry"); len(names) != 0 {
			t.Errorf("dry run created %v", names)
		}
		if _, err := deps.Get(ctx, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("dry run created the deployment: %v", err)
		}
	})

	t.Run("bad annotations are denied with the parser's message where enforce is above privileged", func(t *testing.T) {
		_, err := deps.Create(ctx, webhooktest.Deployment(ns, "bad", map[string]string{rules.AnnotationDependsOn: "backend:80a"}), metav1.CreateOptions{})
		if err == nil || !apierrors.IsInvalid(err) {
			t.Fatalf("want 422 Invalid, got %v", err)
		}
		want := `Deployment.apps "bad" is invalid: metadata.annotations[netguard.io/depends-on]: Invalid value: "backend:80a": port must be 1-65535`
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err.Error(), want)
		}
	})

	t.Run("bad annotations warn where enforce is privileged", func(t *testing.T) {
		lax := "inject-lax"
		if err := testCluster.EnsureNamespace(ctx, lax, map[string]string{rules.LabelEnforce: "privileged"}); err != nil {
			t.Fatal(err)
		}
		out, err := testCluster.Kubectl(ctx, nil, "-n", lax, "create", "deployment", "bad", "--image=registry.example/app:1")
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		out, err = testCluster.Kubectl(ctx, nil, "-n", lax, "annotate", "deployment", "bad", "netguard.io/depends-on=backend:80a")
		if err != nil {
			t.Fatalf("annotate in a privileged namespace should be allowed: %v: %s", err, out)
		}
		if !strings.Contains(out, `Warning: netguard: metadata.annotations[netguard.io/depends-on]: Invalid value: "backend:80a": port must be 1-65535`) {
			t.Errorf("no warning in kubectl output: %s", out)
		}
	})

	t.Run("a profile change propagates", func(t *testing.T) {
		c, err := client.New(testCluster.Config, client.Options{Scheme: webhook.NewScheme()})
		if err != nil {
			t.Fatal(err)
		}
		tcp := corev1.ProtocolTCP
		port := intstr.FromInt32(9090)
		prof := &netguardv1alpha1.NetworkProfile{
			ObjectMeta: metav1.ObjectMeta{Name: "scrape-from-monitoring"},
			Spec: netguardv1alpha1.NetworkProfileSpec{
				Description: "Prometheus in the monitoring namespace scrapes metrics",
				Ingress: []networkingv1.NetworkPolicyIngressRule{{
					From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "monitoring"}}}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
				}},
			},
		}
		if err := c.Create(ctx, prof); err != nil {
			t.Fatal(err)
		}
		if _, err := deps.Create(ctx, webhooktest.Deployment(ns, "metrics", map[string]string{rules.AnnotationProfiles: "scrape-from-monitoring"}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		name := "netguard.metrics.profile.scrape-from-monitoring"
		portOf := func() (int, error) {
			p, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return 0, err
			}
			return p.Spec.Ingress[0].Ports[0].Port.IntValue(), nil
		}
		if got, err := portOf(); err != nil || got != 9090 {
			t.Fatalf("profile policy port %d, %v; want 9090", got, err)
		}
		eventually(t, 30*time.Second, "status.usedBy and the Used-By column", func() error {
			out, err := testCluster.Kubectl(ctx, nil, "get", "networkprofile", prof.Name)
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[0], "USED-BY") || strings.Fields(lines[1])[1] != "1" {
				return fmt.Errorf("kubectl get networkprofile, want USED-BY 1:\n%s", out)
			}
			return nil
		})
		if err := c.Get(ctx, client.ObjectKeyFromObject(prof), prof); err != nil {
			t.Fatal(err)
		}
		newPort := intstr.FromInt32(9100)
		prof.Spec.Ingress[0].Ports[0].Port = &newPort
		if err := c.Update(ctx, prof); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "profile change reaches the generated policy", func() error {
			got, err := portOf()
			if err != nil {
				return err
			}
			if got != 9100 {
				return fmt.Errorf("port %d", got)
			}
			return nil
		})
	})

	t.Run("a generated policy edited or deleted by a platform identity is restored", func(t *testing.T) {
		out, err := testCluster.Kubectl(ctx, nil, "create", "clusterrolebinding", "platform-admins-edit", "--clusterrole=cluster-admin", "--group=platform-admins")
		if err != nil && !strings.Contains(out, "AlreadyExists") {
			t.Fatalf("%v: %s", err, out)
		}
		platform := "--as=platform-bot"
		group := "--as-group=platform-admins"
		out, err = testCluster.Kubectl(ctx, nil, platform, group, "-n", ns, "delete", "networkpolicy", "netguard.web.to.cache")
		if err != nil {
			t.Fatalf("platform delete: %v: %s", err, out)
		}
		eventually(t, 30*time.Second, "deleted policy restored", wantNames(ctx, cs, ns, "Deployment/web", "netguard.web.depends-on", "netguard.web.to.cache"))
		out, err = testCluster.Kubectl(ctx, nil, platform, group, "-n", ns, "patch", "networkpolicy", "netguard.web.to.cache", "--type=json", `-p=[{"op":"replace","path":"/spec/ingress/0/ports/0/port","value":1}]`)
		if err != nil {
			t.Fatalf("platform patch: %v: %s", err, out)
		}
		eventually(t, 30*time.Second, "edited policy restored", func() error {
			p, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, "netguard.web.to.cache", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if got := p.Spec.Ingress[0].Ports[0].Port.IntValue(); got != 6379 {
				return fmt.Errorf("port %d", got)
			}
			return nil
		})
	})

	t.Run("the admin is not netguard: touching a generated policy is denied", func(t *testing.T) {
		err := cs.NetworkingV1().NetworkPolicies(ns).Delete(ctx, "netguard.web.to.cache", metav1.DeleteOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "is managed by netguard") {
			t.Fatalf("want 403 managed by netguard, got %v", err)
		}
	})

	t.Run("removing the annotations removes the policies", func(t *testing.T) {
		out, err := testCluster.Kubectl(ctx, nil, "-n", ns, "annotate", "deployment", "web", rules.AnnotationDependsOn+"-")
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		eventually(t, 20*time.Second, "policies removed", wantNames(ctx, cs, ns, "Deployment/web"))
		d, err := deps.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := d.Annotations[rules.AnnotationGenerated]; ok {
			t.Errorf("record annotation left behind: %v", d.Annotations)
		}
	})

	t.Run("deleting the workload deletes its policies (garbage collector)", func(t *testing.T) {
		if err := deps.Delete(ctx, "metrics", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 60*time.Second, "garbage collection", wantNames(ctx, cs, ns, "Deployment/metrics"))
		c, err := client.New(testCluster.Config, client.Options{Scheme: webhook.NewScheme()})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "status.usedBy after the only user was deleted", func() error {
			p := &netguardv1alpha1.NetworkProfile{}
			if err := c.Get(ctx, client.ObjectKey{Name: "scrape-from-monitoring"}, p); err != nil {
				return err
			}
			if p.Status.UsedBy != 0 || p.Status.ObservedGeneration != p.Generation {
				return fmt.Errorf("status %+v at generation %d, want usedBy 0 and observedGeneration %d", p.Status, p.Generation, p.Generation)
			}
			return nil
		})
	})
}

// A workload created while netguard is down is admitted (the workload webhooks
// fail open) and gets its policies once netguard is back.
func TestInjectionBackfill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ns := "backfill"
	if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	ng := startNetguard(t)
	eventually(t, 30*time.Second, "baseline", func() error {
		_, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, rules.DefaultDenyPolicyName, metav1.GetOptions{})
		return err
	})
	// Down, but its webhook configurations stay registered, as after a crash.
	if err := ng.Kill(); err != nil {
		t.Fatal(err)
	}
	d, err := cs.AppsV1().Deployments(ns).Create(ctx, webhooktest.Deployment(ns, "late", map[string]string{rules.AnnotationDependsOn: "db:5432"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a workload write must not fail while netguard is down: %v", err)
	}
	if _, ok := d.Annotations[rules.AnnotationGenerated]; ok {
		t.Fatal("netguard was down, yet the workload was mutated")
	}
	startNetguard(t)
	eventually(t, 60*time.Second, "backfill", wantNames(ctx, cs, ns, "Deployment/late", "netguard.late.depends-on", "netguard.late.to.db"))
	eventually(t, 30*time.Second, "record and label backfilled", func() error {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "late", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Spec.Template.Labels[rules.LabelComponent] != "late" || d.Annotations[rules.AnnotationGenerated] == "" {
			return fmt.Errorf("labels %v annotations %v", d.Spec.Template.Labels, d.Annotations)
		}
		return nil
	})
}

// A workload whose create fails after netguard wrote its policies (here a
// ResourceQuota, which the API server checks after the webhooks) leaves
// nothing behind.
func TestInjectionFailedCreateLeavesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ns := "failed-create"
	if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "no-deployments", Namespace: ns},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/deployments.apps": resourceZero()}},
	}
	if _, err := cs.CoreV1().ResourceQuotas(ns).Create(ctx, quota, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "quota status", func() error {
		q, err := cs.CoreV1().ResourceQuotas(ns).Get(ctx, "no-deployments", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(q.Status.Hard) == 0 {
			return fmt.Errorf("quota not yet computed")
		}
		return nil
	})
	startNetguard(t, "--orphan-grace-period=2s")
	_, err = cs.AppsV1().Deployments(ns).Create(ctx, webhooktest.Deployment(ns, "doomed", map[string]string{rules.AnnotationDependsOn: "db:5432"}), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "exceeded quota") {
		t.Fatalf("want the quota to reject the create, got %v", err)
	}
	eventually(t, 30*time.Second, "left-over policies removed", wantNames(ctx, cs, ns, "Deployment/doomed"))
}

func resourceZero() resource.Quantity { return resource.MustParse("0") }
