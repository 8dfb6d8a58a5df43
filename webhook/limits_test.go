package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netguard/netguard/rules"
)

// Past the bound, a review waits for a slot for at most maxQueueWait and is
// then shed with a 429 that says why, counted in netguard_admission_shed_total.
func TestConcurrencyLimitShedsPastTheBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		running := make(chan struct{}, 2)
		h := concurrencyLimit(1, "networkpolicies", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			running <- struct{}{}
			<-release
			w.WriteHeader(http.StatusOK)
		}))
		before := testutil.ToFloat64(admissionShed.WithLabelValues("networkpolicies"))

		first := httptest.NewRecorder()
		go h.ServeHTTP(first, httptest.NewRequest(http.MethodPost, PathValidateNetworkPolicy, nil))
		<-running

		// The slot is taken: the second review waits, then is shed.
		shed := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(shed, httptest.NewRequest(http.MethodPost, PathValidateNetworkPolicy, nil))
		if waited := time.Since(start); waited != maxQueueWait {
			t.Errorf("shed after %s, want after waiting %s", waited, maxQueueWait)
		}
		if shed.Code != http.StatusTooManyRequests || shed.Header().Get("Retry-After") != "1" {
			t.Fatalf("code %d, Retry-After %q; want 429 with Retry-After 1", shed.Code, shed.Header().Get("Retry-After"))
		}
		var st metav1.Status
		if err := json.Unmarshal(shed.Body.Bytes(), &st); err != nil {
			t.Fatal(err)
		}
		if st.Reason != metav1.StatusReasonTooManyRequests || !strings.Contains(st.Message, "--max-concurrent-evaluations") {
			t.Errorf("status %+v: want reason TooManyRequests and a message naming the flag", st)
		}
		if got := testutil.ToFloat64(admissionShed.WithLabelValues("networkpolicies")) - before; got != 1 {
			t.Errorf("netguard_admission_shed_total grew by %v, want 1", got)
		}

		// A review that arrives while the slot frees up gets it.
		waiting := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			h.ServeHTTP(waiting, httptest.NewRequest(http.MethodPost, PathValidateNetworkPolicy, nil))
			close(done)
		}()
		synctest.Wait()
		release <- struct{}{} // the first finishes
		<-running             // the waiting one runs
		release <- struct{}{}
		<-done
		if waiting.Code != http.StatusOK {
			t.Errorf("the review that waited for a slot: code %d, want 200", waiting.Code)
		}
	})
}

// The review's context ends at the timeout the API server puts on the URL.
func TestReviewContextHonoursTheTimeoutParameter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, c := range []struct {
			query string
			want  time.Duration
		}{
			{"?timeout=10s", 10 * time.Second},
			{"?timeout=2", 2 * time.Second},
			{"?timeout=5m", maxReviewTimeout},
			{"?timeout=nonsense", maxReviewTimeout},
			{"", maxReviewTimeout},
		} {
			ctx, cancel := reviewContext(httptest.NewRequest(http.MethodPost, PathValidateNetworkPolicy+c.query, nil))
			deadline, ok := ctx.Deadline()
			if !ok || time.Until(deadline) != c.want {
				t.Errorf("%q: deadline in %s, want %s", c.query, time.Until(deadline), c.want)
			}
			cancel()
		}
	})
}

// A review whose deadline has passed is not judged: it fails closed with a
// retryable error, never an empty (allowing) verdict.
func TestEvaluationStopsAtTheDeadline(t *testing.T) {
	v, _ := newValidator(testConfig(), map[string]map[string]string{"team": {rules.LabelEnforce: "restricted"}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	resp := v.Handle(ctx, admissionRequest(npRequest("team", npJSON(t, "team"))))
	if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusServiceUnavailable {
		t.Fatalf("got allowed=%v result=%+v, want a 503 denial", resp.Allowed, resp.Result)
	}
	if !strings.Contains(resp.Result.Message, "stopped before it finished") {
		t.Errorf("message %q does not say the evaluation stopped", resp.Result.Message)
	}
}
