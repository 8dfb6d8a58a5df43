package webhook

import (
	"bytes"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

const secretMarker = "s3cr3t-M4RK3R"

// At the info level, which is what `netguard serve` logs by default, no
// request body, object or Secret data reaches the log, whatever the request
// and whatever its outcome: names, users, rule IDs and field paths only.
func TestLogsCarryNoObjectsOrSecrets(t *testing.T) {
	buf := &webhooktest.SyncBuffer{}
	// The logger `netguard serve` builds: controller-runtime's zap, JSON, info.
	logger := zap.New(zap.WriteTo(buf), zap.UseDevMode(false), zap.Level(zapcore.InfoLevel))
	withLogger := func(wh *admission.Webhook) {
		wh.LogConstructor = func(_ logr.Logger, req *admission.Request) logr.Logger {
			return admission.DefaultLogConstructor(logger.WithName("admission"), req)
		}
	}
	h := startHTTPS(t, newTestServer(true), withLogger)
	notSynced := startHTTPS(t, newTestServer(false), withLogger)

	lastApplied := `{"apiVersion":"v1","kind":"Secret","data":{"password":"` + secretMarker + `"}}`
	secretAnn := map[string]string{"kubectl.kubernetes.io/last-applied-configuration": lastApplied, "note": secretMarker}

	np := webhooktest.AnywherePolicy("leaky")
	np.Namespace = "team"
	np.APIVersion, np.Kind = "networking.k8s.io/v1", "NetworkPolicy"
	np.Annotations = secretAnn
	np.Spec.PodSelector.MatchLabels["token"] = secretMarker
	denied := mustJSON(np)
	good := webhooktest.GoodPolicy("fine")
	good.Namespace = "team"
	good.Annotations = secretAnn
	allowed := mustJSON(good)
	malformed := bytes.Replace(denied, []byte(`"podSelector":{"matchLabels"`), []byte(`"podSelector":{"matchExpressions":[{"key":"k","operator":"Bogus","values":["`+secretMarker+`"]}],"matchLabels"`), 1)
	secretObj := mustJSON(&corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: metav1.ObjectMeta{Name: "s"}, StringData: map[string]string{"password": secretMarker}})

	withEnv := func(ann map[string]string) []byte {
		d := webhooktest.Deployment("team", "web", ann)
		d.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "PASSWORD", Value: secretMarker}}
		d.Spec.Template.Spec.Containers[0].Args = []string{"--token=" + secretMarker}
		return mustJSON(d)
	}
	merge := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}

	requests := []struct {
		name   string
		server *httpsServer
		path   string
		body   []byte
	}{
		{"denied policy", h, PathValidateNetworkPolicy, review(npRequest("team", denied))},
		{"allowed policy", h, PathValidateNetworkPolicy, review(npRequest("team", allowed))},
		{"malformed policy", h, PathValidateNetworkPolicy, review(npRequest("team", malformed))},
		{"a Secret on the policy path", h, PathValidateNetworkPolicy, review(npRequest("team", secretObj))},
		{"a Secret as a workload", h, PathMutateWorkload, review(deployReviewRaw("team", "s", secretObj))},
		{"undecodable policy", h, PathValidateNetworkPolicy, review(npRequest("team", []byte(`{"spec":{"podSelector":"`+secretMarker+`"}}`)))},
		{"not a review", h, PathValidateNetworkPolicy, []byte(`{"password":"` + secretMarker + `"`)},
		{"policy before sync", notSynced, PathValidateNetworkPolicy, review(npRequest("team", denied))},
		{"workload", h, PathMutateWorkload, review(deployReviewRaw("team", "web", withEnv(merge(secretAnn, rules.AnnotationDependsOn, "api:8080"))))},
		{"workload applied", h, PathValidateWorkload, review(deployReviewRaw("team", "web", withEnv(merge(secretAnn, rules.AnnotationDependsOn, "api:8080"))))},
		{"workload with a secret in its annotation", h, PathMutateWorkload, review(deployReviewRaw("team", "web", withEnv(merge(secretAnn, rules.AnnotationDependsOn, "api:8080 "+secretMarker+":x"))))},
		{"workload with a secret as its component", h, PathMutateWorkload, review(deployReviewRaw("team", "web", withEnv(merge(secretAnn, rules.AnnotationComponent, "Not_A_Label-"+secretMarker))))},
		{"workload before sync", notSynced, PathMutateWorkload, review(deployReviewRaw("team", "web", withEnv(merge(secretAnn, rules.AnnotationDependsOn, "api:8080"))))},
	}
	for _, r := range requests {
		before := len(buf.String())
		r.server.postBytes(t, r.path, r.body)
		out := buf.String()[before:]
		if strings.Contains(out, secretMarker) {
			t.Errorf("%s: the log holds request content:\n%s", r.name, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if len(line) > 1024 {
				t.Errorf("%s: a log line of %d bytes; an info line names things, it does not dump them:\n%s", r.name, len(line), clip(line, 400))
			}
		}
	}
	// The denials are logged, so the test saw the lines that matter.
	for _, msg := range []string{`"denied NetworkPolicy"`, `"denied workload with invalid netguard annotations"`, `"rejecting malformed or unresolvable request"`} {
		if !strings.Contains(buf.String(), msg) {
			t.Errorf("no %s line at info; log:\n%s", msg, buf.String())
		}
	}
}
