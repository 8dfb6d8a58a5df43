package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// Bad input straight to the running binary: each case gets a clear error, the
// process keeps serving (a good request follows each), the uid is echoed,
// and nothing panics. webhook/badinput_test.go has the full catalogue; this
// is the same server as a cluster runs it.
func TestBadInputToTheBinary(t *testing.T) {
	ng := startNetguard(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const ns = "bad-input"
	if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	c := webhookClient(caPool(t, ng.CABundle), false)
	post := func(path string, body []byte) (int, []byte) {
		t.Helper()
		resp, err := c.Post(ng.WebhookURL+path, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	good := goodReview(ns, "good")
	review := func(uid string, req admissionv1.AdmissionRequest) []byte {
		req.UID = types.UID(uid)
		b, _ := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: &req})
		return b
	}
	npReq := func(obj string) admissionv1.AdmissionRequest {
		var r admissionv1.AdmissionReview
		_ = json.Unmarshal(goodReview(ns, "x"), &r)
		r.Request.Object.Raw = []byte(obj)
		return *r.Request
	}
	workloadReq := func(annotations map[string]string) admissionv1.AdmissionRequest {
		d := webhooktest.Deployment(ns, "web", annotations)
		d.APIVersion, d.Kind = "apps/v1", "Deployment"
		raw, _ := json.Marshal(d)
		r := npReq(string(raw))
		r.Kind = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
		r.Resource = metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
		r.Name = "web"
		return r
	}
	huge := append(append([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"huge","object":"`), bytes.Repeat([]byte("x"), 4<<20)...), `"}}`...)
	cases := []struct {
		name, path string
		body       []byte
		status     int
		code       int32
		msg, uid   string
	}{
		{"not JSON", webhook.PathValidateNetworkPolicy, []byte("<xml/>"), 200, 400, "the request body is not a JSON AdmissionReview", ""},
		{"truncated", webhook.PathValidateNetworkPolicy, good[:len(good)-40], 200, 400, "unexpected end of JSON input", ""},
		{"4 MiB", webhook.PathValidateNetworkPolicy, huge, 413, 413, "over netguard's limit of 3145728 bytes", ""},
		{"4 MiB to a workload path", webhook.PathValidateWorkload, huge, 413, 413, "over netguard's limit", ""},
		{"wrong apiVersion", webhook.PathValidateNetworkPolicy, bytes.Replace(good, []byte("admission.k8s.io/v1"), []byte("admission.k8s.io/v9"), 1), 200, 400, `apiVersion "admission.k8s.io/v9"`, "good"},
		{"missing request", webhook.PathValidateNetworkPolicy, []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), 200, 400, "the AdmissionReview has no request", ""},
		{"missing uid", webhook.PathMutateWorkload, review("", workloadReq(map[string]string{rules.AnnotationDependsOn: "api:80"})), 200, 400, "request.uid is missing", ""},
		{"a Deployment to the NetworkPolicy path", webhook.PathValidateNetworkPolicy, review("d", workloadReq(nil)), 200, 400, "this webhook handles networking.k8s.io NetworkPolicy", "d"},
		{"a NetworkPolicy to the workload path", webhook.PathMutateWorkload, review("n", npReq(`{}`)), 200, 400, "this webhook handles apps/v1 Deployments", "n"},
		{"port 70000", webhook.PathValidateNetworkPolicy, review("p", npReq(`{"metadata":{"name":"p"},"spec":{"podSelector":{},"ingress":[{"from":[{"podSelector":{}}],"ports":[{"port":70000}]}]}}`)), 200, 422, "[malformedPolicy] spec.ingress[0].ports[0].port", "p"},
		{"bad CIDR", webhook.PathValidateNetworkPolicy, review("c", npReq(`{"metadata":{"name":"p"},"spec":{"podSelector":{},"egress":[{"to":[{"ipBlock":{"cidr":"300.0.0.0/8"}}]}]}}`)), 200, 422, "[malformedPolicy] spec.egress[0].to[0].ipBlock.cidr", "c"},
		{"control characters in an annotation", webhook.PathMutateWorkload, review("a", workloadReq(map[string]string{rules.AnnotationDependsOn: "api:80\x1b]0;owned\x07"})), 200, 422, `control character U+001B`, "a"},
		{"a 64 KiB annotation", webhook.PathMutateWorkload, review("l", workloadReq(map[string]string{rules.AnnotationDependsOn: strings.Repeat("a:1 ", 16<<10)})), 200, 422, "Too long: may not be more than 16384 bytes", "l"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(tc.path, tc.body)
			if status != tc.status {
				t.Fatalf("HTTP %d, want %d: %.300s", status, tc.status, body)
			}
			var code int32
			var msg string
			if status == 413 {
				var st metav1.Status
				if err := json.Unmarshal(body, &st); err != nil {
					t.Fatal(err)
				}
				code, msg = st.Code, st.Message
			} else {
				var ar admissionv1.AdmissionReview
				if err := json.Unmarshal(body, &ar); err != nil || ar.Response == nil {
					t.Fatalf("not an AdmissionReview: %v: %.300s", err, body)
				}
				if ar.Response.Allowed || ar.Response.Result == nil {
					t.Fatalf("allowed: %.300s", body)
				}
				if string(ar.Response.UID) != tc.uid {
					t.Errorf("uid %q, want %q", ar.Response.UID, tc.uid)
				}
				code, msg = ar.Response.Result.Code, ar.Response.Result.Message
			}
			if code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Errorf("code %d message %.300q, want %d with %q", code, msg, tc.code, tc.msg)
			}
			if _, body := post(webhook.PathValidateNetworkPolicy, goodReview(ns, "after")); !bytes.Contains(body, []byte(`"allowed":true`)) {
				t.Fatalf("a good request after the bad one: %.300s", body)
			}
		})
	}
	if ng.Exited() {
		t.Fatal("netguard exited")
	}
	if v := metricValue(t, ng, "controller_runtime_webhook_panics_total"); v != 0 {
		t.Errorf("%v panics recovered", v)
	}
}

// bigPolicy has n peers: about 40 bytes each as JSON and 15 in etcd.
func bigPolicy(name string, n int) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}}
	np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{}}
	for i := range n {
		np.Spec.Ingress[0].From = append(np.Spec.Ingress[0].From, networkingv1.NetworkPolicyPeer{
			PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": fmt.Sprint(i)}},
		})
	}
	return np
}

// An object so large that the AdmissionReview of its update (the object and
// its old version) is over netguard's 3 MiB limit, through the real API
// server: the NetworkPolicy webhook fails closed with netguard's reason, the
// workload webhooks fail open and the update goes through.
func TestOversizedReviewsFollowTheFailurePolicy(t *testing.T) {
	startNetguard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ns = "bad-input-large"
	// Privileged in every mode: the point is the size, not the rules.
	if err := testCluster.EnsureNamespace(ctx, ns, map[string]string{"netguard.io/enforce": "privileged", "netguard.io/warn": "privileged", "netguard.io/audit": "privileged"}); err != nil {
		t.Fatal(err)
	}
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}

	// 45000 peers: a review of one copy (with its managedFields) is about
	// 2 MiB, a review of two about 4 MiB.
	np, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, bigPolicy("big", 45000), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create a large policy (one copy in the review, under the limit): %v", err)
	}
	np.Labels = map[string]string{"touched": "yes"}
	_, err = cs.NetworkingV1().NetworkPolicies(ns).Update(ctx, np, metav1.UpdateOptions{})
	if err == nil {
		t.Fatal("the update of a policy too large to judge was admitted")
	}
	for _, want := range []string{`failed calling webhook "networkpolicies.netguard.io"`, "over netguard's limit of 3145728 bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the denial does not say %q: %.400s", want, err.Error())
		}
	}

	// The same for an annotated Deployment: the mutation and the applier
	// are skipped, the update is stored, the controller keeps the policies.
	d := webhooktest.Deployment(ns, "big", map[string]string{rules.AnnotationDependsOn: "api:8080"})
	zero := int32(0)
	d.Spec.Replicas = &zero
	// A value JSON spells six times longer than etcd stores it: a review of
	// one copy is about 2.4 MiB, a review of two about 4.8 MiB.
	d.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "PADDING", Value: strings.Repeat("\x01", 400<<10)}}
	d, err = cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create a large Deployment: %v", err)
	}
	if d.Spec.Template.Labels[rules.LabelComponent] != "big" {
		t.Errorf("the create (under the limit) was not mutated: template labels %v", d.Spec.Template.Labels)
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := cs.AppsV1().Deployments(ns).Get(ctx, "big", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Labels = map[string]string{"touched": "yes"}
		_, err = cs.AppsV1().Deployments(ns).Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("the workload webhooks fail open, but the update failed: %.400s", err.Error())
	}
	eventually(t, 30*time.Second, "the large Deployment's policies", wantNames(ctx, cs, ns, "Deployment/big", "netguard.big.depends-on", "netguard.big.to.api"))
	if err := cs.AppsV1().Deployments(ns).Delete(ctx, "big", metav1.DeleteOptions{}); err != nil {
		t.Error(err)
	}
	if err := cs.NetworkingV1().NetworkPolicies(ns).Delete(ctx, "big", metav1.DeleteOptions{}); err != nil {
		t.Error(err)
	}

}
