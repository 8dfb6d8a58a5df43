package webhook

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWorkersRunEveryJobAndWaitForIt(t *testing.T) {
	p := newWorkers(time.Minute)
	var n atomic.Int64
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			done := false
			p.do(func() {
				time.Sleep(time.Millisecond)
				n.Add(1)
				done = true
			})
			if !done {
				t.Error("do returned before its job finished")
			}
		})
	}
	wg.Wait()
	if n.Load() != 200 {
		t.Fatalf("ran %d jobs, want 200", n.Load())
	}
}

func TestWorkersReuseIdleGoroutines(t *testing.T) {
	p := newWorkers(time.Minute)
	p.do(func() {})
	before := runtime.NumGoroutine()
	for range 100 {
		time.Sleep(time.Millisecond) // the last worker gets back to waiting
		p.do(func() {})
	}
	if after := runtime.NumGoroutine(); after > before+2 {
		t.Fatalf("goroutines grew from %d to %d for sequential jobs: idle workers were not reused", before, after)
	}
}

func TestWorkersExitWhenIdle(t *testing.T) {
	p := newWorkers(20 * time.Millisecond)
	before := runtime.NumGoroutine()
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { p.do(func() { time.Sleep(5 * time.Millisecond) }) })
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines a while after the jobs, %d before: idle workers did not exit", n, before)
	}
}

func TestWorkersRaisePanicsInTheCaller(t *testing.T) {
	p := newWorkers(time.Minute)
	defer func() {
		if r := recover(); r != "boom" {
			t.Fatalf("recovered %v, want boom", r)
		}
		// The worker survives and serves the next job.
		ran := false
		p.do(func() { ran = true })
		if !ran {
			t.Fatal("no job ran after a panic")
		}
	}()
	p.do(func() { panic("boom") })
}
