package proxy

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/internal/coding"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/metrics"
	"github.com/fsigkd/fsigkd/notify"
	"github.com/fsigkd/fsigkd/quarantine"
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
	// Part: the object is part of a larger one (POP3 TOP): judged, but
	// not kept in the quarantine.
	Part bool
	// Follow is the engine's follow of File as it was spooled (see
	// Common.Follow), for its scan; the caller closes it.
	Follow *scanner.Following
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
	defer func() { metrics.Object("OVERSIZE", rec.Action, 0, 0, 0) }()
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
	obj.Follow = sub.Follow // a decoded body is scanned afresh
	var damaged error       // the coding broke off: the decoded body is not the whole content
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
	// The type and name rules: the object's own name here; its bytes and
	// what it holds in the engine's pass when the engine applies them
	// (the bundled fsavd), else in a walk of our own.
	var out Outcome
	name := ""
	if !c.Rules.Empty() {
		name = objectName(sub.Meta) // a URL parsed only when a rule may look at it
	}
	if rule := c.Rules.Check(nil, name); rule != "" {
		rec.Files++ // refused by its name: not scanned
		out = c.refuse(rule, "", rec)
	} else {
		out = c.judge(f, obj, rec)
		if !out.Block { // a detection (or no verdict) is refused already
			if rule, where := c.ruleOf(out.Verdict, obj.File, obj.Size, name); rule != "" {
				out = c.refuse(rule, where, rec)
			}
		}
	}
	if out.Encrypted && out.Err == nil && c.Svc.ArchivePasswords {
		out = c.openEncrypted(obj, sub.Meta, rec, out)
	}
	if damaged != nil && out.Err == nil && !out.Block && !out.Passed {
		// Clean as far as it goes, and the rest was not scanned.
		c.Log.Warn("body scanned only as far as its content coding could be undone", zap.String("url", sub.Meta.URL), zap.Error(damaged))
		out = c.NotScanned(rec, damaged)
	}
	if out.Block && out.Err == nil && !out.Oversize && !sub.Part {
		c.keep(f, sub, out, rec)
	}
	metrics.Object(rec.Detect, rec.Action, rec.Checks, obj.Size, rec.ScanTime)
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

// ruleOf is the type or name rule that refuses the object v was given
// for, and where in it: the engine's when it applied the rules in its
// pass, else the gateway's own walk of the object (f; name is its own).
func (c *Common) ruleOf(v scanner.Verdict, f *os.File, size int64, name string) (rule, where string) {
	if v.RulesChecked || v.Rule != "" {
		return v.Rule, v.RuleAt
	}
	return c.Rules.CheckFile(f, size, name, c.Svc.Name == "smtp" || c.Svc.Name == "pop")
}

// refuse is the outcome of a type or name rule: blocked whatever action
// says, the rule as its name.
func (c *Common) refuse(rule, where string, rec *logs.Access) Outcome {
	rec.Detect, rec.Name, rec.File, rec.Action = "BLOCKED", rule, where, "DENY"
	return Outcome{Verdict: scanner.Verdict{Status: scanner.Infected, Names: []string{rule}}, Block: true, Policy: true}
}

// keep puts the blocked object f (as it arrived: not decoded) in the
// quarantine, when the service keeps one, and names it in rec. A failure
// is logged (once a minute); the object is blocked all the same.
func (c *Common) keep(f *spool.File, sub Subject, out Outcome, rec *logs.Access) {
	if c.Quarantine == nil || c.kept == nil {
		return
	}
	// The same bytes blocked again (a client that retries, a mail
	// fetched by each of its readers) are kept once a worker's life.
	sum, hashed := f.Sum()
	if hashed {
		if id, ok := c.kept.get(sum); ok {
			rec.Quarantine = id
			return
		}
	}
	id, err := c.Quarantine.Put(f.OS(), f.Size(), quarantine.Meta{Service: c.Svc.Name, Client: sub.Meta.Client, URL: sub.Meta.URL,
		Sender: sub.Meta.Sender, Recipients: sub.Meta.Recipients, Verdict: out.Verdict.Name(), Member: rec.File,
		ContentType: sub.Meta.ContentType})
	if err != nil {
		if c.Once("quarantine") {
			c.Log.Named("quarantine").Warn("a blocked object could not be kept in the quarantine", zap.Error(err))
		}
		return
	}
	rec.Quarantine = id
	if hashed {
		c.kept.put(sum, id)
	}
}

// keptIDs remembers the quarantine ids of the objects a worker kept, by
// their hash, up to maxKept (then it starts again).
type keptIDs struct {
	mu  sync.Mutex
	ids map[[32]byte]string
}

const maxKept = 4096

func (k *keptIDs) get(sum [32]byte) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	id, ok := k.ids[sum]
	return id, ok
}

func (k *keptIDs) put(sum [32]byte, id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ids == nil || len(k.ids) >= maxKept {
		k.ids = map[[32]byte]string{}
	}
	k.ids[sum] = id
}

// objectName is the name an object goes by for block_names: the one the
// service knows (Content-Disposition), else the last part of its URL's
// path.
func objectName(m scanner.Meta) string {
	if m.FileName != "" {
		return m.FileName
	}
	u, err := url.Parse(m.URL)
	if err != nil || u.Path == "" || strings.HasSuffix(u.Path, "/") {
		return ""
	}
	return path.Base(u.Path)
}

// objectOf is the spooled f to scan, with its sum when the spool kept one
// (for the verdict cache), or the way to it when it costs a reading.
func objectOf(f *spool.File, meta scanner.Meta) *scanner.Object {
	obj := &scanner.Object{File: f.OS(), Path: f.Path(), Size: f.Size(), Meta: meta}
	if f.SumReadsBack() {
		obj.ReadSum = f.Sum
	} else if sum, ok := f.Sum(); ok {
		obj.Sum = &sum
	}
	if head, ok := f.HeadSum(); ok {
		obj.Head = &head
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

// DispositionName is the file name a Content-Disposition value gives, read
// as leniently as browsers read it: a value the strict parser refuses
// still names its file.
func DispositionName(v string) string {
	if v == "" {
		return ""
	}
	if _, params, err := mime.ParseMediaType(v); err == nil && params["filename"] != "" {
		return params["filename"]
	}
	lower := strings.ToLower(v)
	i := strings.Index(lower, "filename")
	if i < 0 {
		return ""
	}
	rest := v[i+len("filename"):]
	rest = strings.TrimLeft(strings.TrimLeft(rest, "*"), " \t")
	rest, ok := strings.CutPrefix(rest, "=")
	if !ok {
		return ""
	}
	rest = strings.TrimSpace(rest)
	if j := strings.Index(rest, "''"); j >= 0 && j < 40 && !strings.HasPrefix(rest, `"`) {
		rest = rest[j+2:] // RFC 5987: charset''percent-encoded
		if u, err := url.PathUnescape(strings.SplitN(rest, ";", 2)[0]); err == nil {
			return u
		}
	}
	if strings.HasPrefix(rest, `"`) {
		if j := strings.Index(rest[1:], `"`); j >= 0 {
			return rest[1 : j+1]
		}
		return rest[1:]
	}
	return strings.TrimSpace(strings.SplitN(rest, ";", 2)[0])
}
