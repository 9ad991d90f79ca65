package smtp

import (
	"archive/zip"
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/enginetest"
	"github.com/fsigkd/fsigkd/internal/proxytest"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/spool"
)

type env struct {
	t      *testing.T
	p      *Proxy
	addr   string
	sink   *servertest.MailSink
	obs    *observer.ObservedLogs
	logDir string
}

func newEnv(t *testing.T, keys string) *env {
	t.Helper()
	return newEnvVia(t, keys, func(sink string) string { return sink })
}

// newEnvVia is newEnv with a next hop of the test's own between the
// proxy and the sink: via is given the sink's address and gives the next
// hop's.
func newEnvVia(t *testing.T, keys string, via func(sink string) string) *env {
	t.Helper()
	e := &env{t: t, sink: servertest.NewMailSink(t, nil, nil)}
	host, port, _ := net.SplitHostPort(via(e.sink.Addr))
	c, kit := proxytest.Common(t, "smtp", "hostname = gw.test\nparent_server_host = "+host+"\nparent_server_port = "+port+"\n"+keys)
	e.obs, e.logDir = kit.Obs, kit.LogDir
	e.p = &Proxy{Common: c}
	return e
}

func (e *env) start() {
	e.t.Helper()
	if err := e.p.init(); err != nil {
		e.t.Fatal(err)
	}
	e.addr = proxytest.Serve(e.t, e.p)
}

// send sends one mail through the proxy with go-smtp's client.
func (e *env) send(from string, to []string, msg string) error {
	c, err := gosmtp.Dial(e.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	if err := c.SendMail(from, to, strings.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}

func code(err error) int {
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	if err == nil {
		return 250
	}
	return -1
}

const cleanMail = "From: a@example.com\r\nTo: b@example.com\r\nSubject: hello\r\n\r\nJust text.\r\n.leading dot line\r\n"

func eicarMail() string {
	return "From: a@example.com\r\nTo: b@example.com\r\nSubject: file\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--B\r\nContent-Type: application/octet-stream; name=e.com\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte(eicar.String)) + "\r\n--B--\r\n"
}

func TestCleanMailDeliveredWithOurHeaders(t *testing.T) {
	e := newEnv(t, "")
	e.start()
	if err := e.send("a@example.com", []string{"b@example.com"}, cleanMail); err != nil {
		t.Fatal(err)
	}
	got := e.sink.Mails()
	if len(got) != 1 {
		t.Fatalf("next hop got %d mails", len(got))
	}
	data := string(got[0].Data)
	if !strings.HasPrefix(data, "Received: from client.test ([127.0.0.1])\r\n\tby gw.test (fsigkd) with ESMTP;\r\n") || !strings.Contains(data, "X-Virus-Status: clean(fsigkd)\r\n") {
		t.Fatalf("headers:\n%s", data)
	}
	if !strings.HasSuffix(data, cleanMail) {
		t.Fatalf("the mail changed on the way:\n%q", data)
	}
}

func TestActions(t *testing.T) {
	for _, tc := range []struct {
		action    string
		code      int
		delivered bool
	}{
		{"deny", 554, false},
		{"pass", 250, true},
		{"blackhole", 250, false},
		{"delete", 250, false},
		{"sendback", 250, false},
	} {
		t.Run(tc.action, func(t *testing.T) {
			e := newEnv(t, "action = "+tc.action)
			e.start()
			err := e.send("a@example.com", []string{"b@example.com"}, eicarMail())
			if code(err) != tc.code {
				t.Fatalf("reply %v, want %d", err, tc.code)
			}
			if tc.code == 554 && !strings.Contains(err.Error(), "Infected by Eicar-Test-Signature") {
				t.Fatalf("reply %v", err)
			}
			var infectedDelivered bool
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				for _, m := range e.sink.Mails() {
					if strings.Contains(string(m.Data), "X-Virus-Status: infected(Eicar-Test-Signature)") {
						infectedDelivered = true
					}
				}
				notices := len(e.sink.Mails()) - b2i(infectedDelivered)
				if tc.action != "delete" && tc.action != "sendback" || notices > 0 {
					break
				}
			}
			if infectedDelivered != tc.delivered {
				t.Fatalf("delivered %v", infectedDelivered)
			}
			if tc.action == "delete" || tc.action == "sendback" {
				want := map[string]string{"delete": "b@example.com", "sendback": "a@example.com"}[tc.action]
				found := false
				for _, m := range e.sink.Mails() {
					if len(m.To) == 1 && m.To[0] == want && strings.Contains(string(m.Data), "Eicar-Test-Signature") {
						found = true
					}
				}
				if !found {
					t.Fatalf("no notice to %s: %+v", want, e.sink.Mails())
				}
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestNextHopRefusalIsRelayed(t *testing.T) {
	e := newEnv(t, "")
	e.sink.RefuseRcpt(&gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "No such user here"})
	e.start()
	err := e.send("a@example.com", []string{"nobody@example.com"}, cleanMail)
	if code(err) != 550 || !strings.Contains(err.Error(), "No such user here") {
		t.Fatalf("reply %v", err)
	}
}

// hello opens a session and says EHLO: the first error, if any.
func (e *env) hello() error {
	c, err := gosmtp.Dial(e.addr)
	if err == nil {
		err = c.Hello("x")
		c.Close()
	}
	return err
}

func TestNextHopDownGivesATemporaryFailure(t *testing.T) {
	e := newEnv(t, "")
	e.p.Svc.ParentServerPort = testenv.FreePort(t)
	e.start()
	if err := e.hello(); code(err) != 421 {
		t.Fatalf("reply %v", err)
	}
}

func TestTooLongMessage(t *testing.T) {
	e := newEnv(t, "max_message_size = 2K")
	e.start()
	err := e.send("a@example.com", []string{"b@example.com"}, cleanMail+strings.Repeat(strings.Repeat("x", 70)+"\r\n", 60))
	if code(err) != 554 || !strings.Contains(err.Error(), "Too long message") {
		t.Fatalf("reply %v", err)
	}
	if len(e.sink.Mails()) != 0 {
		t.Fatal("an oversize mail was delivered")
	}
}

func TestEngineDownTempfails(t *testing.T) {
	e := newEnv(t, "")
	eps, _ := scanner.ParseEndpoints(filepath.Join(t.TempDir(), "none"), "")
	e.p.Scanner = scanner.NewFsavd(&scanner.Pool{Endpoints: eps}, false)
	e.start()
	if err := e.send("a@example.com", []string{"b@example.com"}, cleanMail); code(err) != 451 {
		t.Fatalf("reply %v", err)
	}
	if len(e.sink.Mails()) != 0 {
		t.Fatal("an unscanned mail was delivered")
	}
}

// TestBareLineEndsCannotSmuggle: a client that puts "\n.\n" or
// "\r\n.\n" inside its data does not end the mail for the next hop, and
// what follows stays inside the one mail.
func TestBareLineEndsCannotSmuggle(t *testing.T) {
	e := newEnv(t, "")
	e.start()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	script := "EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
	body := "Subject: one\r\n\r\nfirst\n.\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nsecond\r\n.\n\r\nend\r\n.\r\nQUIT\r\n"
	c.Write([]byte(script))
	time.Sleep(200 * time.Millisecond)
	c.Write([]byte(body))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.ReadAll(c)
	got := e.sink.Mails()
	if len(got) != 1 {
		t.Fatalf("next hop got %d mails", len(got))
	}
	if got[0].From != "a@example.com" || !bytes.Contains(got[0].Data, []byte("Subject: smuggled")) || !bytes.Contains(got[0].Data, []byte("end\r\n")) {
		t.Fatalf("mail: %q", got[0].Data)
	}
	// Inside the mail the bare line ends became CRLF: "first\n.\n" is a
	// line holding a dot, stuffed on the way and content for the next hop.
	if !bytes.Contains(got[0].Data, []byte("first\r\n.\r\nMAIL FROM:<evil@example.com>\r\n")) {
		t.Fatalf("mail: %q", got[0].Data)
	}
}

func TestSpamIsTagged(t *testing.T) {
	e := newEnv(t, "fsasd_service = yes")
	e.p.Spam = proxytest.Spamd(t)
	e.start()
	msg := "From: a@example.com\r\nTo: b@example.com\r\nSubject: offer\r\n\r\n" + eicar.GTUBE + "\r\n"
	if err := e.send("a@example.com", []string{"b@example.com"}, msg); err != nil {
		t.Fatal(err)
	}
	got := e.sink.Mails()
	if len(got) != 1 || !strings.Contains(string(got[0].Data), "Subject: [SPAM] offer\r\n") || !strings.Contains(string(got[0].Data), "X-Spam-Flag: YES\r\n") {
		t.Fatalf("%+v", got)
	}
	b, _ := os.ReadFile(filepath.Join(e.logDir, "access.log"))
	if !strings.Contains(string(b), "ACTION:CHANGE_SUBJECT:") {
		t.Errorf("access log: %s", b)
	}
}

// TestAdminNoticeAndItsFailures: a notice reaches the admin server with a
// mark; the notice as it arrived (with a Received line above) is passed
// unscanned as our own.
func TestAdminNoticeAndItsFailures(t *testing.T) {
	e, notice := adminNotice(t)
	if !strings.Contains(notice, "X-Admin-Notification-Id: gw-42; mac=") || !strings.Contains(notice, "Eicar-Test-Signature") {
		t.Fatalf("notice: %q", notice)
	}
	if strings.Contains(notice, string(e.p.NoticeKey)) {
		t.Fatal("the notice key left in a mail")
	}
	before := len(e.sink.Mails())
	again := "Received: from gw.test by mx.test; Sat, 28 Nov 2026 10:00:00 +0000\r\n" + notice
	if err := e.send("postmaster@gw.test", []string{"admin@example.com"}, again); err != nil {
		t.Fatalf("own notice: %v", err)
	}
	if len(e.sink.Mails()) != before+1 {
		t.Fatal("own notice not delivered")
	}
	if b, _ := os.ReadFile(filepath.Join(e.logDir, "access.log")); !strings.Contains(string(b), "own%20notice") {
		t.Errorf("own notice not logged as such: %s", b)
	}
}

// adminNotice sends EICAR through a proxy with admin notices on and returns
// the notice the admin server got.
func adminNotice(t *testing.T) (*env, string) {
	admin := servertest.NewMailSink(t, nil, nil)
	host, port, _ := net.SplitHostPort(admin.Addr)
	e := newEnv(t, "notify_admin = yes\nadmin_mx_host = "+host+"\nadmin_mx_port = "+port+"\nadmin_notification_id = gw-42")
	e.start()
	e.send("a@example.com", []string{"b@example.com"}, eicarMail())
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := admin.Mails(); len(m) > 0 {
			return e, string(m[0].Data)
		}
	}
	t.Fatal("no admin notice")
	return nil, ""
}

// TestForgedNoticeMarkIsScanned: the notice id alone (in the 220 banner's
// host name, or a configured one), a mark made up, a real mark moved to
// another mail, and a real notice with something added: each mail is
// scanned like any other, and the forgery logged.
func TestForgedNoticeMarkIsScanned(t *testing.T) {
	e, notice := adminNotice(t)
	head, body, _ := strings.Cut(notice, "\r\n\r\n")
	var mark string
	for _, l := range strings.Split(head, "\r\n") {
		if strings.HasPrefix(l, "X-Admin-Notification-Id:") {
			mark = l
		}
	}
	cases := map[string]string{
		"id alone":      "From: postmaster@gw.test\r\nX-Admin-Notification-Id: gw-42\r\nSubject: n\r\n\r\n" + eicar.String + "\r\n",
		"host id":       "From: postmaster@gw.test\r\nX-Admin-Notification-Id: fsigkd-gw.test\r\nSubject: n\r\n\r\n" + eicar.String + "\r\n",
		"made-up mac":   "From: postmaster@gw.test\r\nX-Admin-Notification-Id: gw-42; mac=AAAA\r\nSubject: n\r\n\r\n" + eicar.String + "\r\n",
		"moved mark":    "From: postmaster@gw.test\r\n" + mark + "\r\nSubject: n\r\n\r\n" + eicar.String + "\r\n",
		"body appended": head + "\r\n\r\n" + body + eicar.String + "\r\n",
		"second body type": strings.Replace(head, "Content-Type:", "Content-Type: multipart/mixed; boundary=x\r\nContent-Type:", 1) +
			"\r\n\r\n--x\r\n\r\n" + eicar.String + "\r\n--x--\r\n" + body,
		"two marks": head + "\r\n" + mark + "\r\n\r\n" + body + eicar.String + "\r\n",
	}
	for name, msg := range cases {
		err := e.send("postmaster@gw.test", []string{"admin@example.com"}, msg)
		if err == nil || !strings.Contains(err.Error(), "Infected") {
			t.Errorf("%s: passed: %v", name, err)
		}
	}
	if n := len(e.obs.FilterMessageSnippet("notice mark that does not verify").All()); n != len(cases) {
		t.Errorf("%d forgeries logged, want %d", n, len(cases))
	}
}

// TestOutsideNoticesCarryNoMark: a notice to a mail's sender or recipients
// leaves the gateway, so it carries no mark to reuse.
func TestOutsideNoticesCarryNoMark(t *testing.T) {
	for _, action := range []string{"delete", "sendback"} {
		e := newEnv(t, "action = "+action+"\nadmin_notification_id = gw-42")
		e.start()
		e.send("a@example.com", []string{"b@example.com"}, eicarMail())
		for deadline := time.Now().Add(5 * time.Second); len(e.sink.Mails()) == 0 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		got := e.sink.Mails()
		if len(got) != 1 {
			t.Fatalf("%s: %d mails", action, len(got))
		}
		if strings.Contains(strings.ToLower(string(got[0].Data)), "x-admin-notification-id") {
			t.Errorf("%s: the notice carries a mark: %q", action, got[0].Data)
		}
	}
}

func TestAdminServerDown(t *testing.T) {
	port := testenv.FreePort(t)
	e := newEnv(t, "notify_admin = yes\nadmin_mx_host = 127.0.0.1\nadmin_mx_port = "+itoa(port))
	e.start()
	e.send("a@example.com", []string{"b@example.com"}, eicarMail())
	want := "connect=Connection refused(111) cannot connect to admin mail server[127.0.0.1:" + itoa(port) + "]"
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if len(e.obs.FilterMessage(want).All()) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no M04: %v", e.obs.All())
		}
	}
}

func itoa(n int) string { return strconvItoa(n) }

// TestSwaksThroughTheProxy: the real swaks, EICAR attached.
func TestSwaksThroughTheProxy(t *testing.T) {
	swaks := testenv.Need(t, "swaks", "swaks")
	e := newEnv(t, "")
	e.start()
	host, port, _ := net.SplitHostPort(e.addr)
	att := filepath.Join(t.TempDir(), "eicar.com")
	os.WriteFile(att, []byte(eicar.String), 0o644)
	out, _ := exec.Command(swaks, "--server", host, "--port", port, "--from", "a@example.com", "--to", "b@example.com", "--attach", "@"+att).CombinedOutput()
	if !strings.Contains(string(out), "554 5.7.1 Infected by Eicar-Test-Signature") {
		t.Fatalf("swaks:\n%s", out)
	}
	out, err := exec.Command(swaks, "--server", host, "--port", port, "--from", "a@example.com", "--to", "b@example.com", "--body", "clean").CombinedOutput()
	if err != nil || len(e.sink.Mails()) != 1 {
		t.Fatalf("swaks clean: %v\n%s", err, out)
	}
}

// crlfByBytes is the byte-at-a-time reading of copyCRLF's rule (every
// CRLF, bare LF and bare CR becomes CRLF), to hold the fast one to.
func crlfByBytes(in []byte) []byte {
	var out []byte
	prevCR := false
	for _, c := range in {
		switch {
		case c == '\n':
			out = append(out, '\r', '\n')
			prevCR = false
			continue
		case prevCR:
			out = append(out, '\r', '\n')
		}
		prevCR = c == '\r'
		if !prevCR {
			out = append(out, c)
		}
	}
	if prevCR {
		out = append(out, '\r', '\n')
	}
	return out
}

// oneByteReader reads one byte a call: every chunk boundary a reader can
// make.
type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	p[0], r.b = r.b[0], r.b[1:]
	return 1, nil
}

// FuzzCopyCRLF: whatever a client sends, however it is cut, the spooled
// mail has only CRLF line ends, as the byte-at-a-time rule gives them, and
// no line of a lone dot can come out of something that was not one.
func FuzzCopyCRLF(f *testing.F) {
	f.Add([]byte("a\nb\r\nc\rd\r"))
	f.Add([]byte("\n.\n\r\n.\r"))
	f.Add([]byte("\r\r\n\r"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, in []byte) {
		sf, err := spool.Dir{Path: dir}.Create("smtp")
		if err != nil {
			t.Fatal(err)
		}
		defer sf.Close()
		if err := copyCRLF(sf, &oneByteReader{in}); err != nil {
			t.Fatal(err)
		}
		out := make([]byte, sf.Size())
		sf.OS().ReadAt(out, 0)
		if want := crlfByBytes(in); !bytes.Equal(out, want) {
			t.Fatalf("%q: %q, want %q", in, out, want)
		}
		whole, _ := spool.Dir{Path: dir}.Create("smtp")
		defer whole.Close()
		copyCRLF(whole, bytes.NewReader(in))
		if whole.Size() != int64(len(out)) {
			t.Fatalf("%q read whole: %d bytes, cut: %d", in, whole.Size(), len(out))
		}
		for i, c := range out {
			if c == '\n' && (i == 0 || out[i-1] != '\r') || c == '\r' && (i+1 >= len(out) || out[i+1] != '\n') {
				t.Fatalf("bare line end at %d in %q", i, out)
			}
		}
	})
}

func TestIdleClientGets421(t *testing.T) {
	e := newEnv(t, "idle_timeout = 1")
	e.start()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(c)
	if !strings.Contains(string(b), "421 4.4.2 Idle timeout") {
		t.Fatalf("got %q", b)
	}
}

// smtpSink starts Postfix's smtp-sink on a loopback port, dumping each
// mail (with its envelope as X-Mail-Args, X-Rcpt-Args) into dir.
// toSmtpSink is the relay started with Postfix's smtp-sink as its next
// hop, and the directory where the sink writes what it takes.
func toSmtpSink(t *testing.T) (*env, string) {
	t.Helper()
	port, dir := smtpSink(t)
	e := newEnv(t, "")
	e.p.Svc.ParentServerPort = port
	e.start()
	return e, dir
}

func smtpSink(t *testing.T) (port int, dir string) {
	sinkBin := testenv.Need(t, "smtp-sink", "postfix")
	dir = testenv.ShortDir(t) // one level under the temp dir: reachable by nobody
	port = testenv.FreePort(t)
	args := []string{"-d", dir + "/%M.", "127.0.0.1:" + itoa(port), "10"}
	if os.Geteuid() == 0 {
		os.Chmod(dir, 0o777) // smtp-sink drops to nobody
		args = append([]string{"-u", "nobody"}, args...)
	}
	cmd := exec.Command(sinkBin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+itoa(port)); err == nil {
			c.Close()
			return port, dir
		}
		if time.Now().After(deadline) {
			t.Fatal("smtp-sink did not start")
		}
	}
}

// sinkDump is the one mail smtp-sink dumped into dir.
func sinkDump(t *testing.T, dir string) []byte {
	var dumps []string
	for deadline := time.Now().Add(5 * time.Second); len(dumps) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		dumps, _ = filepath.Glob(filepath.Join(dir, "*"))
	}
	if len(dumps) != 1 {
		t.Fatalf("smtp-sink dumped %d mails", len(dumps))
	}
	b, _ := os.ReadFile(dumps[0])
	return b
}

// TestPostfixSmtpSinkAsNextHop: Postfix's smtp-sink receives what the
// proxy delivers; the dumped mail holds the clean message whole.
func TestPostfixSmtpSinkAsNextHop(t *testing.T) {
	e, dir := toSmtpSink(t)
	if err := e.send("a@example.com", []string{"b@example.com"}, cleanMail); err != nil {
		t.Fatal(err, e.obs.All())
	}
	if err := e.send("a@example.com", []string{"b@example.com"}, eicarMail()); code(err) != 554 {
		t.Fatalf("EICAR: %v", err)
	}
	b := sinkDump(t, dir)
	if !strings.Contains(string(b), "X-Virus-Status: clean(fsigkd)") || !strings.Contains(string(b), "Just text.") {
		t.Fatalf("dump:\n%s", b)
	}
}

// TestSTARTTLSBothWays: the next hop's STARTTLS is used, and clients are
// offered ours when a certificate is set.
func TestSTARTTLSBothWays(t *testing.T) {
	cert := servertest.SelfSigned(t)
	// A next hop that offers STARTTLS.
	hop := servertest.NewMailSink(t, nil, &tls.Config{Certificates: []tls.Certificate{cert}})

	dir := t.TempDir()
	certFile, keyFile := servertest.WriteKeyPair(t, cert, dir)
	host, port, _ := net.SplitHostPort(hop.Addr)
	e := newEnv(t, "tls_cert = "+certFile+"\ntls_key = "+keyFile)
	e.p.Svc.ParentServerHost, e.p.Svc.ParentServerPort = host, atoi(port)
	e.start()

	c, err := gosmtp.DialStartTLS(e.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("STARTTLS to the relay: %v", err)
	}
	if err := c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader(cleanMail)); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	if m := hop.Mails(); len(m) != 1 || !m[0].TLS {
		t.Fatal("the mail went to the next hop in the clear although it offered STARTTLS")
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func zipOf(name string, data []byte) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, _ := w.Create(name)
	f.Write(data)
	w.Close()
	return b.Bytes()
}

func attachment(name string, data []byte) string {
	return "From: a@example.com\r\nTo: b@example.com\r\nSubject: file\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--B\r\nContent-Type: application/octet-stream; name=" + name + "\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(data) + "\r\n--B--\r\n"
}

// TestEICARInEveryWrapping: base64 attachment, zipped attachment,
// quoted-printable text, with the bundled fsavd and with real clamd.
func TestEICARInEveryWrapping(t *testing.T) {
	qp := "From: a@example.com\r\nTo: b@example.com\r\nSubject: qp\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		strings.ReplaceAll(eicar.String[:30], "=", "=3D") + "=\r\n" + strings.ReplaceAll(eicar.String[30:], "=", "=3D") + "\r\n"
	mails := map[string]string{
		"base64": attachment("e.com", []byte(eicar.String)),
		"zip":    attachment("e.zip", zipOf("e.com", []byte(eicar.String))),
		"qp":     qp,
	}
	for _, engine := range []string{"fsavd", "clamd"} {
		t.Run(engine, func(t *testing.T) {
			e := newEnv(t, "")
			if engine == "clamd" {
				clamd := enginetest.Clamd(t, "")
				eps, _ := scanner.ParseEndpoints(clamd.Sock, "")
				e.p.Scanner = scanner.NewClamd(&scanner.Pool{Endpoints: eps}, false)
			}
			e.start()
			for name, m := range mails {
				if err := e.send("a@example.com", []string{"b@example.com"}, m); code(err) != 554 || !strings.Contains(err.Error(), "Infected by Eicar-Test-Signature") {
					t.Errorf("%s: %v", name, err)
				}
			}
			if len(e.sink.Mails()) != 0 {
				t.Fatal("an infected mail was delivered")
			}
		})
	}
}

// TestSilentNextHopTimesOutOnce: a next hop that does not answer within
// idle_timeout after a command or after the message gives the client a
// temporary failure, never a 250; and it gets idle_timeout once: the command is
// sent with the reply's wait armed (package sendwait), and the reply's
// read keeps that deadline rather than starting another.
func TestSilentNextHopTimesOutOnce(t *testing.T) {
	for _, silent := range []string{"MAIL FROM", "DATA END"} {
		t.Run(silent, func(t *testing.T) {
			addr := servertest.ScriptedSMTP(t, func(stage, _ string) string {
				if stage == silent {
					time.Sleep(5 * time.Second)
					return ""
				}
				return servertest.SMTPDefault(stage)
			})
			host, port, _ := net.SplitHostPort(addr)
			e := newEnv(t, "idle_timeout = 1")
			e.p.Svc.ParentServerHost, e.p.Svc.ParentServerPort = host, atoi(port)
			e.start()
			c, err := gosmtp.Dial(e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Hello("client.test"); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = c.Mail("a@example.com", nil)
			if silent == "DATA END" {
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Rcpt("b@example.com", nil); err != nil {
					t.Fatal(err)
				}
				w, derr := c.Data()
				if derr != nil {
					t.Fatal(derr)
				}
				io.WriteString(w, cleanMail)
				start = time.Now()
				err = w.Close()
			}
			took := time.Since(start)
			if c := code(err); c < 400 || c > 499 {
				t.Fatalf("reply %v after %v, want a 4xx", err, took)
			}
			if took < 900*time.Millisecond || took > 1900*time.Millisecond {
				t.Fatalf("a next hop silent at %s was given %v, idle_timeout being 1 s", silent, took)
			}
		})
	}
}

func FuzzUpstreamReply(f *testing.F) {
	f.Add("250-a\r\n250 b\r\n")
	f.Add("220 hi\r\n")
	f.Add("250-x\r\n251 y\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		a, b := net.Pipe()
		defer a.Close()
		go func() { b.Write([]byte(s)); b.Close() }()
		u := newUpstream(a, time.Second)
		if r, err := u.read(); err == nil {
			if r.Code < 200 || r.Code > 599 {
				t.Fatalf("code %d", r.Code)
			}
			r.err()
		}
	})
}

// TestTransparentClientThatNamesTheRelay: in transparent mode, a client
// that comes straight to the relay's port (not diverted) gets a temporary
// failure with the reason in the log; the relay does not relay to itself.
func TestTransparentClientThatNamesTheRelay(t *testing.T) {
	e := newEnv(t, "transparent = yes")
	e.start()
	if err := e.hello(); code(err) != 421 {
		t.Fatalf("reply %v", err)
	}
	if e.obs.FilterMessage("no next hop").FilterField(zap.Error(proxy.ErrNotDiverted)).Len() != 1 {
		t.Errorf("log: %v", e.obs.All())
	}
	if n := len(e.sink.Mails()); n != 0 {
		t.Errorf("%d mails reached the sink", n)
	}
}

// TestQuotedLocalPartCannotSmuggleParameters: MAIL FROM:<"a> SIZE=1
// RET=FULL ENVID=x"@b.example> reached the next hop as parameters. The
// relay forwards addresses as parsed, re-quoted, and only the parameters
// it understood: Postfix's smtp-sink sees one quoted address.
func TestQuotedLocalPartCannotSmuggleParameters(t *testing.T) {
	e, dir := toSmtpSink(t)
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	replies := []string{}
	read := func() {
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%v after %q", err, replies)
			}
			replies = append(replies, strings.TrimSpace(l))
			if len(l) < 4 || l[3] != '-' {
				return
			}
		}
	}
	read()
	for _, cmd := range []string{"EHLO client.test", `MAIL FROM:<"a> SIZE=1 RET=FULL ENVID=x"@b.example>`, `RCPT TO:<"c> NOTIFY=NEVER ORCPT=rfc822;x@y"@d.example>`,
		`RCPT TO:<plain.name@d.example>`, "DATA"} {
		fmt.Fprintf(c, "%s\r\n", cmd)
		read()
	}
	fmt.Fprintf(c, "Subject: x\r\n\r\nhi\r\n.\r\n")
	read()
	if last := replies[len(replies)-1]; !strings.HasPrefix(last, "250") {
		t.Fatalf("replies: %q", replies)
	}
	b := sinkDump(t, dir)
	for _, want := range []string{"X-Mail-Args: <\"a> SIZE=1 RET=FULL ENVID=x\"@b.example>\n", "X-Rcpt-Args: <\"c> NOTIFY=NEVER ORCPT=rfc822;x@y\"@d.example>\n",
		"X-Rcpt-Args: <plain.name@d.example>\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("smtp-sink has no %q:\n%s", want, b)
		}
	}
}

// TestClientPassedOnByDefault: with forward_client = xforward the next hop
// hears XFORWARD; with the default (auto), the
// next hop hears the real client by XCLIENT when it offers and accepts it,
// by XFORWARD when it refuses XCLIENT, and is logged (once) as told nothing
// when it offers neither: then it sees the relay's address for everyone.
func TestClientPassedOnByDefault(t *testing.T) {
	for _, tc := range []struct {
		name, ehlo, xclient string
		want                string
		keys                string
	}{
		{"xforward asked", "250-fake\r\n250 XFORWARD NAME ADDR PROTO HELO", "", "XFORWARD ADDR=127.0.0.1 NAME=[UNAVAILABLE] HELO=client.test PROTO=ESMTP", "forward_client = xforward"},
		{"xclient", "250-fake\r\n250-XFORWARD NAME ADDR PROTO HELO\r\n250 XCLIENT NAME ADDR HELO", "220 fake", "XCLIENT ADDR=127.0.0.1 NAME=[UNAVAILABLE] HELO=client.test", ""},
		{"xclient refused", "250-fake\r\n250-XFORWARD NAME ADDR PROTO HELO\r\n250 XCLIENT NAME ADDR HELO", "550 5.7.0 not authorized", "XFORWARD ADDR=127.0.0.1 NAME=[UNAVAILABLE] HELO=client.test PROTO=ESMTP", ""},
		{"neither", "250 fake", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan string, 4)
			addr := servertest.ScriptedSMTP(t, func(stage, line string) string {
				switch stage {
				case "EHLO":
					return tc.ehlo
				case "XCLIENT":
					got <- line
					return tc.xclient
				case "XFORWARD":
					got <- line
					return "250 2.0.0 Ok"
				}
				return servertest.SMTPDefault(stage)
			})
			host, port, _ := net.SplitHostPort(addr)
			e := newEnv(t, tc.keys)
			e.p.Svc.ParentServerHost, e.p.Svc.ParentServerPort = host, atoi(port)
			e.start()
			for i := 0; i < 2; i++ {
				if err := e.send("a@example.com", []string{"b@example.com"}, cleanMail); err != nil {
					t.Fatal(err)
				}
			}
			close(got)
			var last string
			for l := range got {
				last = l
			}
			if last != tc.want {
				t.Fatalf("next hop heard %q, want %q", last, tc.want)
			}
			warned := len(e.obs.FilterMessageSnippet("does not take XCLIENT or XFORWARD").All())
			if (tc.want == "") != (warned == 1) {
				t.Errorf("%d warnings that the next hop was told nothing", warned)
			}
		})
	}
}

// TestLocalDomainsCloseTheOpenRelay: with local_domains set, a client
// outside relay_clients may send only to the local domains (and their
// subdomains): anything else is refused at RCPT with 554 and never reaches
// the next hop; a relay client may send anywhere.
func TestLocalDomainsCloseTheOpenRelay(t *testing.T) {
	e := newEnv(t, "local_domains = example.com, .Example.ORG\nrelay_clients = 127.0.0.1/32")
	e.start()
	send := func(from string, to string) error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		nc, err := d.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		c := gosmtp.NewClient(nc)
		defer c.Close()
		if err := c.Hello("client.test"); err != nil {
			return err
		}
		return c.SendMail("a@elsewhere.test", []string{to}, strings.NewReader(cleanMail))
	}
	for _, to := range []string{"b@victim.test", "b@example.com.victim.test", "b@notexample.com"} {
		if err := send("127.0.0.2", to); code(err) != 554 {
			t.Errorf("outsider to %s: %v", to, err)
		}
	}
	for _, to := range []string{"b@example.com", "b@Sub.Example.com", "b@example.org", "postmaster@example.org"} {
		if err := send("127.0.0.2", to); err != nil {
			t.Errorf("outsider to the local %s: %v", to, err)
		}
	}
	if err := send("127.0.0.1", "b@victim.test"); err != nil {
		t.Errorf("relay client: %v", err)
	}
	victims := 0
	for _, m := range e.sink.Mails() {
		if strings.HasSuffix(m.To[0], "victim.test") {
			victims++
		}
	}
	if victims != 1 {
		t.Errorf("%d mails to the outside domain reached the next hop, want the relay client's 1", victims)
	}
	if n := len(e.sink.Mails()); n != 5 {
		t.Errorf("next hop got %d mails, want 5", n)
	}
}

// TestMailOverMaxScanSize: max_scan_size and oversize_action hold for
// mail: passed unscanned (and marked so), or refused.
func TestMailOverMaxScanSize(t *testing.T) {
	big := "From: a@example.com\r\nSubject: big\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef\r\n", 100) + eicar.String + "\r\n"
	e := newEnv(t, "max_scan_size = 2K")
	e.start()
	if err := e.send("a@example.com", []string{"b@example.com"}, big); err != nil {
		t.Fatalf("oversize_action = pass: %v", err)
	}
	if got := e.sink.Mails(); len(got) != 1 || !strings.Contains(string(got[0].Data), "X-Virus-Status: unscanned(fsigkd)") {
		t.Fatalf("%+v", got)
	}
	e = newEnv(t, "max_scan_size = 2K\noversize_action = block")
	e.start()
	if err := e.send("a@example.com", []string{"b@example.com"}, big); code(err) != 554 {
		t.Fatalf("oversize_action = block: %v", err)
	}
	if n := len(e.sink.Mails()); n != 0 {
		t.Fatalf("%d mails delivered", n)
	}
}

// TestSMTPUTF8AndDSNPassedOn: DSN parameters (RET, ENVID, NOTIFY, ORCPT)
// reach Postfix's smtp-sink as the client gave them; a mail with
// SMTPUTF8 (a UTF-8 sender, a UTF-8 Subject) reaches a next hop that
// offers it as SMTPUTF8 mail.
func TestSMTPUTF8AndDSNPassedOn(t *testing.T) {
	e, dir := toSmtpSink(t)
	err := e.sendWith("a@example.com", &gosmtp.MailOptions{Return: gosmtp.DSNReturnHeaders, EnvelopeID: "env id+1"},
		&gosmtp.RcptOptions{Notify: []gosmtp.DSNNotify{gosmtp.DSNNotifySuccess, gosmtp.DSNNotifyFailure},
			OriginalRecipientType: gosmtp.DSNAddressTypeRFC822, OriginalRecipient: "orig@example.com"}, "Subject: dsn\r\n\r\nHello.\r\n")
	if err != nil {
		t.Fatal(err)
	}
	b := string(sinkDump(t, dir))
	for _, want := range []string{"RET=HDRS", "ENVID=env+20id+2B1", "NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;orig@example.com"} {
		if !strings.Contains(b, want) {
			t.Errorf("the next hop lacks %q:\n%s", want, b)
		}
	}

	u := newEnv(t, "")
	u.start()
	if err := u.sendWith("jos\u00e9@example.com", &gosmtp.MailOptions{UTF8: true}, nil, "Subject: caf\u00e9\r\n\r\nSalut.\r\n"); err != nil {
		t.Fatal(err)
	}
	if m := u.sink.Mails(); len(m) != 1 || !m[0].UTF8 || m[0].From != "jos\u00e9@example.com" || !strings.Contains(string(m[0].Data), "Subject: caf\u00e9") {
		t.Fatalf("%+v", m)
	}
}

// TestSMTPUTF8RefusedWhenTheNextHopLacksIt: with a next hop that does not
// offer SMTPUTF8 (smtp-sink), such a mail is refused at MAIL (553 5.6.7):
// the sender's MTA keeps it and says why, rather than a garbled relay.
func TestSMTPUTF8RefusedWhenTheNextHopLacksIt(t *testing.T) {
	e, _ := toSmtpSink(t)
	if err := e.sendWith("jos\u00e9@example.com", &gosmtp.MailOptions{UTF8: true}, nil, "Subject: x\r\n\r\nx\r\n"); code(err) != 553 || !strings.Contains(err.Error(), "SMTPUTF8") {
		t.Fatalf("%v", err)
	}
}

// sendWith sends one mail to b@example.com with MAIL and RCPT options.
func (e *env) sendWith(from string, mo *gosmtp.MailOptions, ro *gosmtp.RcptOptions, msg string) error {
	c, err := gosmtp.Dial(e.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	if err := c.Mail(from, mo); err != nil {
		return err
	}
	if err := c.Rcpt("b@example.com", ro); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	io.WriteString(w, msg)
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// TestDKIMSignedMailStillVerifies: a mail signed by dkimpy verifies after
// the relay, clean and as spam (its Subject kept, the X-Spam-* fields
// added above); with spam_tag_signed = yes its Subject is tagged and the
// signature fails, as it must.
func TestDKIMSignedMailStillVerifies(t *testing.T) {
	dk := servertest.NewDKIM(t)
	spamd := proxytest.Spamd(t)
	mail := func(subject, body string) string {
		return dk.Sign(t, "From: a@example.com\r\nTo: b@example.com\r\nSubject: "+subject+"\r\nDate: Sun, 6 Dec 2026 10:00:00 +0000\r\n\r\n"+body+"\r\n")
	}
	clean, spam := mail("hello", "Hello."), mail("an offer", eicar.GTUBE)
	if !dk.Verify(t, []byte(clean)) || dk.Verify(t, []byte(strings.Replace(clean, "Hello.", "Hello!", 1))) {
		t.Fatal("the verifier does not tell a signed mail from a changed one")
	}
	relay := func(keys string) *env {
		e := newEnv(t, "fsasd_service = yes\n"+keys)
		e.p.Spam = spamd
		e.start()
		return e
	}
	e := relay("")
	for _, msg := range []string{clean, spam} {
		if err := e.send("a@example.com", []string{"b@example.com"}, msg); err != nil {
			t.Fatal(err)
		}
	}
	got := e.sink.Mails()
	if len(got) != 2 || !dk.Verify(t, got[0].Data) {
		t.Fatalf("the clean signed mail no longer verifies:\n%s", got[0].Data)
	}
	if s := string(got[1].Data); !strings.Contains(s, "X-Spam-Flag: YES\r\n") || !strings.Contains(s, "Subject: an offer\r\n") || !dk.Verify(t, got[1].Data) {
		t.Fatalf("the signed spam:\n%s", s)
	}
	if b, _ := os.ReadFile(filepath.Join(e.logDir, "access.log")); !strings.Contains(string(b), "DKIM-signed%3A%20Subject%20kept") {
		t.Errorf("access log: %s", b)
	}

	e = relay("spam_tag_signed = yes")
	if err := e.send("a@example.com", []string{"b@example.com"}, spam); err != nil {
		t.Fatal(err)
	}
	if got := e.sink.Mails(); len(got) != 1 || !strings.Contains(string(got[0].Data), "Subject: [SPAM] an offer\r\n") || dk.Verify(t, got[0].Data) {
		t.Fatalf("spam_tag_signed = yes:\n%s", got[0].Data)
	}
}

// TestRspamdVerdictHonoured: with rspamd as the spam engine (its GTUBE
// variants ask for each action), "reject" is refused (554), "add header"
// is delivered with the X-Spam-* fields and its Subject as it was,
// "rewrite subject" with the Subject rspamd wrote.
func TestRspamdVerdictHonoured(t *testing.T) {
	e := newEnv(t, "fsasd_service = yes")
	e.p.Spam = proxytest.Rspamd(t)
	e.start()
	msg := func(body string) string { return "From: a@example.com\r\nSubject: an offer\r\n\r\n" + body + "\r\n" }
	if err := e.send("a@example.com", []string{"b@example.com"}, msg(eicar.GTUBE)); code(err) != 554 || !strings.Contains(err.Error(), "Rejected as spam") {
		t.Fatalf("reject: %v", err)
	}
	for _, body := range []string{enginetest.RspamdAddHeader, enginetest.RspamdRewriteSubject} {
		if err := e.send("a@example.com", []string{"b@example.com"}, msg(body)); err != nil {
			t.Fatal(err)
		}
	}
	got := e.sink.Mails()
	if len(got) != 2 || !strings.Contains(string(got[0].Data), "X-Spam-Flag: YES\r\n") || !strings.Contains(string(got[0].Data), "Subject: an offer\r\n") {
		t.Fatalf("add header: %+v", got)
	}
	if !strings.Contains(string(got[1].Data), "Subject: *** SPAM *** an offer\r\n") || strings.Count(string(got[1].Data), "Subject:") != 1 {
		t.Fatalf("rewrite subject:\n%s", got[1].Data)
	}
}

// TestDetectionNamesThePart: a detection in a mail names the part's file
// (and, in an archive, the member's path) in the access log and in the
// quarantine's entry, as the bundled engine found it.
func TestDetectionNamesThePart(t *testing.T) {
	attached := func(name string, data []byte) string {
		return "From: a@example.com\r\nSubject: file\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--B\r\nContent-Type: application/octet-stream; name=" + name +
			"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString(data) + "\r\n--B--\r\n"
	}
	for _, c := range []struct{ mail, where string }{
		{attached("e.com", []byte(eicar.String)), "e.com"},
		{attached("e.zip", zipOf("inner/eicar.com", []byte(eicar.String))), "e.zip/inner/eicar.com"},
	} {
		e := newEnv(t, "")
		e.start()
		if err := e.send("a@example.com", []string{"b@example.com"}, c.mail); code(err) != 554 {
			t.Fatalf("%s: %v", c.where, err)
		}
		log, _ := os.ReadFile(filepath.Join(e.logDir, "access.log"))
		if !strings.Contains(string(log), "DETECT-STAT:INFECTED:Eicar-Test-Signature:"+c.where+":") {
			t.Errorf("%s: access log:\n%s", c.where, log)
		}
		kept, _ := filepath.Glob(filepath.Join(e.p.Global.QuarantineDir, "*.json"))
		if len(kept) != 1 {
			t.Fatalf("%s: %d entries kept", c.where, len(kept))
		}
		if b, _ := os.ReadFile(kept[0]); !strings.Contains(string(b), `"member": "`+c.where+`"`) {
			t.Errorf("%s: quarantine entry:\n%s", c.where, b)
		}
	}
}

// TestAuthenticationResults: the relay checks a signed mail's DKIM
// signature against the signer's key in DNS (dnsmasq serving the
// record) and says what it found above the mail, under its name: pass
// for a mail as signed, fail for one changed after signing; a field that
// already claimed the gateway's name is taken out, another server's
// kept; the mail still verifies with dkimpy; an unsigned mail gets no
// field, and with dkim_verify = no nothing is checked.
func TestAuthenticationResults(t *testing.T) {
	dk := servertest.NewDKIM(t)
	dns := servertest.NewDNS(t, map[string]string{"sel._domainkey.example.com": dk.Record(t)})
	signed := dk.Sign(t, "From: a@example.com\r\nTo: b@example.com\r\nSubject: hello\r\nDate: Sun, 6 Dec 2026 10:00:00 +0000\r\n\r\nHello.\r\n")
	forged := "Authentication-Results: gw.test; dkim=pass header.d=bank.example\r\nAuthentication-Results: mx.other.test; spf=pass\r\n" + signed
	changed := strings.Replace(signed, "Hello.", "Hello!", 1)
	relay := func(keys string) *env {
		e := newEnv(t, keys)
		e.p.LookupTXT = dns.LookupTXT
		e.start()
		return e
	}
	e := relay("")
	for _, msg := range []string{forged, changed, cleanMail} {
		if err := e.send("a@example.com", []string{"b@example.com"}, msg); err != nil {
			t.Fatal(err)
		}
	}
	got := e.sink.Mails()
	if len(got) != 3 {
		t.Fatalf("%d mails", len(got))
	}
	first := string(got[0].Data)
	if !strings.Contains(first, "Authentication-Results: gw.test;\r\n") && !strings.Contains(first, "Authentication-Results: gw.test; dkim=pass") {
		t.Errorf("no result of ours:\n%s", first)
	}
	if !strings.Contains(first, "dkim=pass") || !strings.Contains(first, "header.d=example.com") || strings.Contains(first, "bank.example") ||
		!strings.Contains(first, "Authentication-Results: mx.other.test; spf=pass") || strings.Count(first, "Authentication-Results: gw.test") != 1 {
		t.Errorf("the signed mail:\n%s", first)
	}
	if !dk.Verify(t, got[0].Data) {
		t.Errorf("the signed mail no longer verifies:\n%s", first)
	}
	if s := string(got[1].Data); !strings.Contains(s, "dkim=fail") {
		t.Errorf("the changed mail:\n%s", s)
	}
	if s := string(got[2].Data); strings.Contains(s, "Authentication-Results") {
		t.Errorf("the unsigned mail:\n%s", s)
	}
	off := relay("dkim_verify = no")
	if err := off.send("a@example.com", []string{"b@example.com"}, signed); err != nil {
		t.Fatal(err)
	}
	if s := string(off.sink.Mails()[0].Data); strings.Contains(s, "Authentication-Results") {
		t.Errorf("dkim_verify = no:\n%s", s)
	}
}
