package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/fsavd"
	"github.com/fsigkd/fsigkd/fsavd/engine"
	"github.com/fsigkd/fsigkd/supervisor"
	"github.com/fsigkd/fsigkd/tproxy"
	"github.com/fsigkd/fsigkd/worker"
)

// DefaultConfig is where the settings are looked for without -c.
const DefaultConfig = "/etc/fsigk/fsigk.ini"

const usage = `usage:
  fsigkd [-f] [-c FILE]     run the gateway (-f: stay in the foreground)
  fsigkd check [-c FILE]    print the effective settings, or the errors
  fsigkd status [-c FILE]   print each service's worker and slots
  fsigkd reload [-c FILE]   check the settings and have the running gateway take them
  fsigkd stop [-c FILE]     stop the running gateway, and wait until it has
  fsigkd rules [-c FILE] [--format nft|iptables|shell]
                            print the firewall rules for the transparent services
  fsigkd diag [-c FILE] [-o diag.tar.gz] [--log-mib N]
                            write diag.tar.gz for support (works with the gateway stopped)
  fsigkd quarantine [-c FILE] list | show ID | release ID [-o FILE] | delete ID
                            what the services kept of what they blocked
  fsigkd ca [-c FILE] [--der | --info | --new]
                            print the CA HTTPS interception signs with (PEM; made
                            if it is the gateway's own and not made yet), its facts,
                            or make a new one
  fsigkd passwd              read a console password on standard input, print its bcrypt
                            hash for console_password
  fsigkd fsavd [-socket PATH] [-signatures DIR]   the bundled anti-virus daemon
  fsigkd version            print the version
  fsigkd help               print this

Exit codes: 0 done, 1 the settings file is bad (or the gateway did not
start: every enabled service must, unless bind_retry = yes), 2 bad usage;
status: 3 not running, 4 an enabled service down.
`

// The exit codes of every command.
const (
	exitBadFile  = 1
	exitBadUsage = 2
)

// Version is the release, set at build time (-ldflags "-X
// main.Version=1.2.3"); without it the
// module's version or VCS revision from the build information.
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" && len(kv.Value) >= 12 {
				return "devel-" + kv.Value[:12]
			}
		}
	}
	return "devel"
}

// fail prints one error line in the one format of every command.
func fail(code int, format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "fsigkd: "+format+"\n", args...)
	return code
}

// run runs the fsigkd command with args (without the program name) and
// returns its exit code.
func run(args []string, reg worker.Registry) int {
	if len(args) > 0 {
		switch args[0] {
		case "version", "-version", "--version":
			fmt.Println("fsigkd " + version())
			return 0
		case "help", "-h", "-help", "--help":
			fmt.Print(usage)
			return 0
		case "worker":
			return supervisor.Worker(reg)
		case "check":
			return check(args[1:])
		case "status":
			return status(args[1:])
		case "fsavd":
			return fsavd.Main(args[1:])
		case "rules":
			return rules(args[1:])
		case "diag":
			return diagCmd(args[1:])
		case "quarantine":
			return quarantineCmd(args[1:])
		case "passwd":
			return passwd(os.Stdin, os.Stdout)
		case "ca":
			return caCmd(args[1:])
		case "stop", "reload":
			return control(args[0], args[1:])
		}
	}
	fs := flag.NewFlagSet("fsigkd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fg := fs.Bool("f", false, "stay in the foreground, logging to standard error too")
	file := fs.String("c", DefaultConfig, "settings file")
	if err := fs.Parse(args); err != nil {
		return fail(exitBadUsage, "%v (fsigkd help: the usage)", err)
	}
	if fs.NArg() > 0 {
		return fail(exitBadUsage, "unknown command %q (fsigkd help: the usage)", fs.Arg(0))
	}
	cfg, warnings, err := conf.Load(*file)
	if errors.Is(err, os.ErrNotExist) && !given(fs, "c") {
		// Run with no settings file where the package puts it: say how
		// to give one, and where the usage is.
		return fail(exitBadFile, "no settings file at %s: give one with -c FILE (the sample is deploy/fsigk.ini; fsigkd help: the usage)", *file)
	}
	if err != nil {
		return fail(exitBadFile, "%v", err)
	}
	return supervisor.Run(args, version(), cfg, warnings, reg, *fg)
}

// parseFlags reads a command's -c FILE and the flags extra adds, printing
// its usage for -h: ok false comes with the exit code.
func parseFlags(name, more string, args []string, extra func(*flag.FlagSet)) (file string, code int, ok bool) {
	fs := flag.NewFlagSet("fsigkd "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := fs.String("c", DefaultConfig, "settings file")
	if extra != nil {
		extra(fs)
	}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Printf("usage: fsigkd %s [-c FILE]%s   (default -c %s)\n", name, more, DefaultConfig)
		return "", 0, false
	case err != nil:
		return "", fail(exitBadUsage, "%s: %v", name, err), false
	case fs.NArg() > 0:
		return "", fail(exitBadUsage, "%s: unexpected %q", name, fs.Arg(0)), false
	}
	return *f, 0, true
}

// loadFlags is parseFlags, then the file loaded: a nil config comes with
// the exit code.
func loadFlags(name, more string, args []string, extra func(*flag.FlagSet)) (*conf.Config, []string, int) {
	file, code, ok := parseFlags(name, more, args, extra)
	if !ok {
		return nil, nil, code
	}
	cfg, warnings, err := conf.Load(file)
	if err != nil {
		for _, w := range warnings {
			fmt.Fprintln(os.Stderr, "warning: "+w)
		}
		return nil, nil, fail(exitBadFile, "%v", err)
	}
	return cfg, warnings, 0
}

// rules is `fsigkd rules [--format nft|iptables|shell]`: one ruleset its
// tool takes whole.
func rules(args []string) int {
	var format string
	cfg, _, code := loadFlags("rules", " [--format nft|iptables|shell]", args, func(fs *flag.FlagSet) {
		fs.StringVar(&format, "format", "nft", "")
	})
	if cfg == nil {
		return code
	}
	out, err := tproxy.Rules(cfg, format)
	if err != nil {
		return fail(exitBadUsage, "rules: %v", err)
	}
	fmt.Print(out)
	return 0
}

// check is `fsigkd check`: the effective settings, or every error.
func check(args []string) int {
	cfg, warnings, code := loadFlags("check", "", args, nil)
	if cfg == nil {
		return code
	}
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "warning: "+w)
	}
	// The bundled engine's signature files, loaded as it will load them:
	// a malformed line would otherwise pass check and fail every scan.
	if g := cfg.Global; g.AVEngine == "fsavd" && g.FsavdStart && g.FsavdSigs != "" {
		if _, err := engine.Load(g.FsavdSigs); err != nil {
			return fail(exitBadFile, "fsavd_signatures: %v", err)
		}
	}
	// What the engine knows, said on every check: settings can be right
	// and protect nobody (an engine that knows only EICAR).
	knows, problems := supervisor.EngineKnows(cfg.Global)
	fmt.Fprintln(os.Stderr, "engine: "+knows)
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, "warning: "+p)
	}
	fmt.Print(cfg.Dump())
	return 0
}

// status is `fsigkd status`: the running gateway, per service.
func status(args []string) int {
	baseDir, logDir, file, cfg, code := statusBase(args)
	if baseDir == "" {
		return code
	}
	code = supervisor.Status(os.Stdout, os.Stderr, baseDir, file, logDir)
	if (code == 0 || code == supervisor.StatusServiceDown) && cfg != nil {
		knows, problems := supervisor.EngineKnows(cfg.Global)
		fmt.Println("engine " + knows)
		for _, p := range problems {
			fmt.Println("WARNING: " + p)
		}
	}
	return code
}

// statusBase finds the running gateway's base_dir and log_dir for fsigkd
// status: from the settings when they load (cfg); from their base_dir
// line alone when the file has an error (it may have been edited since
// the gateway started), said on standard error, log_dir then taken as
// its default under it.
func statusBase(args []string) (baseDir, logDir, file string, cfg *conf.Config, code int) {
	file, code, ok := parseFlags("status", "", args, nil)
	if !ok {
		return "", "", "", nil, code
	}
	cfg, _, err := conf.Load(file)
	if err == nil {
		return cfg.Global.BaseDir, cfg.Global.LogDir, cfg.File, cfg, 0
	}
	dir, berr := conf.BaseDirOf(file)
	if berr != nil {
		return "", "", "", nil, fail(exitBadFile, "%v", err)
	}
	fmt.Fprintf(os.Stderr, "fsigkd: warning: %v\nfsigkd: the running gateway is read from base_dir %s\n", err, dir)
	return dir, filepath.Join(dir, "log"), file, nil, 0
}

// passwd is `fsigkd passwd`: the first line of r, hashed with bcrypt for
// console_password.
func passwd(r io.Reader, w io.Writer) int {
	line, err := bufio.NewReader(io.LimitReader(r, 1024)).ReadString('\n')
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		if err != nil && !errors.Is(err, io.EOF) {
			return fail(exitBadUsage, "passwd: %v", err)
		}
		return fail(exitBadUsage, "passwd: give the password on standard input (echo -n ... | fsigkd passwd)")
	}
	if len(pw) < 8 {
		return fail(exitBadUsage, "passwd: a console password has at least 8 characters")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), 12)
	if err != nil {
		return fail(exitBadUsage, "passwd: %v", err)
	}
	fmt.Fprintln(w, string(hash))
	return 0
}

// given tells whether flag name was on the command line.
func given(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}
