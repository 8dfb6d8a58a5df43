package webhook

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	admissionmetrics "sigs.k8s.io/controller-runtime/pkg/webhook/admission/metrics"

	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// badInput is one request netguard must refuse clearly.
type badInput struct {
	name string
	path string
	body []byte
	// wantHTTP is the HTTP status; 200 means an AdmissionReview answer.
	wantHTTP int
	// wantCode is the result code, in the AdmissionResponse or the Status.
	wantCode int32
	// wantMsg must appear in the message.
	wantMsg string
	// uid, when set, must be echoed.
	uid string
}

// withUID sets request.uid in a review built by review().
func withUID(uid string, req admissionv1.AdmissionRequest) ([]byte, string) {
	req.UID = types.UID("bad-" + metav1Name(uid))
	return review(req), string(req.UID)
}

func metav1Name(s string) string { return strings.NewReplacer(" ", "-", "/", "-").Replace(s) }

// npWith returns a NetworkPolicy CREATE review in namespace team whose spec
// is spec, with a fixed uid derived from name.
func npWith(name, spec string) ([]byte, string) {
	obj := `{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"p","namespace":"team"},"spec":` + spec + `}`
	return withUID(name, npRequest("team", []byte(obj)))
}

func badInputs(t testing.TB) []badInput {
	goodReq := npRequest("team", npJSON(t, "team"))
	goodReq.UID = "good-uid"
	good := review(goodReq)
	var cases []badInput
	add := func(c badInput) { cases = append(cases, c) }

	// The body itself.
	add(badInput{name: "not JSON", path: PathValidateNetworkPolicy, body: []byte("hello, netguard"), wantHTTP: 200, wantCode: 400, wantMsg: "the request body is not a JSON AdmissionReview: invalid character 'h' looking for beginning of value"})
	add(badInput{name: "YAML", path: PathValidateNetworkPolicy, body: []byte("apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\nrequest: {uid: y}\n"), wantHTTP: 200, wantCode: 400, wantMsg: "the request body is not a JSON AdmissionReview"})
	add(badInput{name: "empty body", path: PathValidateNetworkPolicy, body: []byte{}, wantHTTP: 200, wantCode: 400, wantMsg: "request body is empty"})
	add(badInput{name: "truncated", path: PathValidateNetworkPolicy, body: good[:len(good)/2], wantHTTP: 200, wantCode: 400, wantMsg: "unexpected end of JSON input"})
	add(badInput{name: "JSON null", path: PathValidateNetworkPolicy, body: []byte("null"), wantHTTP: 200, wantCode: 400, wantMsg: `the request body is apiVersion "", kind ""`})
	add(badInput{name: "JSON array", path: PathValidateNetworkPolicy, body: []byte(`[{"kind":"AdmissionReview"}]`), wantHTTP: 200, wantCode: 400, wantMsg: "the request body is not a JSON AdmissionReview: the body is a JSON array"})
	add(badInput{name: "request is a string", path: PathValidateNetworkPolicy, body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":"CREATE"}`), wantHTTP: 200, wantCode: 400, wantMsg: "the request body is not a JSON AdmissionReview: request is a JSON string"})
	add(badInput{name: "binary", path: PathValidateWorkload, body: []byte{0xff, 0xfe, 0x00, 0x01, '{'}, wantHTTP: 200, wantCode: 400, wantMsg: "invalid character"})
	deep := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"deep","x":` + strings.Repeat("[", 200000) + strings.Repeat("]", 200000) + `}}`
	add(badInput{name: "nested 200000 deep", path: PathValidateNetworkPolicy, body: []byte(deep), wantHTTP: 200, wantCode: 400, wantMsg: "exceeded max depth"})
	huge := append(append([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"huge","x":"`), bytes.Repeat([]byte("a"), MaxRequestBytes)...), `"}}`...)
	add(badInput{name: "over 3 MiB", path: PathValidateNetworkPolicy, body: huge, wantHTTP: 413, wantCode: 413, wantMsg: "over netguard's limit of 3145728 bytes"})
	add(badInput{name: "over 3 MiB to a workload path", path: PathMutateWorkload, body: huge, wantHTTP: 413, wantCode: 413, wantMsg: "over netguard's limit"})

	// The AdmissionReview.
	add(badInput{name: "wrong apiVersion", path: PathValidateNetworkPolicy, body: bytes.Replace(good, []byte(`"admission.k8s.io/v1"`), []byte(`"admission.k8s.io/v2"`), 1), wantHTTP: 200, wantCode: 400, wantMsg: `the request body is apiVersion "admission.k8s.io/v2", kind "AdmissionReview": want apiVersion "admission.k8s.io/v1"`, uid: "good-uid"})
	add(badInput{name: "wrong kind", path: PathValidateNetworkPolicy, body: bytes.Replace(good, []byte(`"kind":"AdmissionReview"`), []byte(`"kind":"Pod"`), 1), wantHTTP: 200, wantCode: 400, wantMsg: `kind "Pod"`, uid: "good-uid"})
	add(badInput{name: "missing request", path: PathValidateNetworkPolicy, body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), wantHTTP: 200, wantCode: 400, wantMsg: "the AdmissionReview has no request"})
	add(badInput{name: "request null", path: PathValidateWorkload, body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}`), wantHTTP: 200, wantCode: 400, wantMsg: "the AdmissionReview has no request"})
	noUID := npRequest("team", npJSON(t, "team"))
	add(badInput{name: "missing uid", path: PathValidateNetworkPolicy, body: mustJSON(admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: &noUID}), wantHTTP: 200, wantCode: 400, wantMsg: "request.uid is missing"})
	add(badInput{name: "missing uid on a workload", path: PathMutateWorkload, body: bytes.Replace(review(deployReview(t, webhooktest.Deployment("team", "web", map[string]string{rules.AnnotationDependsOn: "api:8080"}))), []byte(`"uid":"uid-`), []byte(`"xuid":"uid-`), 1), wantHTTP: 200, wantCode: 400, wantMsg: "request.uid is missing"})
	b, uid := withUID("unknown operation", func() admissionv1.AdmissionRequest {
		r := npRequest("team", npJSON(t, "team"))
		r.Operation = "FROB"
		return r
	}())
	add(badInput{name: "unknown operation", path: PathValidateNetworkPolicy, body: b, wantHTTP: 200, wantCode: 400, wantMsg: `operation "FROB" is not handled`, uid: uid})

	// The object, for the path.
	b, uid = withUID("Deployment on the NetworkPolicy path", deployReview(t, webhooktest.Deployment("team", "web", nil)))
	add(badInput{name: "Deployment on the NetworkPolicy path", path: PathValidateNetworkPolicy, body: b, wantHTTP: 200, wantCode: 400, wantMsg: "this webhook handles networking.k8s.io NetworkPolicy, not apps/v1, Kind=Deployment", uid: uid})
	b, uid = withUID("NetworkPolicy on the workload path", npRequest("team", npJSON(t, "team")))
	add(badInput{name: "NetworkPolicy on the mutating path", path: PathMutateWorkload, body: b, wantHTTP: 200, wantCode: 400, wantMsg: "this webhook handles apps/v1 Deployments, StatefulSets, DaemonSets and ReplicaSets, batch/v1 Jobs and CronJobs, and v1 Pods, not networking.k8s.io/v1, Kind=NetworkPolicy", uid: uid})
	b, uid = withUID("NetworkPolicy on the applier path", npRequest("team", npJSON(t, "team")))
	add(badInput{name: "NetworkPolicy on the applier path", path: PathValidateWorkload, body: b, wantHTTP: 200, wantCode: 400, wantMsg: "not networking.k8s.io/v1, Kind=NetworkPolicy", uid: uid})
	b, uid = withUID("Pod object", npRequest("team", []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}`)))
	add(badInput{name: "a Pod object under a NetworkPolicy kind", path: PathValidateNetworkPolicy, body: b, wantHTTP: 200, wantCode: 400, wantMsg: "request.object is /v1, Kind=Pod, want networking.k8s.io/v1 NetworkPolicy", uid: uid})
	b, uid = withUID("StatefulSet object", deployReviewRaw("team", "web", []byte(`{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"web","annotations":{"netguard.io/depends-on":"api:80"}}}`)))
	add(badInput{name: "a StatefulSet object under a Deployment kind", path: PathMutateWorkload, body: b, wantHTTP: 200, wantCode: 400, wantMsg: "want apps Deployment", uid: uid})
	b, uid = withUID("object is a string", npRequest("team", []byte(`"spec"`)))
	add(badInput{name: "object is a string", path: PathValidateNetworkPolicy, body: b, wantHTTP: 200, wantCode: 400, wantMsg: "request.object is not a NetworkPolicy", uid: uid})
	b, uid = npWith("ingress is a string", `{"ingress":"everything"}`)
	add(badInput{name: "ingress is a string", path: PathValidateNetworkPolicy, body: b, wantHTTP: 200, wantCode: 400, wantMsg: "request.object is not a NetworkPolicy", uid: uid})
	b, uid = npWith("port is 1e400", `{"podSelector":{},"ingress":[{"from":[{"podSelector":{}}],"ports":[{"port":1e400}]}]}`)
	add(badInput{name: "port is 1e400", path: PathValidateNetworkPolicy, body: b, wantHTTP: 200, wantCode: 400, wantMsg: "request.object is not a NetworkPolicy", uid: uid})
	b, uid = withUID("update without oldObject", func() admissionv1.AdmissionRequest {
		r := npRequest("team", npJSON(t, "team"))
		r.Operation = admissionv1.Update
		return r
	}())
	add(badInput{name: "update without oldObject", path: PathValidateNetworkPolicy, body: b, wantHTTP: 200, wantCode: 400, wantMsg: "request.oldObject is missing", uid: uid})

	// NetworkPolicies the API server would never send: it validates before
	// it calls validating webhooks. A direct caller gets 422 and the fix.
	for _, c := range []struct{ name, spec, msg string }{
		{"null peer selector", `{"podSelector":{},"ingress":[{"from":[{"podSelector":null}]}]}`, "[malformedPolicy] spec.ingress[0].from[0]"},
		{"port 0", `{"podSelector":{},"ingress":[{"from":[{"podSelector":{}}],"ports":[{"port":0}]}]}`, "[malformedPolicy] spec.ingress[0].ports[0].port"},
		{"port 70000", `{"podSelector":{},"ingress":[{"from":[{"podSelector":{}}],"ports":[{"port":70000}]}]}`, "[malformedPolicy] spec.ingress[0].ports[0].port"},
		{"port -1", `{"podSelector":{},"egress":[{"to":[{"podSelector":{}}],"ports":[{"port":-1}]}]}`, "[malformedPolicy] spec.egress[0].ports[0].port"},
		{"endPort below port", `{"podSelector":{},"ingress":[{"from":[{"podSelector":{}}],"ports":[{"port":8080,"endPort":80}]}]}`, "[malformedPolicy] spec.ingress[0].ports[0].endPort"},
		{"endPort with a named port", `{"podSelector":{},"ingress":[{"from":[{"podSelector":{}}],"ports":[{"port":"http","endPort":80}]}]}`, "[malformedPolicy] spec.ingress[0].ports[0].endPort"},
		{"protocol tcp", `{"podSelector":{},"ingress":[{"from":[{"podSelector":{}}],"ports":[{"port":80,"protocol":"tcp"}]}]}`, "[malformedPolicy] spec.ingress[0].ports[0].protocol"},
		{"protocol ICMP", `{"podSelector":{},"ingress":[{"from":[{"podSelector":{}}],"ports":[{"port":80,"protocol":"ICMP"}]}]}`, "[malformedPolicy] spec.ingress[0].ports[0].protocol"},
		{"CIDR /33", `{"podSelector":{},"ingress":[{"from":[{"ipBlock":{"cidr":"10.0.0.0/33"}}]}]}`, "[malformedPolicy] spec.ingress[0].from[0].ipBlock.cidr"},
		{"CIDR not an address", `{"podSelector":{},"egress":[{"to":[{"ipBlock":{"cidr":"example.com"}}]}]}`, "[malformedPolicy] spec.egress[0].to[0].ipBlock.cidr"},
		{"CIDR empty", `{"podSelector":{},"egress":[{"to":[{"ipBlock":{"cidr":""}}]}]}`, "[malformedPolicy] spec.egress[0].to[0].ipBlock.cidr"},
		{"except outside cidr", `{"podSelector":{},"egress":[{"to":[{"ipBlock":{"cidr":"10.0.0.0/8","except":["192.168.0.0/16"]}}]}]}`, "[malformedPolicy] spec.egress[0].to[0].ipBlock.except[0]"},
		{"ipBlock with a selector", `{"podSelector":{},"egress":[{"to":[{"ipBlock":{"cidr":"10.0.0.0/8"},"podSelector":{}}]}]}`, "[malformedPolicy] spec.egress[0].to[0]"},
		{"unknown operator", `{"podSelector":{"matchExpressions":[{"key":"app","operator":"Like","values":["a"]}]}}`, "[malformedPolicy] spec.podSelector.matchExpressions[0].operator"},
		{"In without values", `{"podSelector":{"matchExpressions":[{"key":"app","operator":"In"}]}}`, "[malformedPolicy] spec.podSelector.matchExpressions[0].values"},
		{"invalid label key", `{"podSelector":{"matchLabels":{"bad key!":"x"}}}`, "[malformedPolicy] spec.podSelector.matchLabels"},
		{"policyTypes Sideways", `{"podSelector":{},"policyTypes":["Sideways"]}`, "[malformedPolicy] spec.policyTypes[0]"},
	} {
		b, uid := npWith(c.name, c.spec)
		add(badInput{name: "invalid policy: " + c.name, path: PathValidateNetworkPolicy, body: b, wantHTTP: 200, wantCode: 422, wantMsg: c.msg, uid: uid})
	}

	// Workload annotations.
	for _, c := range []struct{ name, key, value, msg string }{
		{"escape sequence", rules.AnnotationDependsOn, "api:8080 \x1b[31mred", `metadata.annotations[netguard.io/depends-on]`},
		{"NUL", rules.AnnotationDependsOn, "api:80\x00", `metadata.annotations[netguard.io/depends-on]`},
		{"newline in component", rules.AnnotationComponent, "web\nfrontend", `metadata.annotations[netguard.io/component]`},
		{"bidi override in profiles", rules.AnnotationProfiles, "dns\u202e", `metadata.annotations[netguard.io/profiles]`},
		{"200 KiB depends-on", rules.AnnotationDependsOn, strings.Repeat("api:8080 ", 200<<10/9), `Too long: may not be more than 16384 bytes`},
		{"100 KiB component", rules.AnnotationComponent, strings.Repeat("a", 100<<10), `metadata.annotations[netguard.io/component]`},
	} {
		d := webhooktest.Deployment("team", "web", map[string]string{c.key: c.value})
		b, uid := withUID("annotation "+c.name, deployReview(t, d))
		add(badInput{name: "annotation: " + c.name, path: PathMutateWorkload, body: b, wantHTTP: 200, wantCode: 422, wantMsg: c.msg, uid: uid})
	}
	return cases
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Every bad request gets a clear error, nothing panics, the response echoes
// the request's uid, and the server answers a good request right after.
func TestBadInputOverHTTPS(t *testing.T) {
	h := startHTTPS(t, newTestServer(true))
	panics := counterValue(t, admissionmetrics.WebhookPanics.WithLabelValues())
	goodNP := func(t *testing.T) {
		t.Helper()
		r := h.postBytes(t, PathValidateNetworkPolicy, review(npRequest("team", npJSON(t, "team"))))
		if r.status != 200 || r.review == nil || !r.review.Response.Allowed {
			t.Fatalf("a good NetworkPolicy after the bad input: %s", r)
		}
	}
	goodWorkload := func(t *testing.T) {
		t.Helper()
		r := h.postBytes(t, PathMutateWorkload, review(deployReview(t, webhooktest.Deployment("team", "web", map[string]string{rules.AnnotationDependsOn: "api:8080"}))))
		if r.status != 200 || r.review == nil || !r.review.Response.Allowed || len(r.review.Response.Patch) == 0 {
			t.Fatalf("a good Deployment after the bad input: %s", r)
		}
	}
	for _, c := range badInputs(t) {
		t.Run(c.name, func(t *testing.T) {
			r := h.postBytes(t, c.path, c.body)
			if r.status != c.wantHTTP {
				t.Fatalf("want HTTP %d, got %s", c.wantHTTP, r)
			}
			var code int32
			var msg string
			switch {
			case r.st != nil:
				code, msg = r.st.Code, r.st.Message
			case r.review.Response.Allowed:
				t.Fatalf("allowed: %s", r)
			case r.review.Response.Result == nil:
				t.Fatalf("denied without a result: %s", r)
			default:
				code, msg = r.review.Response.Result.Code, r.review.Response.Result.Message
				if string(r.review.Response.UID) != c.uid {
					t.Errorf("response uid %q, want %q", r.review.Response.UID, c.uid)
				}
			}
			t.Logf("%d: %s", code, clip(msg, 300))
			if code != c.wantCode || !strings.Contains(msg, c.wantMsg) || msg == "" {
				t.Errorf("code %d message %q, want code %d and a message containing %q", code, clip(msg, 300), c.wantCode, c.wantMsg)
			}
			if strings.Contains(msg, "panic") {
				t.Errorf("a panic was recovered: %s", msg)
			}
			if len(msg) > 4096 {
				t.Errorf("the message is %d bytes long; a reason should be short", len(msg))
			}
			goodNP(t)
			goodWorkload(t)
		})
	}
	if d := counterValue(t, admissionmetrics.WebhookPanics.WithLabelValues()) - panics; d != 0 {
		t.Errorf("%v panics were recovered", d)
	}
}

// endlessBody is an endless body that counts what was read from it.
type endlessBody struct {
	n   atomic.Int64
	max int64
}

func (c *endlessBody) Read(p []byte) (int, error) {
	if c.n.Load() >= c.max {
		return 0, io.EOF
	}
	for i := range p {
		p[i] = 'a'
	}
	c.n.Add(int64(len(p)))
	return len(p), nil
}

// A body without a Content-Length is cut off at the limit: the server stops
// reading, so a 1 GiB upload costs it about 3 MiB, and the answer is 413.
func TestStreamedHugeBodyIsCutOff(t *testing.T) {
	h2 := startHTTPS(t, newTestServer(true))
	// The same server over HTTP/1.1, where the connection must be closed.
	h1 := &httpsServer{URL: h2.URL, Client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: h2.Client.Transport.(*http.Transport).TLSClientConfig.Clone(),
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{},
	}}}
	for _, c := range []struct {
		proto, path string
		h           *httpsServer
	}{
		{"HTTP/2", PathValidateNetworkPolicy, h2}, {"HTTP/2", PathMutateWorkload, h2}, {"HTTP/1.1", PathValidateNetworkPolicy, h1},
	} {
		path, h := c.path, c.h
		t.Run(c.proto+path, func(t *testing.T) {
			body := &endlessBody{max: 1 << 30}
			r := h.post(t, path, io.MultiReader(strings.NewReader(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","object":"`), body), -1)
			if r.status != http.StatusRequestEntityTooLarge || r.st == nil || r.st.Reason != metav1.StatusReasonRequestEntityTooLarge {
				t.Fatalf("want 413 RequestEntityTooLarge, got %s", r)
			}
			if sent := body.n.Load(); sent > 16<<20 {
				t.Errorf("the client could send %d bytes before the server gave up; want about %d", sent, MaxRequestBytes)
			}
			goodNP := h.postBytes(t, PathValidateNetworkPolicy, review(npRequest("team", npJSON(t, "team"))))
			if goodNP.review == nil || !goodNP.review.Response.Allowed {
				t.Fatalf("a good request after the huge one: %s", goodNP)
			}
		})
	}
}

// Just under the limit is read and judged.
func TestBodyJustUnderTheLimitIsJudged(t *testing.T) {
	h := startHTTPS(t, newTestServer(true))
	np := webhooktest.GoodPolicy("web")
	np.Namespace = "team"
	np.APIVersion, np.Kind = "networking.k8s.io/v1", "NetworkPolicy"
	np.Annotations = map[string]string{"padding": ""}
	body := review(npRequest("team", mustJSON(np)))
	np.Annotations["padding"] = strings.Repeat("p", MaxRequestBytes-len(body)-100)
	body = review(npRequest("team", mustJSON(np)))
	if len(body) > MaxRequestBytes || len(body) < MaxRequestBytes-1000 {
		t.Fatalf("body of %d bytes, want just under %d", len(body), MaxRequestBytes)
	}
	r := h.postBytes(t, PathValidateNetworkPolicy, body)
	if r.review == nil || !r.review.Response.Allowed {
		t.Fatalf("want allowed, got %s", r)
	}
}
