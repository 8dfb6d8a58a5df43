package chart

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/netguard/netguard/certs"
	"github.com/netguard/netguard/webhook"
)

// call is one admission request as a webhook saw it.
type call struct{ path, op, namespace, name string }

// recorder is a webhook server that admits everything and remembers what the
// API server sent it.
type recorder struct {
	mu    sync.Mutex
	calls []call
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, "bad AdmissionReview", http.StatusBadRequest)
		return
	}
	rec.mu.Lock()
	rec.calls = append(rec.calls, call{r.URL.Path, string(review.Request.Operation), review.Request.Namespace, review.Request.Name})
	rec.mu.Unlock()
	review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	review.Request = nil
	_ = json.NewEncoder(w).Encode(&review)
}

func (rec *recorder) take() []call {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := rec.calls
	rec.calls = nil
	return out
}

// serveRecorder starts rec on 127.0.0.1 with a certificate from a fresh CA
// and returns its base URL and the CA bundle.
func serveRecorder(t *testing.T, rec *recorder) (string, []byte) {
	t.Helper()
	ca, err := certs.NewCA("netguard-chart-test-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := certs.NewServing(ca, []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rec, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String(), ca.CertPEM
}

// TestWebhooksReachOnlyWhatTheyShould installs the chart's two webhook
// configurations for real, changed only to call a recording server instead of
// the netguard Service, and writes workloads and NetworkPolicies through the
// API server: the namespaceSelector and the mutating webhook's CEL
// matchConditions must send exactly the documented requests.
func TestWebhooksReachOnlyWhatTheyShould(t *testing.T) {
	c := apiServer(t)
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	url, bundle := serveRecorder(t, rec)

	r := mustRender(t, valueSetNamed(t, "defaults"))
	a := newApplier(t, c.Config)
	for _, kind := range []string{"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"} {
		u := r.ofKind(kind)[0].DeepCopy()
		ws, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
		for _, w := range ws {
			w := w.(map[string]any)
			path, _, _ := unstructured.NestedString(w, "clientConfig", "service", "path")
			w["clientConfig"] = map[string]any{"url": url + path, "caBundle": base64.StdEncoding.EncodeToString(bundle)}
		}
		if err := unstructured.SetNestedSlice(u.Object, ws, "webhooks"); err != nil {
			t.Fatal(err)
		}
		if err := a.apply(ctx, u, false); err != nil {
			t.Fatalf("install %s: %v", kind, err)
		}
		t.Cleanup(func() { _ = a.delete(ctx, u) })
	}

	for ns, labels := range map[string]map[string]string{
		"team-a":       nil,
		"team-ignored": {"netguard.io/ignore": "true"},
	} {
		if err := c.EnsureNamespace(ctx, ns, labels); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.EnsureNamespace(ctx, "netguard-system", nil); err != nil {
		t.Fatal(err)
	}
	rec.take() // labelling team-ignored is the namespace webhook's; see the steps below
	namespaces := cs.CoreV1().Namespaces()
	labelNamespace := func(name, key, value string) error {
		patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, key, value)
		_, err := namespaces.Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		return err
	}

	annotated := map[string]string{"netguard.io/depends-on": "backend:8080"}
	steps := []struct {
		what string
		do   func() error
		want []call
	}{
		{"a Deployment without annotations", func() error { return createDeployment(ctx, cs, "team-a", "plain", nil) }, nil},
		{"a Deployment with depends-on", func() error { return createDeployment(ctx, cs, "team-a", "web", annotated) },
			injected("CREATE", "team-a", "web")},
		{"a Deployment with only netguard's record", func() error {
			return createDeployment(ctx, cs, "team-a", "old", map[string]string{"netguard.io/generated": `{"digest":"x","policies":[]}`})
		}, injected("CREATE", "team-a", "old")},
		{"a StatefulSet with profiles", func() error {
			return createStatefulSet(ctx, cs, "team-a", "db", map[string]string{"netguard.io/profiles": "dns"})
		}, injected("CREATE", "team-a", "db")},
		{"another annotation on a plain Deployment", func() error {
			return setAnnotations(ctx, cs, "team-a", "plain", map[string]string{"example.com/owner": "team-a"})
		}, nil},
		{"netguard's annotations removed", func() error { return setAnnotations(ctx, cs, "team-a", "web", nil) },
			injected("UPDATE", "team-a", "web")},
		{"an annotated Deployment in an ignored namespace", func() error { return createDeployment(ctx, cs, "team-ignored", "web", annotated) }, nil},
		{"an annotated Deployment in kube-system", func() error { return createDeployment(ctx, cs, "kube-system", "web", annotated) }, nil},
		{"an annotated Deployment in netguard's namespace", func() error { return createDeployment(ctx, cs, "netguard-system", "web", annotated) }, nil},
		// As installed, the webhook judges every NetworkPolicy write, also
		// those netguard's admission policies decide: the skip is serve's to
		// add once those policies answer (webhook.EnableCELSkip), so that a
		// cluster without them is never left unjudged.
		{"a NetworkPolicy CEL decides, before serve added the skip", func() error { return createNetworkPolicy(ctx, cs, "team-a", "early") },
			[]call{{"/validate-networkpolicy", "CREATE", "team-a", "early"}}},
		{"serve adds the match condition not-decided-in-cel", func() error { return addCELSkip(ctx, t, c.Config, cs, rec) }, nil},
		// Then a deny-all is decided by netguard's admission policies in the
		// API server (docs/admission.md), and deleting a policy netguard does
		// not manage is always allowed: neither reaches the webhook.
		{"a NetworkPolicy decided in the API server", func() error { return createNetworkPolicy(ctx, cs, "team-a", "allow") }, nil},
		{"a NetworkPolicy deleted", func() error {
			return cs.NetworkingV1().NetworkPolicies("team-a").Delete(ctx, "allow", metav1.DeleteOptions{})
		}, nil},
		{"a NetworkPolicy with a namespaceSelector", func() error {
			np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "pinned", Namespace: "team-a"}, Spec: networkingv1.NetworkPolicySpec{
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "team-a"}}}}}},
			}}
			_, err := cs.NetworkingV1().NetworkPolicies("team-a").Create(ctx, np, metav1.CreateOptions{})
			return err
		}, []call{{"/validate-networkpolicy", "CREATE", "team-a", "pinned"}}},
		{"a managed NetworkPolicy deleted", func() error {
			np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "netguard.web", Namespace: "team-a"}}
			if _, err := cs.NetworkingV1().NetworkPolicies("team-a").Create(ctx, np, metav1.CreateOptions{}); err != nil {
				return err
			}
			rec.take()
			return cs.NetworkingV1().NetworkPolicies("team-a").Delete(ctx, "netguard.web", metav1.DeleteOptions{})
		}, []call{{"/validate-networkpolicy", "DELETE", "team-a", "netguard.web"}}},
		{"a NetworkPolicy in an ignored namespace", func() error { return createNetworkPolicy(ctx, cs, "team-ignored", "allow") }, nil},
		{"a NetworkPolicy in kube-system", func() error { return createNetworkPolicy(ctx, cs, "kube-system", "allow") }, nil},
		{"a Deployment with only a misspelt netguard.io annotation", func() error {
			return createDeployment(ctx, cs, "team-a", "typo", map[string]string{"netguard.io/depend-on": "backend:8080"})
		}, injected("CREATE", "team-a", "typo")},
		{"a namespace without netguard.io labels", func() error {
			_, err := namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "chart-ns-plain"}}, metav1.CreateOptions{})
			return err
		}, nil},
		{"a namespace with a netguard.io label", func() error {
			_, err := namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "chart-ns-labelled", Labels: map[string]string{"netguard.io/enforce": "baseline"}}}, metav1.CreateOptions{})
			return err
		}, []call{{"/validate-namespace", "CREATE", "chart-ns-labelled", "chart-ns-labelled"}}},
		{"another label on a namespace with netguard.io labels", func() error { return labelNamespace("chart-ns-labelled", "example.com/team", "a") }, nil},
		{"a netguard.io label changed", func() error { return labelNamespace("chart-ns-labelled", "netguard.io/enforce", "restricted") },
			[]call{{"/validate-namespace", "UPDATE", "chart-ns-labelled", "chart-ns-labelled"}}},
		{"a namespace with netguard.io labels deleted", func() error { return namespaces.Delete(ctx, "chart-ns-labelled", metav1.DeleteOptions{}) }, nil},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		if got := rec.take(); !reflect.DeepEqual(got, s.want) {
			t.Errorf("%s: webhooks called %v, want %v", s.what, got, s.want)
		}
	}
}

// injected is what one workload write sends to the injection webhooks: the
// mutating one, then the validating one.
func injected(op, ns, name string) []call {
	return []call{{"/mutate-workload", op, ns, name}, {"/validate-workload", op, ns, name}}
}

func podTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "x"}}},
	}
}

func createDeployment(ctx context.Context, cs kubernetes.Interface, ns, name string, annotations map[string]string) error {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}, Template: podTemplate()},
	}
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	return err
}

func createStatefulSet(ctx context.Context, cs kubernetes.Interface, ns, name string, annotations map[string]string) error {
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
		Spec:       appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}, Template: podTemplate()},
	}
	_, err := cs.AppsV1().StatefulSets(ns).Create(ctx, s, metav1.CreateOptions{})
	return err
}

func setAnnotations(ctx context.Context, cs kubernetes.Interface, ns, name string, annotations map[string]string) error {
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	d.Annotations = annotations
	_, err = cs.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
	return err
}

// addCELSkip adds the condition as serve does, and waits until the API
// server stops sending a decided policy's dry run to the webhook.
func addCELSkip(ctx context.Context, t *testing.T, cfg *rest.Config, cs kubernetes.Interface, rec *recorder) error {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	if err := webhook.AddCELSkipCondition(ctx, c, webhook.ValidatingConfigurationName); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "team-a"}}
		if _, err := cs.NetworkingV1().NetworkPolicies("team-a").Create(ctx, np, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			return err
		}
		if len(rec.take()) == 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the API server still sends decided policies to the webhook 30s after the condition was added")
	return nil
}

func createNetworkPolicy(ctx context.Context, cs kubernetes.Interface, ns, name string) error {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	_, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{})
	return err
}
