package smtp

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/proxytest"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// envWithSink is newEnv with a next hop offering STARTTLS with a
// self-signed certificate (tls set) or no STARTTLS.
func envWithSink(t *testing.T, keys string, withTLS bool) *env {
	t.Helper()
	var cfg *tls.Config
	if withTLS {
		cfg = &tls.Config{Certificates: []tls.Certificate{servertest.SelfSigned(t)}}
	}
	e := &env{t: t, sink: servertest.NewMailSink(t, nil, cfg)}
	host, port, _ := net.SplitHostPort(e.sink.Addr)
	c, kit := proxytest.Common(t, "smtp", "hostname = gw.test\nparent_server_host = "+host+"\nparent_server_port = "+port+"\n"+keys)
	e.obs, e.logDir = kit.Obs, kit.LogDir
	e.p = &Proxy{Common: c}
	e.start()
	return e
}

// TestParentTLS: towards the next hop, parent_tls = verify refuses a
// self-signed certificate and a hop without STARTTLS (451 4.7.5: the
// client tries later, no mail is lost); may (as shipped) delivers
// encrypted and logs once that the certificate does not verify; none
// delivers in the clear.
func TestParentTLS(t *testing.T) {
	for _, c := range []struct {
		mode    string
		withTLS bool
		code    int
		text    string
		tlsUsed bool
	}{
		{"verify", true, 451, "certificate could not be verified", false},
		{"verify", false, 451, "offers no TLS", false},
		{"may", true, 0, "", true},
		{"may", false, 0, "", false},
		{"none", true, 0, "", false},
	} {
		e := envWithSink(t, "parent_tls = "+c.mode, c.withTLS)
		err := e.send("a@example.com", []string{"b@example.com"}, cleanMail)
		switch {
		case c.code != 0 && (code(err) != c.code || !strings.Contains(err.Error(), c.text) || !enhanced(err, 4, 7, 5)):
			t.Errorf("%s (hop TLS %v): %v", c.mode, c.withTLS, err)
		case c.code == 0 && err != nil:
			t.Errorf("%s (hop TLS %v): %v", c.mode, c.withTLS, err)
		case c.code == 0:
			if m := e.sink.Mails(); len(m) != 1 || m[0].TLS != c.tlsUsed {
				t.Errorf("%s (hop TLS %v): delivered %d, over TLS: %v", c.mode, c.withTLS, len(m), len(m) == 1 && m[0].TLS)
			}
		}
		if c.mode == "may" && c.withTLS {
			e.send("a@example.com", []string{"b@example.com"}, cleanMail)
			if n := e.obs.FilterMessageSnippet("does not verify").Len(); n != 1 {
				t.Errorf("may: the unverified certificate logged %d times", n)
			}
		}
	}
}

// enhanced tells whether err is an SMTP reply with that enhanced code.
func enhanced(err error, class, subject, detail int) bool {
	var se *gosmtp.SMTPError
	return errors.As(err, &se) && se.EnhancedCode == gosmtp.EnhancedCode{class, subject, detail}
}

// implicitEnv is newEnv with a self-signed tls_cert.
func implicitEnv(t *testing.T, keys string) *env {
	t.Helper()
	certFile, keyFile := servertest.WriteKeyPair(t, servertest.SelfSigned(t), t.TempDir())
	return newEnv(t, "tls_cert = "+certFile+"\ntls_key = "+keyFile+"\n"+keys)
}

// TestImplicitTLSFromClients: on tls_port (465) the client speaks TLS
// from its first byte: STARTTLS is not offered there (it is on the plain
// port), swaks --tlsc has its clean mail relayed and its EICAR refused,
// and a client that speaks SMTP in the clear is never greeted.
func TestImplicitTLSFromClients(t *testing.T) {
	e := implicitEnv(t, "header_timeout = 1")
	e.start()
	tlsAddr := proxytest.ServeTLS(t, e.p)

	c, err := gosmtp.DialTLS(tlsAddr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered on the implicit-TLS port")
	}
	if err := c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader(cleanMail)); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	plain, err := gosmtp.Dial(e.addr)
	if err != nil {
		t.Fatal(err)
	}
	plain.Hello("client.test")
	if ok, _ := plain.Extension("STARTTLS"); !ok {
		t.Error("STARTTLS not offered on the plain port")
	}
	plain.Close()

	swaks := testenv.Need(t, "swaks", "swaks")
	host, port, _ := net.SplitHostPort(tlsAddr)
	att := filepath.Join(t.TempDir(), "eicar.com")
	os.WriteFile(att, []byte(eicar.String), 0o644)
	out, _ := exec.Command(swaks, "--tlsc", "--server", host, "--port", port, "--from", "a@example.com", "--to", "b@example.com", "--attach", "@"+att).CombinedOutput()
	if !strings.Contains(string(out), "554 5.7.1 Infected by Eicar-Test-Signature") || !strings.Contains(string(out), "TLS started") {
		t.Errorf("swaks --tlsc, EICAR:\n%s", out)
	}
	out, err = exec.Command(swaks, "--tlsc", "--server", host, "--port", port, "--from", "a@example.com", "--to", "b@example.com", "--body", "clean").CombinedOutput()
	if err != nil || len(e.sink.Mails()) != 2 {
		t.Errorf("swaks --tlsc, clean: %v, %d mails\n%s", err, len(e.sink.Mails()), out)
	}

	raw, err := net.Dial("tcp", tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	raw.Write([]byte("EHLO client.test\r\n"))
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(raw)
	raw.Close()
	if strings.Contains(string(b), "220") || strings.Contains(string(b), "250") {
		t.Errorf("a client in the clear on the TLS port read %q", b)
	}
}

// TestImplicitTLSTransparent: a client diverted from port 465 reaches
// its original destination over TLS too (a hop that speaks TLS at once),
// its certificate checked per parent_tls: verify refuses the self-signed
// hop (4.7.5), may delivers over TLS.
func TestImplicitTLSTransparent(t *testing.T) {
	for _, mode := range []string{"may", "verify"} {
		hopCert := servertest.SelfSigned(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hop := servertest.NewMailSink(t, tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{hopCert}}), nil)
		e := implicitEnv(t, "transparent = yes\nparent_tls = "+mode)
		hopAddr := ln.Addr()
		e.p.OriginalDst = func(net.Conn) (net.Addr, error) { return hopAddr, nil }
		e.start()
		tlsAddr := proxytest.ServeTLS(t, e.p)
		c, err := gosmtp.DialTLS(tlsAddr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		err = c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader(cleanMail))
		c.Close()
		switch mode {
		case "may":
			if m := hop.Mails(); err != nil || len(m) != 1 || !m[0].TLS {
				t.Errorf("may: %v, delivered %d", err, len(m))
			}
		case "verify":
			if err == nil || !enhanced(err, 4, 7, 5) || len(hop.Mails()) != 0 {
				t.Errorf("verify: %v, delivered %d", err, len(hop.Mails()))
			}
		}
	}
}
