package proxy

import (
	"errors"
	"fmt"
	"io"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/internal/coding"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/notify"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/spool"
)

// The one pipeline of a spooled object, for every service: admitted by
// size (oversize_action), decoded (HTTP content codings), judged (the
// scan, action, block_riskware, scan_failure), and the admin told of a
// detection. The access record is filled here, once; each protocol turns
// the Outcome into its own answer (403, 550, 554, -ERR).

// Subject is what Inspect is given.
type Subject struct {
	File *spool.File
	Meta scanner.Meta
	// Codings are the body's content codings (HTTP Content-Encoding
	// values): the scan sees the body decoded, as the client will use it.
	Codings []string
	// Notice names the object in the admin notice ("": Meta.URL): a
	// mail's subject, for instance.
	Notice string
}

// Oversize is the outcome for an object larger than max_scan_size:
// oversize_action decides, rec says so (what, if set, names the object:
// "upload", "decoded body").
func (c *Common) Oversize(rec *logs.Access, what string) Outcome {
	detail := "over max_scan_size"
	if what != "" {
		detail = what + " " + detail
	}
	c.Log.Info(detail, zap.String("object", rec.URL), zap.String("oversize_action", c.Svc.OversizeAction))
	if c.Svc.OversizeAction == "block" {
		rec.Action, rec.Detail = "DENY", detail
		return Outcome{Block: true, Oversize: true}
	}
	rec.Action, rec.Detail = "PASS", detail+" passed unscanned"
	return Outcome{Oversize: true}
}

// Inspect runs the pipeline on sub and fills rec.
func (c *Common) Inspect(sub Subject, rec *logs.Access) Outcome {
	if c.Skips(sub.Meta, rec) {
		return Outcome{Skipped: true}
	}
	f := sub.File
	obj := objectOf(f, sub.Meta)
	var damaged error // the coding broke off: the decoded body is not the whole content
	if codings := coding.List(sub.Codings); len(codings) > 0 {
		dec, over, err := c.decode(f, codings)
		var unsupported *coding.Unsupported
		switch {
		case c.SpoolFailed(err) || errors.As(err, &unsupported):
			if dec != nil {
				dec.Close()
			}
			if unsupported != nil {
				c.Log.Warn("body not scanned: its content coding cannot be undone", zap.String("url", sub.Meta.URL), zap.Error(err))
			}
			rec.Files++
			return c.NotScanned(rec, err)
		case over:
			dec.Close()
			rec.Files++
			return c.Oversize(rec, "decoded body")
		case err != nil:
			// Scanned as far as it decodes (a client shows that much);
			// the rest is not the content's, whatever it is.
			damaged = fmt.Errorf("damaged content coding: %w", err)
		}
		defer dec.Close()
		obj = objectOf(dec, sub.Meta)
	}
	out := c.judge(f, obj, rec)
	if damaged != nil && out.Err == nil && !out.Block && !out.Passed {
		// Clean as far as it goes, and the rest was not scanned.
		c.Log.Warn("body scanned only as far as its content coding could be undone", zap.String("url", sub.Meta.URL), zap.Error(damaged))
		out = c.NotScanned(rec, damaged)
	}
	if out.Err == nil && (out.Block || out.Passed || out.Encrypted && c.Svc.EncryptedAction == "notify") {
		action := c.Svc.Action
		if !out.Block {
			action = "pass"
		}
		object := sub.Notice
		if object == "" {
			object = sub.Meta.URL
		}
		c.notifyAdmin(notify.Fields{Service: c.Svc.Name, Name: out.Verdict.Name(), Object: object, Client: sub.Meta.Client,
			Action: action, Sender: sub.Meta.Sender, Recipients: sub.Meta.Recipients})
	}
	return out
}

// objectOf is the spooled f to scan, with its sum when the spool kept one
// (for the verdict cache).
func objectOf(f *spool.File, meta scanner.Meta) *scanner.Object {
	obj := &scanner.Object{File: f.OS(), Path: f.Path(), Size: f.Size(), Meta: meta}
	if sum, ok := f.Sum(); ok {
		obj.Sum = &sum
	}
	return obj
}

// decode writes the decoded body beside f, up to max_scan_size (over says
// there was more). An error with a file: the coding broke off, and the
// file holds what decoded before it.
func (c *Common) decode(f *spool.File, codings []string) (dec *spool.File, over bool, err error) {
	r, err := coding.Reader(io.NewSectionReader(f.OS(), 0, f.Size()), codings)
	if err != nil {
		return nil, false, err
	}
	defer r.Close()
	if dec, err = c.Spool.Create(c.Svc.Name); err != nil {
		return nil, false, err
	}
	over, err = dec.Fill(r, c.Svc.MaxScanSize, nil)
	return dec, over, err
}
