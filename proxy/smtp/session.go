package smtp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/notify"
	"github.com/fsigkd/fsigkd/outcome"
	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/slots"
	"github.com/fsigkd/fsigkd/spool"
)

// session is one client session and its session to the next hop.
type session struct {
	p       *Proxy
	conn    *gosmtp.Conn
	up      *upstream
	upAddr  string
	peer    string // the connection's peer
	client  string // the mail's client: the peer, or what its XFORWARD said
	helo    string // the mail's client's HELO ("": the peer's)
	server  string
	log     *zap.Logger
	greeted bool
	reused  bool        // the next hop's session was another client's, and has not answered this one yet
	hopKey  string      // the next hop in the proxy's cache of its sessions
	inMail  bool        // MAIL sent upstream, no DATA end or RSET yet
	key     sessionConn // the session in the proxy's set: busy while a mail is received, scanned or delivered
	from    string
	rcpts   []string
}

// upErr turns a failure of the next hop's session into the reply for the
// client: the next hop's own reply when it sent one, a temporary failure
// when the connection broke.
func upErr(err error) error {
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 4, 2}, Message: "Connection to the next mail server lost; try again later"}
}

func (s *session) hello() error {
	if s.greeted {
		return nil
	}
	host, _, _ := net.SplitHostPort(s.upAddr)
	if err := s.up.hello(s.p.hostname, s.p.ParentTLSMode(), s.p.ParentTLS(s.upAddr, host)); err != nil {
		return err
	}
	s.greeted = true
	return nil
}

// whoFor sets the mail's client and HELO: what a trusted MTA's XFORWARD
// said for it, else the peer's own.
func (s *session) whoFor() {
	s.client, s.helo = s.peer, ""
	xf, ok := s.conn.Conn().(*xforwardConn)
	if !ok {
		return
	}
	if a, said := xf.take(); said {
		if a.Addr != "" {
			s.client = a.Addr
		}
		s.helo = a.Helo
	}
}

// heloName is the mail's client's HELO.
func (s *session) heloName() string {
	if s.helo != "" {
		return s.helo
	}
	return s.conn.Hostname()
}

// tell tells the next hop who the mail's client is, when it was not told
// of this one (a trusted MTA's clients change from mail to mail).
// XFORWARD holds for one mail transaction (Postfix's smtpd forgets it
// with the transaction): it is said again before each mail. XCLIENT, or
// a next hop that takes neither, holds for the next hop's session, kept
// for another client too: a client the session was last told of (an MTA
// sending mail after mail) is not told again.
func (s *session) tell() error {
	who := s.client + " " + s.heloName()
	if who == s.up.told {
		return nil
	}
	verb, err := s.up.forward(s.p.Svc.ForwardClient, net.ParseIP(s.client), s.heloName(), s.p.hostname)
	if err != nil {
		return err
	}
	if verb != "XFORWARD" {
		s.up.told = who
	}
	if verb == "" && s.p.Svc.ForwardClient != "none" {
		s.p.warnUntold(s.upAddr)
	}
	return nil
}

// Mail relays MAIL FROM with the next hop's reply. On a kept session of
// the next hop's that fails before it answers (closed meanwhile), the
// mail is tried once more on a new one.
func (s *session) Mail(from string, opts *gosmtp.MailOptions) error {
	if !s.waiting() {
		return errShuttingDown
	}
	s.whoFor()
	err := s.mail(from, opts)
	if s.reused && s.up.broken {
		s.reused = false
		s.up.c.Close()
		var up *upstream
		if up, err = s.p.dialHop(s.conn, s.upAddr); err != nil {
			return err
		}
		s.up, s.greeted = up, false
		err = s.mail(from, opts)
	}
	s.reused = false
	return err
}

func (s *session) mail(from string, opts *gosmtp.MailOptions) error {
	err := s.hello()
	if err == nil {
		err = s.tell()
	}
	if err != nil {
		s.log.Info("next hop refused the session", zap.String("next_hop", s.upAddr), zap.Error(err))
		return upErr(err)
	}
	path, err := formatPath(from)
	if err != nil {
		return err
	}
	// Only the parameters the relay understood go on, as it writes them.
	cmd := "MAIL FROM:" + path
	if opts != nil && opts.Size > 0 && s.up.has("SIZE") {
		cmd += " SIZE=" + strconv.FormatInt(opts.Size, 10)
	}
	if opts != nil && opts.Body == gosmtp.Body8BitMIME && s.up.has("8BITMIME") {
		cmd += " BODY=8BITMIME"
	}
	if opts != nil && opts.UTF8 {
		if !s.up.has("SMTPUTF8") {
			// The sender's MTA keeps the mail and says why (RFC 6531
			// 3.2): passed on, its addresses or header would be garbled.
			return errNoUTF8
		}
		cmd += " SMTPUTF8"
	}
	if opts != nil && s.up.has("DSN") {
		if opts.Return != "" {
			cmd += " RET=" + string(opts.Return)
		}
		if opts.EnvelopeID != "" {
			cmd += " ENVID=" + encodeXtext(opts.EnvelopeID)
		}
	}
	if _, err := s.up.cmd(250, cmd); err != nil {
		s.log.Info("next hop: MAIL failed", zap.String("next_hop", s.upAddr), zap.Error(err))
		return upErr(err)
	}
	s.inMail, s.from, s.rcpts = true, from, nil
	return nil
}

// Rcpt relays RCPT TO with the next hop's reply.
func (s *session) Rcpt(to string, opts *gosmtp.RcptOptions) error {
	if !s.waiting() {
		return errShuttingDown
	}
	path, err := formatPath(to)
	if err != nil {
		return err
	}
	if s.p.relay.Denied(net.ParseIP(s.client), to) {
		s.log.Info("relay refused", zap.String("client", s.client), zap.String("rcpt", to))
		return &gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1}, Message: "Relay access denied"}
	}
	cmd := "RCPT TO:" + path
	if opts != nil && s.up.has("DSN") {
		if len(opts.Notify) > 0 {
			n := make([]string, len(opts.Notify))
			for i, v := range opts.Notify {
				n[i] = string(v)
			}
			cmd += " NOTIFY=" + strings.Join(n, ",")
		}
		if opts.OriginalRecipient != "" && opts.OriginalRecipientType == gosmtp.DSNAddressTypeRFC822 {
			cmd += " ORCPT=rfc822;" + encodeXtext(opts.OriginalRecipient)
		}
	}
	if _, err := s.up.cmd(250, cmd); err != nil {
		return upErr(err)
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

// Reset relays RSET. The library calls it for RSET, for EHLO, and after
// a DATA's reply: the session then waits for a command.
func (s *session) Reset() {
	s.waiting()
	s.resetUp()
	s.from, s.rcpts = "", nil
}

func (s *session) resetUp() {
	if s.inMail {
		s.up.cmd(250, "RSET")
		s.inMail = false
	}
}

// sessionConn is a session as the proxy's set keeps it: it speaks
// through the client's connection as it now is (in TLS after STARTTLS),
// which is the library's to change.
type sessionConn struct{ c *gosmtp.Conn }

func (k sessionConn) Write(b []byte) (int, error)        { return k.c.Conn().Write(b) }
func (k sessionConn) Close() error                       { return k.c.Conn().Close() }
func (k sessionConn) SetReadDeadline(t time.Time) error  { return k.c.Conn().SetReadDeadline(t) }
func (k sessionConn) SetWriteDeadline(t time.Time) error { return k.c.Conn().SetWriteDeadline(t) }

// waiting marks the session as waiting for a command since now (a stop
// or an eviction may then end it); false when the gateway is stopping:
// the client was told 421 and the session is closed.
func (s *session) waiting() bool {
	if s.p.sessions.SetIdle(s.key, true) {
		return true
	}
	s.key.Close()
	return false
}

// Logout ends the next hop's session, or keeps it for another client
// when it is between mails and sound (see hopcache.go).
func (s *session) Logout() error {
	s.p.sessions.Done(s.key)
	if s.greeted && !s.inMail && !s.up.broken && !s.p.Svc.TransparentTproxy {
		s.p.hops.put(s.hopKey, s.up)
		return nil
	}
	quit(s.up)
	return nil
}

// errNoStorage is the answer when the spool cannot take a mail (a full
// disk): try later, naming no path (RFC 3463 4.3.1).
var errNoStorage = &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 1}, Message: "Insufficient system storage; try again later"}

var errNoUTF8 = &gosmtp.SMTPError{Code: 553, EnhancedCode: gosmtp.EnhancedCode{5, 6, 7}, Message: "The next mail server does not take SMTPUTF8 mail"}

var errTooLong = &gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 3, 4}, Message: "Too long message"}

// Data spools the message, scans it, and acts.
func (s *session) Data(r io.Reader) error { return s.data(r, nil) }

// LMTPData is Data for an LMTP client (parent_protocol = lmtp): a mail
// the gateway refuses or drops is answered so for every recipient; one it
// delivers, with the next hop's own reply for each.
func (s *session) LMTPData(r io.Reader, each gosmtp.StatusCollector) error { return s.data(r, each) }

// data spools the message, scans it, and acts; each, when set, takes the
// next hop's reply for each recipient.
func (s *session) data(r io.Reader, each gosmtp.StatusCollector) error {
	// Busy until Reset, which the library calls once the reply is sent.
	s.p.sessions.SetIdle(s.key, false)
	t := s.begin()
	defer t.End()
	o := t.Object()
	if err := s.receive(r, o, t); err != nil {
		s.resetUp()
		return err
	}
	f := o.File()
	t.Rec.Bytes = f.Size()
	head := proxy.ReadHead(f)
	if mark := proxy.HeaderValue(head, notify.IDHeader); mark != "" {
		if notify.Verify(s.p.NoticeKey, s.p.id, f, f.Size()) {
			t.Rec.Detail = "own notice, not scanned"
			return s.deliver(f, nil, proxy.HeadChange{}, t, each)
		}
		// Someone else's mark, or ours taken from another mail: the
		// mail is scanned like any other.
		s.log.Warn("a mail carries a notice mark that does not verify; scanned like any other",
			zap.String("client", s.client), zap.String("from", s.from), zap.String("mark", truncate(mark)))
	}

	meta := scanner.Meta{Service: "smtp", Client: s.client, Sender: s.from, Recipients: s.rcpts, Helo: s.heloName()}
	m := o.JudgeMail(proxy.Subject{Meta: meta}, head, f.Size() > s.p.Svc.MaxScanSize, true)
	if m.Delivery != outcome.Deliver {
		s.resetUp()
		return s.notTaken(m, head, t)
	}
	if r, refused := m.SpamRefusal(t.Rec); refused {
		s.resetUp()
		return smtpError(r)
	}
	return s.deliver(f, m.Fields(true), m.Spam.Head, t, each)
}

// receive spools the DATA from r into o, a client sending it too slowly
// cut off; an error is the reply (its record said).
func (s *session) receive(r io.Reader, o *proxy.Object, t *proxy.Transfer) error {
	f, err := o.Spool()
	if err != nil {
		t.Rec.Status = errNoStorage.Code
		return errNoStorage
	}
	// A client trickling its DATA does not hold its slot for long.
	if err := copyCRLF(f, proxy.Paced(r, nil, 0, proxy.MinRate)); err != nil {
		switch {
		case errors.Is(err, proxy.ErrTooSlow):
			s.log.Info("mail refused: sent too slowly; the connection is closed", zap.String("client", s.client))
			// Reading the rest would keep the slot as long as the
			// client likes: the connection ends here.
			s.conn.Conn().Close()
			t.Rec.Status, t.Rec.Detail = 451, "sent too slowly"
			return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 4, 2}, Message: "Sent too slowly; try again later"}
		case errors.Is(err, gosmtp.ErrDataTooLarge):
			t.Rec.Status, t.Rec.Detail = errTooLong.Code, "over max_message_size"
			return errTooLong
		case o.Failed(err):
			// A temporary failure: the sender keeps the mail.
			t.Rec.Status = errNoStorage.Code
			return errNoStorage
		}
		t.Rec.Detail = "DATA broken off"
		return err
	}
	return nil
}

// notTaken says what becomes of a mail the decision m does not deliver:
// refused (554, or 451 to try later), or dropped with the client told it
// was taken, its recipients or sender told per the action.
func (s *session) notTaken(m proxy.Mail, head []byte, t *proxy.Transfer) error {
	switch m.Delivery {
	case outcome.Deliver:
		panic("smtp: a delivered mail is not refused")
	case outcome.Refuse, outcome.TryLater, outcome.Replace, outcome.Hold:
		// (No SMTP action replaces or holds a mail: were one to, it is
		// refused.)
		e := refusal(m.Outcome)
		t.Rec.Status = e.Code
		return e
	case outcome.Drop:
		// blackhole, delete, sendback: the mail is dropped and the
		// client told it was taken.
		t.Rec.Status = 250
		fields := notify.Fields{Service: "smtp", Name: m.Name, Object: proxy.HeaderValue(head, "Subject"), Client: s.client,
			Action: m.Applied, Sender: s.from, Recipients: s.rcpts}
		switch m.Notice {
		case outcome.ToRecipients:
			s.notice(m.Applied, "recipient", s.rcpts, fields)
		case outcome.ToSender:
			if s.from != "" {
				s.notice(m.Applied, "sender", []string{s.from}, fields)
			}
		case outcome.NoNotice:
		}
		return nil
	}
	return nil
}

// refusal is the reply to a mail that is not taken.
func refusal(out proxy.Outcome) *gosmtp.SMTPError { return smtpError(proxy.MailRefusal(out)) }

func smtpError(r proxy.Reply) *gosmtp.SMTPError {
	return &gosmtp.SMTPError{Code: r.Code, EnhancedCode: gosmtp.EnhancedCode(r.Enhanced), Message: r.Text}
}

// notice sends a notice (template kind) to a mail's sender or recipients
// through the next hop, in the background; a failure is M11.
func (s *session) notice(action, kind string, to []string, fields notify.Fields) {
	n, err := s.p.Notices.Render(kind, fields)
	if err != nil {
		s.log.Warn("notice template", zap.Error(err))
		return
	}
	host, port, _ := net.SplitHostPort(s.upAddr)
	portN, _ := strconv.Atoi(port)
	sender := &notify.Sender{Host: host, Port: portN, Helo: s.p.hostname, LMTP: s.up.lmtp}
	from := "postmaster@" + s.p.hostname
	// Unmarked: a notice that leaves the gateway carries nothing an
	// outsider could reuse (see notify.Mark).
	msg := n.Compose(from, to, s.p.hostname)
	log := s.log.Named("notify")
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := sender.Send(ctx, notify.Mail{From: "", To: to, Data: msg}); err != nil {
			logs.Emit(log, notify.NoticeFailure(action, err).Msg)
		}
	}()
}

// deliver sends the spooled mail to the next hop with extra header lines
// (and its header changed), and answers with the next hop's reply (each
// recipient's, to each, when each is set).
func (s *session) deliver(f *spool.File, extra []string, head proxy.HeadChange, t *proxy.Transfer, each gosmtp.StatusCollector) error {
	w, err := s.up.data()
	if err != nil {
		s.log.Info("next hop: DATA refused", zap.String("next_hop", s.upAddr), zap.Error(err))
		s.resetUp()
		return upErr(err)
	}
	cb := copyBufs.Get().(*copyBuf)
	defer copyBufs.Put(cb)
	bw, src := cb.w, cb.r
	bw.Reset(w)
	src.Reset(io.NewSectionReader(f, 0, f.Size()))
	defer bw.Reset(nil) // the pool keeps no connection or file
	defer src.Reset(nil)
	fmt.Fprintf(bw, "Received: from %s ([%s])\r\n\tby %s (fsigkd) with %s;\r\n\t%s\r\n", proxy.Sanitize(s.heloName()), s.client, s.p.hostname, s.protocol(), time.Now().Format(time.RFC1123Z))
	for _, h := range extra {
		bw.WriteString(proxy.Sanitize(h) + "\r\n")
	}
	var copyErr error
	if !head.Empty() {
		copyErr = head.Apply(bw, src)
	}
	if copyErr == nil {
		_, copyErr = io.Copy(bw, src)
	}
	if copyErr == nil {
		copyErr = bw.Flush()
	}
	s.inMail = false
	if copyErr != nil {
		// The next hop never saw our terminator: it holds no mail, and
		// its session, still in DATA, is kept for no one.
		s.up.broken = true
		s.log.Info("next hop: DATA broke off", zap.String("next_hop", s.upAddr), zap.Error(copyErr))
		return upErr(copyErr)
	}
	if each != nil {
		return s.answerEach(w, each, t, f.Size())
	}
	r, err := w.close()
	if err != nil {
		s.log.Info("next hop: DATA failed", zap.String("next_hop", s.upAddr), zap.Error(err))
		t.Rec.Status = 451
		var se *gosmtp.SMTPError
		if errors.As(err, &se) {
			t.Rec.Status = se.Code
		}
		return upErr(err)
	}
	t.Rec.Status, t.Rec.Bytes = 250, f.Size()
	// The next hop's own words ("2.0.0 Ok: queued as ...").
	return r.err()
}

// answerEach ends a message to an LMTP next hop and gives each recipient
// the next hop's reply for it, in the order they were accepted (RFC 2033
// 4.2), and the access log a line with each one's status. Should the
// connection break, the recipients not yet answered are told to try
// later: the next hop holds the mail only for those it answered.
func (s *session) answerEach(w *dataWriter, each gosmtp.StatusCollector, t *proxy.Transfer, size int64) error {
	codes := make([]int, len(s.rcpts))
	t.EachStatus(codes)
	t.Rec.Bytes = size
	if err := w.end(); err != nil {
		s.log.Info("next hop: DATA broke off", zap.String("next_hop", s.upAddr), zap.Error(err))
		t.Rec.Status = 451
		return upErr(err)
	}
	for i, rc := range s.rcpts {
		r, err := w.verdict()
		var refused *gosmtp.SMTPError
		if err != nil && !errors.As(err, &refused) {
			s.log.Info("next hop: LMTP replies broke off", zap.String("next_hop", s.upAddr), zap.Int("answered", i), zap.Error(err))
			t.Rec.Status = 451
			return upErr(err) // for the rest
		}
		codes[i] = r.Code
		e := r.err()
		// The library names the recipient before the text: the next
		// hop's own naming of it is not said twice.
		e.Message = strings.TrimPrefix(e.Message, "<"+rc+"> ")
		each.SetStatus(rc, e)
	}
	t.Rec.Status = 250
	return nil
}

// protocol names what the mail came by, for its Received line.
func (s *session) protocol() string {
	if s.up.lmtp {
		return "LMTP"
	}
	return "ESMTP"
}

// begin starts the transfer of a mail: its access record, written a line
// per recipient (the record's own URL names the mail in the error log).
func (s *session) begin() *proxy.Transfer {
	t := s.p.Begin(&logs.Access{Client: s.client, Result: "SMTP", Method: "DATA", URL: "mail from <" + s.from + ">",
		User: s.from, Server: s.server, Service: "smtp", Slot: slots.SlotOf(s.conn.Conn())})
	urls := make([]string, len(s.rcpts))
	for i, rc := range s.rcpts {
		urls[i] = "mail:<" + rc + ">"
	}
	t.EachURL(urls)
	return t
}

// copyBuf is copyCRLF's reading buffer and writer, pooled: two 64 KiB
// allocations a mail were garbage for every mail relayed.
// copyBuf is what receiving or delivering a mail buffers through (64 KiB
// each way, three times a mail: a sixth of the relay's allocation, by the
// profile of 10 KiB mails), kept between mails.
type copyBuf struct {
	buf []byte
	w   *bufio.Writer
	r   *bufio.Reader
}

var copyBufs = sync.Pool{New: func() any {
	return &copyBuf{buf: make([]byte, 64<<10), w: bufio.NewWriterSize(nil, 64<<10), r: bufio.NewReaderSize(nil, 64<<10)}
}}

// copyCRLF spools r with every line ending made CRLF (a bare LF or CR
// becomes CRLF). It copies runs between line ends, not bytes: the
// byte-at-a-time form was a fifth of the relay's CPU.
func copyCRLF(f *spool.File, r io.Reader) error {
	cb := copyBufs.Get().(*copyBuf)
	defer copyBufs.Put(cb)
	bw, buf := cb.w, cb.buf
	bw.Reset(f)
	defer bw.Reset(nil) // the pool keeps no spool file
	prevCR := false     // the last chunk ended with a CR, not yet written
	for {
		n, err := r.Read(buf)
		p := buf[:n]
		if prevCR && len(p) > 0 {
			bw.WriteString("\r\n")
			if p[0] == '\n' {
				p = p[1:]
			}
			prevCR = false
		}
		for len(p) > 0 {
			i := bytes.IndexAny(p, "\r\n")
			if i < 0 {
				bw.Write(p)
				break
			}
			bw.Write(p[:i])
			switch {
			case p[i] == '\n':
				bw.WriteString("\r\n")
				p = p[i+1:]
			case i+1 == len(p):
				prevCR, p = true, nil // a CR at the end: what follows decides
			default:
				bw.WriteString("\r\n")
				if p[i+1] == '\n' {
					i++
				}
				p = p[i+1:]
			}
		}
		if err != nil {
			if prevCR {
				bw.WriteString("\r\n")
			}
			if errors.Is(err, io.EOF) {
				return bw.Flush()
			}
			return err
		}
	}
}

// truncate shortens a client's text for the log.
func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
