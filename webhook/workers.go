package webhook

import (
	"sync"
	"time"
)

// workers runs each admission request on a goroutine that served earlier
// ones, so that its stack is already grown.
//
// The HTTP/2 server starts a goroutine per request, with a small stack.
// Decoding an AdmissionReview and the object in it recurses deeply, so each
// new goroutine grew its stack several times, copying it each time:
// profiles of netguard under load put a tenth of its CPU in
// runtime.copystack (BENCHMARKS.md, section 5). grpc-go reuses stream
// goroutines for the same reason.
//
// No request ever waits for a worker: when none is idle a new one starts.
// Idle workers wait for the next request and exit after idleTimeout, so the
// pool follows the load.
type workers struct {
	work        chan func()
	idleTimeout time.Duration
}

func newWorkers(idleTimeout time.Duration) *workers {
	return &workers{work: make(chan func()), idleTimeout: idleTimeout}
}

// do runs f on a worker and returns when f has returned. A panic in f is
// raised again in the caller, where net/http handles it as before.
func (p *workers) do(f func()) {
	var (
		wg        sync.WaitGroup
		recovered any
	)
	wg.Add(1)
	job := func() {
		defer wg.Done()
		defer func() { recovered = recover() }()
		f()
	}
	select {
	case p.work <- job:
	default:
		go p.worker(job)
	}
	wg.Wait()
	if recovered != nil {
		panic(recovered)
	}
}

func (p *workers) worker(job func()) {
	idle := time.NewTimer(p.idleTimeout)
	defer idle.Stop()
	for {
		job()
		idle.Reset(p.idleTimeout)
		select {
		case job = <-p.work:
		case <-idle.C:
			return
		}
	}
}
