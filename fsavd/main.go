package fsavd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/fsavd/engine"
	"github.com/fsigkd/fsigkd/internal/sigfiles"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/metrics"
)

// Main runs the bundled fsavd daemon with args (without the program name):
//
//	fsavd -socket ./fsavd-socket-0 [-signatures DIR] [-log-dir DIR]
//
// It serves until SIGTERM or SIGINT; SIGHUP reloads the signatures (a bad
// file is logged with its line and the loaded set stays), and so does a
// change of the signature files, looked for every 30 s (freshclam's
// updates); SIGUSR1 reopens the log. Without -log-dir it logs to standard
// error.
func Main(args []string) int {
	fs := flag.NewFlagSet("fsavd", flag.ContinueOnError)
	sock := fs.String("socket", "./fsavd-socket-0", "Unix socket to serve on")
	sigs := fs.String("signatures", "", "a directory of .hdb, .hsb and .ndb files, or one such file (EICAR is built in)")
	logDir := fs.String("log-dir", "", "directory of error.log (empty: standard error)")
	level := fs.String("log-level", "info", "critical, warning, info or debug")
	fg := fs.Bool("f", false, "log to standard error as well as to -log-dir")
	toSyslog := fs.Bool("syslog", false, "log to syslog as well")
	metricsDir := fs.String("metrics-dir", "", "directory where its Go runtime figures are written every second, for the master's /metrics (empty: none)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *metricsDir != "" {
		stop := make(chan struct{})
		defer close(stop)
		go metrics.WriteGoStats(*metricsDir, stop)
	}
	lg, err := logs.Open(logs.Options{Dir: *logDir, Level: *level, Foreground: *fg, Syslog: *toSyslog})
	if err != nil {
		fmt.Fprintf(os.Stderr, "fsavd: %v\n", err)
		return 1
	}
	defer lg.Close()
	log := lg.Error.Named("fsavd")

	srv := &Server{Log: log}
	db, err := load(*sigs, nil)
	if err != nil {
		// Serve anyway, so that clients learn why (M16), not just that
		// the socket is missing (M25).
		log.Error("signatures not loaded; every scan will fail", zap.Error(err))
		srv.StartErr = err
	} else {
		srv.Engine = engine.New(db)
		settle()
		logLoad(log, "signatures loaded", db)
	}
	ln, err := listenUnix(*sock)
	if err != nil {
		log.Error("cannot listen", zap.String("socket", *sock), zap.Error(err))
		return 1
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("serving", zap.String("socket", *sock))

	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	w := &watcher{path: *sigs}
	w.changed() // as loaded
	tick := time.NewTicker(watchEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if *sigs != "" && w.changed() {
				log.Info("the signature files changed; reloading", zap.String("signatures", *sigs))
				reload(srv, *sigs, log)
			}
		case err := <-served:
			log.Error("stopped serving", zap.Error(err))
			return 1
		case s := <-sig:
			switch s {
			case syscall.SIGHUP:
				reload(srv, *sigs, log)
			case syscall.SIGUSR1:
				lg.Reopen()
			default:
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				srv.Shutdown(ctx)
				cancel()
				os.Remove(*sock)
				return 0
			}
		}
	}
}

// watchEvery is how often the signature files are looked at: a change
// (freshclam's update, a copy job) is loaded as SIGHUP loads it.
const watchEvery = 30 * time.Second

// watcher tells when the signature files of path changed: their names,
// sizes and times. freshclam writes a new container under another name
// and renames it, so a change seen is a whole file.
type watcher struct {
	path string
	last string
}

// changed tells whether the files differ from the last look.
func (w *watcher) changed() bool {
	fp := fingerprint(w.path)
	if fp == w.last {
		return false
	}
	w.last = fp
	return true
}

// fingerprint names what path holds now; "" when nothing is there.
func fingerprint(path string) string {
	if path == "" {
		return ""
	}
	files, err := sigfiles.List(path)
	if err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%s %d %d\n", f, st.Size(), st.ModTime().UnixNano())
		}
	}
	return b.String()
}

func reload(srv *Server, dir string, log *zap.Logger) {
	var prev *engine.DB
	if srv.Engine != nil {
		prev = srv.Engine.DB()
	}
	db, err := load(dir, prev)
	if err != nil {
		log.Warn("signatures not reloaded; the loaded set stays", zap.Error(err))
		return
	}
	if srv.Engine == nil {
		// The first good load after a failed start. Clients connecting
		// from now on are served; StartErr is read per connection.
		srv.mu.Lock()
		srv.Engine, srv.StartErr = engine.New(db), nil
		srv.mu.Unlock()
	} else {
		srv.Engine.Swap(db)
	}
	settle()
	logLoad(log, "signatures reloaded", db)
}

// load reads the signatures (prev's hash signatures kept for the files
// unchanged since) with the collector kept close to what is in
// use: a reload holds the old set and the new one at once, and the lines
// read and the arrays outgrown in passing would otherwise pile up to a
// second set's worth (on the generated database of docs/benchmarks.md,
// a reload's peak 517 MiB at the default, 415 MiB so).
func load(dir string, prev *engine.DB) (*engine.DB, error) {
	defer debug.SetGCPercent(debug.SetGCPercent(20))
	return engine.Reload(dir, prev)
}

// settle gives the memory a load made and dropped back to the system: a
// database of millions of signatures is read through several times its
// size in passing, which would otherwise stay resident until the
// collector's scavenger returns it, minutes later (on the generated
// database of docs/benchmarks.md, 720 MiB resident for 156 MiB in use).
func settle() { debug.FreeOSMemory() }

// logLoad says what a load made of the signatures, and as a warning what
// it could not use: signatures with features the engine lacks, and the
// kinds it does not read (counted by file extension), so that a set that
// loads is never taken for one the engine reads whole.
func logLoad(log *zap.Logger, msg string, db *engine.DB) {
	fields := []zap.Field{zap.String("version", db.Version), zap.Int("signatures", db.Signatures()), zap.Any("kinds", db.Kinds()), zap.Int("skipped", db.Skipped)}
	if db.FileTypes+db.FileTypesNotRead > 0 {
		// .ftm: the types of the first kind read, the others left to the
		// engine's own typing.
		fields = append(fields, zap.Int("file_types", db.FileTypes), zap.Int("file_types_not_read", db.FileTypesNotRead))
	}
	log.Info(msg, fields...)
	n := 0
	for _, c := range db.Unsupported {
		n += c
	}
	if n > 0 || db.Skipped > 0 {
		log.Warn("signatures the bundled engine does not use: they detect nothing here", zap.Int("of_kinds_not_read", n), zap.Any("by_file_kind", db.Unsupported), zap.Int("with_features_not_supported", db.Skipped))
	}
}

// listenUnix listens on path, replacing a socket file left by a daemon
// that is gone, but never one that still answers.
func listenUnix(path string) (net.Listener, error) {
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another daemon answers there", path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil && !errors.Is(err, os.ErrNotExist) {
		ln.Close()
		return nil, err
	}
	return ln, nil
}
