package servertest

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// Postfix is a private Postfix (postfix -c DIR start): its own
// configuration, queue and log under a directory, its smtpd on Addr,
// relaying every mail from loopback to RelayHost.
type Postfix struct {
	Dir  string // main.cf, master.cf, the queue, maillog
	Addr string // its smtpd
	bin  string
}

// PostfixOptions say how it runs.
type PostfixOptions struct {
	// Addr is where its smtpd listens (127.0.0.1:port; StartPostfix
	// takes a free port).
	Addr string
	// RelayHost is where every mail goes (127.0.0.1:port).
	RelayHost string
	// Main is appended to main.cf (smtpd_milters = inet:..., ...), and
	// Master to master.cf (a content filter's transport).
	Main, Master string
}

// StartPostfix starts a private Postfix for the test, stopped when it
// ends. It needs root (Postfix's master starts as root and runs its
// daemons as postfix).
func StartPostfix(t testing.TB, o PostfixOptions) *Postfix {
	t.Helper()
	testenv.Need(t, "postfix", "postfix")
	testenv.NeedRoot(t, "Postfix's master runs as root")
	o.Addr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	p, err := NewPostfix(testenv.ShortDir(t), o)
	if p != nil {
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("maillog:\n%s", p.Log())
			}
			p.Stop()
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// NewPostfix writes a private Postfix's configuration under dir and
// starts it; it serves once its smtpd answers. Stop stops it.
func NewPostfix(dir string, o PostfixOptions) (*Postfix, error) {
	bin, err := exec.LookPath("postfix")
	if err != nil {
		bin = "/usr/sbin/postfix"
	}
	pf, err := user.Lookup("postfix")
	if err != nil {
		return nil, fmt.Errorf("no user postfix: %v", err)
	}
	uid, _ := strconv.Atoi(pf.Uid)
	os.Chmod(dir, 0o755) // the postfix user reaches its queue through it
	for _, d := range []string{"etc", "spool", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	os.Chown(filepath.Join(dir, "data"), uid, -1)
	relayHost, relayPort, _ := net.SplitHostPort(o.RelayHost)
	main := fmt.Sprintf(postfixMain, dir, relayHost, relayPort) + o.Main + "\n"
	if err := os.WriteFile(filepath.Join(dir, "etc", "main.cf"), []byte(main), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "master.cf"), []byte(fmt.Sprintf(postfixMaster, o.Addr)+o.Master), 0o644); err != nil {
		return nil, err
	}
	p := &Postfix{Dir: dir, Addr: o.Addr, bin: bin}
	// Now and then (twice in some hundred starts here) its log service
	// writes nothing from the start, and every daemon then blocks on
	// its next line: it is started again when the master's first line
	// does not come.
	for attempt := 1; ; attempt++ {
		if out, err := exec.Command(bin, "-c", filepath.Join(dir, "etc"), "start").CombinedOutput(); err != nil {
			return p, fmt.Errorf("postfix start: %v %s\n%s", err, out, p.Log())
		}
		ready := testenv.Dialable("tcp", p.Addr)
		for deadline := time.Now().Add(20 * time.Second); !ready(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				return p, fmt.Errorf("postfix does not listen on %s\n%s", p.Addr, p.Log())
			}
		}
		if p.WaitLogCount("postfix/master", 1) > 0 {
			return p, nil
		}
		if attempt == 3 {
			return p, fmt.Errorf("postfix's log service writes nothing\n%s", p.Log())
		}
		p.Stop()
	}
}

// Stop stops it: in order, or, when that has not ended in 30 s, at
// once: its master killed. (A master whose log service had stopped
// reading left "postfix stop", and "postfix abort" after it, blocked for
// ever in "master -t", which logs before it looks at the master: a
// test's cleanup waited on it.)
func (p *Postfix) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, "-c", filepath.Join(p.Dir, "etc"), "stop")
	// The script and what it runs in a group of their own, all killed
	// at the timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if cmd.Run() == nil || ctx.Err() == nil {
		return
	}
	b, err := os.ReadFile(filepath.Join(p.Dir, "spool", "pid", "master.pid"))
	if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
		// Its children end once they see it gone.
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// WaitDrained waits, at most for d, until its queue holds no mail: every
// mail taken has been relayed (or bounced).
func (p *Postfix) WaitDrained(d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		n := 0
		for _, q := range []string{"maildrop", "incoming", "active", "deferred"} {
			filepath.WalkDir(filepath.Join(p.Dir, "spool", q), func(_ string, e fs.DirEntry, err error) error {
				if err == nil && e.Type().IsRegular() {
					n++
				}
				return nil
			})
		}
		if n == 0 {
			return true
		}
	}
	return false
}

// Log is Postfix's maillog so far.
func (p *Postfix) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.Dir, "maillog"))
	return string(b)
}

// WaitLogCount waits (20 s at most) for the maillog to hold want n
// times (postlogd writes what the daemons send it a moment later), and
// says how many times it does.
func (p *Postfix) WaitLogCount(want string, n int) int {
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if k := strings.Count(p.Log(), want); k >= n || time.Now().After(deadline) {
			return k
		}
	}
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
