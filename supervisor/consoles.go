package supervisor

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/console"
	"github.com/fsigkd/fsigkd/metrics"
	"github.com/fsigkd/fsigkd/tlsca"
)

// MetricsDir is where the workers write their counts (see package
// metrics), under base_dir.
func MetricsDir(baseDir string) string { return filepath.Join(baseDir, "metrics") }

// startMetrics makes the workers' metrics directory, emptied of an earlier
// run's files (the totals start again with the master).
func (m *master) startMetrics() {
	dir := MetricsDir(m.cfg.Global.BaseDir)
	os.MkdirAll(dir, 0o750)
	clearMetrics(dir)
	m.totals = &metrics.Totals{Dir: dir}
	m.born = time.Now()
	baseDir := m.cfg.Global.BaseDir // changes only at a start
	build := metrics.Sample{Name: "fsigkd_build_info", Labels: map[string]string{"version": m.version, "goversion": runtime.Version()}, Value: 1}
	metrics.SetGauges(func() []metrics.Sample { // the master's own, beside the workers'
		return append(append(m.engineGauges(), serviceGauges(baseDir)...), build)
	})
}

// serviceGauges say, for every enabled service, whether it serves, as
// fsigkd status reads it: a service that is down is 0, never absent, so
// that an alert on it fires.
func serviceGauges(baseDir string) []metrics.Sample {
	_, svcs, err := Services(baseDir)
	if err != nil {
		return nil
	}
	out := make([]metrics.Sample, 0, len(svcs))
	for _, s := range svcs {
		up := 1.0
		if s.Down != "" {
			up = 0
		}
		out = append(out, metrics.Sample{Name: "fsigkd_service_up", Labels: map[string]string{"service": s.Name}, Value: up})
	}
	return out
}

// clearMetrics removes the workers' count files, and the runtime files
// of the processes of an earlier run.
func clearMetrics(dir string) {
	old, _ := filepath.Glob(filepath.Join(dir, "*.json*"))
	gos, _ := filepath.Glob(filepath.Join(dir, "*.go*"))
	old = append(old, gos...)
	for _, f := range old {
		os.Remove(f)
	}
}

// startConsole serves the console as g says, in place of the one running
// (when its settings changed). A console that cannot start is logged; the
// gateway goes on without it.
func (m *master) startConsole(g conf.Global) {
	log := m.log.Named("console")
	m.shown.Store(m.cfg)
	if !g.Console {
		m.stopConsole()
		return
	}
	if m.pages == nil {
		baseDir := m.cfg.Global.BaseDir // base_dir and log_dir change only at a start
		m.pages = console.NewPages(console.Source{Version: m.version, Totals: m.totals,
			Services: func() (int, []console.Service, error) {
				master, svcs, err := Services(baseDir)
				var out []console.Service
				for _, s := range svcs {
					out = append(out, console.Service(s))
				}
				return master, out, err
			},
			Settings: func() string { return m.shown.Load().DumpMasked() },
			Engine: func() (string, []string) {
				k, problems := m.engineState()
				return k.String(), problems
			},
			Quarantine: &consoleQuarantine{cfg: m.shown.Load},
			CanAct:     func() bool { return m.shown.Load().Global.ConsolePassword != "" },
			TempDir:    m.cfg.Global.TempDir,
			Started:    m.born,
			ErrorLog:   filepath.Join(m.cfg.Global.LogDir, "error.log"),
			AccessLog:  filepath.Join(m.cfg.Global.LogDir, "access.log"),
			CA: func() (*x509.Certificate, bool) {
				cfg := m.shown.Load()
				svc := cfg.Services["http"]
				certFile, _ := tlsca.Paths(svc.TLSCACert, svc.TLSCAKey, cfg.Global.BaseDir)
				c, err := tlsca.ReadCertificate(certFile)
				if err != nil {
					return nil, false
				}
				return c, svc.Enable && svc.TLSIntercept
			},
		})
	}
	if m.console != nil {
		old := m.consoleCfg
		if old.ConsoleBind == g.ConsoleBind && old.ConsolePort == g.ConsolePort && old.ConsolePassword == g.ConsolePassword &&
			old.ConsoleTLSCert == g.ConsoleTLSCert && old.ConsoleTLSKey == g.ConsoleTLSKey {
			return
		}
		m.console.Close()
		m.console = nil
	}
	srv, err := console.Start(g, m.totals, m.pages, m.ready, metrics.ProcessCollector(m.processes), metrics.GoCollector(MetricsDir(m.cfg.Global.BaseDir), m.processes))
	if err != nil {
		log.Error("the console cannot start; the gateway goes on without it", zap.Error(err))
		return
	}
	m.console, m.consoleCfg = srv, g
	log.Info("console serving", zap.String("addr", srv.Addr().String()))
}

// processes are the gateway's processes for /metrics: the master, the
// bundled fsavd it runs, and each service's worker.
func (m *master) processes() []metrics.Proc {
	out := []metrics.Proc{metrics.Self()}
	if pid := m.helperPID.Load(); pid > 0 {
		out = append(out, metrics.Proc{PID: int(pid), Process: "fsavd"})
	}
	if _, svcs, err := Services(m.shownBaseDir()); err == nil {
		for _, s := range svcs {
			if s.PID > 0 {
				out = append(out, metrics.Proc{PID: s.PID, Process: "worker", Service: s.Name})
			}
		}
	}
	return out
}

// stopConsole stops the console, if it runs.
func (m *master) stopConsole() {
	if m.console != nil {
		m.console.Close()
		m.console = nil
	}
	if m.pages != nil {
		m.pages.Close()
		m.pages = nil
	}
}

// ready is /readyz: every enabled service serves, the gateway is not
// stopping (nor in its unready_before_stop moment), and each engine
// the workers use has an endpoint that answers.
func (m *master) ready() (bool, string) {
	if m.unready.Load() {
		return false, "stopping"
	}
	_, svcs, err := Services(m.shownBaseDir())
	if err != nil {
		return false, "not running"
	}
	for _, s := range svcs {
		if s.Down != "" {
			return false, s.Name + " down"
		}
	}
	_, gauges, _ := m.totals.Gather()
	engines := map[string]bool{}
	for _, g := range gauges {
		if g.Name == "fsigkd_engine_endpoint_up" {
			engines[g.Labels["engine"]] = engines[g.Labels["engine"]] || g.Value > 0
		}
	}
	for e, up := range engines {
		if !up {
			return false, "engine " + e + " not answering"
		}
	}
	return true, ""
}

// shownBaseDir is base_dir (it changes only at a start).
func (m *master) shownBaseDir() string { return m.shown.Load().Global.BaseDir }
