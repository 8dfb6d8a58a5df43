package webhook

// A review is judged on the goroutine the HTTP server starts for it (HTTP/2
// starts one per request), whose stack starts small. Decoding the review
// and judging it go deep, so the runtime would grow the stack several times
// per request, each time copying every frame already on it and adjusting
// their pointers: about a tenth of netguard's CPU at saturation
// (hack/bench/history.md, section 18). A grow function, called first, grows
// the stack once, while it holds a few frames, to the size the review
// needs, so that the deep calls find room and nothing deep is copied. The
// same trick is used by other Go servers with deep per-request work
// (CockroachDB's growstack package).
//
// The runtime doubles a stack until the new frame fits, and keeps stacks of
// up to 16 KiB in per-processor caches; larger ones come from the heap,
// under its lock. So the sizes are chosen to land on a stack of 16 KiB for a
// NetworkPolicy review (decoding and judging fit) and of 32 KiB for a
// workload review (generating the policies goes deeper), never on 64 KiB:
// BenchmarkServeOnNewGoroutines measures both.

// growStack16 grows the stack to 16 KiB. It must not be inlined, or its
// frame would be the caller's.
//
//go:noinline
func growStack16() {
	var buf [12 << 10]byte
	stackSink(buf[:])
}

// growStack32 grows the stack to 32 KiB.
//
//go:noinline
func growStack32() {
	var buf [28 << 10]byte
	stackSink(buf[:])
}

// stackSink keeps the compiler from dropping a grow function's buffer.
//
//go:noinline
func stackSink(b []byte) { _ = b[len(b)-1] }
