package milter

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/enginetest"
	"github.com/fsigkd/fsigkd/internal/forms"
	"github.com/fsigkd/fsigkd/internal/proxytest"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/scanner"
)

// env is a real Postfix whose smtpd asks the milter, relaying what it
// takes to a sink.
type env struct {
	t    *testing.T
	p    *Proxy
	kit  proxytest.Kit
	pf   *servertest.Postfix
	sink *servertest.MailSink
}

// newEnv builds the milter from keys; change, if set, changes it before
// it serves (its engine).
func newEnv(t *testing.T, keys string, change ...func(*Proxy)) *env {
	t.Helper()
	testenv.Need(t, "swaks", "swaks")
	c, kit := proxytest.Common(t, "milter", keys)
	e := &env{t: t, p: &Proxy{Common: c}, kit: kit, sink: servertest.NewMailSink(t, nil, nil)}
	if err := e.p.init(); err != nil {
		t.Fatal(err)
	}
	for _, f := range change {
		f(e.p)
	}
	addr := proxytest.Serve(t, e.p)
	e.pf = servertest.StartPostfix(t, servertest.PostfixOptions{RelayHost: e.sink.Addr,
		Main: "smtpd_milters = inet:" + addr + "\nmilter_default_action = tempfail\n"})
	return e
}

// send gives msg to Postfix with swaks, from a@example.com to
// b@example.net; swaks's transcript, and whether the mail was taken.
func (e *env) send(msg string) (string, bool) {
	e.t.Helper()
	host, port, _ := strings.Cut(e.pf.Addr, ":")
	cmd := exec.Command("swaks", "--server", host, "--port", port, "--from", "a@example.com", "--to", "b@example.net",
		"--helo", "client.test", "--data", "-")
	cmd.Stdin = strings.NewReader(msg)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// delivered waits for the sink's n-th mail (from 1).
func (e *env) delivered(n int) []byte {
	e.t.Helper()
	e.pf.WaitLog(e.t, "status=sent")
	for i := 0; i < 400; i++ {
		if m := e.sink.Mails(); len(m) >= n {
			return m[n-1].Data
		}
		sleep()
	}
	e.t.Fatalf("the sink has %d mails, not %d\n%s", len(e.sink.Mails()), n, e.pf.Log())
	return nil
}

// clean has every field Postfix would add (Date, Message-ID), so that
// what arrives is this after Postfix's Received line and the milter's
// field. (swaks ends the data with a line end of its own.)
const clean = "From: a@example.com\r\nTo: b@example.net\r\nSubject: a long\r\n subject, folded\r\nDate: Sun, 6 Dec 2026 10:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\nHello.\r\n"

// TestPostfixAsksTheMilter: Postfix with smtpd_milters pointing at the
// milter: a clean mail reaches the next hop with its header and body
// unchanged and X-Virus-Status first; a mail with EICAR is refused by
// Postfix with the milter's reply, never delivered, kept in the
// quarantine, and logged with Postfix's queue id.
func TestPostfixAsksTheMilter(t *testing.T) {
	e := newEnv(t, "")
	out, ok := e.send(clean)
	if !ok {
		t.Fatalf("clean mail refused:\n%s", out)
	}
	got := e.delivered(1)
	head, body, _ := bytes.Cut(got, []byte("\r\n\r\n"))
	if !bytes.HasPrefix(got, []byte("X-Virus-Status: clean(fsigkd)\r\n")) {
		t.Errorf("X-Virus-Status not first:\n%s", got)
	}
	if !bytes.HasSuffix(head, []byte(strings.Split(clean, "\r\n\r\n")[0])) || !bytes.HasPrefix(body, []byte("Hello.\r\n")) {
		t.Errorf("the mail was changed:\n%q", got)
	}
	e.kit.WaitLog(t, "MILTER", "mail:<b@example.net>", "DETECT-STAT:CLEAN", "queue%20id")

	infected := "From: a@example.com\r\nSubject: invoice\r\n\r\n" + eicar.String + "\r\n"
	out, ok = e.send(infected)
	if ok || !strings.Contains(out, "554 5.7.1 Infected by Eicar-Test-Signature") {
		t.Fatalf("EICAR not refused with the milter's reply:\n%s", out)
	}
	e.kit.WaitLog(t, "DETECT-STAT:INFECTED:Eicar-Test-Signature")
	if q, _ := filepath.Glob(filepath.Join(e.kit.QuarantineDir, "*", "*.json")); len(q) != 1 {
		if q2, _ := filepath.Glob(filepath.Join(e.kit.QuarantineDir, "*.json")); len(q2) != 1 {
			t.Errorf("quarantine: %v %v", q, q2)
		}
	}
	// The next clean mail is the second the sink sees: nothing came
	// between.
	e.send(clean)
	if got := e.delivered(2); bytes.Contains(got, []byte(eicar.String)) || len(e.sink.Mails()) != 2 {
		t.Fatal("the infected mail was delivered")
	}
}

// TestEveryFormThroughPostfix: each form of internal/forms attached to a
// mail: with EICAR refused by Postfix at DATA; clean, delivered with its
// body byte for byte.
func TestEveryFormThroughPostfix(t *testing.T) {
	fs := forms.All(t)
	e := newEnv(t, "")
	n := 0
	for _, f := range fs {
		if out, ok := e.send(forms.Mail("a.bin", f.Infected)); ok || !strings.Contains(out, "554 5.7.1 Infected by Eicar-Test-Signature") {
			t.Errorf("%s with EICAR: taken\n%s", f.Name, out)
		}
		msg := forms.Mail("a.bin", f.Clean)
		if out, ok := e.send(msg); !ok {
			t.Errorf("%s, clean: refused\n%s", f.Name, out)
			continue
		}
		n++
		_, body, _ := strings.Cut(msg, "\r\n\r\n")
		if got := e.delivered(n); !bytes.Contains(got, []byte(body)) { // (swaks may add a line end)
			t.Errorf("%s, clean: not delivered whole", f.Name)
		}
	}
}

// TestMilterEngineDown: with the engine unreachable, Postfix answers 451
// (scan_failure = tempfail as shipped): the sender keeps the mail.
func TestMilterEngineDown(t *testing.T) {
	e := newEnv(t, "", func(p *Proxy) {
		eps, _ := scanner.ParseEndpoints(filepath.Join(t.TempDir(), "none"), "")
		p.Scanner = scanner.NewFsavd(&scanner.Pool{Endpoints: eps}, false)
	})
	out, ok := e.send(clean)
	if ok || !strings.Contains(out, "451 4.3.0 Virus scanning is unavailable; try again later") {
		t.Fatalf("not tempfailed:\n%s", out)
	}
	if len(e.sink.Mails()) != 0 {
		t.Fatal("an unscanned mail was delivered")
	}
}

// TestMilterBlackhole: action = blackhole has Postfix take the mail and
// discard it.
func TestMilterBlackhole(t *testing.T) {
	e := newEnv(t, "action = blackhole")
	out, ok := e.send("Subject: x\r\n\r\n" + eicar.String + "\r\n")
	if !ok {
		t.Fatalf("not taken:\n%s", out)
	}
	e.pf.WaitLog(t, "milter-discard")
	e.kit.WaitLog(t, "ACTION:BLACKHOLE")
	if len(e.sink.Mails()) != 0 {
		t.Fatal("delivered")
	}
}

// TestMilterTagsSpam: with fsasd_service = yes and a real spamd, spam
// gets its Subject tagged (a folded one kept whole) and the X-Spam-*
// fields; at spam_reject_score Postfix refuses it.
func TestMilterTagsSpam(t *testing.T) {
	spamd := proxytest.Spamd(t)
	withSpamd := func(p *Proxy) { p.Spam = spamd }
	spam := "From: a@example.com\r\nSubject: an offer,\r\n folded\r\n\r\n" + eicar.GTUBE + "\r\n"
	e := newEnv(t, "fsasd_service = yes", withSpamd)
	if out, ok := e.send(spam); !ok {
		t.Fatalf("spam refused:\n%s", out)
	}
	got := string(e.delivered(1))
	if !strings.Contains(got, "Subject: [SPAM] an offer,\r\n folded\r\n") || !strings.Contains(got, "X-Spam-Flag: YES\r\n") {
		t.Fatalf("%s", got)
	}
	e.kit.WaitLog(t, "ACTION:CHANGE_SUBJECT")

	e = newEnv(t, "fsasd_service = yes\nspam_reject_score = 5", withSpamd)
	if out, ok := e.send(spam); ok || !strings.Contains(out, "554 5.7.1 Rejected as spam") {
		t.Fatalf("spam taken:\n%s", out)
	}
}

func sleep() { time.Sleep(50 * time.Millisecond) }

// TestDKIMSignedMailVerifiesAfterTheMilter: a mail signed by dkimpy still
// verifies after Postfix and the milter, clean and as spam (the Subject
// kept, X-Spam-* inserted above), with the milter's Authentication-Results
// (dkim=pass, the signer's key from dnsmasq) and without the field that
// claimed the gateway's name when it came.
func TestDKIMSignedMailVerifiesAfterTheMilter(t *testing.T) {
	dk := servertest.NewDKIM(t)
	dns := servertest.NewDNS(t, map[string]string{"sel._domainkey.example.com": dk.Record(t)})
	spamd := proxytest.Spamd(t)
	e := newEnv(t, "fsasd_service = yes", func(p *Proxy) { p.Spam, p.LookupTXT = spamd, dns.LookupTXT })
	host := e.p.Hostname()
	for i, body := range []string{"Hello.", eicar.GTUBE} {
		msg := dk.Sign(t, "From: a@example.com\r\nTo: b@example.net\r\nSubject: hello\r\nDate: Sun, 6 Dec 2026 10:00:00 +0000\r\nMessage-ID: <"+strconv.Itoa(i)+"@example.com>\r\n\r\n"+body+"\r\n")
		msg = "Authentication-Results: " + host + "; dkim=pass header.d=bank.example\r\n" + msg
		if out, ok := e.send(msg); !ok {
			t.Fatalf("refused:\n%s", out)
		}
		got := e.delivered(i + 1)
		if !dk.Verify(t, got) || i == 1 && !bytes.Contains(got, []byte("X-Spam-Flag: YES")) {
			t.Fatalf("mail %d:\n%s", i, got)
		}
		if !bytes.Contains(got, []byte("Authentication-Results: "+host+"; dkim=pass header.d=example.com")) || bytes.Contains(got, []byte("bank.example")) {
			t.Fatalf("mail %d's Authentication-Results:\n%s", i, got)
		}
	}
}

// TestMilterHonoursRspamd: rspamd's "rewrite subject" has the MTA change
// the Subject to rspamd's; its "reject" has Postfix refuse the mail.
func TestMilterHonoursRspamd(t *testing.T) {
	rs := proxytest.Rspamd(t)
	e := newEnv(t, "fsasd_service = yes", func(p *Proxy) { p.Spam = rs })
	if out, ok := e.send("From: a@example.com\r\nSubject: an offer\r\n\r\n" + eicar.GTUBE + "\r\n"); ok || !strings.Contains(out, "554 5.7.1 Rejected as spam") {
		t.Fatalf("reject:\n%s", out)
	}
	if out, ok := e.send("From: a@example.com\r\nSubject: an offer\r\n\r\n" + enginetest.RspamdRewriteSubject + "\r\n"); !ok {
		t.Fatalf("refused:\n%s", out)
	}
	if got := string(e.delivered(1)); !strings.Contains(got, "Subject: *** SPAM *** an offer\r\n") || strings.Count(got, "Subject:") != 1 {
		t.Fatalf("%s", got)
	}
}

// TestMilterHold: action = hold has Postfix take the mail and put it on
// hold (its own quarantine), and our quarantine keeps it too; it reaches
// no one.
func TestMilterHold(t *testing.T) {
	e := newEnv(t, "action = hold")
	if out, ok := e.send("Subject: x\r\n\r\n" + eicar.String + "\r\n"); !ok {
		t.Fatalf("not taken:\n%s", out)
	}
	e.pf.WaitLog(t, "milter-hold: END-OF-MESSAGE") // (Postfix does not log the reason given)
	e.kit.WaitLog(t, "ACTION:HOLD")
	held, _ := filepath.Glob(filepath.Join(e.pf.Dir, "spool", "hold", "*"))
	kept, _ := filepath.Glob(filepath.Join(e.kit.QuarantineDir, "*.json"))
	if len(held) != 1 || len(kept) != 1 || len(e.sink.Mails()) != 0 {
		t.Fatalf("held by Postfix %v, kept by us %v, delivered %d", held, kept, len(e.sink.Mails()))
	}
}
