package supervisor

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/catalog"
	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/ipc"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/metrics"
	"github.com/fsigkd/fsigkd/worker"
)

// Run runs the gateway's master with cfg (loaded from the settings file
// the command line args named): in the foreground with fg, otherwise
// detached (it starts itself again with args in a session of its own and
// returns once that serves, 0, or has failed, 1). It returns the exit code.
func Run(args []string, version string, cfg *conf.Config, warnings []string, reg worker.Registry, fg bool) int {
	if !fg && !ipc.Detached() {
		if err := ipc.Detach(args); err != nil {
			fmt.Fprintf(os.Stderr, "fsigkd: %v\n", err)
			return 1
		}
		return 0
	}
	return runMaster(cfg, warnings, reg, fg, version)
}

// Worker is the body of a worker process (`fsigkd worker`, started by the
// master only).
func Worker(reg worker.Registry) int { return runWorker(reg) }

func runMaster(cfg *conf.Config, warnings []string, reg worker.Registry, fg bool, version string) int {
	g := cfg.Global
	for _, dir := range []string{g.BaseDir, g.TempDir, g.LogDir} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			fmt.Fprintf(os.Stderr, "fsigkd: %v\n", err)
			return 1
		}
	}
	lg, err := logs.Open(logs.Options{Dir: g.LogDir, Level: g.LogLevel, Foreground: fg,
		Syslog: g.LogSyslog, AccessJSON: g.AccessLogFormat == "json"})
	if err != nil {
		fmt.Fprintf(os.Stderr, "fsigkd: %v\n", err)
		return 1
	}
	defer lg.Close()
	log := lg.Error.Named("main")
	for _, w := range warnings {
		log.Warn(w)
	}
	exe, err := os.Executable()
	if err != nil {
		log.Error("cannot find own executable", zap.Error(err))
		return 1
	}
	pid, err := ipc.LockPidFile(g.PidFile)
	if err != nil {
		log.Error("cannot start", zap.Error(err))
		return 1
	}
	m := &master{reg: reg, cfg: cfg, lg: lg, log: lg.Error, exe: exe, fg: fg, version: version,
		svcs: map[string]*svc{}, events: make(chan any, 16), pid: pid, announce: true}
	m.onReady = ipc.DaemonReady()
	logs.Emit(log, catalog.L01(version, os.Args))
	if m.onReady != nil {
		logs.Emit(log, catalog.L02(os.Getpid()))
	}
	log.Info("starting", zap.String("settings", cfg.File), zap.Int("pid", os.Getpid()))
	if !m.start() {
		m.stopping = true
		m.signalAll(syscall.SIGTERM)
		m.signalHelper(syscall.SIGTERM)
		for m.live() > 0 {
			m.handle(<-m.events)
		}
		m.cleanup()
		return 1
	}
	log.Info("listening" + m.describe())
	return m.run()
}

// Status prints, for `fsigkd status`, the running gateway of baseDir
// (its settings file named file) on w: per service, the worker and its
// slots, read from the state file and the semaphore sets themselves, and
// the services that are down with why. It returns 0; 4 when an enabled
// service is down; 3 when the gateway is not running (said on errw).
func Status(w, errw io.Writer, baseDir, file, logDir string) int {
	master, svcs, err := Services(baseDir)
	if err != nil {
		fmt.Fprintf(errw, "fsigkd is not running (%v)\n", err)
		return 3
	}
	fmt.Fprintf(w, "master pid %d (%s)\n", master, filepath.Clean(file))
	fmt.Fprintf(w, "%-6s %-8s %-6s %-6s %s\n", "SERVICE", "PID", "SLOTS", "TOTAL", "LISTEN")
	code := 0
	for _, s := range svcs {
		if s.Down != "" {
			fmt.Fprintf(w, "%-6s %-8s %-6s %-6s down: %s\n", s.Name, "-", "-", "-", s.Down)
			code = StatusServiceDown
			continue
		}
		used, total := "-", "-"
		if s.Used >= 0 {
			used = fmt.Sprint(s.Used)
		}
		if s.Total > 0 {
			total = fmt.Sprint(s.Total)
		}
		fmt.Fprintf(w, "%-6s %-8d %-6s %-6s %s\n", s.Name, s.PID, used, total, s.Listen)
	}
	if logDir != "" {
		fmt.Fprintf(w, "logs   %s\n", logHealth(baseDir, logDir))
	}
	return code
}

// StatusServiceDown is fsigkd status's exit code while an enabled service
// is down.
const StatusServiceDown = 4

// logHealth is the logs' line of the status: the room left in log_dir
// and the lines lost, so that a full log_dir is seen where the log
// itself cannot say it.
func logHealth(baseDir, logDir string) string {
	var st syscall.Statfs_t
	room := "free space unknown"
	if err := syscall.Statfs(logDir, &st); err == nil {
		room = fmt.Sprintf("%d MiB free", int64(st.Bavail)*int64(st.Bsize)>>20)
	}
	counters, _, _ := (&metrics.Totals{Dir: MetricsDir(baseDir), Peek: true}).Gather()
	loss := logs.Loss(counters)
	if loss == "" {
		loss = "no line lost"
	}
	return fmt.Sprintf("%s: %s; %s", logDir, room, loss)
}

// ServiceStatus is one service as the running gateway has it.
type ServiceStatus struct {
	Name        string
	PID         int
	Used, Total int    // slots in use (-1: unknown) of pre_spawn (0: unknown)
	Listen      string // its address
	Down        string // why an enabled service is not running ("" when it runs)
}

// Services reads the running gateway's services from its state under
// baseDir: the master's pid, and each service (the running ones, then
// those down).
func Services(baseDir string) (master int, svcs []ServiceStatus, err error) {
	st, err := ipc.ReadState(baseDir)
	if err != nil {
		return 0, nil, err
	}
	if syscall.Kill(st.MasterPID, 0) != nil {
		return 0, nil, fmt.Errorf("master pid %d is gone", st.MasterPID)
	}
	for _, s := range st.Services {
		ss := ServiceStatus{Name: s.Name, PID: s.PID, Used: -1, Listen: s.Listen}
		if len(s.Sems) > 0 {
			if n, err := ipc.Open(s.Sems[0].ID, s.Sems[0].N).InUse(); err == nil {
				ss.Used = n
			}
			ss.Total = s.Sems[0].N
		}
		svcs = append(svcs, ss)
	}
	for _, d := range st.Down {
		svcs = append(svcs, ServiceStatus{Name: d.Name, Used: -1, Down: d.Why})
	}
	return st.MasterPID, svcs, nil
}
