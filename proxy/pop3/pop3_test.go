package pop3

import (
	"archive/zip"
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime/quotedprintable"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/proxytest"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/proxy"
)

type env struct {
	t    *testing.T
	p    *Proxy
	addr string
	srv  *servertest.POPServer
	kit  proxytest.Kit
}

// newEnv builds the proxy with the [pop] keys given (loopback servers
// allowed), before a server is started.
func newEnv(t *testing.T, keys string) *env {
	t.Helper()
	c, kit := proxytest.Common(t, "pop", "deny_servers =\n"+keys)
	return &env{t: t, p: &Proxy{LineService: proxy.NewLineService(c)}, kit: kit}
}

func (e *env) start() *env {
	e.t.Helper()
	if err := e.p.init(); err != nil {
		e.t.Fatal(err)
	}
	e.addr = proxytest.Serve(e.t, e.p)
	return e
}

// withDovecot starts Dovecot (extra: more of its settings) and the proxy.
func (e *env) withDovecot(extra string) *env {
	e.srv = servertest.Dovecot(e.t, extra)
	return e.start()
}

func (e *env) waitLog(want ...string) { e.t.Helper(); e.kit.WaitLog(e.t, want...) }

// client is a POP3 client for the tests, speaking the wire as it is.
type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
	// Greeting is the first line the client read.
	Greeting string
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	cl := &client{t: t, c: c, br: bufio.NewReader(c)}
	cl.Greeting = cl.line()
	return cl
}

func (cl *client) line() string {
	cl.t.Helper()
	l, err := cl.br.ReadString('\n')
	if err != nil {
		cl.t.Fatalf("reading a line: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// cmd sends a line and reads the status line.
func (cl *client) cmd(line string) string {
	cl.t.Helper()
	fmt.Fprintf(cl.c, "%s\r\n", line)
	return cl.line()
}

// ok sends a line and wants +OK.
func (cl *client) ok(line string) string {
	cl.t.Helper()
	st := cl.cmd(line)
	if !strings.HasPrefix(st, "+OK") {
		cl.t.Fatalf("%s: %s", line, st)
	}
	return st
}

// body reads a multi-line body, unstuffed, as the bytes sent.
func (cl *client) body() []byte {
	cl.t.Helper()
	var b bytes.Buffer
	if _, err := Unstuff(&b, cl.br); err != nil {
		cl.t.Fatalf("body: %v", err)
	}
	return b.Bytes()
}

// multi sends a command that answers with a body and returns it.
func (cl *client) multi(line string) []byte {
	cl.t.Helper()
	cl.ok(line)
	return cl.body()
}

// login logs in through the proxy in forward mode.
func (e *env) login() *client {
	e.t.Helper()
	cl := dial(e.t, e.addr)
	cl.ok("USER " + e.srv.User + "@" + e.srv.Addr)
	cl.ok("PASS " + e.srv.Pass)
	return cl
}

// direct logs in to Dovecot itself, for what the proxy must equal.
func (e *env) direct() *client {
	e.t.Helper()
	cl := dial(e.t, e.srv.Addr)
	cl.ok("USER " + e.srv.User)
	cl.ok("PASS " + e.srv.Pass)
	return cl
}

const cleanMail = "From: a@example.com\r\nTo: alice@example.com\r\nSubject: hello\r\nMessage-ID: <1@example.com>\r\n\r\nJust text.\r\n"

// trickyClean is clean but hard to relay: lines that begin with dots, a
// lone dot, a line longer than every buffer, 8-bit bytes, trailing space.
var trickyClean = "From: a@example.com\r\nSubject: dots\r\n\r\n.\r\n..\r\n.hidden\r\n. \r\nend of dots\r\n" +
	strings.Repeat("long ", 20000) + "\r\n\xe6\x97\xa5\xe6\x9c\xac \r\n\r\n"

func attachment(name, cte, payload string) string {
	return "From: mallory@example.com\r\nTo: alice@example.com\r\nSubject: invoice\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\n" +
		"Message-ID: <evil@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n" +
		"--zz\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--zz\r\nContent-Type: application/octet-stream; name=" + name +
		"\r\nContent-Transfer-Encoding: " + cte + "\r\n\r\n" + payload + "\r\n--zz--\r\n"
}

func zipOf(t *testing.T, name, data string) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, _ := zw.Create(name)
	w.Write([]byte(data))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func qp(s string) string {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return strings.ReplaceAll(b.String(), "\n", "\r\n")
}

// infectedMails are EICAR in the codings a mail carries files in.
func infectedMails(t *testing.T) map[string]string {
	return map[string]string{
		"base64 attachment":           attachment("e.com", "base64", base64.StdEncoding.EncodeToString([]byte(eicar.String))),
		"zip attachment":              attachment("e.zip", "base64", base64.StdEncoding.EncodeToString(zipOf(t, "eicar.com", eicar.String))),
		"quoted-printable attachment": attachment("e.txt", "quoted-printable", qp(eicar.String)),
	}
}

// TestCleanMailsArriveAsFromTheServer: RETR, TOP, LIST, UIDL and STAT
// through the proxy give what Dovecot gives directly, byte for byte,
// dot-stuffed lines and a line longer than every buffer included.
func TestCleanMailsArriveAsFromTheServer(t *testing.T) {
	e := newEnv(t, "").withDovecot("")
	e.srv.Put(t, []byte(cleanMail))
	e.srv.Put(t, []byte(trickyClean))
	direct, via := e.direct(), e.login()
	for _, c := range []string{"STAT", "LIST 2", "UIDL 1"} {
		if d, v := direct.cmd(c), via.cmd(c); d != v {
			t.Errorf("%s: direct %q, through the proxy %q", c, d, v)
		}
	}
	for _, c := range []string{"LIST", "UIDL", "RETR 1", "RETR 2", "TOP 2 3", "TOP 1 0"} {
		d, v := direct.multi(c), via.multi(c)
		if !bytes.Equal(d, v) {
			t.Errorf("%s differs:\ndirect  %.300q\nthrough %.300q", c, d, v)
		}
	}
	if !strings.Contains(string(via.multi("RETR 2")), ".hidden\r\n. \r\n") {
		t.Error("dot lines were not unstuffed")
	}
	if st := via.cmd("RETR 9"); !strings.HasPrefix(st, "-ERR") || !strings.Contains(st, "no such message") && !strings.Contains(st, "There's no message 9") {
		t.Errorf("RETR of no mail: %q (the server's own words wanted)", st)
	}
	via.ok("QUIT")
	e.waitLog("pop://alice@"+e.srv.Addr, "DETECT-STAT:CLEAN", "PROXY-STAT:pop:")
}

// TestInfectedMailsAreReplaced: EICAR as base64, in a zip, and as
// quoted-printable: each reaches the client as its own headers (Subject
// tagged) and a text naming the virus; DELE then deletes the original.
func TestInfectedMailsAreReplaced(t *testing.T) {
	e := newEnv(t, "").withDovecot("")
	mails := infectedMails(t)
	names := []string{"base64 attachment", "zip attachment", "quoted-printable attachment"}
	for _, n := range names {
		e.srv.Put(t, []byte(mails[n]))
	}
	e.srv.Put(t, []byte(cleanMail))
	cl := e.login()
	for i, n := range names {
		got := string(cl.multi(fmt.Sprintf("RETR %d", i+1)))
		for _, want := range []string{"Subject: [VIRUS REMOVED] invoice\r\n", "From: mallory@example.com\r\n", "Message-ID: <evil@example.com>\r\n",
			"X-Virus-Status: infected(", "Eicar", "Content-Type: text/plain; charset=utf-8\r\n"} {
			if !strings.Contains(got, want) {
				t.Errorf("%s: the replacement lacks %q:\n%s", n, want, got)
			}
		}
		if strings.Contains(got, "boundary=zz") || strings.Contains(got, "--zz") || strings.Contains(got, "X5O!P") {
			t.Errorf("%s: something of the original body came through:\n%s", n, got)
		}
		// TOP of an infected mail is replaced too.
		if top := string(cl.multi(fmt.Sprintf("TOP %d 20", i+1))); !strings.Contains(top, "[VIRUS REMOVED]") {
			t.Errorf("%s: TOP not replaced:\n%s", n, top)
		}
	}
	cl.ok("DELE 1")
	cl.ok("QUIT")
	if n := e.srv.Count(); n != 3 {
		t.Errorf("after DELE of a replaced mail the server has %d mails, want 3", n)
	}
	e.waitLog("DETECT-STAT:INFECTED", "ACTION:DELETE")
}

// TestActionDenyAndPass: deny answers -ERR naming the virus (the mail
// stays); pass delivers it marked.
func TestActionDenyAndPass(t *testing.T) {
	mail := infectedMails(t)["base64 attachment"]
	t.Run("deny", func(t *testing.T) {
		e := newEnv(t, "action = deny").withDovecot("")
		e.srv.Put(t, []byte(mail))
		cl := e.login()
		if st := cl.cmd("RETR 1"); !strings.HasPrefix(st, "-ERR") || !strings.Contains(st, "Eicar") {
			t.Fatalf("RETR: %q", st)
		}
		cl.ok("NOOP") // the session goes on
		cl.ok("QUIT")
		if e.srv.Count() != 1 {
			t.Error("the mail left the server")
		}
	})
	t.Run("pass", func(t *testing.T) {
		e := newEnv(t, "action = pass").withDovecot("")
		e.srv.Put(t, []byte(mail))
		cl := e.login()
		got := string(cl.multi("RETR 1"))
		if !strings.HasPrefix(got, "X-Virus-Status: infected(") || !strings.HasSuffix(got, mail) {
			t.Fatalf("RETR:\n%s", got)
		}
		e.waitLog("ACTION:PASS")
	})
}

// TestStatusHeaderAsked: status_header = yes marks clean mails too.
func TestStatusHeaderAsked(t *testing.T) {
	e := newEnv(t, "status_header = yes").withDovecot("")
	e.srv.Put(t, []byte(cleanMail))
	got := string(e.login().multi("RETR 1"))
	if got != "X-Virus-Status: clean(fsigkd)\r\n"+cleanMail {
		t.Fatalf("RETR:\n%q", got)
	}
}

// TestSTLSToTheServer: a server that takes passwords only over TLS is
// reached through STLS, and the client is not offered STLS by the proxy.
func TestSTLSToTheServer(t *testing.T) {
	e := newEnv(t, "").withDovecot("disable_plaintext_auth = yes")
	e.srv.Put(t, []byte(cleanMail))
	cl := e.login()
	capa := string(cl.multi("CAPA"))
	if strings.Contains(capa, "STLS") || !strings.Contains(capa, "UIDL") || !strings.Contains(capa, "IMPLEMENTATION fsigkd") {
		t.Errorf("CAPA:\n%s", capa)
	}
	if got := string(cl.multi("RETR 1")); got != cleanMail {
		t.Errorf("RETR: %q", got)
	}
	cl.ok("QUIT")
	if !strings.Contains(e.srv.DovecotLog(), "TLS") {
		t.Errorf("Dovecot saw no TLS login:\n%s", e.srv.DovecotLog())
	}
}

// TestParentServerAPOPAndAUTH: with parent_server_host the server's
// greeting (and its APOP timestamp) reaches the client, and APOP, AUTH
// PLAIN and the steps of AUTH LOGIN are carried.
func TestParentServerAPOPAndAUTH(t *testing.T) {
	e := newEnv(t, "")
	e.srv = servertest.Dovecot(t, "")
	host, port, _ := net.SplitHostPort(e.srv.Addr)
	e.p.Svc.ParentServerHost = host
	fmt.Sscan(port, &e.p.Svc.ParentServerPort)
	e.start()
	e.srv.Put(t, []byte(cleanMail))

	cl := dial(t, e.addr)
	ts := regexp.MustCompile(`<[^>]+>`).FindString(cl.Greeting)
	if ts == "" {
		t.Fatalf("greeting without the server's timestamp: %q", cl.Greeting)
	}
	cl.ok(fmt.Sprintf("APOP alice %x", md5.Sum([]byte(ts+"secret"))))
	if got := string(cl.multi("RETR 1")); got != cleanMail {
		t.Errorf("RETR after APOP: %q", got)
	}
	cl.ok("QUIT")

	cl = dial(t, e.addr)
	cl.ok("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")))
	cl.ok("STAT")
	cl.ok("QUIT")

	cl = dial(t, e.addr)
	if st := cl.cmd("AUTH LOGIN"); !strings.HasPrefix(st, "+ ") {
		t.Fatalf("AUTH LOGIN: %q", st)
	}
	if st := cl.cmd(base64.StdEncoding.EncodeToString([]byte("alice"))); !strings.HasPrefix(st, "+ ") {
		t.Fatalf("AUTH LOGIN user: %q", st)
	}
	cl.ok(base64.StdEncoding.EncodeToString([]byte("secret")))
	cl.ok("QUIT")

	cl = dial(t, e.addr)
	if st := cl.cmd("AUTH GSSAPI"); !strings.HasPrefix(st, "-ERR") {
		t.Errorf("AUTH GSSAPI (not carried): %q", st)
	}
	cl.ok("USER alice")
	if st := cl.cmd("PASS wrong"); !strings.HasPrefix(st, "-ERR") || !strings.Contains(st, "Authentication failed") {
		t.Errorf("a wrong password: %q (the server's own words wanted)", st)
	}
}

// TestAdminNoticeOnDetection: a replaced mail sends the admin notice,
// naming the virus, the mailbox and the mail's subject.
func TestAdminNoticeOnDetection(t *testing.T) {
	admin := servertest.NewMailSink(t, nil, nil)
	host, port, _ := net.SplitHostPort(admin.Addr)
	e := newEnv(t, "notify_admin = yes\nadmin_mx_host = "+host+"\nadmin_mx_port = "+port).withDovecot("")
	e.srv.Put(t, []byte(infectedMails(t)["base64 attachment"]))
	e.login().multi("RETR 1")
	for deadline := time.Now().Add(10 * time.Second); len(admin.Mails()) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no admin notice")
		}
	}
	msg := string(admin.Mails()[0].Data)
	for _, want := range []string{"Eicar-Test-Signature", "pop://alice@" + e.srv.Addr, "invoice", "Service: pop"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the notice lacks %q:\n%s", want, msg)
		}
	}
}

// TestSkipListedSenderPassesUnscanned: a mail From a skip-listed domain
// arrives as it was, marked unscanned(skipped), logged SKIPPED; another
// sender's infected mail is still replaced.
func TestSkipListedSenderPassesUnscanned(t *testing.T) {
	e := newEnv(t, "skip_senders = @example.com").withDovecot("")
	mail := infectedMails(t)["base64 attachment"]
	e.srv.Put(t, []byte(mail))
	e.srv.Put(t, []byte(strings.Replace(mail, "mallory@example.com", "mallory@example.net", 1)))
	cl := e.login()
	got := string(cl.multi("RETR 1"))
	if !strings.Contains(got, "X-Virus-Status: unscanned(skipped)\r\n") || !strings.Contains(got, "--zz") {
		t.Fatalf("skip-listed sender's mail:\n%.400s", got)
	}
	if got := string(cl.multi("RETR 2")); !strings.Contains(got, "[VIRUS REMOVED]") {
		t.Fatalf("unlisted sender's mail:\n%.400s", got)
	}
	cl.ok("QUIT")
	e.waitLog("DETECT-STAT:SKIPPED:skip_senders:")
}

// TestTypeRulesReplaceTheMail: a Windows program renamed .txt in a zip
// is refused by block_types: the mail is replaced (its headers and a text
// naming the rule), even with action = pass.
func TestTypeRulesReplaceTheMail(t *testing.T) {
	e := newEnv(t, "block_types = exe\naction = pass").withDovecot("")
	e.srv.Put(t, []byte(attachment("docs.zip", "base64",
		base64.StdEncoding.EncodeToString(zipOf(t, "readme.txt", string(eicar.WindowsProgram(false)))))))
	cl := e.login()
	got := string(cl.multi("RETR 1"))
	if !strings.Contains(got, "[VIRUS REMOVED]") || !strings.Contains(got, "block_types=exe") || strings.Contains(got, "--zz") {
		t.Fatalf("%.600s", got)
	}
	cl.ok("QUIT")
	e.waitLog("DETECT-STAT:BLOCKED:block_types=exe:")
}

// TestArchivePasswordsOpen7z: a 7z archive encrypted with AES (headers
// too), its password in the mail's text, is opened on retrieval and the
// EICAR in it found: the mail is replaced.
func TestArchivePasswordsOpen7z(t *testing.T) {
	sz := testenv.Need(t, "7zz", "7zip")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte(eicar.String), 0o644)
	cmd := exec.Command(sz, "a", "-bd", "-pzebra42", "-mhe=on", "x.7z", "notes.txt")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("7zz: %v\n%s", err, out)
	}
	archive, _ := os.ReadFile(filepath.Join(dir, "x.7z"))
	mail := strings.Replace(attachment("notes.7z", "base64", base64.StdEncoding.EncodeToString(archive)),
		"See attached.", "See attached; Passwort: zebra42", 1)
	e := newEnv(t, "").withDovecot("")
	e.srv.Put(t, []byte(mail))
	cl := e.login()
	if got := string(cl.multi("RETR 1")); !strings.Contains(got, "[VIRUS REMOVED]") || !strings.Contains(got, "Eicar") {
		t.Fatalf("%.600s", got)
	}
	cl.ok("QUIT")
	e.waitLog("DETECT-STAT:INFECTED:Eicar-Test-Signature:", "opened%20with%20a%20password")
}

// TestInfectedMailKeptOnce: as shipped, an infected mail is kept in the
// quarantine when retrieved, once however often it is retrieved, and not
// for a TOP (a part of it).
func TestInfectedMailKeptOnce(t *testing.T) {
	e := newEnv(t, "").withDovecot("")
	e.srv.Put(t, []byte(infectedMails(t)["base64 attachment"]))
	cl := e.login()
	cl.multi("TOP 1 5")
	if kept, _ := filepath.Glob(filepath.Join(e.kit.QuarantineDir, "*.data")); len(kept) != 0 {
		t.Fatalf("a TOP was kept: %v", kept)
	}
	cl.multi("RETR 1")
	cl.multi("RETR 1")
	cl.ok("QUIT")
	e.waitLog("DETECT-STAT:INFECTED:")
	kept, _ := filepath.Glob(filepath.Join(e.kit.QuarantineDir, "*.data"))
	if len(kept) != 1 {
		t.Fatalf("kept %d times: %v", len(kept), kept)
	}
	id := strings.TrimSuffix(filepath.Base(kept[0]), ".data")
	if n := strings.Count(e.kit.AccessLog(), ":e.com:"+id+"::"); n != 2 {
		t.Fatalf("the id (after the part's file, e.com) is in %d access-log lines, want both RETRs':\n%s", n, e.kit.AccessLog())
	}
	// The entry names the mailbox it was fetched from, and the part.
	b, _ := os.ReadFile(strings.TrimSuffix(kept[0], ".data") + ".json")
	var m struct {
		Recipients []string
		Member     string
	}
	if err := json.Unmarshal(b, &m); err != nil || len(m.Recipients) != 1 || m.Recipients[0] != e.srv.User || m.Member != "e.com" {
		t.Fatalf("quarantine entry: %v %s", err, b)
	}
}
