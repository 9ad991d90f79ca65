package proxy

import (
	"errors"
	"io"
	"time"

	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/spool"
)

// Transfer is one request, mail or transfer crossing the gateway, with
// the objects it carries, as every service takes it:
//
//	t := p.Begin(&logs.Access{...what the protocol knows...})
//	defer t.End()                        // the access record, written once
//	o := t.Object()                      // a body, a mail, a file
//	over, err := o.Fill(body, progress)  // the spool, max_scan_size, the engine's follow
//	out := o.Judge(proxy.Subject{...})   // or o.Oversize: the one pipeline, decided
//	switch out.Delivery { ... }          // the protocol's answer, in its words
//
// The transfer owns the access record (created by Begin, written by End
// and nowhere else) and, through its objects, their spool files and the
// engine's follow of them, all given back by End. The protocol keeps what
// is its own: reading its framing, keeping its client waiting, and saying
// the decision in its words; it sets the record's protocol fields
// (status, bytes) on Rec.
type Transfer struct {
	// Rec is the access record, written by End.
	Rec *logs.Access

	c     *Common
	objs  []*Object
	urls  []string // a line for each (EachURL)
	codes []int    // each line's status, when they differ (EachStatus)
	ended bool
}

// Begin starts a transfer with its access record as the protocol knows
// it so far (Start: now when unset); from here the record is the
// transfer's.
func (c *Common) Begin(rec *logs.Access) *Transfer {
	if rec.Start.IsZero() {
		rec.Start = time.Now()
	}
	return &Transfer{Rec: rec, c: c}
}

// Object is one object a transfer carries (an HTTP request carries an
// upload and a download): its spool file and the engine's follow of it.
type Object struct {
	// Rec is the transfer's access record.
	Rec *logs.Access

	t      *Transfer
	file   *spool.File
	follow follow
	closed bool
}

// Object adds an object to the transfer.
func (t *Transfer) Object() *Object {
	o := &Object{Rec: t.Rec, t: t, follow: follow{C: t.c}}
	t.objs = append(t.objs, o)
	return o
}

// Skips tells whether a skip list lets the transfer's object of m pass
// unscanned, and if so says so in the record (never as clean).
func (t *Transfer) Skips(m scanner.Meta) bool { return t.c.skips(m, t.Rec) }

// EachURL has End write the record once for each of urls, with that URL
// (a mail: a line per recipient, "mail:<rcpt>").
func (t *Transfer) EachURL(urls []string) { t.urls = urls }

// EachStatus gives each line of EachURL its own status (an LMTP next
// hop answers each recipient of a mail for itself); the record's Status
// stands for a line whose code is 0.
func (t *Transfer) EachStatus(codes []int) { t.codes = codes }

// End writes the access record (its elapsed time now), and gives back
// the objects' spool files and follows. Safe to call twice.
func (t *Transfer) End() {
	if t.ended {
		return
	}
	t.ended = true
	for _, o := range t.objs {
		o.Close()
	}
	t.Rec.Elapsed = time.Since(t.Rec.Start)
	if t.urls == nil {
		t.c.Logs.Access(t.Rec)
		return
	}
	for i, u := range t.urls {
		rec := *t.Rec
		rec.URL = u
		if i < len(t.codes) && t.codes[i] != 0 {
			rec.Status = t.codes[i]
		}
		t.c.Logs.Access(&rec)
	}
}

// Spool makes the object's spool file. A failure (a full disk) is logged
// once a minute, the record says "spool failure", and err is the
// spool.Failure, whose words reach no client.
func (o *Object) Spool() (*spool.File, error) {
	if o.file != nil {
		return o.file, nil
	}
	c := o.t.c
	f, err := c.Spool.Create(c.Svc.Name)
	if o.Failed(err) {
		return nil, err
	}
	o.file = f
	return f, nil
}

// Fill spools r until it ends or the file holds more than max_scan_size
// (over: r has more, still to be read), the engine following the file as
// it grows; progress, if set, is called after each write. A spool
// failure is logged and said in the record (SpoolFailure tells it from
// the source's error).
func (o *Object) Fill(r io.Reader, progress func()) (over bool, err error) {
	f, err := o.Spool()
	if err != nil {
		return false, err
	}
	over, err = f.Fill(r, o.t.c.Svc.MaxScanSize, func() {
		o.follow.Grew(f)
		if progress != nil {
			progress()
		}
	})
	o.Failed(err)
	return over, err
}

// Failed tells whether err is the spool's own failure (a full disk, no
// descriptor left), and if so logs it (once a minute) and says it in the
// record: for the protocols that write the spool file themselves (a POP3
// mail unstuffed, an SMTP DATA made CRLF) as for Spool and Fill.
func (o *Object) Failed(err error) bool {
	if !o.t.c.SpoolFailed(err) {
		return false
	}
	o.Rec.Action, o.Rec.Detail = "NONE", "spool failure"
	return true
}

// SpoolFailure tells whether err is the spool's (the disk), not the
// source's.
func SpoolFailure(err error) bool {
	var f *spool.Failure
	return errors.As(err, &f)
}

// File is the spooled object (nil before Spool or Fill).
func (o *Object) File() *spool.File { return o.file }

// Coded says that the object has these content codings (HTTP
// Content-Encoding): the engine does not follow it as it is spooled,
// since the scan sees it decoded.
func (o *Object) Coded(codings []string) { o.follow.Codings = codings }

// Judge runs the one pipeline on the spooled object, decides, and fills
// the record: sub says what is known of it; its File is the object's,
// with the engine's follow of it.
func (o *Object) Judge(sub Subject) Outcome {
	sub.File, sub.Follow = o.file, o.follow.Following()
	return o.t.c.inspect(&sub, o.Rec)
}

// Oversize is the outcome of an object past max_scan_size (what, if
// set, names it: "mail", "upload"); the engine's follow ends here.
func (o *Object) Oversize(what string) Outcome {
	o.follow.Close()
	return o.t.c.oversize(o.Rec, what)
}

// Close gives back the object's spool file and follow before the
// transfer ends (End does it otherwise). Safe to call twice.
func (o *Object) Close() {
	if o.closed {
		return
	}
	o.closed = true
	o.follow.Close()
	if o.file != nil {
		o.file.Close()
	}
}
