package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/internal/quietmem"
	"github.com/fsigkd/fsigkd/ipc"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/metrics"
	"github.com/fsigkd/fsigkd/notify"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/slots"
	"github.com/fsigkd/fsigkd/spool"
	"github.com/fsigkd/fsigkd/worker"
)

// runWorker is the body of `fsigkd worker`: it serves one service on the
// inherited listener until SIGTERM, then drains.
func runWorker(reg worker.Registry) int {
	in, err := ipc.Inherit()
	if err != nil {
		fmt.Fprintf(os.Stderr, "fsigkd worker: %v\n", err)
		return 1
	}
	name := in.Service
	cfg, err := conf.Unmarshal(in.Settings)
	if err != nil || cfg.Services[name] == nil || reg[name] == nil {
		fmt.Fprintf(os.Stderr, "fsigkd worker %s: bad settings or no such service: %v\n", name, err)
		return 1
	}
	svcCfg := cfg.Services[name]
	lg, err := logs.Open(logs.Options{Dir: cfg.Global.LogDir, Level: cfg.Global.LogLevel, Foreground: in.Foreground,
		Syslog: cfg.Global.LogSyslog, AccessJSON: cfg.Global.AccessLogFormat == "json"})
	if err != nil {
		fmt.Fprintf(os.Stderr, "fsigkd worker %s: %v\n", name, err)
		return 1
	}
	defer lg.Close()
	log := lg.Error.Named(name)

	if cfg.Global.CoreDump {
		// A crash should leave a core file for the support centre (M18):
		// GOTRACEBACK=crash makes the runtime abort with a dump, and the
		// soft core limit is raised as far as the hard one allows.
		debug.SetTraceback("crash")
		var rl syscall.Rlimit
		if syscall.Getrlimit(syscall.RLIMIT_CORE, &rl) == nil {
			rl.Cur = rl.Max
			syscall.Setrlimit(syscall.RLIMIT_CORE, &rl)
		}
	}

	ln := &slots.Listener{
		Listener:    in.Listener,
		Pool:        slots.NewPool(svcCfg.PreSpawn, in.Sem),
		Log:         log,
		M02Interval: cfg.Global.M02Interval,
		Backlog:     backlog(cfg.Global.ListenBacklog),
	}
	if balancers := svcCfg.ProxyProtocolFrom; !balancers.Empty() {
		// The header comes with the connection; a balancer that stalls
		// holds the accept no longer than this.
		ln.ProxyFrom, ln.ProxyTimeout = balancers.Contains, min(svcCfg.HeaderTimeout, 5*time.Second)
	}
	sp := spool.Dir{Path: cfg.Global.TempDir, Hash: cfg.Global.VerdictCache > 0}
	svc, err := reg[name](&worker.Env{Config: cfg, Service: svcCfg, Logs: lg, Log: log, Spool: sp})
	if err != nil {
		log.Error("service cannot start", zap.Error(err))
		return 1
	}

	metrics.Endpoints = func() []metrics.Endpoint {
		var out []metrics.Endpoint
		for _, e := range scanner.EndpointStates() {
			out = append(out, metrics.Endpoint{Engine: e.Engine, Endpoint: e.Endpoint, Up: e.Up, LastError: e.LastError})
		}
		return out
	}
	stopMetrics := metrics.Enable(name, MetricsDir(cfg.Global.BaseDir), func() []metrics.Sample {
		g := []metrics.Sample{
			{Name: "fsigkd_connections_active", Value: float64(ln.Pool.InUse())},
			{Name: "fsigkd_slots", Value: float64(ln.Pool.Size())},
			{Name: "fsigkd_notice_queue_length", Value: float64(notify.Queued())},
		}
		for _, e := range scanner.EndpointStates() {
			up := 0.0
			if e.Up {
				up = 1
			}
			g = append(g, metrics.Sample{Name: "fsigkd_engine_endpoint_up", Labels: map[string]string{"engine": e.Engine, "endpoint": e.Endpoint}, Value: up})
		}
		return g
	})
	defer stopMetrics()
	quiet := make(chan struct{})
	defer close(quiet)
	go quietmem.Watch(2*time.Second, quiet)

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGHUP)
	served := make(chan error, 2)
	go func() { served <- svc.Serve(ln) }()
	var tlsLn *slots.Listener
	if in.TLS != nil {
		ts, ok := svc.(worker.TLSServer)
		if !ok {
			log.Error("service cannot start: it has no TLS listener (tls_port)")
			return 1
		}
		// The same slots: pre_spawn bounds the clients of both ports.
		tlsLn = &slots.Listener{Listener: in.TLS, Pool: ln.Pool, Log: log, M02Interval: ln.M02Interval, Backlog: ln.Backlog,
			ProxyFrom: ln.ProxyFrom, ProxyTimeout: ln.ProxyTimeout}
		go func() { served <- ts.ServeTLS(tlsLn) }()
	}
	ipc.Ready()
	for {
		select {
		case err := <-served:
			// Serve ends only when the listener is closed under it, which
			// nobody but us does: this is a failure of the service.
			log.Error("service stopped serving", zap.Error(err))
			return 1
		case sig := <-sigs:
			switch sig {
			case syscall.SIGUSR1:
				if err := lg.Reopen(); err != nil {
					log.Warn("reopening logs", zap.Error(err))
				}
			case syscall.SIGHUP:
				// The master reloads by starting new workers (when the
				// settings changed) and the bundled engine reloads its
				// signatures: what the service keeps of verdicts goes.
				if r, ok := svc.(interface{ SignaturesReloaded() }); ok {
					r.SignaturesReloaded()
				}
			default:
				ln.Close()
				if tlsLn != nil {
					tlsLn.Close()
				}
				ctx, cancel := context.WithTimeout(context.Background(), cfg.Global.ShutdownGrace)
				err := svc.Shutdown(ctx)
				cancel()
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					log.Warn("shutdown", zap.Error(err))
				}
				sp.Drain() // the files kept for reuse; the master removes any left
				return 0
			}
		}
	}
}

// graceKill is how long past shutdown_grace the master waits for a worker
// before it kills it.
const graceKill = 5 * time.Second

// backlog is listen_backlog, 0 meaning the kernel's somaxconn.
func backlog(n int) int {
	if n <= 0 {
		return slots.Somaxconn()
	}
	return n
}
