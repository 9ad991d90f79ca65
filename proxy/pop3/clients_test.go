package pop3

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// The real clients: each retrieves a clean mail and an infected one
// through the proxy (forward mode, USER alice@server), and gets the
// first as it is and the second replaced.

// userAtServer is the login name through the proxy.
func (e *env) userAtServer() string { return e.srv.User + "@" + e.srv.Addr }

func (e *env) putPair(t *testing.T) {
	e.srv.Put(t, []byte(cleanMail))
	e.srv.Put(t, []byte(infectedMails(t)["zip attachment"]))
}

func TestCurlRetrieves(t *testing.T) {
	curl := testenv.Need(t, "curl", "curl")
	e := newEnv(t, "").withDovecot("")
	e.putPair(t)
	user := strings.NewReplacer("@", "%40", ":", "%3A").Replace(e.userAtServer())
	get := func(n string) string {
		out, err := exec.Command(curl, "-s", "-S", "--max-time", "30", "pop3://"+user+":secret@"+e.addr+"/"+n).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", n, err, out)
		}
		return string(out)
	}
	if got := get("1"); got != cleanMail {
		t.Errorf("clean mail: %q", got)
	}
	if got := get("2"); !strings.Contains(got, "Subject: [VIRUS REMOVED] invoice") || strings.Contains(got, "--zz") {
		t.Errorf("infected mail:\n%s", got)
	}
	if got := get(""); !strings.HasPrefix(got, "1 ") || !strings.Contains(got, "\n2 ") {
		t.Errorf("LIST: %q", got)
	}
}

func TestPythonPoplibRetrieves(t *testing.T) {
	py := testenv.Need(t, "python3", "python3")
	e := newEnv(t, "").withDovecot("")
	e.putPair(t)
	host, port := splitAddr(t, e.addr)
	script := `
import poplib, sys
p = poplib.POP3(sys.argv[1], int(sys.argv[2]), timeout=30)
p.user(sys.argv[3]); p.pass_("secret")
for n in (1, 2):
    resp, lines, octets = p.retr(n)
    sys.stdout.write("=== %d\n" % n + "\n".join(l.decode() for l in lines) + "\n")
p.dele(2)
p.quit()
`
	out, err := exec.Command(py, "-c", script, host, port, e.userAtServer()).CombinedOutput()
	if err != nil {
		t.Fatalf("poplib: %v\n%s", err, out)
	}
	first, second, _ := strings.Cut(string(out), "=== 2\n")
	if first != "=== 1\n"+strings.ReplaceAll(cleanMail, "\r\n", "\n") {
		t.Errorf("clean mail: %q", first)
	}
	if !strings.Contains(second, "Subject: [VIRUS REMOVED] invoice") || strings.Contains(second, "--zz") {
		t.Errorf("infected mail:\n%s", second)
	}
	if n := e.srv.Count(); n != 1 {
		t.Errorf("after DELE 2 and QUIT the server has %d mails, want 1", n)
	}
}

func TestFetchmailRetrieves(t *testing.T) {
	fetchmail := testenv.Need(t, "fetchmail", "fetchmail")
	e := newEnv(t, "").withDovecot("")
	e.putPair(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "delivered")
	host, port := splitAddr(t, e.addr)
	rc := filepath.Join(dir, "fetchmailrc")
	os.WriteFile(rc, []byte("set no bouncemail\npoll "+host+" service "+port+" protocol pop3 auth password no uidl\n"+
		"  user \""+e.userAtServer()+"\" password \"secret\" is root here\n"+
		"  mda \"/bin/sh -c 'cat >> "+out+"; echo ===END=== >> "+out+"'\"\n  sslproto ''\n"), 0o600)
	cmd := exec.Command(fetchmail, "-f", rc, "--nodetach", "-v", "--nokeep")
	cmd.Env = append(os.Environ(), "FETCHMAILHOME="+dir, "HOME="+dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fetchmail: %v\n%s", err, b)
	}
	b, _ := os.ReadFile(out)
	mails := strings.Split(string(b), "===END===\n")
	if len(mails) != 3 || !strings.Contains(mails[0], "Just text.") || !strings.Contains(mails[1], "Subject: [VIRUS REMOVED] invoice") || strings.Contains(mails[1], "--zz") {
		t.Fatalf("fetchmail delivered:\n%s", b)
	}
	if n := e.srv.Count(); n != 0 {
		t.Errorf("fetchmail deleted what it fetched; the server still has %d", n)
	}
}

func splitAddr(t *testing.T, addr string) (string, string) {
	i := strings.LastIndexByte(addr, ':')
	return addr[:i], addr[i+1:]
}

// TestFetchmailOutlastsASlowMail: fetchmail with a 2-second timeout gives
// up on a server that takes 4 seconds to send a mail, but gets the mail
// through the proxy, whose progress lines (every 500ms here) keep it
// waiting. Clients' own timeouts are idle timeouts: fetchmail's default
// is 300 s, Thunderbird's 100 s, Python's poplib none unless given.
func TestFetchmailOutlastsASlowMail(t *testing.T) {
	fetchmail := testenv.Need(t, "fetchmail", "fetchmail")
	mail := "From: a@example.com\r\nSubject: slow\r\n\r\nbody\r\n"
	slow := func(c net.Conn) {
		io.WriteString(c, "+OK 50 octets\r\n"+mail[:10])
		time.Sleep(4 * time.Second)
		io.WriteString(c, mail[10:]+".\r\n")
	}
	run := func(addr string) (string, error) {
		dir := t.TempDir()
		out := filepath.Join(dir, "delivered")
		host, port := splitAddr(t, addr)
		rc := filepath.Join(dir, "fetchmailrc")
		os.WriteFile(rc, []byte("set no bouncemail\npoll "+host+" service "+port+" protocol pop3 auth password timeout 2\n"+
			"  user \"x\" password \"y\" is root here\n  mda \"/bin/sh -c 'cat >> "+out+"'\"\n  sslproto ''\n"), 0o600)
		cmd := exec.Command(fetchmail, "-f", rc, "--nodetach", "-v", "--keep")
		cmd.Env = append(os.Environ(), "FETCHMAILHOME="+dir, "HOME="+dir)
		b, err := cmd.CombinedOutput()
		got, _ := os.ReadFile(out)
		if err != nil {
			return string(b), err
		}
		return string(got), nil
	}
	if out, err := run(fakeServer(t, slow)); err == nil {
		t.Fatalf("fetchmail waited 4 s with a 2 s timeout; the test proves nothing:\n%s", out)
	}
	e, _ := fakeEnv(t, "progress_interval = 500ms", slow)
	got, err := run(e.addr)
	if err != nil || !strings.Contains(got, "X-Fsigkd-Progress:") || !strings.Contains(got, "body") {
		t.Fatalf("through the proxy: %v\n%s", err, got)
	}
}
