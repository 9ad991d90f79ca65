// Package proxy holds what the services (proxy/http, proxy/smtp,
// proxy/ftp, proxy/pop3, proxy/icap, proxy/milter) share: their settings,
// scanner and spam checker, spool, logs, notices, how they reach servers
// (plainly, or transparently through package tproxy), a mail's judgement
// and marks (mail.go), the session server of those that accept their own
// clients (SessionServer), and the client side and command loop of the
// line-based ones (LineService, LineClient). Each service embeds Common
// (or one of those) and adds its protocol.
//
// Every object crosses the gateway one way, through the transfer driver
// (transfer.go):
//
//	protocol framing ──> Transfer (access record: Begin ... End, written once)
//	                       └─ Object ──> spool (max_scan_size, the engine's follow)
//	                                └──> Judge: the pipeline (inspect.go) ──> outcome.Decide
//	protocol answer  <── Outcome (Result and Decision: deliver, refuse, replace, drop, try later)
//
// A protocol package takes an object through a Transfer and its Objects
// and says the decision in its own words; it never makes a spool file,
// follows one, or takes or writes an access record. Each protocol's
// carrying function, from Begin to End, is about 60 lines or less (HTTP
// session.handle 57 and respond 64, SMTP Data 36, FTP retr 31 and store
// 54, POP3 retrieve 53, ICAP modify 57, milter EndOfMessage 42).
//
// Counted by following the request through every call that passes it on,
// each branch walked (proxy/http/forward.go:session.handle:req, read from
// the code's tokens), one HTTP request's way makes 62 stops in 18 files
// and climbs back up to a caller's package 4 times (the same count, same
// reader, before the one session server, chunked reader and split steps:
// 19 files, 6 climbs). Four of the 18 files are entered only on branches
// a download does not take (http/tunnel.go: CONNECT; http/intercept.go:
// HTTPS; http/websocket.go: 101; http/page.go: a block page), so a plain
// download crosses 14.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/catalog"
	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/internal/coding"
	"github.com/fsigkd/fsigkd/internal/sessions"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/notify"
	"github.com/fsigkd/fsigkd/outcome"
	"github.com/fsigkd/fsigkd/policy"
	"github.com/fsigkd/fsigkd/quarantine"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/slots"
	"github.com/fsigkd/fsigkd/spool"
	"github.com/fsigkd/fsigkd/tproxy"
	"github.com/fsigkd/fsigkd/worker"
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
	// LookupTXT looks DNS TXT records up, for the DKIM check (nil: the
	// system's resolver).
	LookupTXT func(ctx context.Context, name string) ([]string, error)
	// listening are the addresses the service accepts clients on
	// (net.Addr), set by its Serve (Listening) and ImplicitTLS:
	// Destination refuses them as an original destination. Atomic: the
	// sessions of one listener read them while the other is set up.
	listening, tlsListening atomic.Value
	// Skip is the service's skip lists, Rules its type and name rules
	// (nil: read from the settings in Init).
	Skip  *policy.Skip
	Rules *policy.Rules
	// Quarantine keeps what is blocked (nil: per quarantine, from Init).
	Quarantine *quarantine.Store
	kept       *keptIDs // what this worker kept, so that it is kept once (set in Init)
	// settings are the service's settings that decide an outcome, parsed
	// (in Init).
	settings outcome.Settings

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
	if a, ok := slots.ProxiedDestination(conn); ok {
		return a, nil // a balancer's PROXY header said where the client went
	}
	a, err := c.OriginalDst(conn)
	if err != nil {
		return nil, err
	}
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return nil, fmt.Errorf("original destination %v is not TCP", a)
	}
	for _, l := range []*atomic.Value{&c.listening, &c.tlsListening} {
		if a, ok := l.Load().(net.Addr); ok && tproxy.IsLoop(ta, a) {
			return nil, ErrNotDiverted
		}
	}
	return ta, nil
}

// ParentAddr is parent_server_host:parent_server_port: the parent proxy
// (HTTP), the next hop (SMTP), the one mail server (POP3).
func (c *Common) ParentAddr() string {
	return net.JoinHostPort(c.Svc.ParentServerHost, strconv.Itoa(c.Svc.ParentServerPort))
}

// Listening says which address the service's Serve accepts clients on.
func (c *Common) Listening(a net.Addr) { c.listening.Store(a) }

// Build makes a service from a worker's environment: the equipment the
// services share (FromEnv) handed to make, then the service's own init.
func Build[P worker.Service](env *worker.Env, make func(Common) P, init func(P) error) (worker.Service, error) {
	c, err := FromEnv(env)
	if err != nil {
		return nil, err
	}
	p := make(c)
	return p, init(p)
}

// FromEnv is the equipment of a worker's service, the scanner (and, with
// fsasd_service, the spam checker) built from the settings.
func FromEnv(env *worker.Env) (Common, error) {
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
	svc, err := outcome.ParseService(c.Svc.Name)
	if err != nil {
		return err
	}
	c.settings = outcome.Settings{Service: svc, Action: c.Svc.Action, ScanFailure: c.Svc.ScanFailure,
		OversizeAction: c.Svc.OversizeAction, EncryptedAction: c.Svc.EncryptedAction, BlockRiskware: c.Svc.BlockRiskware}
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

// FollowFrom is the size from which an object is followed by the engine
// as it is spooled (Follow): below it, the scan at its end takes a few
// milliseconds anyway.
const FollowFrom = 8 << 20

// follow has the engine follow a file as it is spooled, once it passes
// FollowFrom, when the engine follows (the bundled fsavd:
// scanner.Follower): a large object's scan then has little left to read
// at its end. An Object calls Grew as its file grows, gives Following to
// the pipeline in the Subject, and Closes it. A body with a content
// coding (Codings, the Subject's) is not followed: what is scanned is
// what it decodes to.
type follow struct {
	C       *Common
	Codings []string

	fw      *scanner.Following
	started bool
}

// Grew is called as f grows.
func (fl *follow) Grew(f *spool.File) {
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
func (fl *follow) Following() *scanner.Following { return fl.fw }

// Close gives the follow up if the scan did not end it.
func (fl *follow) Close() { fl.fw.Close() }
