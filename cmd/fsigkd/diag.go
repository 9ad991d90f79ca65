package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/diag"
	"github.com/fsigkd/fsigkd/metrics"
	"github.com/fsigkd/fsigkd/quarantine"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/spool"
	"github.com/fsigkd/fsigkd/supervisor"
)

// The words of the parts that come in two forms.
const (
	settingsWhat  = "the settings file as written, secrets masked"
	effectiveWhat = "every setting in effect, defaults included, secrets masked"
	statusWhat    = "fsigkd status: the services, their workers and slots, the logs' health"
)

// diagCmd is `fsigkd diag`: diag.tar.gz for support, from the settings
// and the running (or stopped) gateway. A settings file with an error is
// no reason to fail: what can be collected without it is.
func diagCmd(args []string) int {
	var out string
	var logMiB int64
	file, code, ok := parseFlags("diag", " [-o FILE] [--log-mib N]", args, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "o", "diag.tar.gz", "")
		fs.Int64Var(&logMiB, "log-mib", 10, "")
	})
	if !ok {
		return code
	}
	cfg, _, cfgErr := conf.Load(file)
	var g conf.Global
	baseDir := ""
	if cfgErr == nil {
		g, baseDir = cfg.Global, cfg.Global.BaseDir
	} else if dir, err := conf.BaseDirOf(file); err == nil {
		baseDir = dir
		g = conf.Global{BaseDir: dir, LogDir: filepath.Join(dir, "log"), TempDir: filepath.Join(dir, "tmp")}
	}
	missing := func(err error) func() ([]byte, error) { return func() ([]byte, error) { return nil, err } }
	parts := []diag.Part{
		{Name: "system/netstat_anp.txt", What: "sockets and their processes (ss or netstat): client addresses of open connections", Collect: diag.Command(30*time.Second, []string{"netstat", "-anp"}, []string{"ss", "-anp"})},
		{Name: "system/uname.txt", What: "the kernel", Collect: diag.Command(10*time.Second, []string{"uname", "-a"})},
		{Name: "system/sysctl.txt", What: "kernel limits: semaphores, somaxconn, file-max", Collect: diag.Files("/proc/sys/kernel/sem", "/proc/sys/net/core/somaxconn", "/proc/sys/fs/file-max")},
		{Name: "system/sysvipc_sem.txt", What: "the System V semaphore sets", Collect: diag.Files("/proc/sysvipc/sem")},
		{Name: "versions.txt", What: "fsigkd's and Go's versions", Collect: func() ([]byte, error) {
			return []byte(fmt.Sprintf("fsigkd %s\ngo %s %s/%s\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)), nil
		}},
	}
	raw, rerr := os.ReadFile(file)
	if rerr != nil {
		parts = append(parts, diag.Part{Name: "settings/" + filepath.Base(file), What: settingsWhat, Collect: missing(rerr)})
	} else {
		parts = append(parts, diag.Part{Name: "settings/" + filepath.Base(file), What: settingsWhat, Collect: func() ([]byte, error) { return []byte(conf.Masked(string(raw))), nil }})
	}
	if cfgErr != nil {
		parts = append(parts, diag.Part{Name: "settings/effective.txt", What: effectiveWhat, Collect: missing(fmt.Errorf("the settings do not load: %v", cfgErr))})
	} else {
		parts = append(parts,
			diag.Part{Name: "settings/effective.txt", What: effectiveWhat, Collect: func() ([]byte, error) { return []byte(cfg.DumpMasked()), nil }},
			diag.Part{Name: "engine.txt", What: "the engine endpoints: whether each answers, its signature version", Collect: func() ([]byte, error) { return engineReport(cfg.Global) }})
	}
	if baseDir == "" {
		parts = append(parts, diag.Part{Name: "status.txt", What: statusWhat, Collect: missing(fmt.Errorf("no base_dir: the settings file cannot be read"))})
	} else {
		parts = append(parts,
			diag.Part{Name: "status.txt", What: statusWhat, Collect: func() ([]byte, error) {
				var b bytes.Buffer
				supervisor.Status(&b, &b, baseDir, file, g.LogDir)
				return b.Bytes(), nil
			}},
			diag.Part{Name: "cores.txt", What: "the core files in base_dir, listed (not the cores)", Collect: diag.Cores(baseDir)},
			diag.Part{Name: "metrics.txt", What: "the counters of /metrics", Collect: (&metrics.Totals{Dir: supervisor.MetricsDir(baseDir), Peek: true}).Text},
			diag.Part{Name: "system/temp_dir_free.txt", What: "the room left in temp_dir", Collect: func() ([]byte, error) {
				free, err := spool.Dir{Path: g.TempDir}.Free()
				if err != nil {
					return nil, err
				}
				return []byte(fmt.Sprintf("%s: %d bytes free (%d MiB)\n", g.TempDir, free, free>>20)), nil
			}})
		if cfgErr == nil {
			parts = append(parts, diag.Part{Name: "quarantine.txt", What: "the quarantine's list: ids, services, hashes, verdicts, client and mail addresses (not the objects)", Collect: func() ([]byte, error) {
				list, err := (&quarantine.Store{Dir: g.QuarantineDir}).List()
				var b bytes.Buffer
				for _, m := range list {
					fmt.Fprintf(&b, "%s %s %s %d %s %s\n", m.ID, m.Service, m.SHA256, m.Size, m.Verdict, describe(m))
				}
				return b.Bytes(), err
			}})
		}
		for _, l := range []string{"error.log", "access.log", "crash.log"} {
			parts = append(parts, diag.Part{Name: "logs/" + l, What: fmt.Sprintf("the last %d MiB at most of %s: client addresses, URLs, mail addresses", logMiB, l), Collect: diag.Tail(filepath.Join(g.LogDir, l), logMiB<<20)})
		}
	}
	// Readable by its owner only: it holds the logs' client and mail
	// addresses (a file that was there keeps no wider mode; a device or
	// pipe given as -o is left as it is).
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		if fi, serr := f.Stat(); serr == nil && fi.Mode().IsRegular() {
			err = f.Chmod(0o600)
		}
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		return fail2(err)
	}
	failed, err := diag.Write(f, parts)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail2(err)
	}
	fmt.Printf("wrote %s, readable by its owner only (mode 0600): it holds client and mail addresses. It includes (listed in diag/CONTENTS.txt too):\n", out)
	fmt.Print(diag.Contents(parts, failed))
	return 0
}

func fail2(err error) int { return fail(exitBadFile, "diag: %v", err) }

// engineReport pings each anti-virus endpoint and names its signature
// version where the protocol says it.
func engineReport(g conf.Global) ([]byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "av_engine = %s\nav_servers = %s\n", g.AVEngine, g.AVServers)
	sc, err := scanner.EngineFromConfig(g, zap.NewNop())
	if err != nil {
		return []byte(b.String()), err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if p, ok := sc.(scanner.Pinger); ok {
		if err := p.Ping(ctx); err != nil {
			fmt.Fprintf(&b, "ping: %v\n", err)
		} else {
			b.WriteString("ping: answers\n")
		}
	}
	if v, ok := sc.(scanner.Versioner); ok {
		v.RefreshVersion(ctx)
		ver := v.Version()
		if ver == "" {
			ver = "unknown (the engine did not answer)"
		}
		fmt.Fprintf(&b, "signature version: %s\n", ver)
	}
	return []byte(b.String()), nil
}
