package http

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsigkd/fsigkd/internal/coding"
	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/spool"
)

// download delivers one response body to the client: after the verdict,
// or trickled while it is awaited (see the package doc).
type download struct {
	s          *session
	resp       *Response
	head       Header
	url        string
	clientKeep bool
	start      time.Time

	rangeSpec string // the client's Range, served from the scanned object

	headSent    bool
	chunked     bool // the client gets chunks (length unknown when the head went)
	closeDelim  bool // the client's body ends with the connection
	sent        int64
	lastTrickle time.Time

	// Trickling sends only bytes a scan has cleared.
	prefix proxy.Prefix
}

// newDownload is the download of resp, the answer to req, whose head
// goes to the client as head.
func (s *session) newDownload(req *Request, resp *Response, head Header, t target, encodings []string, clientKeep bool) *download {
	d := &download{s: s, resp: resp, head: head, url: t.url, clientKeep: clientKeep, start: time.Now()}
	d.prefix = proxy.Prefix{C: &s.p.Common, Codings: coding.List(encodings),
		Meta: scanner.Meta{Service: "http", URL: t.url, Client: s.client}, Hold: s.p.Svc.HoldBack}
	if resp.Status == 200 && len(req.Header.Values("Range")) == 1 && req.Header.Get("If-Range") == "" {
		// Fetched whole (Range is not forwarded) and scanned whole; the
		// client still gets the part it asked for.
		d.rangeSpec = req.Header.Get("Range")
	}
	return d
}

func (d *download) trickling() bool { return d.s.p.Svc.TrickleAfter > 0 }

// progress is called as the body arrives.
func (d *download) progress(f *spool.File) {
	if !d.trickling() {
		return
	}
	d.tick(f)
}

func (d *download) tick(f *spool.File) {
	now := time.Now()
	if !d.headSent {
		if now.Sub(d.start) < d.s.p.Svc.TrickleAfter {
			return
		}
		if d.sendHead() != nil {
			return
		}
	}
	if now.Sub(d.lastTrickle) < d.s.p.Svc.TrickleInterval {
		return
	}
	d.lastTrickle = now
	n := min(d.s.p.Svc.TrickleBytes, f.Size()-d.s.p.Svc.HoldBack-d.sent)
	if n > 0 && d.sent+n > d.prefix.Cleared {
		d.prefix.Clear(f, f.Size(), d.sent, clearAhead*d.s.p.Svc.TrickleBytes)
	}
	if n = min(n, d.prefix.Cleared-d.sent); n > 0 {
		d.sendRange(f, d.sent, n)
	}
}

// clearAhead is how many trickles one check clears at once.
const clearAhead = 16

// sendHead sends the response head before the body is judged, with the
// length when the server gave one, chunked or to-the-close otherwise.
func (d *download) sendHead() error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", d.resp.Status, d.resp.Reason)
	d.head.write(&b)
	switch {
	case !d.resp.Chunked && d.resp.ContentLength >= 0:
		fmt.Fprintf(&b, "Content-Length: %d\r\n", d.resp.ContentLength)
	case d.clientKeep:
		d.chunked = true
		b.WriteString("Transfer-Encoding: chunked\r\n")
	default:
		d.closeDelim = true
	}
	if !d.clientKeep || d.closeDelim {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	d.s.c.SetWriteDeadline(time.Now().Add(d.s.p.Global.SendfileTimeout))
	_, err := d.s.c.Write(b.Bytes())
	d.s.c.SetWriteDeadline(time.Time{})
	d.headSent = true
	return err
}

// sendRange sends n bytes of f from off, framed for the client.
func (d *download) sendRange(f *spool.File, off, n int64) error {
	if d.chunked {
		if _, err := fmt.Fprintf(d.s.c, "%x\r\n", n); err != nil {
			return err
		}
	}
	w, err := d.s.p.Send(d.s.log, d.s.c, f, off, n, d.url)
	d.sent += w
	if err != nil {
		return err
	}
	if d.chunked {
		_, err = io.WriteString(d.s.c, "\r\n")
	}
	return err
}

// scanWhileTrickling runs judge, trickling meanwhile when the download has
// gone on long enough. The scan runs in the session's own goroutine,
// whose stack has grown to what a scan needs once in the session's life;
// the trickle runs on a timer's goroutine, which exists only once the
// scan has taken a trickle period (most scans take far less: a goroutine
// and a ticker made and stopped for each object were, by strace and perf
// of 1 KiB objects, wake-ups and scheduling for nothing). (The other way
// round, a new goroutine scanning each object grew its stack two or three
// times an object: by perf, 4 to 8% of the worker's time on 1 KiB
// objects.)
func (d *download) scanWhileTrickling(f *spool.File, judge func() (bool, string, string)) (bool, string, string) {
	if !d.trickling() {
		return judge()
	}
	period := min(d.s.p.Svc.TrickleInterval, time.Second)
	var mu sync.Mutex // held by a tick; judged says the session goes on
	judged := false
	var t *time.Timer
	mu.Lock() // t is set before a tick reads it
	t = time.AfterFunc(period, func() {
		mu.Lock()
		defer mu.Unlock()
		if !judged {
			d.tick(f)
			t.Reset(period)
		}
	})
	mu.Unlock()
	pass, name, reason := judge()
	mu.Lock() // a tick under way is done with d before the session goes on
	judged = true
	t.Stop()
	mu.Unlock()
	return pass, name, reason
}

// finish delivers the judged body; false closes the client connection.
func (d *download) finish(f *spool.File, tr *proxy.Transfer) bool {
	size := f.Size()
	if !d.headSent {
		if first, last, ok := parseRange(d.rangeSpec, size); ok {
			return d.partial(f, first, last, tr)
		}
		// The head and the whole body (a small one in the same write).
		b := headOf(d.resp, d.head, size, d.clientKeep)
		sent, err := d.s.p.SendAfter(d.s.log, d.s.c, b.Bytes(), f, d.url)
		heads.Put(b)
		d.headSent, d.sent, tr.Rec.Bytes = true, sent, sent
		if err != nil {
			return false
		}
		return !d.closeDelim
	}
	if size > d.sent {
		if err := d.sendRange(f, d.sent, size-d.sent); err != nil {
			return false
		}
	}
	tr.Rec.Bytes = d.sent
	if d.chunked {
		if _, err := io.WriteString(d.s.c, "0\r\n\r\n"); err != nil {
			return false
		}
	}
	return !d.closeDelim
}

// passRest delivers a body unscanned (over max_scan_size, or skip-listed):
// what was spooled (f; nil: nothing), then the rest as it comes.
func (d *download) passRest(f *spool.File, rest io.Reader, tr *proxy.Transfer) bool {
	if !d.headSent {
		if d.resp.ContentLength < 0 && !d.clientKeep {
			d.closeDelim = true
		}
		if d.sendHead() != nil {
			return false
		}
	}
	if f != nil && f.Size() > d.sent && d.sendRange(f, d.sent, f.Size()-d.sent) != nil {
		return false
	}
	var w io.Writer = d.s.c
	var cw *chunkWriter
	if d.chunked {
		cw = &chunkWriter{w: d.s.c}
		w = cw
	}
	n, err := io.Copy(w, rest)
	d.sent += n
	tr.Rec.Bytes = d.sent
	if err != nil {
		d.abort()
		return false
	}
	if cw != nil && cw.Close() != nil {
		return false
	}
	return !d.closeDelim
}

// abort cuts the client connection with a reset, so that a partly sent
// object can never be taken for a whole one.
func (d *download) abort() { proxy.Reset(d.s.c) }

// refuse ends a download that may not go on: cut (abort) when its head
// went to the client already (trickled), else answered by say.
func (d *download) refuse(say func()) {
	if d.headSent {
		d.abort()
		return
	}
	say()
}

// partial sends bytes first..last of the scanned object as a 206.
func (d *download) partial(f *spool.File, first, last int64, tr *proxy.Transfer) bool {
	resp := *d.resp
	resp.Status, resp.Reason = 206, "Partial Content"
	head := append(Header(nil), d.head...)
	head.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, f.Size()))
	tr.Rec.Status = 206
	if d.s.writeHead(&resp, head, last-first+1, d.clientKeep) != nil {
		return false
	}
	d.headSent = true
	n, err := d.s.p.Send(d.s.log, d.s.c, f, first, last-first+1, d.url)
	tr.Rec.Bytes = n
	return err == nil
}

// parseRange reads a single byte range (RFC 9110 14.1.2): "bytes=a-b",
// "bytes=a-" or "bytes=-n", within size. Anything else (several ranges,
// other units, unsatisfiable) is not ok: the whole object is sent.
func parseRange(spec string, size int64) (first, last int64, ok bool) {
	r, found := strings.CutPrefix(strings.TrimSpace(spec), "bytes=")
	if !found || strings.Contains(r, ",") || size == 0 {
		return 0, 0, false
	}
	a, b, found := strings.Cut(strings.TrimSpace(r), "-")
	if !found {
		return 0, 0, false
	}
	var err error
	switch {
	case a == "":
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false
		}
		first, last = max(size-n, 0), size-1
	case b == "":
		if first, err = strconv.ParseInt(a, 10, 64); err != nil || first < 0 || first >= size {
			return 0, 0, false
		}
		last = size - 1
	default:
		if first, err = strconv.ParseInt(a, 10, 64); err != nil || first < 0 || first >= size {
			return 0, 0, false
		}
		if last, err = strconv.ParseInt(b, 10, 64); err != nil || last < first {
			return 0, 0, false
		}
		last = min(last, size-1)
	}
	return first, last, true
}
