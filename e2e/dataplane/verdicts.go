package dataplane

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
)

// Flow names the first packet of a connection, as the dataplane logs it.
type Flow struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort int
	// Proto is "TCP", "UDP" or "SCTP".
	Proto string
}

// Verdicts follows kube-network-policies' JSON log (-v=2 logs each packet it
// evaluates and its verdict) and hands each verdict to whoever waits for that
// flow. A probe thereby knows a connection was dropped the moment it is,
// instead of waiting for a timeout, and knows that the dataplane saw every
// connection that succeeded.
type Verdicts struct {
	mu      sync.Mutex
	pending map[uint32]Flow
	waiters map[Flow]chan string
	synced  chan struct{}
	once    sync.Once
	copyTo  io.Writer
}

type logLine struct {
	Msg    string `json:"msg"`
	Packet *struct {
		ID      uint32
		SrcIP   string
		DstIP   string
		Proto   string
		SrcPort int
		DstPort int
	} `json:"packet"`
	ID      *uint32 `json:"id"`
	Verdict string  `json:"verdict"`
}

// TailVerdicts follows path until ctx ends. fromEnd skips what the file
// already holds (a probe joining a running dataplane); otherwise it reads from
// the start, so that the "Caches are synced" line is seen. copyTo, when set,
// receives every line.
func TailVerdicts(ctx context.Context, path string, fromEnd bool, copyTo io.Writer) (*Verdicts, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if fromEnd {
		if _, err := f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return nil, err
		}
	}
	v := &Verdicts{pending: map[uint32]Flow{}, waiters: map[Flow]chan string{}, synced: make(chan struct{}), copyTo: copyTo}
	go v.follow(ctx, f)
	return v, nil
}

// Synced is closed once the dataplane logged that its caches are synced; it
// drops or admits nothing correctly before that.
func (v *Verdicts) Synced() <-chan struct{} { return v.synced }

func (v *Verdicts) follow(ctx context.Context, f *os.File) {
	defer f.Close()
	r := bufio.NewReader(f)
	var partial []byte
	for {
		line, err := r.ReadBytes('\n')
		partial = append(partial, line...)
		if errors.Is(err, io.EOF) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return
		}
		v.handle(partial)
		partial = nil
	}
}

func (v *Verdicts) handle(b []byte) {
	if v.copyTo != nil {
		_, _ = v.copyTo.Write(b)
	}
	var l logLine
	if json.Unmarshal(b, &l) != nil {
		return
	}
	switch {
	case strings.Contains(l.Msg, "Caches are synced"):
		v.once.Do(func() { close(v.synced) })
	case l.Msg == "Evaluating packet" && l.Packet != nil:
		src, err1 := netip.ParseAddr(l.Packet.SrcIP)
		dst, err2 := netip.ParseAddr(l.Packet.DstIP)
		if err1 != nil || err2 != nil {
			return
		}
		v.mu.Lock()
		v.pending[l.Packet.ID] = Flow{Src: src.Unmap(), Dst: dst.Unmap(), SrcPort: l.Packet.SrcPort, DstPort: l.Packet.DstPort, Proto: l.Packet.Proto}
		v.mu.Unlock()
	case l.Msg == "Finished syncing packet" && l.ID != nil:
		v.mu.Lock()
		flow, ok := v.pending[*l.ID]
		delete(v.pending, *l.ID)
		ch := v.waiters[flow]
		v.mu.Unlock()
		if ok && ch != nil {
			select {
			case ch <- l.Verdict:
			default:
			}
		}
	}
}

// Watch returns a channel that receives the verdicts ("accept" or "drop")
// for flow, and a function to stop watching.
func (v *Verdicts) Watch(flow Flow) (<-chan string, func()) {
	ch := make(chan string, 4)
	v.mu.Lock()
	v.waiters[flow] = ch
	v.mu.Unlock()
	return ch, func() {
		v.mu.Lock()
		if v.waiters[flow] == ch {
			delete(v.waiters, flow)
		}
		v.mu.Unlock()
	}
}
