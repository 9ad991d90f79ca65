package proxy

import (
	"context"
	"io"

	"github.com/fsigkd/fsigkd/internal/coding"
	"github.com/fsigkd/fsigkd/outcome"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/spool"
)

// Prefix clears the bytes of a body still arriving that may go to the
// client before the verdict (the HTTP proxy's trickle, the ICAP server's
// early answer): bytes go early only when a scan of everything up to Hold
// past them (decoded, for a coded body, as the client will decode it)
// found nothing. Hold must exceed the longest signature, so that any
// match that starts in the bytes sent ends in the bytes scanned. A check
// of an uncoded body reads the bytes not checked yet and Hold before
// them; containers wait for the final scan of the whole object, which
// still decides: a detection then cuts the connection, so that what went
// early never makes a whole object.
type Prefix struct {
	C       *Common
	Codings []string // the body's content codings
	Meta    scanner.Meta
	Hold    int64

	// Cleared is how many bytes of the body as sent may go to the client.
	Cleared int64
	// scanned: the body's first scanned bytes were found clean (uncoded
	// bodies; a coded one is decoded, and so scanned, from its start).
	scanned int64
	// NoMore: a check found something, or cannot be made; nothing more
	// goes early.
	NoMore bool
}

// Clear scans a prefix of f, whose first size bytes are written,
// reaching step bytes past sent (and Hold beyond), and moves Cleared.
func (p *Prefix) Clear(f *spool.File, size, sent, step int64) {
	if p.NoMore {
		return
	}
	hold := p.Hold
	want := min(size, sent+step+hold) // the body bytes checked
	// Only what was not checked yet, and hold before it, so that a match
	// that ends in the new bytes starts in what is scanned: a check costs
	// the new bytes, not the whole prefix again (a 100 MiB answer through
	// ICAP was hundreds of ever longer scans). Formats that need the start
	// (archives, anchored signatures) wait for the final scan, which
	// decides in any case.
	from := max(0, p.scanned-hold)
	var r io.Reader = io.NewSectionReader(f, from, want-from)
	if len(p.Codings) > 0 {
		// A coded prefix: what it decodes to, and twice as much of it to
		// leave room for the coding's own overhead.
		want = min(size, sent+step+2*hold)
		dec, err := coding.Reader(io.NewSectionReader(f, 0, want), p.Codings)
		if err != nil {
			p.NoMore = true
			return
		}
		defer dec.Close()
		r = dec
	}
	pf, err := p.C.Spool.Create(p.C.Svc.Name)
	if err != nil {
		return
	}
	defer pf.Close()
	pf.Fill(r, p.C.Svc.MaxScanSize, nil) // a cut coding decodes as far as it goes
	ctx, cancel := context.WithTimeout(context.Background(), p.C.Global.AVTimeout)
	defer cancel()
	obj := objectOf(pf, p.Meta) // a small prefix in memory, as any small object
	obj.Partial = true
	v, err := p.C.Scanner.Scan(ctx, obj)
	// A cut archive does not open; the prefix's own type does show.
	found := resultOf(v)
	if err != nil {
		found = notScanned(err)
	} else if rule, _ := p.C.ruleOf(v, obj, ""); rule != "" {
		found = outcome.Result{Kind: outcome.Blocked, Name: rule}
	}
	if outcome.Decide(found, p.C.settings).Delivery != outcome.Deliver {
		// A detection, or a type or name rule refusing what the prefix
		// holds: the final scan decides, and nothing more goes early.
		p.NoMore = true
		return
	}
	if len(p.Codings) == 0 {
		p.scanned = max(p.scanned, want)
		p.Cleared = max(p.Cleared, want-hold)
		return
	}
	// The most of the coded prefix whose own decoding stays Hold short of
	// what was scanned.
	for c := min(want, sent+step); c > p.Cleared; c = sent + (c-sent)/2 {
		if decodedLen(f, c, p.Codings)+hold <= pf.Size() {
			p.Cleared = c
			return
		}
		if c-sent < 2 {
			return
		}
	}
}

// decodedLen is how much the first n bytes of a coded body decode to.
func decodedLen(f *spool.File, n int64, codings []string) int64 {
	r, err := coding.Reader(io.NewSectionReader(f, 0, n), codings)
	if err != nil {
		return 1 << 62
	}
	defer r.Close()
	got, _ := io.Copy(io.Discard, r)
	return got
}
