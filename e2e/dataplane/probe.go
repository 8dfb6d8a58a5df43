package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Observation is what one probe saw.
type Observation struct {
	// Connected: the TCP handshake completed, or the UDP datagram was echoed.
	Connected bool
	// Verdict is the dataplane's verdict on the connection's first packet:
	// "accept" or "drop".
	Verdict string
	// Took is the time from the first packet to the answer or the verdict.
	Took time.Duration
}

func (o Observation) String() string {
	if o.Connected {
		return fmt.Sprintf("connected in %s (dataplane verdict: %s)", o.Took.Round(10*time.Microsecond), o.Verdict)
	}
	return fmt.Sprintf("blocked in %s (dataplane verdict: %s)", o.Took.Round(10*time.Microsecond), o.Verdict)
}

// ProbeTimeout bounds one probe. A connection that neither completes nor
// gets a verdict within it is an error, not a "blocked": the dataplane did
// not read its queue or the plumbing is broken.
const ProbeTimeout = 5 * time.Second

// Probe opens one connection from h to dst on port ("TCP" or "UDP") and
// reports whether it connected and the dataplane's verdict. Nothing is
// inferred from silence: blocked means the dataplane logged a drop for this
// very connection, and connected means it also logged an accept. The
// destination must listen (Host.Listen); a refusal is an error.
func (h *Host) Probe(ctx context.Context, verdicts *Verdicts, dst netip.Addr, port int, proto string) (Observation, error) {
	proto = strings.ToUpper(proto)
	flow := Flow{Src: h.IP, Dst: dst, SrcPort: h.sourcePort(), DstPort: port, Proto: proto}
	ch, stop := verdicts.Watch(flow)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()

	type result struct {
		err  error
		took time.Duration
	}
	done := make(chan result, 1)
	raddr := net.JoinHostPort(dst.String(), strconv.Itoa(port))
	dialCtx, cancelDial := context.WithCancel(ctx)
	defer cancelDial()
	go func() {
		err := InNetNS(h.netnsPath(), func() error {
			start := time.Now()
			var err error
			switch proto {
			case "TCP":
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: h.IP.AsSlice(), Port: flow.SrcPort}}
				var c net.Conn
				c, err = d.DialContext(dialCtx, "tcp4", raddr)
				if err == nil {
					_ = c.Close()
				}
			case "UDP":
				err = udpEcho(dialCtx, h.IP, flow.SrcPort, raddr)
			default:
				err = fmt.Errorf("protocol %q: only TCP and UDP", proto)
			}
			done <- result{err: err, took: time.Since(start)}
			return nil
		})
		if err != nil {
			done <- result{err: err}
		}
	}()

	var verdict string
	for {
		select {
		case v := <-ch:
			verdict = v
			if v == "drop" {
				cancelDial()
				r := <-done
				if r.err == nil {
					return Observation{}, fmt.Errorf("%s -> %s: the dataplane dropped the first packet, yet the connection completed", h.Name, raddr)
				}
				return Observation{Verdict: v, Took: r.took}, nil
			}
		case r := <-done:
			switch {
			case r.err == nil:
				// The handshake needs the accepted first packet, but its log
				// line may trail the answer by a moment.
				if verdict == "" {
					select {
					case verdict = <-ch:
					case <-time.After(2 * time.Second):
						return Observation{}, fmt.Errorf("%s -> %s/%s connected, but the dataplane logged no verdict for it: its packets do not go through the queue", h.Name, raddr, proto)
					}
				}
				if verdict != "accept" {
					return Observation{}, fmt.Errorf("%s -> %s/%s connected, but the dataplane's verdict was %q", h.Name, raddr, proto, verdict)
				}
				return Observation{Connected: true, Verdict: verdict, Took: r.took}, nil
			case errors.Is(r.err, syscall.ECONNREFUSED):
				return Observation{}, fmt.Errorf("%s -> %s/%s: refused: nothing listens there", h.Name, raddr, proto)
			default:
				// Cancelled by a drop that is about to arrive, or a timeout.
				select {
				case v := <-ch:
					if v == "drop" {
						return Observation{Verdict: v, Took: r.took}, nil
					}
				case <-time.After(100 * time.Millisecond):
				}
				return Observation{}, fmt.Errorf("%s -> %s/%s: no answer and no verdict from the dataplane within %s (%v): is it reading queue %d?", h.Name, raddr, proto, ProbeTimeout, r.err, h.dp.queueOrZero())
			}
		}
	}
}

func (dp *Dataplane) queueOrZero() int {
	if dp == nil {
		return 0
	}
	return dp.Queue
}

func udpEcho(ctx context.Context, src netip.Addr, sport int, raddr string) error {
	d := net.Dialer{LocalAddr: &net.UDPAddr{IP: src.AsSlice(), Port: sport}}
	c, err := d.DialContext(ctx, "udp4", raddr)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	msg := []byte("netguard-dataplane " + strconv.Itoa(sport))
	buf := make([]byte, 512)
	// A datagram the dataplane accepts can still be lost; ask again a few
	// times before the caller's deadline.
	for {
		if _, err := c.Write(msg); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := c.Read(buf)
		if err == nil && string(buf[:n]) == string(msg) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			return err
		}
	}
}
