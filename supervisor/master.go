package supervisor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/fsigkd/fsigkd/notify"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/fsigkd/fsigkd/catalog"
	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/console"
	"github.com/fsigkd/fsigkd/ipc"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/metrics"
	"github.com/fsigkd/fsigkd/preflight"
	"github.com/fsigkd/fsigkd/spool"
	"github.com/fsigkd/fsigkd/worker"
)

// stableRun is how long a worker must have served for its death to count
// as a fresh failure, restarted at once, rather than one more in a row.
const stableRun = 10 * time.Second

// firstRetry is the back-off after the second quick death in a row; it
// doubles with each further one, up to restart_max_delay.
const firstRetry = 100 * time.Millisecond

type master struct {
	born     time.Time // when the master started, for the console's uptime
	reg      worker.Registry
	cfg      *conf.Config
	lg       *logs.Logs
	log      *zap.Logger
	exe      string
	fg       bool
	svcs     map[string]*svc
	seq      int
	events   chan any
	pid      *ipc.PidFile
	stopping bool
	announce bool // READY=1 is due once every worker serves
	// unready: a stop has begun, or will once unready_before_stop has
	// passed (/readyz says 503).
	unready atomic.Bool
	onReady func()
	helper  *helper // the bundled fsavd, when the master runs it
	// helperPID is its process, for /metrics (read off the event loop).
	helperPID atomic.Int64
	// down is why an enabled service is not running: the documented
	// message it failed with, for fsigkd status.
	down map[string]string
	// totals are the workers' counts; console serves them (consoleCfg:
	// its settings).
	totals     *metrics.Totals
	console    *console.Server
	pages      *console.Pages
	consoleCfg conf.Global
	shown      atomic.Pointer[conf.Config] // the settings the console shows (read by its handlers)
	version    string
	engine     engineWatch // what the anti-virus engine knows
}

// gen is what one generation of a service's workers runs with: the
// settings, the listener and the semaphore set. A reload that changes the
// service makes a new one; a restart after a crash keeps it.
type gen struct {
	cfg    *conf.Config
	ln     *os.File
	tls    *os.File // the implicit-TLS listener (tls_port); nil: none
	listen string
	sem    *ipc.SemSet
}

// closeLn closes the generation's listeners.
func (g gen) closeLn() { g.closeLnBut(gen{}) }

// closeLnBut closes the generation's listeners that other does not share.
func (g gen) closeLnBut(other gen) {
	if g.ln != nil && g.ln != other.ln {
		g.ln.Close()
	}
	if g.tls != nil && g.tls != other.tls {
		g.tls.Close()
	}
}

// svc is one service as the master runs it.
type svc struct {
	name  string
	index int
	gen           // the generation serving, kept while its worker restarts
	cur   *proc   // the worker serving
	next  *proc   // a worker of new settings, not yet serving
	old   []*proc // workers draining
	quick int     // quick deaths in a row
	oldLn []*os.File
}

// proc is one worker process.
type proc struct {
	svc     *svc
	cmd     *exec.Cmd
	id      int
	started time.Time
	ready   bool
	asked   bool // told to stop: its exit is expected
	exited  bool // its exit event has been handled
	gen
}

type exitEvent struct {
	p     *proc
	state *os.ProcessState
}
type readyEvent struct{ p *proc }
type restartEvent struct{ s *svc }

func (m *master) emit(where string, msg catalog.Message) { logs.Emit(m.log.Named(where), msg) }

// start runs the start-up sequence; false means the gateway must not run.
func (m *master) start() bool {
	g := m.cfg.Global
	if n, err := ipc.RemoveStaleSems(g.BaseDir); err != nil {
		m.log.Named("main:start").Warn("reading the previous run's state", zap.Error(err))
	} else if n > 0 {
		m.log.Named("main:start").Info("removed semaphore sets left by an earlier run", zap.Int("sets", n))
	}
	if n, err := (spool.Dir{Path: g.TempDir}).ClearStale(); err == nil && n > 0 {
		m.log.Named("main:start").Info("removed spool files left by an earlier run", zap.Int("files", n))
	}
	for _, check := range []func() error{
		func() error { return preflight.License(g.License, time.Now()) },
		func() error { return preflight.TempSpace(g.TempDir, g.TempMinFree) },
		func() error { return preflight.OnAccessScanner(g.TempDir) },
	} {
		if err := check(); err != nil {
			if msg, ok := catalog.Of(err); ok {
				m.emit("main:start", msg)
			} else if catalog.OutOfFiles(err) {
				m.emit("main:start", catalog.M13(err, "start-up check: "+err.Error(), true))
			} else {
				m.log.Named("main:start").Error("start-up check failed", zap.Error(err))
			}
			return false
		}
	}
	// The key that marks the gateway's own notices, made once here so
	// that every worker reads the same one.
	if _, err := notify.LoadKey(g.BaseDir); err != nil {
		m.log.Named("main:start").Error("the notice key cannot be made or read", zap.Error(err))
		return false
	}
	m.startMetrics()
	if m.helper = fsavdHelper(m.cfg); m.helper != nil {
		m.startHelper(m.helper)
		waitHelper(m.helper)
	}
	var down []string
	for _, sc := range m.cfg.Enabled() {
		if m.reg[sc.Name] == nil {
			m.log.Named(sc.Name).Warn("service is enabled but not part of this build; it stays down")
			continue
		}
		if !m.startService(sc.Name) {
			down = append(down, sc.Name)
		}
	}
	m.saveState()
	if len(m.svcs) == 0 {
		m.log.Named("main:start").Error("no service could start")
		return false
	}
	if len(down) > 0 && !g.BindRetry {
		// A start that does not serve every enabled service fails, so
		// that systemd and scripts see it (bind_retry = yes serves the
		// rest and tries again).
		m.log.Named("main:start").Error("not every enabled service could start: the gateway stops (bind_retry = yes would serve the rest)",
			zap.Strings("down", down))
		return false
	}
	m.startConsole(m.cfg.Global)
	return true
}

// startService binds service name's listener and starts its worker;
// false when it could not bind (logged, and kept for status).
func (m *master) startService(name string) bool {
	g, ok := m.open(name, m.cfg, nil)
	if !ok {
		return false
	}
	s := &svc{name: name, index: conf.Index(name), gen: g}
	m.svcs[s.name] = s
	m.spawn(s, g, false)
	return true
}

// retryDown tries again, with bind_retry = yes, the enabled services that
// could not bind: each failure is logged again, once a minute.
func (m *master) retryDown() {
	if m.stopping || !m.cfg.Global.BindRetry {
		return
	}
	started := false
	for _, sc := range m.cfg.Enabled() {
		if _, running := m.svcs[sc.Name]; running || m.reg[sc.Name] == nil {
			continue
		}
		if m.startService(sc.Name) {
			m.log.Named(sc.Name).Info("the service could bind at last and serves")
			started = true
		}
	}
	if started {
		m.saveState()
	}
}

// open makes a generation of cfg for the service name: it binds its
// listener and creates its semaphore set, each failure logged as
// documented (M06, M01, M13, M15).
func (m *master) open(name string, cfg *conf.Config, keep *os.File) (gen, bool) {
	sc := cfg.Services[name]
	sem, ok := m.semSet(name, name+":start", sc.PreSpawn)
	if !ok {
		return gen{}, false
	}
	ln, port := keep, sc.Port
	var err error
	if ln == nil {
		ln, err = listenTCP(sc.BindAddr, sc.Port, backlog(cfg.Global.ListenBacklog), sc.Transparent, sc.TransparentTproxy)
	}
	var tlsLn *os.File
	if err == nil && sc.TLSPort != 0 {
		port = sc.TLSPort
		if tlsLn, err = listenTCP(sc.BindAddr, sc.TLSPort, backlog(cfg.Global.ListenBacklog), sc.Transparent, sc.TransparentTproxy); err != nil && keep == nil {
			ln.Close()
		}
	}
	if err != nil {
		sem.Remove()
		if catalog.OutOfFiles(err) {
			m.failed(name, name+":start", catalog.M13(err, "socket", true))
		} else if errors.Is(err, errTransparent) {
			m.failed(name, name+":start", catalog.M15())
			if errors.Is(err, syscall.EPERM) {
				// M15's hint (a kernel patch) is decades old: the cause
				// today is a missing capability.
				m.log.Named(name + ":start").Error("the real cause: IP_TRANSPARENT needs the CAP_NET_ADMIN capability (mainline Linux has TPROXY)")
			}
		} else {
			m.failed(name, name+":start", catalog.M01(sc.BindAddr, port, err))
			if errors.Is(err, syscall.EACCES) {
				// M01's hint (another service running) misleads here.
				m.log.Named(name+":start").Error("the real cause: binding a port below 1024 needs root or the CAP_NET_BIND_SERVICE capability", zap.Int("port", port))
			}
		}
		return gen{}, false
	}
	delete(m.down, name)
	listen := net.JoinHostPort(sc.BindAddr, strconv.Itoa(sc.Port))
	if tlsLn != nil {
		listen += "+tls:" + strconv.Itoa(sc.TLSPort)
	}
	return gen{cfg: cfg, ln: ln, tls: tlsLn, listen: listen, sem: sem}, true
}

// failed logs why service could not start, and keeps it for fsigkd status.
func (m *master) failed(service, where string, msg catalog.Message) {
	m.emit(where, msg)
	if m.down == nil {
		m.down = map[string]string{}
	}
	m.down[service] = msg.Text
}

// semSet creates a semaphore set of n slots for service, its failure
// logged as documented (M13 when out of descriptors, else M06).
func (m *master) semSet(service, where string, n int) (*ipc.SemSet, bool) {
	sem, err := ipc.Create(n)
	if err != nil {
		if catalog.OutOfFiles(err) {
			m.failed(service, where, catalog.M13(err, "semget", true))
		} else {
			m.failed(service, where, catalog.M06(err, n))
		}
		return nil, false
	}
	return sem, true
}

// spawn starts a worker of generation g for s. As next, it does not serve
// as s's worker until it says it is ready.
func (m *master) spawn(s *svc, g gen, next bool) {
	m.seq++
	p := &proc{svc: s, id: m.seq, gen: g}
	if next {
		s.next = p
	} else {
		s.cur = p
	}
	if err := m.exec(p); err != nil {
		m.log.Named(s.name).Error("cannot start worker", zap.Error(err))
		// Treated as a worker that died at once: retried with back-off.
		go func() { m.events <- exitEvent{p: p} }()
	}
}

func (m *master) exec(p *proc) error {
	raw, err := p.cfg.Marshal()
	if err != nil {
		return err
	}
	cmd := exec.Command(m.exe, "worker")
	cmd.Env = os.Environ()
	cmd.Dir = p.cfg.Global.BaseDir
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	if !m.fg {
		// A crashing worker's traceback goes to crash.log.
		if f, err := os.OpenFile(p.cfg.Global.LogDir+"/crash.log", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640); err == nil {
			cmd.Stdout, cmd.Stderr = f, f
			defer f.Close()
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	ready, err := ipc.Spawn(cmd, ipc.Handoff{Service: p.svc.name, Listener: p.ln, TLS: p.tls, Sem: p.sem, Settings: raw, Foreground: m.fg})
	if err != nil {
		return err
	}
	p.cmd, p.started = cmd, time.Now()
	go func() {
		<-ready
		m.events <- readyEvent{p}
	}()
	go func() {
		cmd.Wait()
		m.events <- exitEvent{p: p, state: cmd.ProcessState}
	}()
	return nil
}

// beginStop stops the workers and closes the listeners; the returned
// channel says when to kill what has not ended.
func (m *master) beginStop() <-chan time.Time {
	m.stopping = true
	m.unready.Store(true)
	ipc.SdNotify("STOPPING=1")
	m.signalAll(syscall.SIGTERM)
	// The workers close their copies of the listeners as they stop; with
	// ours closed too, a new client is refused at once instead of waiting
	// in a backlog nobody will accept from.
	m.closeListeners()
	return time.After(m.cfg.Global.ShutdownGrace + graceKill)
}

// bindRetryEvery is how often bind_retry = yes tries a down service's
// bind again.
var bindRetryEvery = time.Minute

// run is the master's event loop; it returns the exit code.
func (m *master) run() int {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	var killTimer, unreadyTimer <-chan time.Time
	look := time.NewTicker(engineLook)
	defer look.Stop()
	retry := time.NewTicker(bindRetryEvery)
	defer retry.Stop()
	for {
		if m.stopping && m.helper != nil && !m.helper.done && m.live() == 1 {
			// The workers are done: now the engine they used.
			m.signalHelper(syscall.SIGTERM)
		}
		if m.stopping && m.live() == 0 {
			m.cleanup()
			m.log.Named("main").Info("stopped")
			logs.Emit(m.log.Named("main"), catalog.L04())
			return 0
		}
		select {
		case <-retry.C:
			m.retryDown()
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				if !m.stopping {
					m.signalHelper(syscall.SIGHUP) // signatures
					m.signalAll(syscall.SIGHUP)    // the verdicts kept under the old ones
					m.reload()
				}
			case syscall.SIGUSR1:
				if err := m.lg.Reopen(); err != nil {
					m.log.Named("main").Warn("reopening logs", zap.Error(err))
				}
				m.signalAll(syscall.SIGUSR1)
				m.signalHelper(syscall.SIGUSR1)
			default:
				if d := m.cfg.Global.UnreadyBeforeStop; !m.stopping && !m.unready.Load() && d > 0 {
					// Balancers first: /readyz says 503 for a moment,
					// and only then do the services stop accepting. A
					// second signal stops at once.
					m.unready.Store(true)
					m.log.Named("main").Info("stopping: not ready first", zap.String("signal", sig.String()), zap.Duration("unready_before_stop", d))
					unreadyTimer = time.After(d)
					continue
				}
				if !m.stopping {
					m.log.Named("main").Info("stopping", zap.String("signal", sig.String()))
					killTimer = m.beginStop()
				}
			}
		case <-unreadyTimer:
			if !m.stopping {
				m.log.Named("main").Info("stopping")
				killTimer = m.beginStop()
			}
		case <-killTimer:
			m.signalAll(syscall.SIGKILL)
			m.signalHelper(syscall.SIGKILL)
		case <-look.C:
			if !m.stopping {
				m.learnEngine(false)
			}
		case ev := <-m.events:
			m.handle(ev)
		}
	}
}

// closeListeners closes the master's copies of every listening socket.
func (m *master) closeListeners() {
	for _, s := range m.svcs {
		s.closeLn()
		for _, f := range s.oldLn {
			f.Close()
		}
		s.oldLn = nil
	}
}

// live counts the worker processes still running, and the helper.
func (m *master) live() int {
	n := 0
	if m.helper != nil && !m.helper.done && m.helper.cmd != nil {
		n++
	}
	for _, s := range m.svcs {
		for _, p := range s.procs() {
			if p.cmd != nil && !p.exited {
				n++
			}
		}
	}
	return n
}

func (s *svc) procs() []*proc {
	out := append([]*proc(nil), s.old...)
	if s.cur != nil {
		out = append(out, s.cur)
	}
	if s.next != nil {
		out = append(out, s.next)
	}
	return out
}

func (m *master) signalAll(sig syscall.Signal) {
	for _, s := range m.svcs {
		for _, p := range s.procs() {
			if sig == syscall.SIGHUP && !p.ready {
				// Not serving yet: it may not have set up its
				// signals, and a SIGHUP would end it.
				continue
			}
			if sig != syscall.SIGUSR1 && sig != syscall.SIGHUP { // those two ask no one to stop
				p.asked = true
			}
			if p.cmd != nil && p.cmd.Process != nil {
				p.cmd.Process.Signal(sig)
			}
		}
	}
}

func (m *master) handle(ev any) {
	switch ev := ev.(type) {
	case readyEvent:
		p := ev.p
		p.ready = true
		s := p.svc
		if p == s.next && !m.stopping {
			m.promote(s)
		}
		m.saveState()
		m.maybeReady()
	case exitEvent:
		ev.p.exited = true
		m.exited(ev.p, ev.state)
	case helperExit:
		m.helperExited(ev.h, ev.state)
	case engineKnown:
		m.engineLearnt(ev)
	case helperRestart:
		if !m.stopping && ev.h == m.helper {
			m.startHelper(ev.h)
		}
	case restartEvent:
		s := ev.s
		if m.stopping || s.cur != nil || m.svcs[s.name] != s {
			return
		}
		m.spawn(s, s.gen, false)
		m.saveState()
	}
}

// promote makes a worker of new settings the service's worker and drains
// the one it replaces.
func (m *master) promote(s *svc) {
	old := s.cur
	s.cur, s.next = s.next, nil
	if old != nil {
		old.asked = true
		s.old = append(s.old, old)
		if old.cmd != nil && old.cmd.Process != nil {
			old.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	if old != nil && old.ln != s.cur.ln {
		s.oldLn = append(s.oldLn, old.ln)
	}
	if old != nil && old.tls != nil && old.tls != s.cur.tls {
		s.oldLn = append(s.oldLn, old.tls)
	}
	s.gen = s.cur.gen
	m.log.Named(s.name).Info("serving with new settings", zap.Int("pid", s.cur.cmd.Process.Pid))
}

func (m *master) exited(p *proc, st *os.ProcessState) {
	s := p.svc
	// The files a worker spooled are its own: once it has ended, killed
	// or not, they are orphans.
	if p.cmd != nil && p.cmd.Process != nil {
		if n, err := (spool.Dir{Path: m.cfg.Global.TempDir}).RemoveOf(p.cmd.Process.Pid); err == nil && n > 0 {
			m.log.Named(s.name).Info("removed the spool files of an ended worker", zap.Int("pid", p.cmd.Process.Pid), zap.Int("files", n))
		}
	}
	switch {
	case p == s.cur && !p.asked && !m.stopping:
		m.crashed(p, st)
		s.cur = nil
		delay := m.restartDelay(p.started, &s.quick)
		time.AfterFunc(delay, func() { m.events <- restartEvent{s} })
	case p == s.next:
		// A worker of new settings died before it served: the old one
		// goes on.
		s.next = nil
		if !m.stopping {
			m.log.Named(s.name).Warn("reload: the new worker did not start; the running one goes on", zap.String("exit", exitText(st)))
		}
		if p.sem != s.sem {
			p.sem.Remove()
		}
		p.closeLnBut(s.gen)
	default:
		for i, o := range s.old {
			if o == p {
				s.old = append(s.old[:i], s.old[i+1:]...)
				break
			}
		}
		// Its generation's set goes with it, stopping or not: once it is
		// off s.old, the final cleanup no longer sees it.
		if p.sem != s.sem {
			p.sem.Remove()
		}
		if len(s.old) == 0 {
			for _, f := range s.oldLn {
				f.Close()
			}
			s.oldLn = nil
		}
		if s.cur == nil && s.next == nil && len(s.old) == 0 && !m.stopping && !m.cfg.Services[s.name].Enable {
			// Disabled by a reload, and now drained.
			s.sem.Remove()
			s.closeLn()
			delete(m.svcs, s.name)
			m.log.Named(s.name).Info("service stopped: disabled in the settings")
		}
	}
	m.saveState()
}

// crashed logs M17, M18 for a core dump, and M19.
func (m *master) crashed(p *proc, st *os.ProcessState) {
	c := catalog.ChildExit{Index: p.svc.index, ChildID: p.id, MasterPID: os.Getpid(), Code: 1}
	if p.cmd != nil && p.cmd.Process != nil {
		c.PID = p.cmd.Process.Pid
	}
	if st != nil {
		ws := st.Sys().(syscall.WaitStatus)
		switch {
		case ws.Signaled() && ws.CoreDump():
			c.Code, c.Status, c.Signal = 3, int(ws.Signal()), unix.SignalName(ws.Signal())
		case ws.Signaled():
			c.Code, c.Status, c.Signal = 2, int(ws.Signal()), unix.SignalName(ws.Signal())
		default:
			c.Status = ws.ExitStatus()
		}
	}
	where := p.svc.name + ":supervisor"
	m.emit(where, catalog.M17(c))
	if c.Code == 3 {
		m.emit(where, catalog.M18(c))
	}
	m.emit(where, catalog.M19())
}

func exitText(st *os.ProcessState) string {
	if st == nil {
		return "not started"
	}
	return st.String()
}

// maybeReady tells systemd READY=1 once every service's worker serves.
func (m *master) maybeReady() {
	if !m.announce {
		return
	}
	for _, s := range m.svcs {
		if s.cur == nil || !s.cur.ready || s.next != nil {
			return
		}
	}
	m.announce = false
	ipc.SdNotify("READY=1")
	if m.onReady != nil {
		m.onReady()
		m.onReady = nil
	}
	m.log.Named("main").Info("serving", zap.Int("services", len(m.svcs)))
	logs.Emit(m.log.Named("main"), catalog.L03())
	m.learnEngine(true) // at a start and after a reload: what the engine knows, said
}

func (m *master) saveState() {
	st := &ipc.State{MasterPID: os.Getpid()}
	for _, name := range conf.Services {
		s := m.svcs[name]
		if s == nil {
			continue
		}
		ss := ipc.ServiceState{Name: name, Listen: s.listen}
		if s.cur != nil && s.cur.cmd != nil && s.cur.cmd.Process != nil {
			ss.PID = s.cur.cmd.Process.Pid
		}
		seen := map[*ipc.SemSet]bool{}
		sems := []*ipc.SemSet{s.sem} // the current set first
		for _, p := range s.procs() {
			sems = append(sems, p.sem)
		}
		for _, sem := range sems {
			if sem != nil && !seen[sem] {
				seen[sem] = true
				ss.Sems = append(ss.Sems, ipc.Sem{ID: sem.ID, N: sem.N, CTime: sem.CTime})
			}
		}
		st.Services = append(st.Services, ss)
	}
	for _, name := range conf.Services {
		if why, ok := m.down[name]; ok && m.svcs[name] == nil {
			st.Down = append(st.Down, ipc.DownService{Name: name, Why: why})
		}
	}
	if err := ipc.WriteState(m.cfg.Global.BaseDir, st); err != nil {
		m.log.Named("main").Warn("writing the state file", zap.Error(err))
	}
}

// cleanup removes what the master made, once every worker has ended.
func (m *master) cleanup() {
	m.stopConsole()
	clearMetrics(MetricsDir(m.cfg.Global.BaseDir)) // every worker has ended: their counts go with the master
	for _, s := range m.svcs {
		for _, p := range s.procs() {
			if p.sem != nil {
				p.sem.Remove()
			}
		}
		if s.sem != nil {
			s.sem.Remove()
		}
		s.closeLn()
	}
	ipc.RemoveState(m.cfg.Global.BaseDir)
	// Every worker has ended: no spool file is anyone's.
	(spool.Dir{Path: m.cfg.Global.TempDir}).ClearStale()
	if m.pid != nil {
		m.pid.Remove()
	}
}

// reload applies the settings file again: new workers first, the old ones
// drained once the new ones serve. A file that does not load keeps
// everything as it runs.
func (m *master) reload() {
	log := m.log.Named("main:reload")
	cfg, warnings, err := conf.Load(m.cfg.File)
	if err != nil {
		log.Error("settings not reloaded; the running ones stay", zap.String("errors", err.Error()))
		return
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	g, ng := m.cfg.Global, &cfg.Global
	if g.BaseDir != ng.BaseDir || g.TempDir != ng.TempDir || g.LogDir != ng.LogDir || g.PidFile != ng.PidFile {
		log.Warn("base_dir, temp_dir, log_dir and pid_file take a new value only at the next start")
		ng.BaseDir, ng.TempDir, ng.LogDir, ng.PidFile = g.BaseDir, g.TempDir, g.LogDir, g.PidFile
	}
	ipc.SdNotify("RELOADING=1")
	log.Info("reloading settings", zap.String("file", cfg.File))
	m.announce = true
	for _, name := range conf.Services {
		s := m.svcs[name]
		sc := cfg.Services[name]
		switch {
		case s == nil && sc.Enable && m.reg[name] != nil:
			if g, ok := m.open(name, cfg, nil); ok {
				s = &svc{name: name, index: conf.Index(name), gen: g}
				m.svcs[name] = s
				m.spawn(s, g, false)
			}
		case s != nil && !sc.Enable:
			for _, p := range s.procs() {
				p.asked = true
				if p.cmd != nil && p.cmd.Process != nil {
					p.cmd.Process.Signal(syscall.SIGTERM)
				}
			}
			// It stays in m.svcs until its workers have drained.
			s.old, s.cur, s.next = s.procs(), nil, nil
		case s != nil && sameSettings(s.cfg, cfg, name):
			// Nothing this service uses changed: its worker goes on.
		case s != nil:
			if s.next != nil {
				s.next.asked = true
				s.next.cmd.Process.Signal(syscall.SIGTERM)
				s.old = append(s.old, s.next)
				s.next = nil
			}
			if old := s.cfg.Services[name]; old.BindAddr != sc.BindAddr || old.Port != sc.Port || old.TLSPort != sc.TLSPort {
				// A new address: a listener of its own, and a set (the
				// plain one kept when only tls_port moved).
				var keep *os.File
				if old.BindAddr == sc.BindAddr && old.Port == sc.Port {
					keep = s.ln
				}
				if g, ok := m.open(name, cfg, keep); ok { // else logged; the running worker goes on
					m.spawn(s, g, true)
				}
				continue
			}
			// The same listener, and a fresh semaphore set: the old worker
			// keeps counting its draining sessions in its own.
			if sem, ok := m.semSet(name, name+":reload", sc.PreSpawn); ok {
				m.spawn(s, gen{cfg: cfg, ln: s.ln, tls: s.tls, listen: s.listen, sem: sem}, true)
			}
		}
	}
	m.cfg = cfg
	m.saveState()
	m.startConsole(cfg.Global)
	m.maybeReady()
}

// describe is a one-line summary of the services, for the start log.
func (m *master) describe() string {
	out := ""
	for _, name := range conf.Services {
		if s := m.svcs[name]; s != nil {
			out += fmt.Sprintf(" %s=%s", name, s.listen)
		}
	}
	return out
}

// sameSettings tells whether a service runs the same under a and b: its
// own section and the global keys alike.
func sameSettings(a, b *conf.Config, name string) bool {
	ga, _ := json.Marshal(a.Global)
	gb, _ := json.Marshal(b.Global)
	sa, _ := json.Marshal(a.Services[name])
	sb, _ := json.Marshal(b.Services[name])
	return bytes.Equal(ga, gb) && bytes.Equal(sa, sb)
}

// restartDelay is how long to wait before starting again a process that
// started at started and just died: at once after a stable run or a first
// quick death, then doubling from firstRetry up to restart_max_delay while
// it keeps dying quickly (quick counts those deaths).
func (m *master) restartDelay(started time.Time, quick *int) time.Duration {
	if time.Since(started) >= stableRun {
		*quick = 0
		return 0
	}
	*quick++
	if *quick <= 1 {
		return 0
	}
	return min(firstRetry<<min(*quick-2, 16), m.cfg.Global.RestartMaxDelay)
}
