package webhook

import (
	"context"
	"testing"
	"testing/synctest"
)

// TestRequestContextSurvivesTheServersStop: a request the server has read is
// finished when netguard stops (its base context ends while draining), while
// a client going away outside draining still ends it.
func TestRequestContextSurvivesTheServersStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &Server{}

		parent, cancel := context.WithCancel(context.Background())
		ctx := s.requestContext(parent)
		cancel()
		synctest.Wait() // the AfterFunc has run
		if ctx.Err() == nil {
			t.Fatal("outside draining, the review's context did not end with the client's")
		}

		s.StartDraining()
		parent, cancel = context.WithCancel(context.Background())
		ctx = s.requestContext(parent)
		cancel()
		synctest.Wait()
		if err := ctx.Err(); err != nil {
			t.Fatalf("while draining, the server's stop ended a review it had read: %v", err)
		}
	})
}
