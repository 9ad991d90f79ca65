package supervisor

import (
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/conf"
)

// helper is a daemon the master runs beside the services: the bundled
// fsavd when fsavd_start = yes. It is restarted when it dies, after a
// doubling delay while it keeps dying, and stopped after the workers.
type helper struct {
	name    string
	args    []string
	socket  string
	cmd     *exec.Cmd
	started time.Time
	quick   int
	done    bool // exited and not restarted yet
}

type helperExit struct {
	h     *helper
	state *os.ProcessState
}
type helperRestart struct{ h *helper }

// fsavdHelper is the bundled fsavd for cfg, or nil when it is not wanted.
func fsavdHelper(cfg *conf.Config) *helper {
	g := cfg.Global
	if !g.FsavdStart || g.AVEngine != "fsavd" {
		return nil
	}
	eps, err := conf.ParseEndpoints(g.AVServers, g.BaseDir)
	if err != nil || eps[0].Network != "unix" {
		return nil
	}
	args := []string{"fsavd", "-socket", eps[0].Address, "-signatures", g.FsavdSigs, "-log-dir", g.LogDir, "-log-level", g.LogLevel,
		"-metrics-dir", MetricsDir(g.BaseDir)}
	if g.LogSyslog {
		args = append(args, "-syslog") // its lines are the error log's too
	}
	return &helper{name: "fsavd", socket: eps[0].Address, args: args}
}

func (m *master) startHelper(h *helper) {
	args := h.args
	if m.fg {
		args = append(append([]string{}, args...), "-f") // its lines on standard error too
	}
	cmd := exec.Command(m.exe, args...)
	cmd.Dir = m.cfg.Global.BaseDir
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	h.done = false
	if err := cmd.Start(); err != nil {
		m.log.Named("main").Error("cannot start "+h.name, zap.Error(err))
		go func() { m.events <- helperExit{h: h} }()
		return
	}
	h.cmd, h.started = cmd, time.Now()
	if h == m.helper {
		m.helperPID.Store(int64(cmd.Process.Pid))
	}
	go func() {
		cmd.Wait()
		m.events <- helperExit{h: h, state: cmd.ProcessState}
	}()
}

// waitHelper gives a starting helper a moment to serve, so that the first
// requests do not meet a missing socket.
func waitHelper(h *helper) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("unix", h.socket); err == nil {
			c.Close()
			return
		}
	}
}

func (m *master) helperExited(h *helper, st *os.ProcessState) {
	h.done = true
	if m.stopping {
		return
	}
	m.log.Named("main").Warn(h.name+" stopped; restarting it", zap.String("exit", exitText(st)))
	delay := m.restartDelay(h.started, &h.quick)
	time.AfterFunc(delay, func() { m.events <- helperRestart{h} })
}

func (m *master) signalHelper(sig syscall.Signal) {
	if h := m.helper; h != nil && !h.done && h.cmd != nil && h.cmd.Process != nil {
		h.cmd.Process.Signal(sig)
	}
}
