package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

func namespaceRequest(t *testing.T, op admissionv1.Operation, labels, oldLabels map[string]string) admission.Request {
	t.Helper()
	raw := func(l map[string]string) runtime.RawExtension {
		b, err := json.Marshal(&corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: "team-x", Labels: l}})
		if err != nil {
			t.Fatal(err)
		}
		return runtime.RawExtension{Raw: b}
	}
	req := admissionv1.AdmissionRequest{UID: "ns-1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Namespace"}, Name: "team-x", Operation: op, Object: raw(labels)}
	if op == admissionv1.Update {
		req.OldObject = raw(oldLabels)
	}
	return admission.Request{AdmissionRequest: req}
}

func TestNamespaceLabelValidation(t *testing.T) {
	v := &namespaceLabelValidator{}
	cases := []struct {
		name        string
		op          admissionv1.Operation
		labels, old map[string]string
		deny        string
		warnings    []string
	}{
		{name: "valid levels", op: admissionv1.Create, labels: map[string]string{"netguard.io/enforce": "baseline", "netguard.io/warn": "restricted", "netguard.io/warn-version": "v1.0", "netguard.io/ignore": ""}},
		{name: "level typo", op: admissionv1.Create, labels: map[string]string{"netguard.io/enforce": "Baseline"},
			deny: `Namespace "team-x" is invalid: metadata.labels[netguard.io/enforce]: Invalid value: "Baseline": unknown level "Baseline": must be one of privileged, baseline, restricted, managed; did you mean "baseline"?`},
		{name: "bad version", op: admissionv1.Create, labels: map[string]string{"netguard.io/audit-version": "1.0"},
			deny: `Namespace "team-x" is invalid: metadata.labels[netguard.io/audit-version]: Invalid value: "1.0": unknown version "1.0": must be "latest" or "v<major>.<minor>" such as "v1.0"`},
		{name: "unknown key", op: admissionv1.Create, labels: map[string]string{"netguard.io/enforce-level": "baseline"},
			warnings: []string{`netguard: metadata.labels[netguard.io/enforce-level]: netguard does not read this label on namespaces and ignores it; did you mean netguard.io/enforce?`}},
		{name: "label typo on update", op: admissionv1.Update, labels: map[string]string{"netguard.io/enforce": "Baseline"}, old: map[string]string{"netguard.io/enforce": "baseline"},
			deny: `Namespace "team-x" is invalid: metadata.labels[netguard.io/enforce]: Invalid value: "Baseline": unknown level "Baseline": must be one of privileged, baseline, restricted, managed; did you mean "baseline"?`},
		// As Pod Security Admission does: a bad label already there does not
		// block an unrelated update.
		{name: "old bad label left alone", op: admissionv1.Update, labels: map[string]string{"netguard.io/enforce": "Baseline", "team": "a"}, old: map[string]string{"netguard.io/enforce": "Baseline"}},
		{name: "delete is never judged", op: admissionv1.Delete},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := v.Handle(context.Background(), namespaceRequest(t, tc.op, tc.labels, tc.old))
			if tc.deny == "" {
				if !resp.Allowed {
					t.Fatalf("denied: %+v", resp.Result)
				}
			} else if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusUnprocessableEntity || resp.Result.Message != tc.deny {
				t.Fatalf("got %+v\nwant 422 %q", resp.AdmissionResponse, tc.deny)
			}
			if !slices.Equal(resp.Warnings, tc.warnings) {
				t.Errorf("warnings %q, want %q", resp.Warnings, tc.warnings)
			}
		})
	}
}
