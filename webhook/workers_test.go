package webhook

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// The worker tests run in a synctest bubble: the idle timeout passes on the
// bubble's clock, and synctest.Wait replaces the sleeps that let a worker
// get back to waiting.

func TestWorkersRunEveryJobAndWaitForIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newWorkers(time.Minute)
		var n atomic.Int64
		var wg sync.WaitGroup
		for range 200 {
			wg.Go(func() {
				done := false
				p.do(func() {
					time.Sleep(time.Millisecond) // jobs overlap
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
		time.Sleep(time.Minute) // the idle workers exit before the bubble ends
	})
}

func TestWorkersReuseIdleGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newWorkers(time.Minute)
		p.do(func() {})
		synctest.Wait() // the worker is back to waiting
		before := runtime.NumGoroutine()
		for range 100 {
			p.do(func() {})
			synctest.Wait()
		}
		if after := runtime.NumGoroutine(); after != before {
			t.Fatalf("goroutines went from %d to %d for sequential jobs: idle workers were not reused", before, after)
		}
		time.Sleep(time.Minute) // the idle worker exits before the bubble ends
	})
}

func TestWorkersExitWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const idle = 20 * time.Millisecond
		p := newWorkers(idle)
		synctest.Wait()
		before := runtime.NumGoroutine()
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() { p.do(func() { time.Sleep(5 * time.Millisecond) }) })
		}
		wg.Wait()
		synctest.Wait()
		if n := runtime.NumGoroutine(); n <= before {
			t.Fatalf("%d goroutines right after the jobs, %d before: no worker waits for the next job", n, before)
		}
		time.Sleep(idle)
		synctest.Wait()
		if n := runtime.NumGoroutine(); n != before {
			t.Fatalf("%d goroutines %s after the jobs, %d before: idle workers did not exit", n, idle, before)
		}
	})
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
