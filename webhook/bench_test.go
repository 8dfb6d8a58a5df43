package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// The benchmarks here measure one AdmissionReview end to end inside the
// process, through the handler chain serve registers: serveReview (http.go)
// reads and decodes the body once, controller-runtime's admission.Webhook
// Handle runs netguard's handler (panic recovery, logger, patch encoding),
// and the response is encoded into an httptest recorder. BenchmarkServeFloor
// alone goes through admission.Webhook.ServeHTTP, controller-runtime's own
// decoding, with a handler that allows everything. Only TLS, HTTP/2 framing
// and the network are left out; the load generator (hack/loadgen) measures
// those against a running server.

// profileReader is the informer cache as the injector sees it: a Get returns a
// deep copy, as controller-runtime's cache does.
type profileReader map[string]*netguardv1alpha1.NetworkProfile

func (r profileReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	p, ok := r[key.Name]
	if !ok {
		return apierrors.NewNotFound(schema.GroupResource{Group: "netguard.io", Resource: "networkprofiles"}, key.Name)
	}
	p.DeepCopyInto(obj.(*netguardv1alpha1.NetworkProfile))
	return nil
}

// List finds nothing: the benchmarks' namespaces have no
// LocalNetworkConfigs.
func (r profileReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return nil
}

// benchProfiles are three profiles a platform team would offer.
func benchProfiles() profileReader {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	p53, metrics, p443 := intstr.FromInt32(53), intstr.FromString("metrics"), intstr.FromInt32(443)
	sel := func(k, v string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
	}
	out := profileReader{}
	for _, p := range []netguardv1alpha1.NetworkProfile{
		{ObjectMeta: metav1.ObjectMeta{Name: "node-local-dns"}, Spec: netguardv1alpha1.NetworkProfileSpec{Egress: []networkingv1.NetworkPolicyEgressRule{{
			To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "169.254.20.10/32"}}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &p53}, {Protocol: &tcp, Port: &p53}},
		}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "prometheus-scrape"}, Spec: netguardv1alpha1.NetworkProfileSpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel(corev1.LabelMetadataName, "monitoring"), PodSelector: sel("app.kubernetes.io/name", "prometheus")}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &metrics}},
		}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "payments-api"}, Spec: netguardv1alpha1.NetworkProfileSpec{Egress: []networkingv1.NetworkPolicyEgressRule{{
			To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel(corev1.LabelMetadataName, "payments"), PodSelector: sel("app", "payments-api")}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &p443}},
		}}}},
	} {
		out[p.Name] = p.DeepCopy()
	}
	return out
}

// benchDeployment is a Deployment as kubectl sends it, with 10 dependencies
// and 3 profiles.
func benchDeployment() *appsv1.Deployment {
	replicas := int32(3)
	labels := map[string]string{"app": "checkout"}
	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "checkout", Namespace: "team", Labels: labels, Annotations: map[string]string{
			rules.AnnotationDependsOn: "cart:8080 catalog:8080 users:8443 orders:8080 search:9200 cache:6379 db:5432 queue:5672 media:http stream:10000-10100/UDP",
			rules.AnnotationProfiles:  "node-local-dns, prometheus-scrape, payments-api",
		}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "checkout",
					Image: "registry.example/checkout:1.4.2",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}},
					Env:   []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}, {Name: "DB_HOST", Value: "db"}},
				}}},
			},
		},
	}
}

// reviewBody encodes an AdmissionReview for obj as the API server sends it.
func reviewBody(b *testing.B, kind metav1.GroupVersionKind, resource metav1.GroupVersionResource, obj runtime.Object, name string) []byte {
	b.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		b.Fatal(err)
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "2b4f6a1e-7c1d-4d4e-9f0a-3c5b7d9e1f20", Kind: kind, Resource: resource, RequestKind: &kind, RequestResource: &resource,
			Name: name, Namespace: "team", Operation: admissionv1.Create,
			UserInfo: authenticationv1.UserInfo{Username: alice, Groups: []string{"system:authenticated"}},
			Object:   runtime.RawExtension{Raw: raw},
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// serveBench posts body to h as the API server would and checks the verdict
// once before timing.
func serveBench(b *testing.B, h http.Handler, path string, body []byte, wantAllowed bool) {
	b.Helper()
	checkVerdict(b, postReview(h, path, body), wantAllowed)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		postReview(h, path, body)
	}
}

// postReview posts body to h as the API server would.
func postReview(h http.Handler, path string, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	return rec
}

func checkVerdict(b *testing.B, rec *httptest.ResponseRecorder, wantAllowed bool) {
	b.Helper()
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
		b.Fatalf("response %q: %v", rec.Body.String(), err)
	}
	if out.Response.Allowed != wantAllowed {
		b.Fatalf("allowed=%v, want %v: %+v", out.Response.Allowed, wantAllowed, out.Response.Result)
	}
	// A workload webhook that cannot read the cache admits with this
	// warning and generates nothing: that is not what is to be measured.
	for _, w := range out.Response.Warnings {
		if strings.Contains(w, "will be generated when netguard can read them") {
			b.Fatalf("the handler could not generate: %s", w)
		}
	}
}

// serveBenchOnNewGoroutines is serveBench with every request served on a
// goroutine of its own, as net/http's HTTP/2 server serves each stream: a
// fresh goroutine starts with a small stack, which decoding a review grows.
// The sequential benchmarks reuse the benchmark's goroutine and never pay
// that.
func serveBenchOnNewGoroutines(b *testing.B, h http.Handler, path string, body []byte) {
	b.Helper()
	checkVerdict(b, postReview(h, path, body), true)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		done := make(chan struct{})
		go func() {
			defer close(done)
			postReview(h, path, body)
		}()
		<-done
	}
}

var (
	npKind     = metav1.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"}
	npResource = metav1.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"}
)

// BenchmarkServeNetworkPolicy is the validating webhook in the documented
// default configuration (enforce baseline, warn and audit restricted), so an
// allowed policy is evaluated three times.
func BenchmarkServeNetworkPolicy(b *testing.B) {
	v, _ := newValidator(testConfig(), map[string]map[string]string{"team": {corev1.LabelMetadataName: "team"}})
	wh := &admission.Webhook{Handler: v}
	typical := webhooktest.GoodPolicy("frontend-to-backend")
	typical.Spec.PolicyTypes = append(typical.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
	typical.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{
		To:    []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}},
		Ports: typical.Spec.Ingress[0].Ports,
	}}
	for _, c := range []struct {
		name    string
		np      *networkingv1.NetworkPolicy
		allowed bool
	}{
		{"allowed", typical, true},
		{"warned", webhooktest.SameNamespacePolicy("same-namespace"), true},
		{"denied", webhooktest.AnywherePolicy("from-anywhere"), false},
	} {
		np := c.np.DeepCopy()
		np.APIVersion, np.Kind, np.Namespace = "networking.k8s.io/v1", "NetworkPolicy", "team"
		body := reviewBody(b, npKind, npResource, np, np.Name)
		b.Run(c.name, func(b *testing.B) {
			serveBench(b, serveNetworkPolicyReview(MaxRequestBytes, wh), PathValidateNetworkPolicy, body, c.allowed)
		})
	}
}

// BenchmarkServeWorkloadMutator is the mutating webhook for a Deployment with
// 10 dependencies and 3 profiles: parse, read the profiles from the cache,
// generate 14 policies, digest them and patch the Deployment.
func BenchmarkServeWorkloadMutator(b *testing.B) {
	s := &Server{cfg: testConfig(), injector: &injector{cache: benchProfiles()}}
	s.namespaces = &fakeNamespaces{labels: map[string]map[string]string{"team": nil}}
	s.synced.Store(true)
	wh := &admission.Webhook{Handler: &workloadMutator{s: s}}
	kind := metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	resource := metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

	d := benchDeployment()
	b.Run("inject", func(b *testing.B) {
		serveBench(b, serveReview(MaxRequestBytes, wh), PathMutateWorkload, reviewBody(b, kind, resource, d, d.Name), true)
	})
	// The same request again with the generation cache: what the
	// validating call after the mutating one, and any later write that
	// leaves netguard's annotations alone, costs.
	cs := &Server{cfg: s.cfg, namespaces: s.namespaces, injector: &injector{cache: benchProfiles(), generated: newGenerationCache(generationCacheSize)}}
	cs.synced.Store(true)
	b.Run("inject-cached", func(b *testing.B) {
		serveBench(b, serveReview(MaxRequestBytes, &admission.Webhook{Handler: &workloadMutator{s: cs}}), PathMutateWorkload, reviewBody(b, kind, resource, d, d.Name), true)
	})
	bad := benchDeployment()
	bad.Annotations[rules.AnnotationDependsOn] = "cart:8080 catalog:http:x"
	b.Run("invalid", func(b *testing.B) {
		serveBench(b, serveReview(MaxRequestBytes, wh), PathMutateWorkload, reviewBody(b, kind, resource, bad, bad.Name), false)
	})
}

// BenchmarkServeFloor is the same requests through a handler that allows
// everything: what controller-runtime costs without netguard, in process.
func BenchmarkServeFloor(b *testing.B) {
	wh := &admission.Webhook{Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response { return admission.Allowed("") })}
	np := webhooktest.GoodPolicy("frontend-to-backend")
	np.APIVersion, np.Kind, np.Namespace = "networking.k8s.io/v1", "NetworkPolicy", "team"
	b.Run("networkpolicy", func(b *testing.B) {
		serveBench(b, wh, PathValidateNetworkPolicy, reviewBody(b, npKind, npResource, np, np.Name), true)
	})
	d := benchDeployment()
	kind := metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	resource := metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	b.Run("deployment", func(b *testing.B) {
		serveBench(b, wh, PathMutateWorkload, reviewBody(b, kind, resource, d, d.Name), true)
	})
}

// BenchmarkServeWorkloadApplier is the validating webhook for the same
// Deployment in a dry run: it generates the policies and answers with a
// warning per policy, writing nothing. Its injector has the generation cache,
// as serve's has: the mutating call before it leaves the generation there.
func BenchmarkServeWorkloadApplier(b *testing.B) {
	s := &Server{cfg: testConfig(), injector: &injector{cache: benchProfiles(), generated: newGenerationCache(generationCacheSize)}}
	s.namespaces = &fakeNamespaces{labels: map[string]map[string]string{"team": nil}}
	s.synced.Store(true)
	wh := &admission.Webhook{Handler: &workloadApplier{s: s}}
	kind := metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	resource := metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	d := benchDeployment()
	body := reviewBody(b, kind, resource, d, d.Name)
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		b.Fatal(err)
	}
	dry := true
	review.Request.DryRun = &dry
	body, err := json.Marshal(review)
	if err != nil {
		b.Fatal(err)
	}
	serveBench(b, serveReview(MaxRequestBytes, wh), PathValidateWorkload, body, true)
}

// BenchmarkServeOnNewGoroutines is an allowed NetworkPolicy and the
// mutating webhook's injection with each request on a new goroutine, as the
// server runs them (serveBenchOnNewGoroutines).
func BenchmarkServeOnNewGoroutines(b *testing.B) {
	v, _ := newValidator(testConfig(), map[string]map[string]string{"team": {corev1.LabelMetadataName: "team"}})
	np := webhooktest.GoodPolicy("frontend-to-backend")
	np.APIVersion, np.Kind, np.Namespace = "networking.k8s.io/v1", "NetworkPolicy", "team"
	b.Run("networkpolicy", func(b *testing.B) {
		serveBenchOnNewGoroutines(b, serveNetworkPolicyReview(MaxRequestBytes, &admission.Webhook{Handler: v}), PathValidateNetworkPolicy, reviewBody(b, npKind, npResource, np, np.Name))
	})
	s := &Server{cfg: testConfig(), injector: &injector{cache: benchProfiles()}}
	s.namespaces = &fakeNamespaces{labels: map[string]map[string]string{"team": nil}}
	s.synced.Store(true)
	kind := metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	resource := metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	d := benchDeployment()
	b.Run("inject", func(b *testing.B) {
		serveBenchOnNewGoroutines(b, serveReview(MaxRequestBytes, &admission.Webhook{Handler: &workloadMutator{s: s}}), PathMutateWorkload, reviewBody(b, kind, resource, d, d.Name))
	})
}
