package milter

import (
	"bytes"
	"strconv"
	"strings"

	gomilter "github.com/d--j/go-milter"
	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/outcome"
	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/scanner"
)

// session is one MTA connection: the SMTP session it stands for, and the
// mail under way. The library calls its methods one at a time.
type session struct {
	gomilter.NoOpMilter
	p *Proxy

	client, helo string
	from         string
	rcpts        []string

	// The mail under way (t nil: none).
	t       *proxy.Transfer
	o       *proxy.Object
	head    bytes.Buffer // header fields, until the end of the header
	inBody  bool
	fields  map[string]int // how many fields of each name (lower case)
	authres []string       // the Authentication-Results values, in order
	over    bool           // past max_scan_size: the rest is not spooled
	failed  error          // the spool failed
	subject *string
}

func (s *session) Connect(host, family string, port uint16, addr string, m gomilter.Modifier) (*gomilter.Response, error) {
	// The SMTP client's address (tcp4, tcp6); a local submission
	// (unix, unknown) has none.
	s.client = ""
	if family == "tcp4" || family == "tcp6" {
		s.client = addr
	}
	return gomilter.RespContinue, nil
}

func (s *session) Helo(name string, m gomilter.Modifier) (*gomilter.Response, error) {
	s.helo = name
	return gomilter.RespContinue, nil
}

func (s *session) MailFrom(from, esmtpArgs string, m gomilter.Modifier) (*gomilter.Response, error) {
	s.reset()
	s.from = from
	return gomilter.RespContinue, nil
}

func (s *session) RcptTo(rcpt, esmtpArgs string, m gomilter.Modifier) (*gomilter.Response, error) {
	s.rcpts = append(s.rcpts, rcpt)
	return gomilter.RespContinue, nil
}

// Header keeps a field as the mail carries it: with its leading space
// when the MTA gives it (negotiated), its folded lines ending CRLF.
func (s *session) Header(name, value string, m gomilter.Modifier) (*gomilter.Response, error) {
	s.begin()
	if m.Protocol()&gomilter.OptHeaderLeadingSpace == 0 {
		value = " " + value
	}
	value = crlf(value)
	if s.fields == nil {
		s.fields = map[string]int{}
	}
	s.fields[strings.ToLower(name)]++
	if strings.EqualFold(name, "Authentication-Results") {
		s.authres = append(s.authres, value)
	}
	if s.subject == nil && strings.EqualFold(name, "Subject") {
		v := value
		s.subject = &v
	}
	s.head.WriteString(name)
	s.head.WriteByte(':')
	s.head.WriteString(value)
	s.head.WriteString("\r\n")
	if s.head.Len() >= 64<<10 {
		// A header this long goes to the spool as it comes, held to
		// max_scan_size as the body is.
		s.spool(s.head.Bytes())
		s.head.Reset()
	}
	return gomilter.RespContinue, nil
}

func (s *session) Headers(m gomilter.Modifier) (*gomilter.Response, error) {
	s.begin()
	s.head.WriteString("\r\n")
	s.spool(s.head.Bytes())
	s.head.Reset()
	s.inBody = true
	return gomilter.RespContinue, nil
}

func (s *session) BodyChunk(chunk []byte, m gomilter.Modifier) (*gomilter.Response, error) {
	s.begin()
	if !s.inBody {
		// An MTA that sends no end-of-header event: the header ends here.
		s.Headers(m)
	}
	s.spool(chunk)
	return gomilter.RespContinue, nil
}

// spool adds b to the mail's spool file, up to max_scan_size.
func (s *session) spool(b []byte) {
	if s.over || s.failed != nil {
		return
	}
	over, err := s.o.Fill(bytes.NewReader(b), nil)
	s.over = over
	if err != nil {
		s.failed = err
	}
}

// EndOfMessage judges the mail and answers the MTA.
func (s *session) EndOfMessage(m gomilter.Modifier) (*gomilter.Response, error) {
	s.begin()
	if !s.inBody {
		s.Headers(m)
	}
	t, o := s.t, s.o
	defer s.reset()
	if id := m.Get(gomilter.MacroQueueId); id != "" {
		t.Rec.AddDetail("queue id " + id)
	}
	if s.failed != nil {
		// Said in the record by Fill; the sender keeps the mail.
		t.Rec.Status = 451
		return reject(proxy.Reply{Code: 451, Enhanced: [3]int{4, 3, 1}, Text: "Insufficient system storage; try again later"})
	}
	f := o.File()
	t.Rec.Bytes = f.Size()
	head := proxy.ReadHead(f)
	meta := scanner.Meta{Service: "milter", Client: s.client, Sender: s.from, Recipients: s.rcpts, Helo: s.helo}
	mail := o.JudgeMail(proxy.Subject{Meta: meta}, head, s.over, true)
	switch mail.Delivery {
	case outcome.Deliver:
	case outcome.Refuse, outcome.TryLater, outcome.Replace:
		// (No action of the milter replaces a mail: were one to, it is
		// refused.)
		r := proxy.MailRefusal(mail.Outcome)
		t.Rec.Status = r.Code
		return reject(r)
	case outcome.Drop:
		t.Rec.Status = 250
		return gomilter.RespDiscard, nil
	case outcome.Hold:
		// Held by the MTA, marked with what was found.
		if err := m.Quarantine("fsigkd: " + proxy.MailRefusal(mail.Outcome).Text); err != nil {
			return s.changeFailed(err)
		}
	}
	if r, refused := mail.SpamRefusal(t.Rec); refused {
		return reject(r)
	}
	return s.accept(m, mail.Fields(true), mail.Spam.Head)
}

// accept has the MTA make the header change and put fields (in order)
// first in the header, and take the mail. An MTA that refuses a change gets
// the mail refused for now: a mail is never taken unmarked by mistake.
func (s *session) accept(m gomilter.Modifier, fields []string, head proxy.HeadChange) (*gomilter.Response, error) {
	lead := ""
	if m.Protocol()&gomilter.OptHeaderLeadingSpace != 0 {
		lead = " " // the MTA writes the value as given
	}
	for _, name := range head.Remove {
		// From the last, so that the indexes before stay as counted.
		for i := s.fields[strings.ToLower(name)]; i >= 1; i-- {
			if err := m.ChangeHeader(i, name, ""); err != nil {
				return s.changeFailed(err)
			}
		}
	}
	// A field claiming this gateway's name came with the mail: a
	// forgery, taken out (from the last, as above).
	for i := len(s.authres) - 1; i >= 0 && head.Forged != ""; i-- {
		if proxy.ClaimedBy(s.authres[i], head.Forged) {
			if err := m.ChangeHeader(i+1, "Authentication-Results", ""); err != nil {
				return s.changeFailed(err)
			}
		}
	}
	// The fields put first go in after the removals, so that an index
	// above counts the mail's own fields alone.
	for i := len(fields) - 1; i >= 0; i-- {
		name, value, _ := strings.Cut(proxy.Sanitize(fields[i]), ":")
		if err := m.InsertHeader(0, name, lead+strings.TrimSpace(value)); err != nil {
			return s.changeFailed(err)
		}
	}
	if head.Tag != "" || head.Subject != "" {
		var err error
		switch {
		case s.subject == nil || head.Removes("Subject"):
			err = m.AddHeader("Subject", lead+head.NewSubject(""))
		default:
			err = m.ChangeHeader(1, "Subject", lead+strings.TrimRight(head.NewSubject(*s.subject), "\r\n"))
		}
		if err != nil {
			return s.changeFailed(err)
		}
	}
	s.t.Rec.Status = 250
	return gomilter.RespAccept, nil
}

func (s *session) changeFailed(err error) (*gomilter.Response, error) {
	s.p.Log.Warn("the MTA took no header change; the mail is refused for now", zap.Error(err))
	s.t.Rec.Status = 451
	return reject(proxy.Reply{Code: 451, Enhanced: [3]int{4, 3, 0}, Text: "The mail could not be handled now; try again later"})
}

func (s *session) Abort(m gomilter.Modifier) error {
	if s.t != nil {
		s.t.Rec.Detail = "aborted by the MTA"
	}
	s.reset()
	return nil
}

func (s *session) Cleanup(m gomilter.Modifier) { s.reset() }

// begin starts the mail's transfer at its first content: its access
// record, written a line per recipient.
func (s *session) begin() {
	if s.t != nil {
		return
	}
	s.t = s.p.Begin(&logs.Access{Client: s.client, Result: "MILTER", Method: "DATA", URL: "mail from <" + s.from + ">",
		// The library does not say which connection a session is on.
		User: s.from, Service: "milter", Slot: -1})
	urls := make([]string, len(s.rcpts))
	for i, rc := range s.rcpts {
		urls[i] = "mail:<" + rc + ">"
	}
	s.t.EachURL(urls)
	s.o = s.t.Object()
}

// reset ends the mail under way (its record written), keeping the
// connection's facts.
func (s *session) reset() {
	if s.t != nil {
		s.t.End()
	}
	s.t, s.o, s.over, s.failed, s.subject, s.inBody, s.fields, s.authres = nil, nil, false, nil, nil, false, nil, nil
	s.head.Reset()
	s.from, s.rcpts = "", nil
}

// reject is the response refusing a mail with r.
func reject(r proxy.Reply) (*gomilter.Response, error) {
	return gomilter.RejectWithCodeAndReason(uint16(r.Code),
		strconv.Itoa(r.Enhanced[0])+"."+strconv.Itoa(r.Enhanced[1])+"."+strconv.Itoa(r.Enhanced[2])+" "+r.Text)
}

// crlf makes every line end of a folded field CRLF.
func crlf(v string) string {
	if !strings.ContainsAny(v, "\r\n") {
		return v
	}
	return strings.ReplaceAll(strings.ReplaceAll(v, "\r\n", "\n"), "\n", "\r\n")
}
