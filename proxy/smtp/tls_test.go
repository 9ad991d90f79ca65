package smtp

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/fsigkd/fsigkd/internal/proxytest"
	"github.com/fsigkd/fsigkd/internal/servertest"
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
