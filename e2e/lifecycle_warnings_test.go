package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// kubectlOut runs kubectl as the cluster admin and returns what it printed
// (stdout and stderr, warnings included).
func kubectlOut(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	return testCluster.Kubectl(ctx, nil, args...)
}

// TestLifecycleNamespaceLabels: netguard.io/ labels on namespaces are checked
// when they are written, as Pod Security Admission checks its own; nothing
// else about namespaces (creating one, labelling it otherwise, deleting it)
// reaches netguard or is changed by it.
func TestLifecycleNamespaceLabels(t *testing.T) {
	startNetguard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := "life-labels"
	if err := testCluster.EnsureNamespace(ctx, ns, map[string]string{rules.LabelEnforce: "baseline"}); err != nil {
		t.Fatal(err)
	}

	out, err := kubectlOut(t, ctx, "label", "--overwrite", "ns", ns, "netguard.io/enforce=Baseline")
	want := `The Namespace "life-labels" is invalid: metadata.labels[netguard.io/enforce]: Invalid value: "Baseline": unknown level "Baseline": must be one of privileged, baseline, restricted, managed; did you mean "baseline"?`
	if err == nil || !strings.Contains(out, want) {
		t.Errorf("a level typo: want it denied with %q, got %v:\n%s", want, err, out)
	}
	out, err = kubectlOut(t, ctx, "label", "--overwrite", "ns", ns, "netguard.io/warn-version=1.0")
	if err == nil || !strings.Contains(out, `metadata.labels[netguard.io/warn-version]: Invalid value: "1.0": unknown version "1.0"`) {
		t.Errorf("a version typo: want it denied, got %v:\n%s", err, out)
	}
	out, err = kubectlOut(t, ctx, "label", "ns", ns, "netguard.io/enforce-level=restricted")
	if err != nil || !strings.Contains(out, `Warning: netguard: metadata.labels[netguard.io/enforce-level]: netguard does not read this label on namespaces and ignores it; did you mean netguard.io/enforce?`) {
		t.Errorf("an unknown key: want a warning, got %v:\n%s", err, out)
	}
	if out, err := kubectlOut(t, ctx, "label", "--overwrite", "ns", ns, "netguard.io/enforce=restricted", "team=a"); err != nil {
		t.Errorf("a valid level: %v:\n%s", err, out)
	}

	// Creating and deleting a labelled namespace is never in netguard's way.
	if out, err := kubectlOut(t, ctx, "create", "ns", "life-labels-gone"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if out, err := kubectlOut(t, ctx, "label", "ns", "life-labels-gone", "netguard.io/enforce=managed"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if out, err := kubectlOut(t, ctx, "delete", "ns", "life-labels-gone", "--wait=false"); err != nil || strings.Contains(out, "netguard") {
		t.Errorf("deleting a namespace: %v:\n%s", err, out)
	}
}

// TestLifecycleMissingProfile: a NetworkProfile in use may be deleted (netguard
// does not stand in the platform team's way); its users keep their existing
// policies, unchanged, and can still be patched and restarted, with a warning
// that names the profile and its owners. Writing the annotations while the
// profile is missing is denied in those same words.
func TestLifecycleMissingProfile(t *testing.T) {
	startNetguard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(testCluster.Config, client.Options{Scheme: webhook.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	ns := "life-profile"
	if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	tcp := corev1.ProtocolTCP
	port := intstr.FromInt32(9090)
	prof := &netguardv1alpha1.NetworkProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "life-scrape"},
		Spec: netguardv1alpha1.NetworkProfileSpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "monitoring"}}}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
		}}},
	}
	if err := c.Create(ctx, prof); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, webhooktest.Deployment(ns, "web", map[string]string{rules.AnnotationProfiles: "life-scrape"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	policy := "netguard.web.profile.life-scrape"
	before, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, policy, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	if err := c.Delete(ctx, prof); err != nil {
		t.Fatalf("deleting a profile in use is allowed: %v", err)
	}
	eventually(t, 20*time.Second, "the profile gone from netguard's cache", func() error {
		out, err := kubectlOut(t, ctx, "-n", ns, "annotate", "deployment", "web", "--dry-run=server", "netguard.io/depends-on=web:80")
		if err == nil {
			return fmt.Errorf("still admitted: %s", out)
		}
		return nil
	})

	warning := `Warning: netguard: Deployment "web": metadata.annotations[netguard.io/profiles]: Not found: "life-scrape": NetworkProfile "life-scrape" does not exist; NetworkProfiles are cluster-scoped and owned by the platform team: fix the name, or ask the platform team to create it; the update is admitted and the workload's NetworkPolicies are kept as they were`
	out, err := kubectlOut(t, ctx, "-n", ns, "set", "image", "deployment/web", "app=registry.example/app:2")
	if err != nil || !strings.Contains(out, warning) {
		t.Errorf("kubectl set image: want it admitted with %q, got %v:\n%s", warning, err, out)
	}
	out, err = kubectlOut(t, ctx, "-n", ns, "rollout", "restart", "deployment/web")
	if err != nil || !strings.Contains(out, warning) {
		t.Errorf("kubectl rollout restart: want it admitted with the warning, got %v:\n%s", err, out)
	}

	out, err = kubectlOut(t, ctx, "-n", ns, "annotate", "deployment", "web", "netguard.io/depends-on=web:80")
	denial := `metadata.annotations[netguard.io/profiles]: Not found: "life-scrape": NetworkProfile "life-scrape" does not exist; NetworkProfiles are cluster-scoped and owned by the platform team`
	if err == nil || !strings.Contains(out, denial) {
		t.Errorf("writing the annotations: want it denied with %q, got %v:\n%s", denial, err, out)
	}

	// The policies stay as they were: not widened, not deleted, by the
	// webhook or by the controller, which reports the missing profile.
	eventually(t, 30*time.Second, "a GenerationFailed event", func() error {
		events, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Reason == "GenerationFailed" && e.InvolvedObject.Name == "web" && strings.Contains(e.Message, `NetworkProfile "life-scrape" does not exist`) {
				return nil
			}
		}
		return fmt.Errorf("no event naming the missing profile among %d", len(events.Items))
	})
	after, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, policy, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the profile's policy must be kept: %v", err)
	}
	if after.UID != before.UID || after.Generation != before.Generation {
		t.Errorf("the profile's policy changed: generation %d -> %d", before.Generation, after.Generation)
	}
}

// TestLifecycleSilentMistakes: mistakes that used to pass silently are warned
// about at admission, in the words netguard check and generate use; and a
// warning about the annotations is not repeated on an unrelated update.
func TestLifecycleSilentMistakes(t *testing.T) {
	startNetguard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ns := "life-mistakes"
	if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	if out, err := kubectlOut(t, ctx, "-n", ns, "create", "deployment", "api", "--image=registry.example/app:1"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	eventually(t, 20*time.Second, "api in netguard's cache", func() error {
		d := webhooktest.Deployment(ns, "probe", map[string]string{rules.AnnotationDependsOn: "api:80"})
		warnings, err := dryRunCreate(ctx, d)
		if err != nil {
			return err
		}
		if !strings.Contains(warnings, "Deployment/api") {
			return fmt.Errorf("warnings %q", warnings)
		}
		return nil
	})

	out, err := kubectlOut(t, ctx, "-n", ns, "create", "deployment", "web", "--image=registry.example/app:1")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	out, err = kubectlOut(t, ctx, "-n", ns, "annotate", "deployment", "web", "netguard.io/depends-on=api:8080 ghost:80 ghost:80")
	for _, w := range []string{
		`Warning: netguard: netguard.io/depends-on: "ghost:80" is listed more than once`,
		`Warning: netguard: netguard.io/depends-on: Deployment/api in namespace "life-mistakes" has no netguard annotations, so its pods lack the label netguard.io/component=api and "api:8080" reaches no pods; annotate it with netguard.io/component (which restarts its pods)`,
		`Warning: netguard: netguard.io/depends-on: no workload in namespace "life-mistakes" declares component "ghost", so "ghost:80" reaches no pods`,
	} {
		if err != nil || !strings.Contains(out, w) {
			t.Errorf("annotate: want %q, got %v:\n%s", w, err, out)
		}
	}

	// An unrelated patch (a finalizer) says nothing about the annotations.
	out, err = kubectlOut(t, ctx, "-n", ns, "patch", "deployment", "web", "--type=merge", "-p", `{"metadata":{"finalizers":["example.com/hold"]}}`)
	if err != nil || strings.Contains(out, "Warning") {
		t.Errorf("finalizer patch: want no warning, got %v:\n%s", err, out)
	}
	if out, err := kubectlOut(t, ctx, "-n", ns, "patch", "deployment", "web", "--type=merge", "-p", `{"metadata":{"finalizers":null}}`); err != nil {
		t.Errorf("%v: %s", err, out)
	}

	// A misspelt key: alone, it used to reach nobody.
	out, err = kubectlOut(t, ctx, "-n", ns, "annotate", "deployment", "api", "netguard.io/depend-on=web:80")
	if want := `Warning: netguard: metadata.annotations[netguard.io/depend-on]: netguard does not read this annotation on workloads and ignores it; did you mean netguard.io/depends-on?`; err != nil || !strings.Contains(out, want) {
		t.Errorf("misspelt key: want %q, got %v:\n%s", want, err, out)
	}
	if d, err := cs.AppsV1().Deployments(ns).Get(ctx, "api", metav1.GetOptions{}); err != nil || d.Spec.Template.Labels[rules.LabelComponent] != "" {
		t.Errorf("a misspelt key must not inject: %v %v", err, d.Spec.Template.Labels)
	}
}

// dryRunCreate creates d with dryRun=All and returns its warnings, joined.
func dryRunCreate(ctx context.Context, d interface{ GetName() string }) (string, error) {
	w := &warningCollector{}
	cfg := *testCluster.Config
	cfg.WarningHandler = w
	c, err := client.New(&cfg, client.Options{Scheme: webhook.NewScheme()})
	if err != nil {
		return "", err
	}
	obj, ok := d.(client.Object)
	if !ok {
		return "", fmt.Errorf("%T is not an object", d)
	}
	if err := c.Create(ctx, obj, client.DryRunAll); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	return strings.Join(w.get(), "\n"), nil
}
