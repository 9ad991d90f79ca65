// Package release carries out what an administrator does with the
// quarantine's entries, each action recorded with who did it and the
// gateway that kept the entry: a mail the SMTP relay kept is released by
// sending it on to its recipients through [smtp]'s next hop, marked as
// released and unscanned (the release is the administrator's call);
// anything else is written out; an entry is deleted. The fsigkd
// quarantine command and the console both act through it.
package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/notify"
	smtpproxy "github.com/fsigkd/fsigkd/proxy/smtp"
	"github.com/fsigkd/fsigkd/quarantine"
)

// ErrNotAMail is Mail's refusal of an entry that is not a mail the SMTP
// relay kept: it can only be written out.
var ErrNotAMail = errors.New("not a mail the SMTP relay kept: it can only be written out")

// Mail sends the mail of entry m on to its recipients through [smtp]'s
// next hop as cfg says now, and records it for who; it says what was
// done.
func Mail(ctx context.Context, cfg *conf.Config, st *quarantine.Store, m quarantine.Meta, who string) (string, error) {
	if m.Service != "smtp" {
		return "", ErrNotAMail
	}
	smtp := cfg.Services["smtp"]
	if smtp.ParentServerHost == "" || len(m.Recipients) == 0 {
		return "", errors.New("no next hop ([smtp] parent_server_host) or no recipients")
	}
	// The relay's own rule, as the settings say now: a mail kept from a
	// client outside relay_clients goes only to local_domains, as the
	// relay would have sent it.
	rule := smtpproxy.RelayRuleOf(smtp)
	for _, rcpt := range m.Recipients {
		if rule.Denied(net.ParseIP(m.Client), rcpt) {
			return "", fmt.Errorf("the relay does not send to %s for client %s (local_domains, relay_clients)", rcpt, m.Client)
		}
	}
	src, err := st.Open(m.ID)
	if err != nil {
		return "", err
	}
	data, err := io.ReadAll(src)
	src.Close()
	if err != nil {
		return "", err
	}
	host := smtp.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	mark := fmt.Sprintf("X-Fsigkd-Released: %s (%s), by the administrator\r\n", m.ID, m.Verdict)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// The next hop as the relay speaks to it: LMTP when parent_protocol
	// says so (a mailbox server has no HELO).
	sender := &notify.Sender{Host: smtp.ParentServerHost, Port: smtp.ParentServerPort, Helo: host, LMTP: smtp.ParentProtocol == "lmtp"}
	if err := sender.Send(ctx, notify.Mail{From: m.Sender, To: m.Recipients, Data: append([]byte(mark), data...)}); err != nil {
		return "", fmt.Errorf("the next hop %s:%d: %w", smtp.ParentServerHost, smtp.ParentServerPort, err)
	}
	done := fmt.Sprintf("to %d recipient(s) through %s:%d", len(m.Recipients), smtp.ParentServerHost, smtp.ParentServerPort)
	return done, Record(st, "release", m, who, done)
}

// File writes the object of entry m to w (named out in the record), and
// records it for who.
func File(st *quarantine.Store, m quarantine.Meta, w io.Writer, out, who string) error {
	src, err := st.Open(m.ID)
	if err != nil {
		return err
	}
	defer src.Close()
	if _, err := io.Copy(w, src); err != nil {
		return err
	}
	return Record(st, "release", m, who, "to "+out)
}

// Delete deletes entry m, and records it for who.
func Delete(st *quarantine.Store, m quarantine.Meta, who string) error {
	if err := st.Delete(m.ID); err != nil {
		return err
	}
	return Record(st, "delete", m, who, "")
}

// NotRecorded is the error of an action that was done but could not be
// recorded.
type NotRecorded struct {
	Action string
	Err    error
}

func (e *NotRecorded) Error() string { return "recording the " + e.Action + ": " + e.Err.Error() }
func (e *NotRecorded) Unwrap() error { return e.Err }

// Record says an action on entry m in this gateway's log in the
// quarantine, with who did it and the gateway that kept the entry. The
// action is done when Record is called: its error (a *NotRecorded) says
// only that the record could not be written.
func Record(st *quarantine.Store, action string, m quarantine.Meta, who, detail string) error {
	if m.Gateway != "" {
		detail = strings.TrimSpace(detail + " kept-by=" + m.Gateway)
	}
	if err := st.Record(action, m.ID, who, detail); err != nil {
		return &NotRecorded{Action: action, Err: err}
	}
	return nil
}
