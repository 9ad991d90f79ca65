// Package proxy holds what the services (proxy/http, proxy/smtp,
// proxy/ftp, proxy/pop3) share: their settings, scanner and spam checker,
// spool, logs, notices, how they reach servers (plainly, or transparently
// through package tproxy), the mail headers the mail services read and
// mark, and the session loop of the line-based ones (LineService). Each
// service embeds Common (or LineService) and adds its protocol.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/catalog"
	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/internal/coding"
	"github.com/fsigkd/fsigkd/internal/sessions"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/metrics"
	"github.com/fsigkd/fsigkd/notify"
	"github.com/fsigkd/fsigkd/policy"
	"github.com/fsigkd/fsigkd/quarantine"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/service"
	"github.com/fsigkd/fsigkd/slots"
	"github.com/fsigkd/fsigkd/spool"
	"github.com/fsigkd/fsigkd/tproxy"
)

// Common is a service's shared equipment. Nil fields get their defaults in
// Init, so that tests can put in their own.
type Common struct {
	Svc     *conf.Service
	Global  conf.Global
	Scanner scanner.Scanner
	Spam    scanner.SpamChecker // the mail services' spam checks; nil: none
	Spool   spool.Dir
	Log     *zap.Logger       // named for the service; nil: none
	Logs    *logs.Logs        // the access log; nil: none
	Admin   *notify.Admin     // admin notices; nil: per notify_admin
	Notices *notify.Templates // nil: per notice_templates
	// NoticeKey marks and verifies the gateway's own admin notices (nil:
	// read from base_dir, see notify.LoadKey).
	NoticeKey []byte
	// Dial connects to servers for a client (nil: per the transparent
	// settings, see tproxy.Dialer).
	Dial tproxy.DialFunc
	// OriginalDst finds where an intercepted client was going (nil: with
	// transparent = yes, tproxy.OriginalDst).
	OriginalDst func(c net.Conn) (net.Addr, error)
	// ListenAddr is the address the service accepts clients on, set by
	// its Serve; Destination refuses it as an original destination.
	ListenAddr net.Addr
	// Skip is the service's skip lists, Rules its type and name rules
	// (nil: read from the settings in Init).
	Skip  *policy.Skip
	Rules *policy.Rules
	// Quarantine keeps what is blocked (nil: per quarantine, from Init).
	Quarantine *quarantine.Store
	kept       *keptIDs // what this worker kept, so that it is kept once (set in Init)

	once *onceEvery // rate-limits the lines of faults that repeat
}

// FaultInterval is the least time between two lines about the same fault
// (a full spool, a slow engine): a fault that lasts is said once a minute,
// not once per client.
const FaultInterval = time.Minute

// onceEvery says yes to a key at most once per interval.
type onceEvery struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (o *onceEvery) ok(key string, every time.Duration) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if now := time.Now(); now.Sub(o.last[key]) >= every {
		o.last[key] = now
		return true
	}
	return false
}

// Once tells whether a line about key may be logged now (at most once per
// FaultInterval).
func (c *Common) Once(key string) bool { return c.OnceIn(key, FaultInterval) }

// OnceIn tells whether a line about key may be logged now, at most once
// per every.
func (c *Common) OnceIn(key string, every time.Duration) bool {
	if c.once == nil {
		return true
	}
	return c.once.ok(key, every)
}

// OutOfFiles tells whether err is the gateway's own shortage of
// descriptors (EMFILE, ENFILE) met at place, logging M13 at most once per
// FaultInterval: not a server's or an engine's fault, and not a line per
// client. The client is told to try later.
func (c *Common) OutOfFiles(err error, place string) bool {
	if !catalog.OutOfFiles(err) {
		return false
	}
	if c.Once("files-" + place) {
		logs.Emit(c.Log.Named(place), catalog.M13(err, place, false))
	}
	return true
}

// SpoolFailed tells whether err is the spool's own failure (a full disk,
// no descriptor left), logging it at most once per FaultInterval: M09's
// words for a full disk, M13's for descriptors, as warnings, since the
// service goes on. The caller answers its client "try later", naming no
// path.
func (c *Common) SpoolFailed(err error) bool {
	var f *spool.Failure
	if !errors.As(err, &f) {
		return false
	}
	switch {
	case f.Full():
		if c.Once("spool-full") {
			free, _ := c.Spool.Free()
			m := catalog.M09(c.Spool.Path, free/1024, -1)
			m.Level = catalog.Warning
			logs.Emit(c.Log.Named("spool"), m)
		}
	case catalog.OutOfFiles(f.Err):
		if c.Once("spool-files") {
			logs.Emit(c.Log.Named("spool"), catalog.M13(f.Err, "spool/"+f.Op, false))
		}
	default:
		if c.Once("spool-" + f.Op) {
			c.Log.Named("spool").Warn("the spool failed; clients are told to try later", zap.Error(f.Err))
		}
	}
	return true
}

// ErrNotDiverted is Destination's answer for a client whose original
// destination is the proxy's own listener: it named the proxy rather than
// being diverted to it (or the gateway's own traffic came back), and
// serving it would make the proxy connect to itself.
var ErrNotDiverted = errors.New("the connection was not diverted to the gateway: its destination is the proxy itself")

// Destination is where an intercepted client was going, for the
// transparent mode of every service.
func (c *Common) Destination(conn net.Conn) (*net.TCPAddr, error) {
	a, err := c.OriginalDst(conn)
	if err != nil {
		return nil, err
	}
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return nil, fmt.Errorf("original destination %v is not TCP", a)
	}
	if c.ListenAddr != nil && tproxy.IsLoop(ta, c.ListenAddr) {
		return nil, ErrNotDiverted
	}
	return ta, nil
}

// FromEnv is the equipment of a worker's service, the scanner (and, with
// fsasd_service, the spam checker) built from the settings.
func FromEnv(env *service.Env) (Common, error) {
	sc, err := scanner.FromConfig(env.Config.Global, env.Log.Named("scanner"))
	if err != nil {
		return Common{}, err
	}
	c := Common{Svc: env.Service, Global: env.Config.Global, Scanner: sc, Spool: env.Spool, Log: env.Log, Logs: env.Logs}
	if env.Service.FsasdService {
		if c.Spam, err = scanner.SpamFromConfig(env.Config.Global, env.Log.Named("spam")); err != nil {
			return Common{}, err
		}
	}
	return c, nil
}

// Init fills in the defaults.
func (c *Common) Init() error {
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	c.once = &onceEvery{last: map[string]time.Time{}}
	c.kept = &keptIDs{}
	if cache, ok := c.Scanner.(*scanner.Cache); ok && c.Spool.Hash && c.Spool.SumAhead == nil {
		// A large object the cache met is hashed as it arrives.
		c.Spool.SumAhead = cache.MetHead
	}
	if c.Notices == nil {
		var err error
		if c.Notices, err = notify.LoadTemplates(c.Global.NoticeTemplates); err != nil {
			return err
		}
	}
	if c.NoticeKey == nil {
		var err error
		if c.NoticeKey, err = notify.LoadKey(c.Global.BaseDir); err != nil {
			return err
		}
	}
	if c.Admin == nil {
		c.Admin = notify.AdminFor(c.Svc, c.Hostname(), c.NoticeKey, c.Log.Named("notify"))
	}
	if c.Skip == nil {
		var err error
		if c.Skip, err = policy.ParseSkip(c.Svc.SkipValues()); err != nil {
			return err
		}
	}
	if c.Quarantine == nil && c.Svc.Quarantine {
		c.Quarantine = &quarantine.Store{Dir: c.Global.QuarantineDir, MaxSize: c.Global.QuarantineMax,
			MaxAge: time.Duration(c.Global.QuarantineDays) * 24 * time.Hour}
	}
	if c.Rules == nil {
		var err error
		if c.Rules, err = c.Svc.Rules(); err != nil {
			return err
		}
	}
	if rs, ok := c.Scanner.(scanner.RuleSetter); ok && !c.Rules.Empty() {
		rs.SetRules(c.Rules.Values())
	}
	if c.Dial == nil {
		c.Dial = tproxy.Dialer(c.Svc.Transparent, c.Svc.TransparentTproxy)
	}
	if c.Svc.Transparent && c.OriginalDst == nil {
		c.OriginalDst = tproxy.OriginalDst
	}
	return nil
}

// Send sends n bytes of the spooled object f from off to the receiver w,
// a client or a server, logging M07 on log when the receiver stops taking
// them for sendfile_timeout.
func (c *Common) Send(log *zap.Logger, w net.Conn, f *spool.File, off, n int64, url string) (int64, error) {
	sent, err := f.SendTo(w, off, n, c.Global.SendfileTimeout, url)
	sendLogged(log, err)
	return sent, err
}

// SendAfter is Send for head and then the whole of f (spool.File's
// SendAfter: a small file in the same write as its head).
func (c *Common) SendAfter(log *zap.Logger, w net.Conn, head []byte, f *spool.File, url string) (int64, error) {
	sent, err := f.SendAfter(w, head, c.Global.SendfileTimeout, url)
	sendLogged(log, err)
	return sent, err
}

// sendLogged logs M07 when err says the receiver stalled.
func sendLogged(log *zap.Logger, err error) {
	if m, ok := catalog.Of(err); ok {
		logs.Emit(log.Named("send"), m)
	}
}

// Reset cuts c with a reset (no lingering), so that a partly sent
// object can never be taken for a whole one: the HTTP trickle and the
// ICAP early answer, when the final verdict refuses what went early.
func Reset(c net.Conn) {
	inner := c
	if sc, ok := c.(*slots.Conn); ok {
		inner = sc.NetConn()
	}
	if tc, ok := inner.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// PanicLogger reports a session that panicked (it is closed; the service
// goes on), for sessions.Set.OnPanic.
func (c *Common) PanicLogger() func(any) {
	return func(r any) {
		c.Log.Error("panic in a session; the session is closed", zap.Any("panic", r), zap.Stack("stack"))
	}
}

// Hostname is the gateway's name in notices and mail headers: the smtp
// section's hostname when set, the system's otherwise.
func (c *Common) Hostname() string {
	if c.Svc.Hostname != "" {
		return c.Svc.Hostname
	}
	h, _ := os.Hostname()
	return h
}

// notifyAdmin queues the admin notice for a detection, when notices are on.
func (c *Common) notifyAdmin(f notify.Fields) {
	if c.Admin == nil {
		return
	}
	if n, err := c.Notices.Render("admin", f); err == nil {
		c.Admin.Notify(n)
	} else {
		c.Log.Warn("admin notice template", zap.Error(err))
	}
}

// SignaturesReloaded is told by the worker when the gateway reloads (and
// the bundled engine its signatures): the verdicts kept under the old
// signatures go at once rather than at the next version check.
func (c *Common) SignaturesReloaded() {
	if e, ok := c.Scanner.(interface{ Expire() }); ok {
		e.Expire()
	}
}

// CloseNotices sends the admin notices still queued; for Shutdown.
func (c *Common) CloseNotices() {
	if c.Admin != nil {
		c.Admin.Close()
	}
}

// Shutdown closes idle connections, waits for the busy ones until ctx
// ends, and sends the admin notices still queued.
func (c *Common) Shutdown(ctx context.Context, s *sessions.Set) error {
	err := s.Shutdown(ctx)
	c.CloseNotices()
	return err
}

// Outcome is what a service is to do with a scanned object.
type Outcome struct {
	Verdict scanner.Verdict
	// Err says the object could not be scanned (the verdict is then
	// empty).
	Err error
	// Block: not to be delivered. A detection blocks unless it is riskware
	// and block_riskware is off, or action is pass; an object that could
	// not be scanned blocks unless scan_failure is pass.
	Block bool
	// Passed: a detection delivered all the same because action is pass
	// (logged ACTION:PASS; the admin is told when asked).
	Passed bool
	// Oversize: larger than max_scan_size, not scanned (Block per
	// oversize_action).
	Oversize bool
	// Encrypted: an encrypted archive, which no engine can look into
	// (encrypted_action); not Block unless that says block.
	Encrypted bool
	// Skipped: a skip list matched; passed unscanned.
	Skipped bool
	// Policy: refused by a type or name rule (the verdict names the
	// rule); blocked whatever action says.
	Policy bool
}

// Facts are what the policy is asked about an object.
func Facts(m scanner.Meta) policy.Facts {
	return policy.Facts{URL: m.URL, Client: m.Client, Sender: m.Sender, Recipients: m.Recipients,
		ContentType: m.ContentType, FileName: m.FileName}
}

// Skips tells whether a skip list lets the object of m pass unscanned,
// and if so fills rec (DETECT-STAT:SKIPPED, the list in the name, the
// entry in the detail): never logged as clean.
func (c *Common) Skips(m scanner.Meta, rec *logs.Access) bool {
	key, entry := c.Skip.Match(Facts(m))
	if key == "" {
		return false
	}
	rec.Detect, rec.Name, rec.Action = "SKIPPED", key, "PASS"
	rec.AddDetail("not scanned: " + key + " " + entry)
	metrics.Object("SKIPPED", "PASS", 0, 0, 0)
	return true
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

// blocks tells whether the settings refuse an object the engine gave
// verdict v: a detection does, unless it is riskware and block_riskware
// is off, or action is pass.
func (c *Common) blocks(v scanner.Verdict) bool {
	switch {
	case v.Status == scanner.Clean, v.Status == scanner.Riskware && !c.Svc.BlockRiskware,
		Encrypted(v) && c.Svc.EncryptedAction != "block":
		return false
	}
	return c.Svc.Action != "pass"
}

// NotScanned is the outcome for an object that could not be scanned
// whole (err says why): scan_failure decides, and rec says so.
func (c *Common) NotScanned(rec *logs.Access, err error) Outcome {
	rec.Detail = "not scanned: " + err.Error()
	if scanner.Policy(c.Svc.ScanFailure) == scanner.Pass {
		rec.Action = "PASS"
		return Outcome{Err: err}
	}
	rec.Action = "DENY"
	return Outcome{Err: err, Block: true}
}

// FollowFrom is the size from which an object is followed by the engine
// as it is spooled (Follow): below it, the scan at its end takes a few
// milliseconds anyway.
const FollowFrom = 8 << 20

// Follow has the engine follow a file as it is spooled, once it passes
// FollowFrom, when the engine follows (the bundled fsavd:
// scanner.Follower): a large object's scan then has little left to read
// at its end. The spooler calls Grew as the file grows, gives Following
// to Inspect in the Subject, and Closes it. A body with a content coding
// (Codings, the Subject's) is not followed: what is scanned is what it
// decodes to.
type Follow struct {
	C       *Common
	Codings []string

	fw      *scanner.Following
	started bool
}

// Grew is called as f grows.
func (fl *Follow) Grew(f *spool.File) {
	if !fl.started && f.Size() >= FollowFrom {
		fl.started = true
		// An object the verdict cache met (hashed as it arrives for it)
		// is likely answered by the cache: its search would be work
		// thrown away, on the cores the hash needs.
		eng, ok := fl.C.Scanner.(scanner.Follower)
		if ok && !f.HashedAhead() && len(coding.List(fl.Codings)) == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), fl.C.Global.AVTimeout)
			fl.fw = eng.Follow(ctx, f.OS())
			cancel()
		}
	}
	fl.fw.Grew(f.Size())
}

// Following is the engine's follow, for the Subject (nil: none).
func (fl *Follow) Following() *scanner.Following { return fl.fw }

// Close gives the follow up if the scan did not end it.
func (fl *Follow) Close() { fl.fw.Close() }

// judge makes sure f is still in the spool (M14 when another program
// removed it), has obj (f, or what was decoded from it) scanned, and
// applies the service's settings. The engine's documented failures are
// logged here; a dead endpoint is logged by the scanner's pool, once. rec
// gets the verdict, the action and the scan time.
func (c *Common) judge(f *spool.File, obj *scanner.Object, rec *logs.Access) Outcome {
	start := time.Now()
	defer func() { rec.ScanTime += time.Since(start) }()
	rec.Files, rec.Checks = rec.Files+1, rec.Checks+1
	if err := f.Check(); err != nil {
		if m, ok := catalog.Of(err); ok {
			logs.Emit(c.Log.Named("spool"), m)
		} else {
			c.SpoolFailed(err)
		}
		rec.Action, rec.Detail = "DENY", "not scanned: "+err.Error()
		return Outcome{Err: err, Block: true}
	}
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
	if err == nil && v.Cached {
		// Given by the verdict cache: no engine call was made.
		rec.Checks--
		rec.AddDetail("verdict cached")
	}
	if err != nil {
		// A dead endpoint is said by the scanner's pool, once; a shortage
		// of descriptors once a minute.
		if m, ok := catalog.Of(err); ok && scanner.KindOf(err) != scanner.Down && (scanner.KindOf(err) != scanner.Local || c.Once("scan-files")) {
			logs.Emit(c.Log.Named("scan"), m)
		}
		return c.NotScanned(rec, err)
	}
	return c.decide(v, rec)
}

// decide applies the service's settings to the engine's verdict v.
func (c *Common) decide(v scanner.Verdict, rec *logs.Access) Outcome {
	if v.Status == scanner.Clean {
		rec.Detect = "CLEAN"
		return Outcome{Verdict: v}
	}
	encrypted := Encrypted(v)
	if encrypted && c.Svc.EncryptedAction != "block" {
		rec.Detect, rec.Name, rec.Action = "ENCRYPTED", v.Name(), "PASS"
		return Outcome{Verdict: v, Encrypted: true}
	}
	rec.Detect, rec.Name = "INFECTED", v.Name()
	if encrypted {
		rec.Detect = "ENCRYPTED"
	}
	block := v.Status != scanner.Riskware || c.Svc.BlockRiskware
	if block && c.Svc.Action == "pass" {
		rec.Action = "PASS"
		return Outcome{Verdict: v, Passed: true, Encrypted: encrypted}
	}
	rec.Action = map[bool]string{true: "DENY", false: "PASS"}[block]
	return Outcome{Verdict: v, Block: block, Encrypted: encrypted}
}
