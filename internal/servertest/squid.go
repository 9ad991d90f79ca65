package servertest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// SquidServer is a Squid on loopback whose responses and requests are
// adapted by an ICAP server (respmod_precache and reqmod_precache, no
// bypass: an ICAP failure is an error, never a pass).
type SquidServer struct {
	*testenv.Proc
}

// Squid starts Squid as a forward proxy on a free port of 127.0.0.1,
// with icap://icapAddr/respmod and /reqmod as its ICAP services, caching
// nothing.
func Squid(t testing.TB, icapAddr string) *SquidServer {
	t.Helper()
	return startSquid(t, func(dir, addr string) string {
		return SquidConfig(dir, addr, "icap://"+icapAddr+"/respmod", "icap://"+icapAddr+"/reqmod")
	})
}

// SquidParent starts Squid as a plain forward proxy on a free port of
// 127.0.0.1 (no adaptation, caching nothing, CONNECT to any port): a
// parent proxy for the gateway's tests.
func SquidParent(t testing.TB) *SquidServer {
	t.Helper()
	return startSquid(t, func(dir, addr string) string {
		return fmt.Sprintf(`http_port %[2]s
pid_filename %[1]s/squid.pid
cache_log %[1]s/cache.log
access_log stdio:%[1]s/access.log squid
cache deny all
cache_mem 8 MB
coredump_dir %[1]s
http_access allow all
shutdown_lifetime 1 seconds
`, dir, addr)
	})
}

func startSquid(t testing.TB, config func(dir, addr string) string) *SquidServer {
	bin := testenv.Need(t, "squid", "squid")
	dir := testenv.ShortDir(t)
	os.Chmod(dir, 0o777) // Squid drops to its own user for its logs
	p := &testenv.Proc{Dir: dir, Addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), LogFile: filepath.Join(dir, "squid.out")}
	conf := config(dir, p.Addr)
	os.WriteFile(filepath.Join(dir, "squid.conf"), []byte(conf), 0o644)
	p.Args = []string{bin, "-N", "-f", filepath.Join(dir, "squid.conf")}
	p.Ready = testenv.Dialable("tcp", p.Addr)
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"cache.log", "access.log", "icap.log"} {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				t.Logf("squid %s:\n%s", f, b)
			}
		}
	})
	p.Start(t)
	return &SquidServer{p}
}

// AccessLog is Squid's access.log; ICAPLog its icap.log.
func (s *SquidServer) AccessLog() string { return s.read("access.log") }

// ICAPLog is Squid's icap.log (icap_squid format).
func (s *SquidServer) ICAPLog() string { return s.read("icap.log") }

func (s *SquidServer) read(name string) string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, name))
	return string(b)
}

// SquidConfig is Squid's configuration: a forward proxy on addr, its
// files in dir, caching nothing, with the ICAP services respmod and
// reqmod (URLs) for every response and request, no bypass.
func SquidConfig(dir, addr, respmod, reqmod string) string {
	return fmt.Sprintf(`http_port %[2]s
pid_filename %[1]s/squid.pid
cache_log %[1]s/cache.log
access_log stdio:%[1]s/access.log squid
icap_log stdio:%[1]s/icap.log icap_squid
cache deny all
cache_mem 8 MB
coredump_dir %[1]s
http_access allow all
icap_enable on
icap_preview_enable on
icap_preview_size 1024
icap_send_client_ip on
icap_service svc_resp respmod_precache bypass=0 %[3]s
icap_service svc_req reqmod_precache bypass=0 %[4]s
adaptation_access svc_resp allow all
adaptation_access svc_req allow all
shutdown_lifetime 1 seconds
`, dir, addr, respmod, reqmod)
}
