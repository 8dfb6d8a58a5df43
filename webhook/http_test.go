package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// The one-pass NetworkPolicy decoder must answer every request exactly as
// the generic decoder followed by the handler's own decoding does.
func TestNetworkPolicyReviewDecoderAnswersAsTheGenericOne(t *testing.T) {
	v, _ := newValidator(testConfig(), map[string]map[string]string{"team": {corev1.LabelMetadataName: "team"}})
	wh := &admission.Webhook{Handler: v}
	generic := serveReviewWith(MaxRequestBytes, wh, decodeReview)
	onePass := serveReviewWith(MaxRequestBytes, wh, decodeNetworkPolicyReview)
	bodies := [][]byte{}
	for _, c := range badInputs(t) {
		if c.path == PathValidateNetworkPolicy {
			bodies = append(bodies, c.body)
		}
	}
	for _, np := range []*networkingv1.NetworkPolicy{goodPolicy("good"), anywherePolicy("anywhere"), sameNamespacePolicy("same")} {
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
	post := func(h http.Handler, body []byte) string {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, PathValidateNetworkPolicy, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		return fmt.Sprintf("%d %s", rec.Code, rec.Body.String())
	}
	for i, b := range bodies {
		if g, o := post(generic, b), post(onePass, b); g != o {
			t.Errorf("body %d (%.80q):\ngeneric:  %s\none pass: %s", i, b, g, o)
		}
	}
}
