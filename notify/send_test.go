package notify

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/fsigkd/fsigkd/internal/mailpath"
	"github.com/fsigkd/fsigkd/internal/servertest"
)

// recorder is a mail server that takes anything and keeps the command
// lines it was sent.
func recorder(t *testing.T) (host string, port int, lines func() []string) {
	var mu sync.Mutex
	var got []string
	addr := servertest.ScriptedSMTP(t, func(stage, line string) string {
		if line != "" {
			mu.Lock()
			got = append(got, line)
			mu.Unlock()
		}
		return servertest.SMTPDefault(stage)
	})
	h, p, _ := net.SplitHostPort(addr)
	port, _ = strconv.Atoi(p)
	return h, port, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

// TestSenderQuotesAddresses: a mail the gateway sends itself (a notice, a
// release from the quarantine) writes each address as one path, so that
// a local part that held '>', ',' or a space (stored as the relay parsed
// it) cannot add a recipient or a parameter; an address no path can
// carry stops the mail before anything is sent.
func TestSenderQuotesAddresses(t *testing.T) {
	host, port, lines := recorder(t)
	s := &Sender{Host: host, Port: port, Helo: "gw.test"}
	err := s.Send(context.Background(), Mail{
		From: `x> SIZE=1@sender.example`,
		To:   []string{`evil>,<victim@outside.example> NOTIFY=SUCCESS@local.example`, `"b c"@local.example`},
		Data: []byte("Subject: t\r\n\r\nbody\r\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`MAIL FROM:<"x> SIZE=1"@sender.example>`,
		`RCPT TO:<"evil>,<victim@outside.example> NOTIFY=SUCCESS"@local.example>`,
		`RCPT TO:<"b c"@local.example>`,
	}
	got := strings.Join(lines(), "\n")
	for _, w := range want {
		if !strings.Contains(got, w+"\n") {
			t.Errorf("the server was not sent %q:\n%s", w, got)
		}
	}
	if n := strings.Count(got, "RCPT TO:"); n != 2 {
		t.Errorf("%d RCPT commands for two recipients:\n%s", n, got)
	}

	before := len(lines())
	err = s.Send(context.Background(), Mail{From: "a@b.example", To: []string{"a\r\nRCPT TO:<x@y>@c.example"}, Data: []byte("x\r\n")})
	if !errors.Is(err, mailpath.ErrBadAddress) {
		t.Errorf("a recipient with a line end: %v", err)
	}
	if len(lines()) != before {
		t.Errorf("something was sent for a bad address: %v", lines()[before:])
	}
}
