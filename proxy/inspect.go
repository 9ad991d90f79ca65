package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/catalog"
	"github.com/fsigkd/fsigkd/internal/coding"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/metrics"
	"github.com/fsigkd/fsigkd/notify"
	"github.com/fsigkd/fsigkd/outcome"
	"github.com/fsigkd/fsigkd/policy"
	"github.com/fsigkd/fsigkd/quarantine"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/spool"
	"github.com/fsigkd/fsigkd/unpack"
)

// The one pipeline of a spooled object, for every service, run by the
// transfer driver (transfer.go): admitted by size (oversize_action),
// decoded (HTTP content codings), judged (the scan, action,
// block_riskware, scan_failure), and the admin told of a detection. The
// access record is filled here, once; each protocol turns the Outcome
// into its own answer (403, 550, 554, -ERR).

// Subject is what the pipeline is given (Object.Judge).
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
	// follow), for its scan; the caller closes it.
	Follow *scanner.Following
}

// Outcome is what the pipeline found of an object (the Result, whose
// Kind each service switches on for its words) and what the service's
// settings make of it (the Decision, which it carries out).
type Outcome struct {
	outcome.Result
	outcome.Decision
}

// Delivered tells whether the object goes on.
func (o Outcome) Delivered() bool { return o.Delivery == outcome.Deliver }

// oversize is the outcome for an object larger than max_scan_size
// (what, if set, names the object: "upload", "decoded body"), rec says
// so.
func (c *Common) oversize(rec *logs.Access, what string) Outcome {
	return c.conclude(&Subject{Meta: scanner.Meta{URL: rec.URL}}, outcome.Result{Kind: outcome.Oversize, Detail: what}, rec, 0)
}

// skips tells whether a skip list lets the object of m pass unscanned,
// and if so fills rec (DETECT-STAT:SKIPPED, the list in the name, the
// entry in the detail): never logged as clean.
func (c *Common) skips(m scanner.Meta, rec *logs.Access) bool {
	r, ok := c.skipped(m)
	if ok {
		c.conclude(&Subject{Meta: m}, r, rec, 0)
	}
	return ok
}

func (c *Common) skipped(m scanner.Meta) (outcome.Result, bool) {
	key, entry := c.Skip.Match(Facts(m))
	return outcome.Result{Kind: outcome.Skipped, Name: key, Detail: entry}, key != ""
}

// inspect runs the pipeline on sub, decides, and fills rec (for an
// Object's Judge: the transfer owns the record). The Subject goes down
// by pointer: by value, its copies through the pipeline's frames grew
// the scanning goroutine's stack, a copy of it per object (9% of the
// samples of small objects, by perf).
func (c *Common) inspect(sub *Subject, rec *logs.Access) Outcome {
	if r, ok := c.skipped(sub.Meta); ok {
		return c.conclude(sub, r, rec, 0)
	}
	r, size := c.examine(sub, rec)
	return c.conclude(sub, r, rec, size)
}

// examine finds what sub is: decoded, typed, scanned, its encrypted
// archives opened. rec gets what was done (files, engine calls, scan
// time, details); size is what was scanned.
func (c *Common) examine(sub *Subject, rec *logs.Access) (r outcome.Result, size int64) {
	f := sub.File
	obj := objectOf(f, sub.Meta)
	obj.Follow = sub.Follow // a decoded body is scanned afresh
	var damaged error       // the coding broke off: the decoded body is not the whole content
	var tail *spool.File    // the raw bytes after the coded body, when there are any
	if codings := coding.List(sub.Codings); len(codings) > 0 {
		dec, raw, over, err := c.decode(f, codings)
		tail = raw
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
			return notScanned(err), f.Size()
		case over && f.Size()*maxCodingRatio < dec.Size():
			// Past max_scan_size only once decoded, from a small body:
			// a bomb, not a large download; oversize_action does not
			// let it pass (an archive member is judged so too).
			dec.Close()
			rec.Files++
			return outcome.Result{Kind: outcome.Suspected, Name: "Heuristics.Limits.Exceeded.Ratio", Detail: "decoded body"}, f.Size()
		case over:
			dec.Close()
			rec.Files++
			return outcome.Result{Kind: outcome.Oversize, Detail: "decoded body"}, f.Size()
		case err != nil:
			// Scanned as far as it decodes (a client shows that much);
			// the rest is not the content's, whatever it is.
			damaged = fmt.Errorf("damaged content coding: %w", err)
		}
		defer dec.Close()
		if tail != nil {
			defer tail.Close()
		}
		obj = objectOf(dec, sub.Meta)
	}
	// The type and name rules: the object's own name here; its bytes and
	// what it holds in the engine's pass when the engine applies them
	// (the bundled fsavd), else in a walk of our own.
	name := ""
	if !c.Rules.Empty() {
		name = objectName(sub.Meta) // a URL parsed only when a rule may look at it
	}
	if rule := c.Rules.Check(nil, name); rule != "" {
		rec.Files++ // refused by its name: not scanned
		return outcome.Result{Kind: outcome.Blocked, Name: rule}, obj.Size
	}
	v, err := c.judge(obj, rec)
	if r = resultOf(v); err != nil {
		r = notScanned(err)
	}
	if tail != nil && err == nil && r.Kind == outcome.Clean {
		// What follows the coded body (decoding never reaches it) is the
		// raw body's, which a client that keeps it gets: scanned too.
		tv, terr := c.judge(objectOf(tail, sub.Meta), rec)
		switch tr := resultOf(tv); {
		case terr != nil:
			r = notScanned(terr)
		case tr.Kind != outcome.Clean:
			r, v = tr, tv
			r.Member = "bytes after the coded body"
		}
	}
	if outcome.Decide(r, c.settings).Delivery == outcome.Deliver {
		// Not refused by the verdict (or by its absence, with
		// scan_failure = pass): the rules may still.
		if rule, where := c.ruleOf(v, obj, name); rule != "" {
			return outcome.Result{Kind: outcome.Blocked, Name: rule, Member: where}, obj.Size
		}
	}
	if r.Kind == outcome.Encrypted && c.Svc.ArchivePasswords {
		r = c.openEncrypted(obj, sub.Meta, rec, r)
	}
	if damaged != nil {
		if r = outcome.Partly(r, damaged, c.settings); r.Kind == outcome.NotScanned {
			c.Log.Warn("body scanned only as far as its content coding could be undone", zap.String("url", sub.Meta.URL), zap.Error(damaged))
		}
	}
	return r, obj.Size
}

// maxCodingRatio is how much larger than its body a decoded body may be
// when it passes max_scan_size and is still taken for a large download:
// the archive limits' ratio.
const maxCodingRatio = unpack.DefaultMaxRatio

func notScanned(err error) outcome.Result { return outcome.Result{Kind: outcome.NotScanned, Err: err} }

// resultOf is what an engine's verdict makes of an object.
func resultOf(v scanner.Verdict) outcome.Result {
	r := outcome.Result{Name: v.Name(), Member: v.At}
	switch {
	case v.Status == scanner.Clean:
		r.Kind = outcome.Clean
	case Encrypted(v):
		r.Kind = outcome.Encrypted
	case v.Status == scanner.Riskware:
		r.Kind = outcome.Riskware
	case v.Status == scanner.Suspected:
		r.Kind = outcome.Suspected
	default:
		r.Kind = outcome.Infected
	}
	return r
}

// conclude decides what becomes of the object per the service's
// settings, and carries out what the pipeline itself does: the access
// record, the counts, the quarantine, the admin notice. size is what was
// scanned.
func (c *Common) conclude(sub *Subject, r outcome.Result, rec *logs.Access, size int64) Outcome {
	d := outcome.Decide(r, c.settings)
	rec.Detect, rec.Action = d.Detect, d.Action
	if r.Name != "" {
		rec.Name = r.Name
	}
	if r.Member != "" {
		rec.File = r.Member
	}
	switch r.Kind {
	case outcome.Skipped:
		rec.AddDetail("not scanned: " + r.Name + " " + r.Detail)
		metrics.Object("SKIPPED", d.Action, 0, 0, 0)
		return Outcome{r, d}
	case outcome.Oversize:
		detail := "over max_scan_size"
		if r.Detail != "" {
			detail = r.Detail + " " + detail
		}
		c.Log.Info(detail, zap.String("object", sub.Meta.URL), zap.Stringer("oversize_action", c.Svc.OversizeAction))
		if d.Delivery == outcome.Deliver {
			detail += " passed unscanned"
		}
		rec.Detail = detail
		metrics.Object("OVERSIZE", d.Action, 0, 0, 0)
		return Outcome{r, d}
	case outcome.NotScanned:
		rec.Detail = "not scanned: " + r.Err.Error()
	case outcome.Clean, outcome.Infected, outcome.Riskware, outcome.Suspected, outcome.Encrypted, outcome.Blocked:
	}
	if d.Quarantine && !sub.Part && !c.keep(sub, r, rec) && (d.Delivery == outcome.Replace || d.Delivery == outcome.Drop) {
		// Dropped or replaced, the object would be lost with its only
		// copy (a POP3 client deletes the original after a replacement):
		// the client is told to try again, and keeps it.
		d.Delivery, d.Action, d.Notice = outcome.TryLater, "NONE", outcome.NoNotice
		rec.Action = d.Action
		rec.AddDetail("not kept in the quarantine: the client is told to try again")
	}
	metrics.Object(rec.Detect, rec.Action, rec.Checks, size, rec.ScanTime)
	if d.NotifyAdmin {
		object := sub.Notice
		if object == "" {
			object = sub.Meta.URL
		}
		c.notifyAdmin(notify.Fields{Service: c.Svc.Name, Name: r.Name, Object: object, Client: sub.Meta.Client,
			Action: d.Applied, Sender: sub.Meta.Sender, Recipients: sub.Meta.Recipients})
	}
	return Outcome{r, d}
}

// Encrypted tells whether a verdict is only encrypted archives (the
// bundled engine's and ClamAV's Heuristics.Encrypted.* names).
func Encrypted(v scanner.Verdict) bool {
	if v.Status == scanner.Clean || len(v.Names) == 0 {
		return false
	}
	for _, n := range v.Names {
		if !strings.HasPrefix(n, "Heuristics.Encrypted.") {
			return false
		}
	}
	return true
}

// Facts are what the policy is asked about an object.
func Facts(m scanner.Meta) policy.Facts {
	return policy.Facts{URL: m.URL, Client: m.Client, Sender: m.Sender, Recipients: m.Recipients,
		ContentType: m.ContentType, FileName: m.FileName}
}

// judge has obj (a spooled object, or what was decoded from one)
// scanned; an engine that opens it by name first makes sure it is still
// in the spool (M14 when another program removed it: obj.InPlace). The
// engine's documented failures are logged here; a dead endpoint is
// logged by the scanner's pool, once. rec gets the counts and the scan
// time.
func (c *Common) judge(obj *scanner.Object, rec *logs.Access) (scanner.Verdict, error) {
	start := time.Now()
	defer func() { rec.ScanTime += time.Since(start) }()
	rec.Files, rec.Checks = rec.Files+1, rec.Checks+1
	ctx, cancel := context.WithTimeout(context.Background(), c.Global.AVTimeout)
	defer cancel()
	// A scan still running at a quarter of av_timeout is said while it
	// waits (once a minute): an engine stopped or swamped shows in the
	// log before clients time out.
	slow := time.AfterFunc(c.Global.AVTimeout/4, func() {
		if c.Once("slow-scan") {
			c.Log.Named("scan").Warn("a scan is taking long: the engine may be stopped or overloaded",
				zap.Duration("waited", c.Global.AVTimeout/4), zap.Duration("av_timeout", c.Global.AVTimeout), zap.String("object", obj.Meta.URL))
		}
	})
	v, err := c.Scanner.Scan(ctx, obj)
	slow.Stop()
	var gone *spool.Vanished
	if errors.As(err, &gone) {
		// An engine that opens the object by its name could not (obj's
		// InPlace): M14, the session fails.
		logs.Emit(c.Log.Named("spool"), gone.CatalogMessage())
		return v, err
	}
	if c.SpoolFailed(err) {
		return v, err // an object held in memory could not be written to its file (Files)
	}
	if err != nil {
		// A dead endpoint is said by the scanner's pool, once; a shortage
		// of descriptors once a minute.
		if m, ok := catalog.Of(err); ok && scanner.KindOf(err) != scanner.Down && (scanner.KindOf(err) != scanner.Local || c.Once("scan-files")) {
			logs.Emit(c.Log.Named("scan"), m)
		}
		return v, err
	}
	if v.Cached {
		// Given by the verdict cache: no engine call was made.
		rec.Checks--
		rec.AddDetail("verdict cached")
	}
	return v, nil
}

// ruleOf is the type or name rule that refuses the object v was given
// for, and where in it: the engine's when it applied the rules in its
// pass, else the gateway's own walk of obj (name is its own).
func (c *Common) ruleOf(v scanner.Verdict, obj *scanner.Object, name string) (rule, where string) {
	if v.RulesChecked || v.Rule != "" {
		return v.Rule, v.RuleAt
	}
	return rulesIn(c.Rules, obj, name, c.Svc.Name == "smtp" || c.Svc.Name == "pop" || c.Svc.Name == "milter")
}

// keep puts the blocked object (as it arrived: not decoded) in the
// quarantine, when the service keeps one, and names it in rec. A failure
// is logged (once a minute) and kept is false.
func (c *Common) keep(sub *Subject, r outcome.Result, rec *logs.Access) (kept bool) {
	if c.Quarantine == nil || c.kept == nil || sub.File == nil {
		return true // nothing to keep: no quarantine
	}
	f := sub.File
	// The same bytes blocked again (a client that retries, a mail
	// fetched by each of its readers) are kept once a worker's life.
	sum, hashed := f.Sum()
	if hashed {
		if id, ok := c.kept.get(sum); ok {
			rec.Quarantine = id
			return true
		}
	}
	id, err := c.Quarantine.Put(f, f.Size(), quarantine.Meta{Service: c.Svc.Name, Client: sub.Meta.Client, URL: sub.Meta.URL,
		Sender: sub.Meta.Sender, Recipients: sub.Meta.Recipients, Verdict: r.Name, Member: rec.File,
		ContentType: sub.Meta.ContentType})
	if err != nil {
		if c.Once("quarantine") {
			c.Log.Named("quarantine").Warn("a blocked object could not be kept in the quarantine", zap.Error(err))
		}
		return false
	}
	rec.Quarantine = id
	if hashed {
		c.kept.put(sum, id)
	}
	return true
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

// objectOf is the spooled f to scan (its bytes, when the spool holds it
// in memory), with its sum when the spool kept one (for the verdict
// cache), or the way to it when it costs a reading.
func objectOf(f *spool.File, meta scanner.Meta) *scanner.Object {
	obj := &scanner.Object{Size: f.Size(), Meta: meta, InPlace: f.Check}
	if data, ok := f.Memory(); ok {
		obj.Data = data
		obj.Spill = func() (*os.File, string, error) {
			if err := f.Spill(); err != nil {
				return nil, "", err
			}
			return f.OS(), f.Path(), nil
		}
	} else {
		obj.File, obj.Path = f.OS(), f.Path()
	}
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
// file holds what decoded before it. tail, when not nil, holds the raw
// bytes the decoding did not reach (after a gzip's last member, a deflate
// stream's end): the caller scans them too.
func (c *Common) decode(f *spool.File, codings []string) (dec, tail *spool.File, over bool, err error) {
	r, err := coding.Reader(io.NewSectionReader(f, 0, f.Size()), codings)
	if err != nil {
		return nil, nil, false, err
	}
	defer r.Close()
	if dec, err = c.Spool.Create(c.Svc.Name); err != nil {
		return nil, nil, false, err
	}
	if over, err = dec.Fill(r, c.Svc.MaxScanSize, nil); over || err != nil {
		return dec, nil, over, err
	}
	if used, ok := coding.Used(r); ok && used < f.Size() {
		if tail, err = c.Spool.Create(c.Svc.Name); err == nil {
			if _, err = tail.Fill(io.NewSectionReader(f, used, f.Size()-used), 0, nil); err != nil {
				tail.Close()
				tail = nil
			}
		}
	}
	return dec, tail, false, err
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
