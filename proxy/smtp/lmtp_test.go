package smtp

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/fsigkd/fsigkd/internal/proxytest"
	"github.com/fsigkd/fsigkd/internal/servertest"
)

// lmtpEnv is the relay with parent_protocol = lmtp in front of Dovecot's
// LMTP server (alice, and bob whose mailbox takes no mail over 1 KiB).
func lmtpEnv(t *testing.T, keys ...string) (*env, *servertest.LMTPServer, proxytest.Kit) {
	t.Helper()
	lm := servertest.DovecotLMTP(t)
	host, port, _ := net.SplitHostPort(lm.Addr)
	c, kit := proxytest.Common(t, "smtp", "hostname = gw.test\nparent_protocol = lmtp\nparent_server_host = "+host+"\nparent_server_port = "+port+"\n"+strings.Join(keys, "\n"))
	e := &env{t: t, p: &Proxy{Common: c}, obs: kit.Obs, logDir: kit.LogDir}
	e.start()
	return e, lm, kit
}

// sendLMTP sends one mail to rcpts over LMTP and gives each recipient's
// reply (nil: 250).
func (e *env) sendLMTP(rcpts []string, msg string) (map[string]*gosmtp.SMTPError, error) {
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		return nil, err
	}
	c := gosmtp.NewClientLMTP(nc)
	defer c.Close()
	if err := c.Hello("mta.test"); err != nil {
		return nil, err
	}
	if err := c.Mail("a@example.com", nil); err != nil {
		return nil, err
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			return nil, err
		}
	}
	w, err := c.Data()
	if err != nil {
		return nil, err
	}
	w.Write([]byte(msg))
	_, err = w.CloseWithLMTPResponse()
	out := map[string]*gosmtp.SMTPError{}
	var each gosmtp.LMTPDataError
	if errors.As(err, &each) {
		for r, se := range each {
			out[r] = se
		}
		err = nil
	}
	return out, err
}

// TestLMTPEachRecipientKeepsItsOwnReply: a mail for alice and bob, whose
// mailbox is full, is delivered to alice and refused for bob by Dovecot
// (552 5.2.2), and the MTA in front hears each reply for its recipient
// (one delivered, one to bounce) and the access log has each; an infected
// mail is refused for both, and reaches neither.
func TestLMTPEachRecipientKeepsItsOwnReply(t *testing.T) {
	e, lm, kit := lmtpEnv(t)
	body := "From: a@example.com\r\nSubject: big\r\n\r\n" + strings.Repeat("A line of the mail, long enough to fill a mailbox.\r\n", 60)
	got, err := e.sendLMTP([]string{"alice@example.com", "bob@example.com"}, body)
	if err != nil {
		t.Fatal(err)
	}
	if got["alice@example.com"] != nil {
		t.Errorf("alice: %v", got["alice@example.com"])
	}
	if b := got["bob@example.com"]; b == nil || b.Code != 552 || b.EnhancedCode != (gosmtp.EnhancedCode{5, 2, 2}) || strings.Count(b.Message, "bob@example.com") > 1 {
		t.Errorf("bob: %+v (want Dovecot's own 552 5.2.2, the recipient not named twice)", b)
	}
	mails := lm.Mails("alice")
	if len(mails) != 1 {
		t.Fatalf("alice has %d mails", len(mails))
	}
	// (Dovecot keeps a maildir's lines with LF alone.)
	m := string(mails[0])
	if !strings.Contains(m, "by gw.test (fsigkd) with LMTP;") || !strings.Contains(m, "X-Virus-Status: clean(fsigkd)\n") || !strings.HasSuffix(m, strings.ReplaceAll(body, "\r\n", "\n")) {
		t.Fatalf("alice's mail:\n%q", m)
	}
	if n := len(lm.Mails("bob")); n != 0 {
		t.Fatalf("bob has %d mails", n)
	}
	kit.WaitLog(t, "mail:<alice@example.com>", "mail:<bob@example.com>")
	log := kit.AccessLog()
	var alice, bob string
	for _, l := range strings.Split(log, "\n") {
		switch {
		case strings.Contains(l, "mail:<alice@example.com>"):
			alice = l
		case strings.Contains(l, "mail:<bob@example.com>"):
			bob = l
		}
	}
	if !strings.Contains(alice, " SMTP/250 ") || !strings.Contains(bob, " SMTP/552 ") {
		t.Fatalf("access log:\n%s", log)
	}

	got, err = e.sendLMTP([]string{"alice@example.com", "bob@example.com"}, eicarMail())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"alice@example.com", "bob@example.com"} {
		if se := got[r]; se == nil || se.Code != 554 || !strings.Contains(se.Message, "Eicar") {
			t.Errorf("%s: %+v", r, se)
		}
	}
	if n := len(lm.Mails("alice")); n != 1 {
		t.Fatalf("alice has %d mails after the infected one", n)
	}
}

// TestLMTPWantsLHLO: in front of an LMTP next hop the service is an LMTP
// server: EHLO is refused, as an LMTP server refuses it.
func TestLMTPWantsLHLO(t *testing.T) {
	e, _, _ := lmtpEnv(t)
	c, err := gosmtp.Dial(e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("mta.test"); code(err) != 500 {
		t.Fatalf("EHLO: %v", err)
	}
}

// TestPostfixDeliversThroughTheRelayOverLMTP: Postfix's LMTP delivery
// (default_transport = lmtp:inet:...) to the relay, and the relay to
// Dovecot: Postfix logs alice's mail sent and bob's bounced with
// Dovecot's own reply for him, each recipient alone.
func TestPostfixDeliversThroughTheRelayOverLMTP(t *testing.T) {
	e, lm, _ := lmtpEnv(t)
	pf := servertest.StartPostfix(t, servertest.PostfixOptions{RelayHost: e.addr,
		Main: "default_transport = lmtp:inet:" + e.addr + "\nlmtp_tls_security_level = none\n"})
	c, err := gosmtp.Dial(pf.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := "From: a@example.com\r\nSubject: big\r\n\r\n" + strings.Repeat("A line of the mail, long enough to fill a mailbox.\r\n", 60)
	if err := c.SendMail("a@example.com", []string{"alice@example.com", "bob@example.com"}, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	pf.WaitLog(t, "to=<alice@example.com>")
	log := pf.WaitLog(t, "to=<bob@example.com>")
	for _, l := range strings.Split(log, "\n") {
		switch {
		case strings.Contains(l, "to=<alice@example.com>") && !strings.Contains(l, "status=sent"):
			t.Errorf("alice: %s", l)
		case strings.Contains(l, "to=<bob@example.com>") && !(strings.Contains(l, "status=bounced") && strings.Contains(l, "552 5.2.2")):
			t.Errorf("bob: %s", l)
		}
	}
	if n := len(lm.Mails("alice")); n != 1 {
		t.Fatalf("alice has %d mails", n)
	}
}

// TestLMTPNoticesReachTheMailboxes: with action = delete, an infected
// mail is dropped and its recipients are told, the notice delivered over
// LMTP to their mailboxes as the relay delivers mail there.
func TestLMTPNoticesReachTheMailboxes(t *testing.T) {
	e, lm, _ := lmtpEnv(t, "action = delete")
	got, err := e.sendLMTP([]string{"alice@example.com", "bob@example.com"}, eicarMail())
	if err != nil || got["alice@example.com"] != nil || got["bob@example.com"] != nil {
		t.Fatalf("the dropped mail: %v %v", got, err)
	}
	for _, user := range []string{"alice", "bob"} {
		deadline := time.Now().Add(10 * time.Second)
		for len(lm.Mails(user)) == 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		mails := lm.Mails(user)
		if len(mails) != 1 || strings.Contains(string(mails[0]), "EICAR") || !strings.Contains(string(mails[0]), "Eicar-Test-Signature") {
			t.Fatalf("%s's mailbox: %d mails\n%s", user, len(mails), mails)
		}
	}
}
