package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
)

// The honest floor answers a real review as the API server expects: the
// request's uid, allowed.
func TestMinimalAnswersAllowedWithTheUID(t *testing.T) {
	body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"0f1e\"x","kind":{"group":"networking.k8s.io","version":"v1","kind":"NetworkPolicy"},"operation":"CREATE","object":{"spec":{}}}}`
	rec := httptest.NewRecorder()
	minimalHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/validate-networkpolicy", strings.NewReader(body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var rev admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &rev); err != nil {
		t.Fatal(err)
	}
	if rev.Kind != "AdmissionReview" || rev.APIVersion != "admission.k8s.io/v1" || rev.Response == nil || string(rev.Response.UID) != "0f1e\"x" || !rev.Response.Allowed {
		t.Errorf("response %s", rec.Body)
	}
	rec = httptest.NewRecorder()
	minimalHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/validate-networkpolicy", strings.NewReader(`{}`)))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("a review without uid: status %d, want 400", rec.Code)
	}
}
