package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

func testLNC(ns, name, port string) *netguardv1alpha1.LocalNetworkConfig {
	p := intstr.Parse(port)
	return &netguardv1alpha1.LocalNetworkConfig{
		TypeMeta:   metav1.TypeMeta{APIVersion: "netguard.io/v1alpha1", Kind: "LocalNetworkConfig"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: netguardv1alpha1.LocalNetworkConfigSpec{Components: map[string]netguardv1alpha1.LocalComponent{
			"frontend": {PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "frontend"}},
				DependsOn: []netguardv1alpha1.LocalDependency{{Component: "backend", Port: &p}}},
			"backend": {PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "backend"}}},
		}},
	}
}

func localRequest(t *testing.T, op admissionv1.Operation, obj, old *netguardv1alpha1.LocalNetworkConfig, dryRun bool) admission.Request {
	t.Helper()
	raw := func(o *netguardv1alpha1.LocalNetworkConfig) runtime.RawExtension {
		if o == nil {
			return runtime.RawExtension{}
		}
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return runtime.RawExtension{Raw: b}
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "1", Operation: op, Namespace: obj.Namespace, Name: obj.Name, DryRun: &dryRun,
		Kind:     metav1.GroupVersionKind{Group: "netguard.io", Version: "v1alpha1", Kind: "LocalNetworkConfig"},
		Resource: metav1.GroupVersionResource{Group: "netguard.io", Version: "v1alpha1", Resource: "localnetworkconfigs"},
		Object:   raw(obj), OldObject: raw(old),
	}}
}

func policyNames(t *testing.T, c client.Client, ns string) []string {
	t.Helper()
	list := &networkingv1.NetworkPolicyList{}
	if err := c.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range list.Items {
		out = append(out, p.Name)
	}
	return out
}

func TestLocalValidatorWritesPoliciesUnlessDryRun(t *testing.T) {
	s, c := testServer(t)
	v := &localValidator{s: s}
	l := testLNC("team", "shop", "8080")
	resp := v.Handle(context.Background(), localRequest(t, admissionv1.Create, l, nil, true))
	if !resp.Allowed || !strings.Contains(strings.Join(resp.Warnings, "\n"), "would generate NetworkPolicy netguard.frontend.to.backend") {
		t.Fatalf("dry run: %+v", resp.AdmissionResponse)
	}
	if got := policyNames(t, c, "team"); len(got) != 0 {
		t.Fatalf("dry run wrote %v", got)
	}
	resp = v.Handle(context.Background(), localRequest(t, admissionv1.Create, l, nil, false))
	if !resp.Allowed {
		t.Fatalf("create: %+v", resp.AdmissionResponse)
	}
	got := policyNames(t, c, "team")
	if strings.Join(got, ",") != "netguard.frontend.depends-on,netguard.frontend.to.backend" {
		t.Fatalf("policies %v", got)
	}
}

func TestLocalValidatorDenies(t *testing.T) {
	other := testLNC("team", "first", "8080")
	other.Spec.Components = map[string]netguardv1alpha1.LocalComponent{"backend": {PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}}
	annotated := webhooktest.Deployment("team", "frontend", map[string]string{rules.AnnotationComponent: "web"})
	s, _ := testServer(t, other, annotated)
	s.namespaces.(*fakeNamespaces).labels["strict"] = map[string]string{rules.LabelEnforce: "restricted"}
	v := &localValidator{s: s}
	cases := []struct {
		name string
		l    *netguardv1alpha1.LocalNetworkConfig
		code int32
		want string
	}{
		{"duplicate", testLNC("team", "shop", "8080"), http.StatusUnprocessableEntity, `spec.components[backend]: Duplicate value: "backend": component "backend" is already declared by LocalNetworkConfig/first`},
		{"level", func() *netguardv1alpha1.LocalNetworkConfig {
			l := testLNC("strict", "shop", "1-65535")
			delete(l.Spec.Components, "backend")
			fe := l.Spec.Components["frontend"]
			fe.DependsOn[0].Component = "db"
			l.Spec.Components["frontend"] = fe
			return l
		}(), http.StatusForbidden, `violates netguard`},
		{"bad namespace", func() *netguardv1alpha1.LocalNetworkConfig {
			l := testLNC("team", "shop", "8080")
			delete(l.Spec.Components, "backend")
			fe := l.Spec.Components["frontend"]
			fe.DependsOn[0].Namespace = "Else_where"
			l.Spec.Components["frontend"] = fe
			return l
		}(), http.StatusUnprocessableEntity, `spec.components[frontend].dependsOn[0].namespace: Invalid value`},
		{"exposed to every namespace by an empty selector", func() *netguardv1alpha1.LocalNetworkConfig {
			l := testLNC("team", "shop", "8080")
			be := l.Spec.Components["backend"]
			be.ExposeTo = []netguardv1alpha1.LocalExposure{{Ports: []netguardv1alpha1.LocalExposedPort{{Port: intstr.FromInt32(8080)}}}}
			l.Spec.Components["backend"] = be
			return l
		}(), http.StatusUnprocessableEntity, `spec.components[backend].exposeTo[0].namespaceSelector: Required value`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := v.Handle(context.Background(), localRequest(t, admissionv1.Create, c.l, nil, false))
			if resp.Allowed || resp.Result == nil || resp.Result.Code != c.code || !strings.Contains(resp.Result.Message, c.want) {
				t.Fatalf("want %d with %q, got %+v", c.code, c.want, resp.AdmissionResponse)
			}
		})
	}
	// At privileged: admitted with warnings, nothing written.
	l := testLNC("lax", "shop", "8080")
	l.Spec.Components["x"] = netguardv1alpha1.LocalComponent{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"tier": "a"}}}
	resp := v.Handle(context.Background(), localRequest(t, admissionv1.Create, l, nil, false))
	if !resp.Allowed || !strings.Contains(strings.Join(resp.Warnings, "\n"), "overlaps") {
		t.Errorf("privileged: %+v", resp.AdmissionResponse)
	}
}

func TestLocalValidatorSkipsStatusWrites(t *testing.T) {
	s, c := testServer(t)
	v := &localValidator{s: s}
	l := testLNC("team", "shop", "1-65535") // would violate the level
	old := l.DeepCopy()
	l.Status.PolicyCount = 3
	if resp := v.Handle(context.Background(), localRequest(t, admissionv1.Update, l, old, false)); !resp.Allowed {
		t.Fatalf("status-only update denied: %+v", resp.AdmissionResponse)
	}
	if got := policyNames(t, c, "team"); len(got) != 0 {
		t.Fatalf("status-only update wrote %v", got)
	}
}
