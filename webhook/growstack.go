package webhook

// A review is judged on the goroutine the HTTP server starts for it (HTTP/2
// starts one per request), whose stack starts small. Decoding the review
// and judging it go deep, so the runtime grows the stack several times per
// request, each time copying every frame already on it and adjusting their
// pointers: about a tenth of netguard's CPU at saturation
// (hack/bench/history.md, section 18). growStack, called first, grows the
// stack once, while it holds a few frames, to a size the review needs, so
// the deep calls find room and nothing deep is ever copied. The same trick
// is used by other Go servers with deep per-request work (CockroachDB's
// growstack package).

// reviewStackBytes is what growStack makes room for: more than decoding and
// judging a typical review uses (BenchmarkServeOnNewGoroutines measures it).
const reviewStackBytes = 32 << 10

// growStack needs a frame of reviewStackBytes; the runtime grows the stack
// to fit it in one step. It must not be inlined, or its frame would be the
// caller's.
//
//go:noinline
func growStack() {
	var buf [reviewStackBytes]byte
	stackSink(buf[:])
}

// stackSink keeps the compiler from dropping growStack's buffer.
//
//go:noinline
func stackSink(b []byte) { _ = b[len(b)-1] }
