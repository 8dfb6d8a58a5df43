package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// The one-pass NetworkPolicy decoder must answer every request exactly as
// the generic decoder followed by the handler's own decoding does.
func TestNetworkPolicyReviewDecoderAnswersAsTheGenericOne(t *testing.T) {
	v, _ := newValidator(testConfig(), map[string]map[string]string{"team": {corev1.LabelMetadataName: "team"}})
	wh := &admission.Webhook{Handler: v}
	generic := serveReview(MaxRequestBytes, wh, decodeReview)
	onePass := serveReview(MaxRequestBytes, wh, decodeNetworkPolicyReview)
	bodies := [][]byte{}
	for _, c := range badInputs(t) {
		if c.path == PathValidateNetworkPolicy {
			bodies = append(bodies, c.body)
		}
	}
	for _, np := range []*networkingv1.NetworkPolicy{webhooktest.GoodPolicy("good"), webhooktest.AnywherePolicy("anywhere"), webhooktest.SameNamespacePolicy("same")} {
		np.APIVersion, np.Kind, np.Namespace = "networking.k8s.io/v1", "NetworkPolicy", "team"
		b, err := json.Marshal(np)
		if err != nil {
			t.Fatal(err)
		}
		create := npRequest("team", b)
		r, err := decodeNetworkPolicyReview(review(create))
		if err != nil || r.Request == nil || r.Request.Object.Object == nil || len(r.Request.Object.Raw) != 0 {
			t.Fatalf("a good review was not decoded in one pass: %v", err)
		}
		bodies = append(bodies, review(create))
		update := create
		update.Operation, update.OldObject = admissionv1.Update, runtime.RawExtension{Raw: b}
		bodies = append(bodies, review(update))
		del := create
		del.Operation, del.Object, del.OldObject = admissionv1.Delete, runtime.RawExtension{}, runtime.RawExtension{Raw: b}
		bodies = append(bodies, review(del))
	}
	for i, b := range bodies {
		if g, o := post(generic, PathValidateNetworkPolicy, b), post(onePass, PathValidateNetworkPolicy, b); g != o {
			t.Errorf("body %d (%.80q):\ngeneric:  %s\none pass: %s", i, b, g, o)
		}
	}
}

// The same for the workload decoder, on both workload paths.
func TestWorkloadReviewDecoderAnswersAsTheGenericOne(t *testing.T) {
	s := &Server{cfg: testConfig(), injector: &injector{cache: benchProfiles()}}
	s.namespaces = &fakeNamespaces{labels: map[string]map[string]string{"team": nil}}
	s.synced.Store(true)
	bodies := map[string][][]byte{}
	for _, c := range badInputs(t) {
		if c.path != PathValidateNetworkPolicy {
			bodies[c.path] = append(bodies[c.path], c.body)
		}
	}
	for _, d := range []*appsv1.Deployment{benchDeployment(), webhooktest.Deployment("team", "plain", nil), webhooktest.Deployment("team", "bad", map[string]string{rules.AnnotationDependsOn: "api:x:y"})} {
		req := deployReview(t, d)
		dry := true
		req.DryRun = &dry // the applier writes nothing
		body := review(req)
		r, err := decodeWorkloadReview(body)
		if err != nil || r.Request == nil || r.Request.Object.Object == nil {
			t.Fatalf("a good review was not decoded in one pass: %v", err)
		}
		cp := r.Request.Object.Object.DeepCopyObject()
		if !reflect.DeepEqual(cp, r.Request.Object.Object) {
			t.Fatalf("DeepCopyObject differs:\n%+v\n%+v", cp, r.Request.Object.Object)
		}
		for _, p := range []string{PathMutateWorkload, PathValidateWorkload} {
			bodies[p] = append(bodies[p], body)
		}
	}
	for path, h := range map[string]admission.Handler{PathMutateWorkload: &workloadMutator{s: s}, PathValidateWorkload: &workloadApplier{s: s}} {
		wh := &admission.Webhook{Handler: h}
		generic := serveReview(MaxRequestBytes, wh, decodeReview)
		onePass := serveReview(MaxRequestBytes, wh, decodeWorkloadReview)
		for i, b := range bodies[path] {
			if g, o := post(generic, path, b), post(onePass, path, b); g != o {
				t.Errorf("%s body %d (%.80q):\ngeneric:  %s\none pass: %s", path, i, b, g, o)
			}
		}
		if len(bodies[path]) < 4 {
			t.Fatalf("%s: only %d bodies compared", path, len(bodies[path]))
		}
	}
}

func post(h http.Handler, path string, body []byte) string {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	return fmt.Sprintf("%d %s", rec.Code, rec.Body.String())
}
