package servertest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// Postfix is a private Postfix (postfix -c DIR start): its own
// configuration, queue and log under a directory of the test, its smtpd
// on a free port of 127.0.0.1, relaying every mail from loopback to
// RelayHost.
type Postfix struct {
	Dir  string // main.cf, master.cf, the queue, maillog
	Addr string // its smtpd
}

// PostfixOptions say how it runs.
type PostfixOptions struct {
	// RelayHost is where every mail goes ("127.0.0.1:port").
	RelayHost string
	// Main is appended to main.cf (smtpd_milters = inet:..., ...).
	Main string
}

// StartPostfix starts a private Postfix for the test, stopped when it
// ends. It needs root (Postfix's master starts as root and runs its
// daemons as postfix).
func StartPostfix(t testing.TB, o PostfixOptions) *Postfix {
	t.Helper()
	bin := testenv.Need(t, "postfix", "postfix")
	testenv.NeedRoot(t, "Postfix's master runs as root")
	pf, err := user.Lookup("postfix")
	if err != nil {
		testenv.Unavailable(t, "no user postfix: %v", err)
	}
	uid, _ := strconv.Atoi(pf.Uid)
	dir := testenv.ShortDir(t)
	os.Chmod(dir, 0o755) // the postfix user reaches its queue through it
	port := testenv.FreePort(t)
	p := &Postfix{Dir: dir, Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	for _, d := range []string{"etc", "spool", "data"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	os.Chown(filepath.Join(dir, "data"), uid, -1)
	relayHost, relayPort, _ := net.SplitHostPort(o.RelayHost)
	main := fmt.Sprintf(postfixMain, dir, relayHost, relayPort) + o.Main + "\n"
	master := fmt.Sprintf(postfixMaster, p.Addr)
	if err := os.WriteFile(filepath.Join(dir, "etc", "main.cf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "etc", "master.cf"), []byte(master), 0o644)
	if out, err := exec.Command(bin, "-c", filepath.Join(dir, "etc"), "start").CombinedOutput(); err != nil {
		t.Fatalf("postfix start: %v %s\n%s", err, out, p.Log())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("maillog:\n%s", p.Log())
		}
		exec.Command(bin, "-c", filepath.Join(dir, "etc"), "stop").Run()
	})
	ready := testenv.Dialable("tcp", p.Addr)
	for deadline := time.Now().Add(20 * time.Second); !ready(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("postfix does not listen on %s\n%s", p.Addr, p.Log())
		}
	}
	return p
}

// Log is Postfix's maillog so far.
func (p *Postfix) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.Dir, "maillog"))
	return string(b)
}

// WaitLog waits (20 s at most) for the maillog to hold want.
func (p *Postfix) WaitLog(t testing.TB, want string) string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if l := p.Log(); strings.Contains(l, want) {
			return l
		} else if time.Now().After(deadline) {
			t.Fatalf("maillog lacks %q:\n%s", want, l)
		}
	}
}

const postfixMain = `compatibility_level = 3.6
queue_directory = %[1]s/spool
data_directory = %[1]s/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.test
mydestination =
mynetworks = 127.0.0.0/8
relayhost = [%[2]s]:%[3]s
alias_maps =
alias_database =
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtp_address_preference = ipv4
`

// postfixMaster is master.cf with nothing chrooted (a chroot would need
// the system's files copied into the queue).
const postfixMaster = `%s inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
`
