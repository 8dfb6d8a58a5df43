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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// operatorDeployment is a Deployment as an operator writes it: no netguard
// annotations, pods labelled app.kubernetes.io/name, a named port.
func operatorDeployment(ns, name string, port int32) *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shop"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port}, {Name: "metrics", ContainerPort: 9090}}}}},
			},
		},
	}
}

func lncPort(s string) *intstr.IntOrString {
	p := intstr.Parse(s)
	return &p
}

func shopConfig(ns, backendPort string) *netguardv1alpha1.LocalNetworkConfig {
	return &netguardv1alpha1.LocalNetworkConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns},
		Spec: netguardv1alpha1.LocalNetworkConfigSpec{Components: map[string]netguardv1alpha1.LocalComponent{
			"frontend": {
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "frontend"}},
				DependsOn:   []netguardv1alpha1.LocalDependency{{Component: "backend", Port: lncPort(backendPort)}},
			},
			"backend": {PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "backend"}}},
		}},
	}
}

// reachAsAdmin runs `netguard reach` on the namespace's Deployments and
// NetworkPolicies as the cluster holds them.
func reachAsAdmin(t *testing.T, ctx context.Context, ns, from, to, port string) bool {
	t.Helper()
	get := exec.CommandContext(ctx, testCluster.KubectlPath, "--kubeconfig="+testCluster.KubeconfigPath, "-n", ns, "get", "deployments,networkpolicies", "-o", "yaml")
	yaml, err := get.Output()
	if err != nil {
		t.Fatalf("kubectl get: %v", err)
	}
	cmd := exec.CommandContext(ctx, netguardBin, "reach", "-f", "-", "--generated=false", "--from", ns+"/"+from, "--to", ns+"/"+to, "--port", port)
	cmd.Stdin = bytes.NewReader(yaml)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
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

func TestLocalNetworkConfig(t *testing.T) {
	startNetguard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	c := profileClient(t)
	ns := "lnc-shop"
	if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"frontend", "backend"} {
		if _, err := cs.AppsV1().Deployments(ns).Create(ctx, operatorDeployment(ns, name, 8080), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ref := rules.KindLocalNetworkConfig + "/shop"
	want := []string{"netguard.frontend.depends-on", "netguard.frontend.to.backend"}

	t.Run("dry run writes nothing", func(t *testing.T) {
		if err := c.Create(ctx, shopConfig(ns, "8080"), client.DryRunAll); err != nil {
			t.Fatal(err)
		}
		if got, err := generatedNames(ctx, cs, ns, ref); err != nil || len(got) != 0 {
			t.Fatalf("dry run generated %v (%v)", got, err)
		}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, &netguardv1alpha1.LocalNetworkConfig{}); !apierrors.IsNotFound(err) {
			t.Fatalf("dry run stored the object: %v", err)
		}
	})

	lnc := shopConfig(ns, "8080")
	t.Run("create: the policies exist when the call returns", func(t *testing.T) {
		if err := c.Create(ctx, lnc); err != nil {
			t.Fatal(err)
		}
		if err := wantNames(ctx, cs, ns, ref, want...)(); err != nil {
			t.Fatal(err)
		}
		p, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, "netguard.frontend.to.backend", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"] != "backend" {
			t.Errorf("netguard.frontend.to.backend selects %v, want the backend component's podSelector", p.Spec.PodSelector)
		}
	})

	t.Run("the controller adds ownerReferences and reports the status", func(t *testing.T) {
		eventually(t, 30*time.Second, "ownerReferences", func() error {
			for _, name := range want {
				p, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				if len(p.OwnerReferences) != 1 || p.OwnerReferences[0].UID != lnc.UID || p.OwnerReferences[0].Kind != rules.KindLocalNetworkConfig {
					return fmt.Errorf("%s ownerReferences %+v", name, p.OwnerReferences)
				}
			}
			return nil
		})
		eventually(t, 30*time.Second, "status", func() error {
			got := &netguardv1alpha1.LocalNetworkConfig{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(lnc), got); err != nil {
				return err
			}
			cond := apimeta.FindStatusCondition(got.Status.Conditions, "Ready")
			if cond == nil || cond.Status != metav1.ConditionTrue || got.Status.ObservedGeneration != got.Generation || !slices.Equal(got.Status.Policies, want) {
				return fmt.Errorf("status %+v", got.Status)
			}
			return nil
		})
		out, err := testCluster.Kubectl(ctx, nil, "-n", ns, "get", "localnetworkconfigs")
		if err != nil || !strings.Contains(out, "READY") || !strings.Contains(out, "True") {
			t.Errorf("kubectl get localnetworkconfigs: %v\n%s", err, out)
		}
		out, err = testCluster.Kubectl(ctx, nil, "explain", "localnetworkconfigs.spec.components.dependsOn.port")
		if err != nil || !strings.Contains(out, "range") {
			t.Errorf("kubectl explain: %v\n%s", err, out)
		}
	})

	t.Run("reach opens exactly the declared path", func(t *testing.T) {
		if !reachAsAdmin(t, ctx, ns, "frontend", "backend", "8080") {
			t.Error("frontend cannot reach backend on 8080")
		}
		if reachAsAdmin(t, ctx, ns, "frontend", "backend", "9090") {
			t.Error("frontend reaches backend on an undeclared port")
		}
		if reachAsAdmin(t, ctx, ns, "backend", "frontend", "8080") {
			t.Error("backend reaches frontend, which nobody declared")
		}
	})

	t.Run("update changes the policies at admission", func(t *testing.T) {
		cur := &netguardv1alpha1.LocalNetworkConfig{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(lnc), cur); err != nil {
			t.Fatal(err)
		}
		fe := cur.Spec.Components["frontend"]
		fe.DependsOn[0].Port = lncPort("metrics")
		cur.Spec.Components["frontend"] = fe
		if err := c.Update(ctx, cur); err != nil {
			t.Fatal(err)
		}
		if !reachAsAdmin(t, ctx, ns, "frontend", "backend", "9090") || reachAsAdmin(t, ctx, ns, "frontend", "backend", "8080") {
			t.Error("after the update frontend should reach backend on metrics (9090) only")
		}
	})

	t.Run("a component declared twice is denied", func(t *testing.T) {
		dup := &netguardv1alpha1.LocalNetworkConfig{ObjectMeta: metav1.ObjectMeta{Name: "dup", Namespace: ns},
			Spec: netguardv1alpha1.LocalNetworkConfigSpec{Components: map[string]netguardv1alpha1.LocalComponent{
				"backend": {PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "other"}}},
			}}}
		err := c.Create(ctx, dup)
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `component "backend" is already declared by LocalNetworkConfig/shop`) {
			t.Fatalf("create: %v", err)
		}
		_, err = cs.AppsV1().Deployments(ns).Create(ctx, webhooktest.Deployment(ns, "api", map[string]string{rules.AnnotationComponent: "frontend"}), metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "LocalNetworkConfig/shop") {
			t.Fatalf("annotated workload claiming frontend: %v", err)
		}
	})

	t.Run("an overlapping podSelector is denied", func(t *testing.T) {
		wide := &netguardv1alpha1.LocalNetworkConfig{ObjectMeta: metav1.ObjectMeta{Name: "wide", Namespace: ns},
			Spec: netguardv1alpha1.LocalNetworkConfigSpec{Components: map[string]netguardv1alpha1.LocalComponent{
				"everything": {PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/part-of": "shop"}}},
			}}}
		err := c.Create(ctx, wide)
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "overlaps the podSelector of component") {
			t.Fatalf("create: %v", err)
		}
	})

	t.Run("an annotated workload depending on a LocalNetworkConfig component selects its podSelector", func(t *testing.T) {
		web := webhooktest.Deployment(ns, "web", map[string]string{rules.AnnotationDependsOn: "backend:8080"})
		if _, err := cs.AppsV1().Deployments(ns).Create(ctx, web, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		p, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, "netguard.web.to.backend", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"] != "backend" {
			t.Fatalf("netguard.web.to.backend selects %v, want the backend component's podSelector", p.Spec.PodSelector)
		}
		if !reachAsAdmin(t, ctx, ns, "web", "backend", "8080") || reachAsAdmin(t, ctx, ns, "web", "backend", "9090") {
			t.Error("web should reach backend on 8080 only")
		}
		// The provider's selector changes: the consumer's policy follows.
		cur := &netguardv1alpha1.LocalNetworkConfig{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(lnc), cur); err != nil {
			t.Fatal(err)
		}
		be := cur.Spec.Components["backend"]
		be.PodSelector.MatchLabels = map[string]string{"app.kubernetes.io/name": "backend", "app.kubernetes.io/part-of": "shop"}
		cur.Spec.Components["backend"] = be
		if err := c.Update(ctx, cur); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "consumer follows the provider's selector", func() error {
			p, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, "netguard.web.to.backend", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if p.Spec.PodSelector.MatchLabels["app.kubernetes.io/part-of"] != "shop" {
				return fmt.Errorf("netguard.web.to.backend selects %v", p.Spec.PodSelector)
			}
			return nil
		})
	})

	t.Run("delete removes the policies", func(t *testing.T) {
		if err := c.Delete(ctx, lnc, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
			t.Fatal(err)
		}
		eventually(t, 60*time.Second, "policies garbage-collected", wantNames(ctx, cs, ns, ref))
	})
}

// A LocalNetworkConfig component consumes a provider of another namespace
// by consent, through the real API server: its egress is written at
// admission, the provider's ingress follows from the controller (no write
// by the provider's team), a dependency nobody agreed to stays closed and
// shows in the status, and deleting the LocalNetworkConfig closes the
// provider's side again.
func TestLocalNetworkConfigConsent(t *testing.T) {
	startNetguard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	c := profileClient(t)
	prov, cons := "lnc-provider", "lnc-consumer"
	for _, ns := range []string{prov, cons} {
		if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
			t.Fatal(err)
		}
	}
	gw := webhooktest.Deployment(prov, "gateway", map[string]string{rules.AnnotationExposeTo: "kubernetes.io/metadata.name=" + cons + ":8082"})
	if _, err := cs.AppsV1().Deployments(prov).Create(ctx, gw, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	lnc := &netguardv1alpha1.LocalNetworkConfig{ObjectMeta: metav1.ObjectMeta{Name: "armory", Namespace: cons},
		Spec: netguardv1alpha1.LocalNetworkConfigSpec{Components: map[string]netguardv1alpha1.LocalComponent{
			"backup": {
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/part-of": "backup"}},
				DependsOn: []netguardv1alpha1.LocalDependency{
					{Namespace: prov, Component: "gateway", Port: lncPort("8082")},
					{Namespace: prov, Component: "missing", Port: lncPort("9000")},
				},
			},
		}}}
	if err := c.Create(ctx, lnc); err != nil {
		t.Fatal(err)
	}
	eg, err := cs.NetworkingV1().NetworkPolicies(cons).Get(ctx, "netguard.backup.cross-namespace-egress", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the consumer's egress is not there when the create returns: %v", err)
	}
	if len(eg.Spec.Egress) != 1 || eg.Spec.PodSelector.MatchLabels["app.kubernetes.io/part-of"] != "backup" ||
		eg.Spec.Egress[0].To[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != prov ||
		eg.Spec.Egress[0].To[0].PodSelector.MatchLabels[rules.LabelComponent] != "gateway" ||
		len(eg.Spec.Egress[0].Ports) != 1 || eg.Spec.Egress[0].Ports[0].Port.IntVal != 8082 {
		t.Errorf("consumer egress: %+v", eg.Spec)
	}
	eventually(t, 60*time.Second, "the provider's ingress admits the component's pods", func() error {
		in, err := cs.NetworkingV1().NetworkPolicies(prov).Get(ctx, "netguard.gateway.cross-namespace-ingress", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(in.Spec.Ingress) != 1 || in.Spec.Ingress[0].From[0].PodSelector.MatchLabels["app.kubernetes.io/part-of"] != "backup" ||
			in.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != cons {
			return fmt.Errorf("ingress %+v", in.Spec.Ingress)
		}
		return nil
	})
	eventually(t, 60*time.Second, "status reports the one-sided dependency", func() error {
		got := &netguardv1alpha1.LocalNetworkConfig{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: cons, Name: "armory"}, got); err != nil {
			return err
		}
		cond := apimeta.FindStatusCondition(got.Status.Conditions, "Ready")
		if cond == nil || cond.Reason != "OneSidedConsent" || len(got.Status.Problems) != 1 || !strings.Contains(got.Status.Problems[0], `"`+prov+`/missing:9000" is one-sided and opens nothing`) {
			return fmt.Errorf("status %+v", got.Status)
		}
		return nil
	})
	if err := c.Delete(ctx, lnc); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the provider's ingress closes with the consumer gone", func() error {
		_, err := cs.NetworkingV1().NetworkPolicies(prov).Get(ctx, "netguard.gateway.cross-namespace-ingress", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%v)", err)
	})
}
