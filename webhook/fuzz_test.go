package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	networkingv1 "k8s.io/api/networking/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// The fuzz targets feed raw bytes to the HTTP handlers the webhook server
// registers, with panic recovery off so that a panic is a crash. Past
// crashers live in testdata/fuzz/<target> and run with every `go test`;
// `make fuzz` explores further.

// serveRaw posts body to h the way the API server does and returns the
// status and body of the answer.
func serveRaw(h http.Handler, path string, body []byte) (int, []byte) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// checkAnswer asserts what every answer must be: a Status for a 413, else an
// AdmissionReview with a response that echoes the request's uid, never a
// recovered panic, and a denial with a code and a reason. It returns the
// response and the request as netguard's decoder reads it (nil when the body
// is not an AdmissionReview).
func checkAnswer(t *testing.T, body []byte, status int, out []byte) (*admissionv1.AdmissionResponse, *admissionv1.AdmissionRequest) {
	t.Helper()
	if status == http.StatusRequestEntityTooLarge {
		if len(body) <= MaxRequestBytes {
			t.Fatalf("413 for a body of %d bytes", len(body))
		}
		return nil, nil
	}
	if status != http.StatusOK {
		t.Fatalf("HTTP %d: %s", status, out)
	}
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(out, &ar); err != nil || ar.Response == nil {
		t.Fatalf("the answer is not an AdmissionReview with a response: %v: %s", err, out)
	}
	resp := ar.Response
	var in admissionv1.AdmissionReview
	if err := utiljson.Unmarshal(body, &in); err != nil || in.Request == nil {
		if resp.Allowed {
			t.Fatalf("allowed a body that is not an AdmissionReview: %s", out)
		}
		return resp, nil
	}
	if in.Request.UID != "" && resp.UID != in.Request.UID {
		t.Fatalf("response uid %q, request uid %q", resp.UID, in.Request.UID)
	}
	if resp.Allowed && in.Request.UID == "" {
		t.Fatalf("allowed a request without a uid")
	}
	if !resp.Allowed {
		if resp.Result == nil || resp.Result.Message == "" {
			t.Fatalf("a denial without a reason: %s", out)
		}
		switch resp.Result.Code {
		case 400, 403, 422, 500, 503:
		default:
			t.Fatalf("a denial with code %d: %s", resp.Result.Code, out)
		}
	}
	if resp.Result != nil && strings.Contains(resp.Result.Message, "[recovered]") {
		t.Fatalf("a panic was recovered: %s", resp.Result.Message)
	}
	return resp, in.Request
}

func noRecover(wh *admission.Webhook) { wh.RecoverPanic = new(bool) }

func reviewSeeds(reqs ...admissionv1.AdmissionRequest) [][]byte {
	var out [][]byte
	for _, r := range reqs {
		r.UID = "seed"
		out = append(out, review(r))
	}
	return out
}

// FuzzNetworkPolicyReview: whatever the bytes, the validator answers with a
// well-formed review that echoes the uid, and it fails closed: it never
// allows a policy from an ordinary user in a baseline namespace that the
// rules find a violation in.
func FuzzNetworkPolicyReview(f *testing.F) {
	seed := func(spec string) admissionv1.AdmissionRequest {
		return npRequest("team", []byte(`{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"p","namespace":"team"},"spec":`+spec+`}`))
	}
	update := seed(`{"podSelector":{}}`)
	update.Operation = admissionv1.Update
	update.OldObject = update.Object
	del := seed(`{}`)
	del.Operation, del.Object, del.OldObject = admissionv1.Delete, del.OldObject, del.Object
	seeds := reviewSeeds(
		seed(webhooktest.IngressFrom(webhooktest.FromPods)),
		seed(webhooktest.IngressFrom(`{"ipBlock":{"cidr":"0.0.0.0/0","except":["10.0.0.0/8"]}}`)),
		seed(webhooktest.EgressTo(webhooktest.NsSel(`{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"In","values":["team","prod"]}]}`))),
		seed(`{"podSelector":{},"ingress":[{"from":[{}],"ports":[{"port":"http","endPort":3},{"port":0,"protocol":"ICMP"}]}]}`),
		update, del,
	)
	for _, b := range seeds {
		f.Add(b)
	}
	for _, c := range webhooktest.BypassCorpus() {
		obj := c.Obj
		if obj == "" {
			obj = `{"metadata":{"name":"p","namespace":"team"},"spec":` + c.Spec + `}`
		}
		f.Add(review(npRequest("team", []byte(obj))))
	}
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"networking.k8s.io","version":"v1","kind":"NetworkPolicy"},"namespace":"team","operation":"CREATE","userInfo":{"username":"alice"},"object":{"spec":{"ingress":[{}],"Ingress":[{"from":[{"podSelector":{}}]}]}}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"networking.k8s.io","version":"v1","kind":"NetworkPolicy"},"namespace":"open","operation":"CREATE","userInfo":{"username":"bob"},"object":{}}}`))
	f.Add([]byte(`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":null}`))
	f.Add([]byte("not json"))
	for _, c := range badInputs(f) {
		if c.path == PathValidateNetworkPolicy && len(c.body) < 1<<20 {
			f.Add(c.body)
		}
	}

	s := newTestServer(true)
	h := s.handlers(noRecover)[PathValidateNetworkPolicy]
	// The same validator behind the two-pass decoding (the review, then
	// each object from its bytes): the one-pass decoding serve uses
	// (decodeNetworkPolicyReview) must answer every body byte for byte as
	// it does.
	twoPass := &admission.Webhook{Handler: &networkPolicyValidator{cfg: s.cfg, isSelf: s.isSelf, namespaces: s.namespaces}}
	noRecover(twoPass)
	ref := serveReview(MaxRequestBytes, twoPass)
	f.Fuzz(func(t *testing.T, body []byte) {
		status, out := serveRaw(h, PathValidateNetworkPolicy, body)
		if refStatus, refOut := serveRaw(ref, PathValidateNetworkPolicy, body); refStatus != status || !bytes.Equal(refOut, out) {
			t.Fatalf("one-pass decoding answered HTTP %d %s\ntwo-pass decoding answered HTTP %d %s", status, out, refStatus, refOut)
		}
		resp, req := checkAnswer(t, body, status, out)
		if resp == nil || req == nil || !resp.Allowed {
			return
		}
		if req.Kind.Group != "networking.k8s.io" || req.Kind.Kind != "NetworkPolicy" {
			t.Fatalf("allowed a request for %v", req.Kind)
		}
		// An ordinary user creating or updating in a baseline namespace:
		// allowed means the rules find nothing, on the object netguard read.
		if req.Namespace != "team" || req.UserInfo.Username != alice || len(req.UserInfo.Groups) > 1 ||
			(req.Operation != admissionv1.Create && req.Operation != admissionv1.Update) {
			return
		}
		np := &networkingv1.NetworkPolicy{}
		if err := utiljson.Unmarshal(req.Object.Raw, np); err != nil {
			t.Fatalf("allowed an object netguard cannot decode: %v", err)
		}
		if rules.IsManagedPolicy(np) {
			t.Fatalf("alice may not write a managed policy: %s", req.Object.Raw)
		}
		np.Namespace = "team"
		if vs := rules.Evaluate(rules.LevelBaseline, rules.LatestVersion(), np); len(vs) > 0 {
			t.Fatalf("allowed a policy that violates baseline: %v\n%s", vs, req.Object.Raw)
		}
	})
}

// patchOp is one JSON patch operation of a mutation.
type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

// mutablePaths are what the mutating webhook may change: netguard's record
// annotation and the pod template's component label, or the maps that hold
// them when the object has none yet.
var mutablePaths = map[string]bool{
	"/metadata/annotations":                                 true,
	"/metadata/annotations/netguard.io~1generated":          true,
	"/spec/template/metadata":                               true,
	"/spec/template/metadata/labels":                        true,
	"/spec/template/metadata/labels/netguard.io~1component": true,
}

// FuzzWorkloadReview: whatever the bytes, the workload webhooks answer with
// a well-formed review that echoes the uid, a denial is a 400 or a 422 (the
// annotations, never netguard's own trouble: that is admitted), and a
// mutation touches netguard's annotation and label and nothing else.
func FuzzWorkloadReview(f *testing.F) {
	ann := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	d := webhooktest.Deployment("team", "web", ann(rules.AnnotationDependsOn, "api:8080, db:5432/tcp"))
	upd := deployReview(f, d)
	upd.Operation = admissionv1.Update
	upd.OldObject = upd.Object
	seeds := reviewSeeds(
		deployReview(f, d),
		deployReview(f, webhooktest.Deployment("team", "web", ann(rules.AnnotationComponent, "web", rules.AnnotationProfiles, "dns, metrics"))),
		deployReview(f, webhooktest.Deployment("team", "web", ann(rules.AnnotationDependsOn, "api:99999 \x1b[0m"))),
		deployReview(f, webhooktest.Deployment("open", "web", ann(rules.AnnotationDependsOn, "api:http"))),
		deployReview(f, webhooktest.Deployment("team", "web", ann(rules.AnnotationGenerated, "v1;x"))),
		upd,
	)
	for _, b := range seeds {
		f.Add(b)
	}
	// Fields netguard's types do not know, and nulls where maps go.
	f.Add(review(deployReviewRaw("team", "web", []byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","annotations":{"netguard.io/depends-on":"api:80"}},"spec":{"futureField":{"a":1},"replicas":1.0,"template":{"metadata":null,"spec":{"containers":[{"name":"a","image":"b","futureContainerField":true}]}}}}`))))
	f.Add(review(deployReviewRaw("team", "web", []byte(`{"metadata":{"name":"web","annotations":{"netguard.io/component":"web"},"labels":null},"spec":{"template":{"metadata":{"labels":null}}}}`))))
	f.Add(review(deployReviewRaw("team", "web", []byte(`{"metadata":{"name":"web","annotations":{"netguard.io/generated":"x"}},"spec":{}}`))))

	s := newTestServer(true)
	hs := s.handlers(noRecover)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{PathMutateWorkload, PathValidateWorkload} {
			status, out := serveRaw(hs[path], path, body)
			resp, req := checkAnswer(t, body, status, out)
			if resp == nil || req == nil {
				continue
			}
			if !resp.Allowed && resp.Result.Code != 400 && resp.Result.Code != 422 {
				t.Fatalf("%s: a workload denied with %d; only bad input may be: %s", path, resp.Result.Code, resp.Result.Message)
			}
			if len(resp.Patch) == 0 {
				continue
			}
			if path != PathMutateWorkload || !resp.Allowed {
				t.Fatalf("%s: a patch from the wrong place: %s", path, resp.Patch)
			}
			var ops []patchOp
			if err := json.Unmarshal(resp.Patch, &ops); err != nil {
				t.Fatalf("the patch is not JSON patch: %v: %s", err, resp.Patch)
			}
			for _, op := range ops {
				if !mutablePaths[op.Path] {
					t.Fatalf("the mutation changes %s %s, which is not netguard's; patch %s\nobject %s", op.Op, op.Path, resp.Patch, req.Object.Raw)
				}
			}
		}
	})
}
