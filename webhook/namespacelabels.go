package webhook

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/netguard/netguard/rules"
)

// PathValidateNamespace is where the namespace-label webhook points.
const PathValidateNamespace = "/validate-namespace"

// namespaceLabelValidator checks the netguard.io/ labels of a namespace when
// they are written, as Pod Security Admission checks its own labels: a level
// or version label with a bad value is denied, an unknown netguard.io/ key
// is a warning. Only labels that are added or changed are judged, so a
// namespace that already carries a bad label (written while netguard was
// away) can still be updated for anything else, and deleting a namespace is
// never seen at all (the configuration sends CREATE and UPDATE only).
//
// Its failure policy is Ignore: see docs/security.md. A bad label that gets
// past it is treated as the strictest level and reported, as before.
type namespaceLabelValidator struct{}

func (v *namespaceLabelValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	resp, decision := v.handle(ctx, req)
	admissionDecisions.WithLabelValues("namespaces", operationLabel(req.Operation), decision, "labels", "none").Inc()
	return resp
}

func (v *namespaceLabelValidator) handle(ctx context.Context, req admission.Request) (admission.Response, string) {
	if err := checkRequest(req); err != nil {
		return admission.Errored(http.StatusBadRequest, err), "error"
	}
	if req.Kind.Group != "" || req.Kind.Kind != "Namespace" {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("this webhook handles v1 Namespaces, not %s", req.Kind.String())), "error"
	}
	if (req.Operation != admissionv1.Create && req.Operation != admissionv1.Update) || req.SubResource != "" {
		return admission.Allowed(""), "allow"
	}
	labels, err := namespaceLabels("object", req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err), "error"
	}
	if req.Operation == admissionv1.Update {
		old, err := namespaceLabels("oldObject", req.OldObject.Raw)
		if err != nil {
			return admission.Errored(http.StatusBadRequest, err), "error"
		}
		labels = changedNetguardLabels(old, labels)
	}
	errs, warnings := rules.ValidateNamespaceLabels(labels, field.NewPath("metadata"), LabelIgnore)
	if len(errs) > 0 {
		logf.FromContext(ctx).Info("denied invalid netguard namespace labels", "fields", errorFields(errs))
		st := apierrors.NewInvalid(schema.GroupKind{Kind: "Namespace"}, req.Name, errs).ErrStatus
		resp := admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &st}}
		return resp.WithWarnings(prefixed(warnings)...), "deny"
	}
	return admission.Allowed("").WithWarnings(prefixed(warnings)...), "allow"
}

// namespaceLabels decodes the labels of a request's object or oldObject.
func namespaceLabels(name string, raw []byte) (map[string]string, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("request.%s is missing", name)
	}
	var ns metav1.PartialObjectMetadata
	if err := utiljson.Unmarshal(raw, &ns); err != nil {
		return nil, fmt.Errorf("request.%s is not a Namespace: %v", name, err)
	}
	return ns.Labels, nil
}

// changedNetguardLabels returns the netguard.io/ labels of cur that old does
// not carry with the same value.
func changedNetguardLabels(old, cur map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range cur {
		if !strings.HasPrefix(k, rules.KeyPrefix) {
			continue
		}
		if ov, ok := old[k]; ok && ov == v {
			continue
		}
		out[k] = v
	}
	return out
}

// prefixed marks warnings as netguard's, as every netguard warning is.
func prefixed(warnings []string) []string {
	out := make([]string, len(warnings))
	for i, w := range warnings {
		out[i] = "netguard: " + w
	}
	return out
}

// labelErrorNote explains, for a denial, that the level of mode came from a
// bad namespace label and was taken as the strictest: without it the user
// reads `violates netguard "managed"` in a namespace they labelled
// "Baseline" and cannot tell why.
func labelErrorNote(errs []rules.LabelError, mode string) string {
	var notes []string
	for _, le := range errs {
		if le.Mode == mode {
			notes = append(notes, fmt.Sprintf("namespace label %s=%q is invalid (%v)", le.Label, le.Value, le.Err))
		}
	}
	if len(notes) == 0 {
		return ""
	}
	return "; " + strings.Join(notes, "; ") + ", so netguard applies the strictest setting: ask the platform team to fix the label"
}
