package servertest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// E2guardian starts e2guardian (Debian's package, its shipped settings
// copied into the test's directory) as a filtering proxy on a free port
// of 127.0.0.1, going direct to the sites, with its ICAP content scanner
// pointed at icapURL. The ICAP server must answer OPTIONS already.
func E2guardian(t testing.TB, icapURL string) *testenv.Proc {
	t.Helper()
	bin := testenv.Need(t, "e2guardian", "e2guardian")
	dir := testenv.ShortDir(t)
	p := &testenv.Proc{Dir: dir, Addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), LogFile: filepath.Join(dir, "e2guardian.out")}
	main, err := E2guardianSetup(dir, p.Addr, testenv.FreePort(t), "icapscan", icapURL)
	if err != nil {
		testenv.Unavailable(t, "%v", err)
	}
	p.Args = []string{bin, "-N", "-c", main}
	p.Ready = testenv.Dialable("tcp", p.Addr)
	p.Start(t)
	return p
}

// E2guardianSetup writes into dir a copy of Debian's shipped e2guardian
// settings serving on addr (and on httpsPort for the transparent HTTPS it
// does not use here), its log in dir, with one content scanner:
// "icapscan" at target (an icap:// URL) or "clamdscan" at target (clamd's
// socket). It returns the main settings file.
func E2guardianSetup(dir, addr string, httpsPort int, scanner, target string) (string, error) {
	if _, err := os.Stat("/etc/e2guardian/e2guardian.conf"); err != nil {
		return "", fmt.Errorf("e2guardian's shipped settings are not in /etc/e2guardian")
	}
	os.Chmod(dir, 0o777)
	conf := filepath.Join(dir, "conf")
	filepath.Walk("/etc/e2guardian", func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		to := filepath.Join(conf, strings.TrimPrefix(path, "/etc/e2guardian"))
		if info.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		return os.WriteFile(to, []byte(strings.ReplaceAll(string(b), "/etc/e2guardian", conf)), 0o644)
	})
	_, port, _ := strings.Cut(addr, ":")
	main := filepath.Join(conf, "e2guardian.conf")
	b, _ := os.ReadFile(main)
	s := string(b)
	for old, repl := range map[string]string{
		"\nfilterports = 8080":                                                    "\nfilterports = " + port,
		"\ntransparenthttpsport = 8443":                                           fmt.Sprintf("\ntransparenthttpsport = %d", httpsPort),
		"\nnodaemon = off":                                                        "\nnodaemon = on",
		"\n#loglocation = '/var/log/e2guardian/access.log'":                       "\nloglocation = '" + dir + "/access.log'",
		"\n#pidfilename = '/var/run/e2guardian.pid'":                              "\npidfilename = '" + dir + "/e2guardian.pid'",
		"\n#contentscanner = '" + conf + "/contentscanners/" + scanner + ".conf'": "\ncontentscanner = '" + conf + "/contentscanners/" + scanner + ".conf'",
	} {
		if !strings.Contains(s, old) {
			return "", fmt.Errorf("e2guardian's shipped settings changed: no %q", strings.TrimSpace(old))
		}
		s = strings.Replace(s, old, repl, 1)
	}
	os.WriteFile(main, []byte(s), 0o644)
	cs := filepath.Join(conf, "contentscanners", scanner+".conf")
	b, _ = os.ReadFile(cs)
	text := string(b)
	switch scanner {
	case "icapscan":
		text = strings.Replace(text, "icapurl = 'icap://icapserver:1344/avscan'", "icapurl = '"+target+"'", 1)
	case "clamdscan":
		text = strings.Replace(text, "clamdudsfile = '/run/clamav/clamd.ctl'", "clamdudsfile = '"+target+"'", 1)
	}
	os.WriteFile(cs, []byte(text), 0o644)
	// It writes its log as its own user, having dropped root.
	os.WriteFile(filepath.Join(dir, "access.log"), nil, 0o666)
	os.Chmod(filepath.Join(dir, "access.log"), 0o666)
	return main, nil
}
