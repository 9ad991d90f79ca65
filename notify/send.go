// Package notify sends the gateway's own mails: the administrator's
// detection notices (to admin_mx_host:admin_mx_port, marked with
// X-Admin-Notification-Id so that the gateway never scans or notifies
// about its own notices), and the notices to a mail's sender or
// recipients. Admin notices go through a queue, never in the path of the
// session that caused them, and a storm of them becomes one digest.
// Failures are logged as documented: M03 (name not resolved), M04
// (connect failed), M05 (unexpected reply), M11 (sender and recipient
// notices).
package notify

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/fsigkd/fsigkd/catalog"
	"github.com/fsigkd/fsigkd/internal/mailpath"
	"github.com/fsigkd/fsigkd/internal/smtpreply"
)

// Mail is one notice.
type Mail struct {
	From string
	To   []string
	Data []byte // the whole message, header and body, CRLF lines
}

// Failure is a notice that could not be sent, with its documented message.
type Failure struct {
	Msg catalog.Message
	Err error
}

func (f *Failure) Error() string                   { return f.Msg.Text }
func (f *Failure) Unwrap() error                   { return f.Err }
func (f *Failure) CatalogMessage() catalog.Message { return f.Msg }

// Stage names the step of an SMTP dialogue, as the documented messages do.
type Stage string

// The stages.
const (
	Greeting Stage = "GREETING"
	Helo     Stage = "HELO"
	MailFrom Stage = "MAIL FROM"
	RcptTo   Stage = "RCPT TO"
	Data     Stage = "DATA"
	DataEnd  Stage = "DATA END"
	Quit     Stage = "QUIT"
	Rset     Stage = "RSET"
)

// ReplyError is an unexpected reply at a stage.
type ReplyError struct {
	Stage    Stage
	Reply    string
	Expected int
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("%s: %s (expected %d)", e.Stage, e.Reply, e.Expected)
}

// Sender speaks just enough SMTP to hand a notice to a mail server.
type Sender struct {
	Host string
	Port int
	Helo string
	// LMTP: the host speaks LMTP (RFC 2033; the relay's parent_protocol):
	// LHLO, and after the message a reply for each recipient, each of
	// which must take it.
	LMTP    bool
	Timeout time.Duration // each step (zero: 60 s)
	// Resolver looks names up (nil: net.DefaultResolver).
	Resolver *net.Resolver
}

// Send delivers m. Errors: mailpath.ErrBadAddress for an address no
// path can carry (nothing is sent then), a *net.DNSError when the host
// does not resolve, a connect error, or a *ReplyError.
//
// The addresses are written as the relay writes them (package mailpath):
// a quoted local part stays one address, never a second one or
// parameters, however it was stored.
func (s *Sender) Send(ctx context.Context, m Mail) error {
	from, err := mailpath.Format(m.From)
	if err != nil {
		return fmt.Errorf("sender %q: %w", m.From, err)
	}
	to := make([]string, len(m.To))
	for i, a := range m.To {
		if to[i], err = mailpath.Format(a); err != nil || a == "" {
			return fmt.Errorf("recipient %q: %w", a, mailpath.ErrBadAddress)
		}
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	r := s.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupHost(ctx, s.Host)
	if err != nil {
		return err
	}
	var c net.Conn
	d := net.Dialer{Timeout: timeout}
	for _, a := range addrs {
		if c, err = d.DialContext(ctx, "tcp", net.JoinHostPort(a, strconv.Itoa(s.Port))); err == nil {
			break
		}
	}
	if err != nil {
		return err
	}
	defer c.Close()
	br := bufio.NewReader(c)
	step := func(st Stage, cmd string, want int) error {
		c.SetDeadline(time.Now().Add(timeout))
		if cmd != "" {
			if _, err := io.WriteString(c, cmd+"\r\n"); err != nil {
				return err
			}
		}
		r, err := smtpreply.Read(br)
		if err != nil {
			return err
		}
		if r.Code != want {
			return &ReplyError{Stage: st, Reply: r.Text(), Expected: want}
		}
		return nil
	}
	helo := s.Helo
	if helo == "" {
		helo = "localhost"
	}
	if err := step(Greeting, "", 220); err != nil {
		return err
	}
	hello := "HELO "
	if s.LMTP {
		hello = "LHLO "
	}
	if err := step(Helo, hello+helo, 250); err != nil {
		return err
	}
	if err := step(MailFrom, "MAIL FROM:"+from, 250); err != nil {
		return err
	}
	for _, path := range to {
		if err := step(RcptTo, "RCPT TO:"+path, 250); err != nil {
			return err
		}
	}
	if err := step(Data, "DATA", 354); err != nil {
		return err
	}
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(dotStuff(m.Data)); err != nil {
		return err
	}
	if err := step(DataEnd, ".", 250); err != nil {
		return err
	}
	if s.LMTP {
		for range to[1:] {
			if err := step(DataEnd, "", 250); err != nil {
				return err
			}
		}
	}
	return step(Quit, "QUIT", 221)
}

// dotStuff makes data a DATA body: CRLF line ends, leading dots doubled.
// The terminating dot is the caller's.
func dotStuff(data []byte) []byte {
	var b strings.Builder
	for _, line := range strings.SplitAfter(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") {
		if line == "" {
			continue
		}
		line = strings.TrimSuffix(line, "\n")
		if strings.HasPrefix(line, ".") {
			b.WriteString(".")
		}
		b.WriteString(line + "\r\n")
	}
	return []byte(b.String())
}

// AdminFailure maps an error of Send to the admin notice's message: M03,
// M04 or M05.
func AdminFailure(host string, port int, err error) *Failure {
	var dns *net.DNSError
	var re *ReplyError
	switch {
	case errors.As(err, &dns):
		return &Failure{Msg: catalog.M03(host, port, gaiText(dns)), Err: err}
	case errors.As(err, &re):
		return &Failure{Msg: catalog.M05(string(re.Stage), re.Reply, re.Expected), Err: err}
	}
	return &Failure{Msg: catalog.M04(host, port, err), Err: err}
}

// gaiText is getaddrinfo's wording for a failed look-up.
func gaiText(e *net.DNSError) string {
	if e.IsNotFound {
		return "Name or service not known"
	}
	if e.IsTimeout {
		return "Temporary failure in name resolution"
	}
	return e.Err
}

// NoticeFailure maps an error of Send to M11, for a notice to a sender or
// recipients under action.
func NoticeFailure(action string, err error) *Failure {
	var re *ReplyError
	if errors.As(err, &re) {
		return &Failure{Msg: catalog.M11(action, string(re.Stage), re.Reply), Err: err}
	}
	return &Failure{Msg: catalog.M11(action, string(Greeting), err.Error()), Err: err}
}
