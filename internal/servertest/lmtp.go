package servertest

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// LMTPServer is Dovecot's LMTP server on loopback, delivering to the
// maildirs of two users of any domain: alice, and bob, whose mailbox is
// full for any mail over 1 KiB (a quota of 1K), so that one mail can get a
// different reply for each recipient, as LMTP gives them.
type LMTPServer struct {
	*testenv.Proc
	dir string
}

// DovecotLMTP starts Dovecot's LMTP server on a free port of 127.0.0.1.
func DovecotLMTP(t testing.TB) *LMTPServer {
	t.Helper()
	bin := testenv.Need(t, "dovecot", "dovecot-core")
	if _, err := os.Stat("/usr/lib/dovecot/lmtp"); err != nil {
		testenv.Unavailable(t, "Dovecot's LMTP server is missing (Debian: apt-get install dovecot-lmtpd)")
	}
	testenv.NeedRoot(t, "Dovecot delivers as another user")
	nobody, err := user.Lookup("nobody")
	if err != nil {
		testenv.Unavailable(t, "no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	dir := testenv.ShortDir(t)
	os.Chmod(dir, 0o755)
	mail := filepath.Join(dir, "mail")
	os.MkdirAll(filepath.Join(dir, "run"), 0o755)
	os.Mkdir(mail, 0o755)
	os.Chown(mail, uid, gid)
	users := fmt.Sprintf("alice::%[1]d:%[2]d::%[3]s/alice::\nbob::%[1]d:%[2]d::%[3]s/bob::userdb_quota_rule=*:storage=1K\n", uid, gid, mail)
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte(users), 0o644); err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	conf := fmt.Sprintf(lmtpConf, dir, port)
	if err := os.WriteFile(filepath.Join(dir, "dovecot.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &testenv.Proc{Dir: dir, Addr: addr, LogFile: filepath.Join(dir, "dovecot.out"),
		Args: []string{bin, "-F", "-c", filepath.Join(dir, "dovecot.conf")}, Ready: testenv.Dialable("tcp", addr)}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Logf("dovecot.log:\n%s", b)
		}
	})
	p.Start(t)
	return &LMTPServer{Proc: p, dir: dir}
}

// Mails are the mails delivered to user (alice or bob), in no order.
func (s *LMTPServer) Mails(user string) [][]byte {
	var out [][]byte
	ents, _ := os.ReadDir(filepath.Join(s.dir, "mail", user, "Maildir", "new"))
	for _, e := range ents {
		if b, err := os.ReadFile(filepath.Join(s.dir, "mail", user, "Maildir", "new", e.Name())); err == nil {
			out = append(out, b)
		}
	}
	return out
}

const lmtpConf = `base_dir = %[1]s/run
state_dir = %[1]s/run
protocols = lmtp
listen = 127.0.0.1
log_path = %[1]s/dovecot.log
ssl = no
passdb {
  driver = passwd-file
  args = username_format=%%n %[1]s/users
}
userdb {
  driver = passwd-file
  args = username_format=%%n %[1]s/users
}
mail_location = maildir:~/Maildir
mail_plugins = quota
plugin {
  quota = maildir:User quota
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = %[2]d
  }
}
service anvil {
  chroot =
}
`
