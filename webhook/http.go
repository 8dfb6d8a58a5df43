package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	admissionv1beta1 "k8s.io/api/admission/v1beta1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// MaxRequestBytes bounds the AdmissionReview body netguard reads.
// controller-runtime allows 7 MiB: the object and its old version, each up to
// the API server's 3 MiB request limit. No NetworkPolicy comes near 3 MiB,
// and a workload that does is admitted unjudged (the workload webhooks fail
// open) and handled by the controller, while a flood of large bodies costs
// netguard at most 3 MiB each.
const MaxRequestBytes = 3 << 20

// serveReview is the HTTP side of one admission endpoint. It reads at most
// max bytes of body, decodes the AdmissionReview once (decodeReview), insists
// that it is a JSON admission.k8s.io/v1 (or v1beta1) AdmissionReview, lets
// wh.Handle (controller-runtime: panic recovery, request logger, patch
// encoding) run the handler, and answers with an AdmissionReview of the
// request's apiVersion.
//
// controller-runtime's own ServeHTTP reads any object with a request field
// as a review, echoes whatever apiVersion and kind it was given, and reads
// YAML too; and it parses the body twice (once to find its kind). Profiles
// of netguard under load put a fifth of its CPU in those parses
// (BENCHMARKS.md, section 5), so netguard decodes the body itself, once.
//
// A larger body is answered with HTTP 413 and a Status that names the limit;
// it is not read further and the connection is closed.
//
// Not knowing the request's uid, netguard cannot answer with an
// AdmissionResponse the API server would accept, so the 413 is a failed call
// to the API server and each webhook's failurePolicy decides: the
// NetworkPolicy webhook fails closed (the write is rejected with this
// message), the workload webhooks fail open (the controller generates the
// policies later).
func serveReview(max int64, wh *admission.Webhook) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		growStack32()
		handleReview(max, wh, nil, w, r)
	})
}

// serveNetworkPolicyReview is serveReview for the NetworkPolicy webhook,
// which decodes the review and its policies in one pass.
func serveNetworkPolicyReview(max int64, wh *admission.Webhook) http.Handler {
	return serveTypedReview(max, wh, decodeNetworkPolicyReview)
}

// serveTypedReview is serveReview with a typed decoder: typed decodes the
// review and its objects in one pass (decodeNetworkPolicyReview), and when
// it cannot, the body is decoded as by serveReview, so that a malformed
// review or object gets the same answer either way.
func serveTypedReview(max int64, wh *admission.Webhook, typed func([]byte) *admissionv1.AdmissionReview) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		growStack16()
		handleReview(max, wh, typed, w, r)
	})
}

func handleReview(max int64, wh *admission.Webhook, typed func([]byte) *admissionv1.AdmissionReview, w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		writeReviewError(w, "", errors.New("request body is empty"))
		return
	}
	if r.ContentLength > max {
		tooLarge(w, r, r.ContentLength, max)
		return
	}
	buf := new(bytes.Buffer)
	if r.ContentLength > 0 {
		// ReadFrom wants MinRead bytes free before each read, the last one
		// (which finds EOF) included.
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			tooLarge(w, r, -1, max)
			return
		}
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("cannot read the request body: %v", err))
		return
	}
	if buf.Len() == 0 {
		writeReviewError(w, "", errors.New("request body is empty"))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		writeReviewError(w, "", fmt.Errorf("contentType=%s, expected application/json", ct))
		return
	}
	var review *admissionv1.AdmissionReview
	if typed != nil {
		review = typed(buf.Bytes())
	}
	if review == nil {
		var err error
		if review, err = decodeReview(buf.Bytes()); err != nil {
			writeReviewError(w, uidOf(review), err)
			return
		}
	}
	var req admission.Request
	if review.Request != nil {
		req.AdmissionRequest = *review.Request
	}
	ctx, cancel := reviewContext(r)
	defer cancel()
	resp := wh.Handle(ctx, req)
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: review.APIVersion, Kind: "AdmissionReview"},
		Response: &resp.AdmissionResponse,
	}); err != nil {
		logf.FromContext(r.Context()).Error(err, "cannot write the admission response", "uid", req.UID)
	}
}

// decodeReview decodes a JSON AdmissionReview as the API server does
// (case-sensitive field names, integers kept as integers) and checks its
// apiVersion and kind. A body that does not decode is parsed again by
// checkReview, whose messages say what is wrong with it.
func decodeReview(body []byte) (*admissionv1.AdmissionReview, error) {
	review := &admissionv1.AdmissionReview{}
	if err := utiljson.Unmarshal(body, review); err != nil {
		uid, cerr := checkReview(body)
		if cerr == nil {
			cerr = fmt.Errorf("the request body is not a JSON AdmissionReview: %v", err)
		}
		return &admissionv1.AdmissionReview{Request: &admissionv1.AdmissionRequest{UID: uid}}, cerr
	}
	if review.Kind != "AdmissionReview" || (review.APIVersion != admissionv1.SchemeGroupVersion.String() && review.APIVersion != admissionv1beta1.SchemeGroupVersion.String()) {
		return review, fmt.Errorf("the request body is apiVersion %q, kind %q: want apiVersion %q, kind \"AdmissionReview\"", review.APIVersion, review.Kind, admissionv1.SchemeGroupVersion.String())
	}
	return review, nil
}

// networkPolicyReview is an AdmissionReview whose objects are decoded as
// NetworkPolicies in the same pass as the review: the fields object and
// oldObject here hide the embedded request's (encoding/json takes the
// shallower field), so the body is scanned once, not once for the review,
// once more to copy each object's bytes out and again to decode them.
type networkPolicyReview struct {
	metav1.TypeMeta `json:",inline"`
	Request         *networkPolicyRequest `json:"request,omitempty"`
}

type networkPolicyRequest struct {
	admissionv1.AdmissionRequest
	Object    *networkingv1.NetworkPolicy `json:"object,omitempty"`
	OldObject *networkingv1.NetworkPolicy `json:"oldObject,omitempty"`
}

// decodeNetworkPolicyReview decodes a NetworkPolicy review in one pass, as
// decodeReview and decodeNetworkPolicy would (the same case-sensitive
// decoder), and puts the policies in the request's RawExtensions' Object,
// where requestPolicy takes them. It returns nil for any body it cannot
// decode so, or whose apiVersion or kind is wrong: the caller then decodes
// the body as before, and its errors name what is wrong.
func decodeNetworkPolicyReview(body []byte) *admissionv1.AdmissionReview {
	var typed networkPolicyReview
	if err := utiljson.Unmarshal(body, &typed); err != nil || typed.Request == nil {
		return nil
	}
	if typed.Kind != "AdmissionReview" || (typed.APIVersion != admissionv1.SchemeGroupVersion.String() && typed.APIVersion != admissionv1beta1.SchemeGroupVersion.String()) {
		return nil
	}
	req := typed.Request.AdmissionRequest
	if typed.Request.Object != nil {
		req.Object = runtime.RawExtension{Object: typed.Request.Object}
	}
	if typed.Request.OldObject != nil {
		req.OldObject = runtime.RawExtension{Object: typed.Request.OldObject}
	}
	return &admissionv1.AdmissionReview{TypeMeta: typed.TypeMeta, Request: &req}
}

func uidOf(r *admissionv1.AdmissionReview) types.UID {
	if r == nil || r.Request == nil {
		return ""
	}
	return r.Request.UID
}

// tooLarge answers a body over max bytes; size is -1 when it is not known.
func tooLarge(w http.ResponseWriter, r *http.Request, size, max int64) {
	what := ""
	if size >= 0 {
		what = fmt.Sprintf(" %d bytes,", size)
	}
	msg := fmt.Sprintf("the AdmissionReview is%s over netguard's limit of %d bytes (%d MiB); the object is too large to be judged", what, max, max>>20)
	if r.ProtoMajor == 1 {
		// The rest of the body is not read: the connection cannot be
		// reused. (HTTP/2 resets the stream alone.)
		w.Header().Set("Connection", "close")
	}
	writeStatus(w, http.StatusRequestEntityTooLarge, metav1.StatusReasonRequestEntityTooLarge, msg)
}

// writeStatus answers with a metav1.Status, which the API server's webhook
// client turns into an error carrying msg.
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	st := metav1.Status{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"},
		Status:   metav1.StatusFailure,
		Code:     int32(code),
		Reason:   reason,
		Message:  msg,
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(st)
}

// checkReview explains why a body is not a review. It insists on a JSON admission.k8s.io/v1 (or v1beta1)
// AdmissionReview. controller-runtime reads any object with a request field
// as one, and echoes whatever apiVersion and kind it was given, and it reads
// YAML too; the API server sends JSON AdmissionReviews only. The uid is
// returned when the body has one, so the answer can echo it.
func checkReview(body []byte) (types.UID, error) {
	var env struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Request    *struct {
			UID types.UID `json:"uid"`
		} `json:"request"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			where := "the body"
			if typeErr.Field != "" {
				where = typeErr.Field
			}
			return "", fmt.Errorf("the request body is not a JSON AdmissionReview: %s is a JSON %s", where, typeErr.Value)
		}
		return "", fmt.Errorf("the request body is not a JSON AdmissionReview: %v", err)
	}
	var uid types.UID
	if env.Request != nil {
		uid = env.Request.UID
	}
	if env.Kind != "AdmissionReview" || (env.APIVersion != admissionv1.SchemeGroupVersion.String() && env.APIVersion != admissionv1beta1.SchemeGroupVersion.String()) {
		return uid, fmt.Errorf("the request body is apiVersion %q, kind %q: want apiVersion %q, kind \"AdmissionReview\"", env.APIVersion, env.Kind, admissionv1.SchemeGroupVersion.String())
	}
	return uid, nil
}

// writeReviewError answers like controller-runtime answers a request it
// cannot decode: a v1 AdmissionReview whose response is a 400.
func writeReviewError(w http.ResponseWriter, uid types.UID, err error) {
	resp := admission.Errored(http.StatusBadRequest, err)
	resp.UID = uid
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: &resp.AdmissionResponse,
	})
}

// checkRequest rejects AdmissionReviews that decoded but carry no request,
// or a request without a uid: the API server always sends both, and a
// response the API server could not match to its request is worthless.
func checkRequest(req admission.Request) error {
	if req.UID == "" {
		if req.Operation == "" && req.Kind == (metav1.GroupVersionKind{}) && len(req.Object.Raw) == 0 && len(req.OldObject.Raw) == 0 && req.Object.Object == nil && req.OldObject.Object == nil {
			return errors.New("the AdmissionReview has no request")
		}
		return errors.New("request.uid is missing")
	}
	return nil
}
