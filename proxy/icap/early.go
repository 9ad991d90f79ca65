package icap

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/spool"
)

// Squid, given no Allow: 204 for a large object, sends about 64 KiB of
// it plus its read_ahead_gap and then waits for the answer to flow back
// before it reads more from the origin: a server that wants the whole
// object first waits for ever (Squid gives up after its io timeout). So a
// message the client wants back (no 204) is answered as it arrives: as
// soon as a scan of a prefix clears some of it (proxy.Prefix: everything
// up to hold_back past the bytes sent was scanned), the head and those
// bytes go back. A threat found in a prefix stops that before anything
// went, and the client gets the block page; the final scan of the whole
// object still decides: clean, the rest follows; otherwise the connection
// is cut (a reset), so that what went early never makes a whole object.
const checkEvery = 20 * time.Millisecond

// clearStep is how far past what was sent one prefix check reaches.
const clearStep = 256 << 10

type earlyAnswer struct {
	s       *conn
	req     *Request
	f       *spool.File     // the body spooled (o's)
	o       *proxy.Object   // the body, which spools it
	t       *proxy.Transfer // the transfer the body is of
	enabled bool            // the client did not allow 204: its message comes back
	prefix  proxy.Prefix

	started bool  // the head went
	sent    int64 // body bytes sent

	// prefixed: a prefix check found something (or could not be made)
	// before anything went back; the body so far, another object of the
	// transfer, for the verdict.
	prefixed *proxy.Object
	done     chan error // the reading of the rest of the body ends
}

// fill reads the rest of the body into f, up to max_scan_size (over says
// there is more), answering early what a scan of its prefix cleared.
func (e *earlyAnswer) fill(ch *chunks) (over bool, err error) {
	var got atomic.Int64
	got.Store(e.f.Size())
	done := make(chan error, 1)
	e.done = done
	var more bool
	go func() {
		o, err := e.o.Fill(ch, func() { got.Store(e.f.Size()) })
		more = o
		done <- err
	}()
	tick := time.NewTicker(checkEvery)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return more, err
		case <-tick.C:
			if !e.enabled {
				continue
			}
			size := got.Load()
			n := size - e.prefix.Hold - e.sent
			if n <= 0 {
				continue
			}
			if e.sent+n > e.prefix.Cleared {
				e.prefix.Clear(e.f, size, e.sent, max(n, clearStep))
				if e.prefix.NoMore && !e.started {
					return false, e.keepPrefix(size)
				}
			}
			if n = min(n, e.prefix.Cleared-e.sent); n <= 0 {
				continue
			}
			if !e.started && e.head() != nil || e.send(n) != nil {
				<-done
				return false, errEarlyBroken
			}
		}
	}
}

// keepPrefix copies the body's first size bytes, as another object of
// the transfer, for the verdict; the rest goes on being read (and
// dropped) until drain.
func (e *earlyAnswer) keepPrefix(size int64) error {
	p := e.t.Object()
	pf, err := p.Spool()
	if err != nil {
		return err
	}
	if _, err := pf.Fill(io.NewSectionReader(e.f, 0, size), 0, nil); p.Failed(err) || err != nil {
		return err
	}
	e.prefixed = p
	return nil
}

// drain waits, a little, for the rest of a body answered on its prefix,
// so that the client reads the answer before the connection closes; then
// the connection is closed, and the reading has ended before the spool
// file it wrote to is given back.
func (e *earlyAnswer) drain() {
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		e.s.c.Close()
		<-e.done
	}
}

var errEarlyBroken = fmt.Errorf("the client went away during an early answer")

// head sends the ICAP 200 and the message's own head.
func (e *earlyAnswer) head() error {
	e.started = true
	hdr, kind, body := e.req.ResHdr, "res-hdr", "res-body"
	if e.req.Method == "REQMOD" {
		hdr, kind, body = e.req.ReqHdr, "req-hdr", "req-body"
	}
	return e.s.write(fmt.Sprintf("ICAP/1.0 200 OK\r\nISTag: %s\r\nServer: fsigkd\r\nEncapsulated: %s=0, %s=%d\r\n\r\n%s", e.s.p.istag(), kind, body, len(hdr), hdr))
}

// send sends the next n body bytes as one chunk.
func (e *earlyAnswer) send(n int64) error {
	if _, err := fmt.Fprintf(&deadlineWriter{c: e.s.c, timeout: e.s.p.Global.SendfileTimeout}, "%x\r\n", n); err != nil {
		return err
	}
	w, err := e.s.p.Send(e.s.p.Log, e.s.c, e.f, e.sent, n, e.prefix.Meta.URL)
	e.sent += w
	if err != nil {
		return err
	}
	return e.s.write("\r\n")
}

// relay sends the rest of the body, as ch gives it, chunk for chunk:
// what passes max_scan_size unscanned goes by, never to disk.
func (e *earlyAnswer) relay(ch *chunks) (int64, error) {
	buf := make([]byte, 64<<10)
	w := &deadlineWriter{c: e.s.c, timeout: e.s.p.Global.SendfileTimeout}
	var n int64
	for {
		m, err := ch.Read(buf)
		if m > 0 {
			if _, werr := fmt.Fprintf(w, "%x\r\n%s\r\n", m, buf[:m]); werr != nil {
				return n, werr
			}
			n += int64(m)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// finish ends an early answer with the verdict: the rest, or a cut.
func (e *earlyAnswer) finish(out proxy.Outcome, t *proxy.Transfer) bool {
	t.Rec.Status = 200
	if !out.Delivered() {
		t.Rec.Detail = fmt.Sprintf("connection cut after %d bytes answered early", e.sent)
		e.abort()
		return false
	}
	if rest := e.f.Size() - e.sent; rest > 0 && e.send(rest) != nil {
		return false
	}
	return e.s.write("0\r\n\r\n") == nil
}

// abort cuts the connection with a reset.
func (e *earlyAnswer) abort() { proxy.Reset(e.s.c) }
