package webhook

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	configv1alpha1 "github.com/netguard/netguard/api/config/v1alpha1"
)

// maxQueueWait is how long a review waits for a free slot before it is
// shed: long enough to ride out a burst, short against the API server's
// webhook timeout (10 s by default) so that it can retry or fail closed.
const maxQueueWait = time.Second

// maxReviewTimeout bounds a review when the API server sends no timeout, or
// a longer one than it ever waits (30 s is the most timeoutSeconds allows).
const maxReviewTimeout = 30 * time.Second

// concurrencyLimit lets at most cap(slots) reviews run at once on next;
// the others wait up to maxQueueWait (or their own deadline, if sooner) and
// are then answered 429 Too Many Requests with Retry-After, never queued
// without end. The slot is taken before the body is read, so waiting
// requests hold no decoded object.
func concurrencyLimit(n int, resource string, next http.Handler) http.Handler {
	if n <= 0 {
		n = configv1alpha1.DefaultMaxConcurrentEvaluations
	}
	slots := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
		default:
			ctx, cancel := context.WithTimeout(r.Context(), maxQueueWait)
			defer cancel()
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				admissionShed.WithLabelValues(resource).Inc()
				w.Header().Set("Retry-After", "1")
				writeStatus(w, http.StatusTooManyRequests, metav1.StatusReasonTooManyRequests, fmt.Sprintf(
					"netguard is judging %d %s at once, its limit (--max-concurrent-evaluations), and no slot freed within %s; the request was shed: retry", n, resource, maxQueueWait))
				return
			}
		}
		defer func() { <-slots }()
		next.ServeHTTP(w, r)
	})
}

// reviewContext is the request's context bounded by the timeout the API
// server puts on the webhook URL (?timeout=10s, the webhook's
// timeoutSeconds): past it the API server has given up, and the work is
// wasted. Without one, or with one over maxReviewTimeout, maxReviewTimeout.
func reviewContext(r *http.Request) (context.Context, context.CancelFunc) {
	timeout := maxReviewTimeout
	if s := r.URL.Query().Get("timeout"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			// The API server sends "10s"; a bare number is seconds.
			if n, nerr := strconv.Atoi(s); nerr == nil {
				d, err = time.Duration(n)*time.Second, nil
			}
		}
		if err == nil && d > 0 && d < timeout {
			timeout = d
		}
	}
	return context.WithTimeout(r.Context(), timeout)
}
