package pop3

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/catalog"
	"github.com/fsigkd/fsigkd/internal/dotstuff"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/notify"
	"github.com/fsigkd/fsigkd/outcome"
	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/slots"
	"github.com/fsigkd/fsigkd/spool"
)

// retrieval is one RETR or TOP: what the server sent, and the decision.
type retrieval struct {
	cmd    Command
	status Status          // the server's status line
	t      *proxy.Transfer // the access record
	o      *proxy.Object   // the mail
	f      *spool.File     // the mail spooled (o's)
	head   []byte          // the mail's header block, read once for the verdict

	// The decision, made off the session's goroutine.
	broken  error      // the server broke off: nothing can be sent
	rest    *Rest      // the mail goes on past max_scan_size: relayed unscanned, or the session ends
	gone    bool       // the client went away: the fetch was given up
	refuse  string     // an -ERR for the client (the mail stays on the server)
	replace string     // a detection to replace the mail for (action = delete)
	mail    proxy.Mail // the scan\'s outcome and the spam mark of a mail delivered
}

// retrieve fetches a mail, scans it, and sends the client what the
// settings say; false ends the session.
func (s *session) retrieve(cmd Command) bool {
	st, body, cont := s.ask(cmd.Line())
	if !body {
		return cont
	}
	r := &retrieval{cmd: cmd, status: st, t: s.begin(cmd)}
	defer r.t.End()
	r.o = r.t.Object()
	f, err := r.o.Spool()
	if err != nil {
		// The mail is read into nothing all the same (as far as
		// drainLimit), so that the server's session stays in step.
		_, rest, err := UnstuffUpTo(io.Discard, s.sr, s.drainLimit())
		switch {
		case err != nil:
			s.Reply(errServer)
			return false
		case rest != nil:
			s.Reply("-ERR [SYS/TEMP] Insufficient system storage; try again later.")
			return false // the server is mid-mail
		}
		return s.Reply("-ERR [SYS/TEMP] Insufficient system storage; try again later.") == nil
	}
	r.f = f

	early := s.keepAlive(r, func() { s.fetchAndJudge(r) })
	switch {
	case r.gone:
		s.log.Info("client gone during a retrieval; the fetch is given up", zap.String("server", s.server))
		r.t.Rec.Action, r.t.Rec.Detail = "NONE", "client gone"
		return false
	case r.broken != nil:
		s.log.Info("mail server broke off a mail", zap.String("server", s.server), zap.Error(r.broken))
		r.t.Rec.Action, r.t.Rec.Detail = "NONE", "server broke off the mail"
		if !early {
			s.Reply("-ERR [SYS/TEMP] The mail server broke off the mail; try again later.")
		}
		return false // the server's session is out of step, or gone
	case r.refuse != "" && early:
		// The status line went out: only a connection closed before the
		// terminating line tells the client the mail did not come.
		return false
	case r.refuse != "" && r.rest != nil:
		// The rest of the mail was not read: the server's session is out
		// of step, and it ends here.
		r.t.Rec.AddDetail("the rest of the mail not read; the session ends")
		s.Reply(r.refuse)
		return false
	case r.refuse != "":
		return s.Reply(r.refuse) == nil
	}
	return s.send(r, early)
}

// idleReader gives each read of a connection its own deadline.
type idleReader struct {
	c    net.Conn
	idle time.Duration
}

func (r idleReader) Read(p []byte) (int, error) {
	r.c.SetReadDeadline(time.Now().Add(r.idle))
	return r.c.Read(p)
}

// keepAlive runs work; while it runs past progress_interval the client
// gets the status line and then, each interval, a line of a folded
// X-Fsigkd-Progress field. It tells whether the status line went out. A
// client that goes away meanwhile is noticed within a second (r.gone),
// and the server's connection closed, so that the fetch ends with it.
func (s *session) keepAlive(r *retrieval, work func()) bool {
	done := make(chan struct{})
	go func() { defer close(done); work() }()
	tick := time.NewTicker(s.p.Svc.ProgressInterval)
	defer tick.Stop()
	look := time.NewTicker(proxy.GoneCheck)
	defer look.Stop()
	early, started := false, time.Now()
	for {
		select {
		case <-done:
			return early
		case <-look.C:
			if proxy.PeerClosed(s.C) {
				r.gone = true
				s.srv.Close()
				<-done
				return early
			}
		case now := <-tick.C:
			line := fmt.Sprintf(" %ds", int(now.Sub(started).Seconds()+0.5))
			if !early {
				line = r.status.String() + "\r\nX-Fsigkd-Progress: the gateway fetches and scans this mail;"
				early = true
			}
			if s.Reply(line) != nil {
				// The client is gone; the work ends on its own.
				<-done
				return early
			}
		}
	}
}

// drainAtLeast is how much of a mail that is not spooled is read and
// dropped at least, to keep the session in step with the server.
const drainAtLeast = 64 << 20

// drainLimit is how much of a mail that is not spooled (refused past
// max_scan_size, or with the spool failing) is read and dropped before
// the session is ended instead: max_scan_size, 64 MiB at least.
func (s *session) drainLimit() int64 { return max(s.p.Svc.MaxScanSize, drainAtLeast) }

// fetchAndJudge spools the mail and decides what the client gets.
func (s *session) fetchAndJudge(r *retrieval) {
	w := bufio.NewWriterSize(r.f, 64<<10)
	// At most max_scan_size is spooled, whatever the server sends.
	_, rest, err := UnstuffUpTo(w, s.sr, s.p.Svc.MaxScanSize)
	if err == ErrBrokenOff {
		r.broken = err
		return
	}
	r.rest = rest
	if err == nil {
		err = w.Flush()
	}
	r.o.Failed(err)
	if err != nil {
		r.refuse = "-ERR [SYS/TEMP] Insufficient system storage; try again later."
		return
	}
	r.t.Rec.Bytes = r.f.Size()
	if r.rest != nil {
		r.mail = r.o.JudgeMail(proxy.Subject{}, nil, true, false)
		if r.mail.Delivered() {
			return
		}
		r.refuse = "-ERR [SYS/PERM] The mail is larger than this gateway scans."
		// The rest is read and dropped, so that the session goes on in
		// step with the server (no disk); a mail longer still than
		// drainLimit, or without end, ends the session.
		if _, more, err := r.rest.RelayUpTo(io.Discard, s.drainLimit()); err == nil && !more {
			r.rest = nil
		}
		return
	}
	r.head = proxy.ReadHead(r.f)
	head := r.head
	// The mailbox's user is the mail's recipient here (its To may name
	// anyone): the quarantine's entry names it.
	meta := scanner.Meta{Service: "pop", URL: r.t.Rec.URL, Client: s.Client.String(), Sender: proxy.HeaderValue(head, "From"), Recipients: []string{s.user}}
	// (POP3 never refuses spam: a reject or a greylist is delivered,
	// marked.)
	r.mail = r.o.JudgeMail(proxy.Subject{Meta: meta, Notice: r.t.Rec.URL + " " + proxy.HeaderValue(head, "Subject"), Part: r.cmd.Verb == "TOP"},
		head, false, r.cmd.Verb == "RETR")
	switch out := r.mail.Outcome; out.Delivery {
	case outcome.Deliver:
		r.mail.Spam.Note(r.t.Rec)
	case outcome.TryLater:
		// Never replaced: the client would delete the only copy.
		r.refuse = "-ERR [SYS/TEMP] The mail could not be scanned; try again later."
		if out.Kind != outcome.NotScanned {
			r.refuse = "-ERR [SYS/TEMP] The mail could not be kept in the quarantine; try again later."
		}
	case outcome.Refuse:
		r.refuse = "-ERR [SYS/PERM] The mail is infected (" + out.Name + "); the gateway refuses it."
	case outcome.Replace, outcome.Drop, outcome.Hold:
		// (No POP3 action drops or holds a mail: were one to, it is
		// replaced, so that the reader sees why.)
		r.replace = out.Name
	}
}

// send writes the status line (unless it went out early) and the mail, or
// its replacement, dot-stuffed, to the client.
func (s *session) send(r *retrieval, early bool) bool {
	cw := &deadlineWriter{c: s.C, timeout: s.p.Global.SendfileTimeout, url: r.t.Rec.URL, size: r.f.Size()}
	bw := bufio.NewWriterSize(cw, 64<<10)
	if !early {
		bw.WriteString(r.status.String() + "\r\n")
	}
	st := &dotstuff.Writer{W: bw}
	var err error
	if r.replace != "" {
		_, err = st.Write(s.replacement(r))
	} else {
		for _, h := range r.mail.Fields(s.p.Svc.StatusHeader) {
			if _, err = io.WriteString(st, proxy.Sanitize(h)+"\r\n"); err != nil {
				break
			}
		}
		src := bufio.NewReaderSize(io.NewSectionReader(r.f, 0, r.f.Size()), 64<<10)
		if change := r.mail.Spam.Head; err == nil && !change.Empty() {
			tw := bufio.NewWriterSize(st, 4096)
			if err = change.Apply(tw, src); err == nil {
				err = tw.Flush()
			}
		}
		if err == nil {
			_, err = io.Copy(st, src)
		}
	}
	switch {
	case err == nil && r.rest != nil && r.replace == "":
		// Past max_scan_size, passed unscanned: the rest as the server
		// sends it, its terminating line included. Cut off, the client
		// gets no terminating line: never a short mail that looks whole.
		if err = bw.Flush(); err == nil {
			_, err = r.rest.Relay(bw)
		}
	case err == nil:
		err = st.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	r.t.Rec.Bytes = cw.n
	if err != nil {
		if m, ok := catalog.Of(err); ok {
			logs.Emit(s.log.Named("send"), m)
		}
		return false
	}
	return true
}

// deadlineWriter gives each write to the client sendfile_timeout to make
// progress (M07 when it does not).
type deadlineWriter struct {
	c       net.Conn
	timeout time.Duration
	url     string
	size    int64
	n       int64
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.c.SetWriteDeadline(time.Now().Add(w.timeout))
	n, err := w.c.Write(p)
	w.n += int64(n)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return n, &spool.Stalled{Timeout: w.timeout, URL: w.url, N: int64(n), Written: w.n, FileLen: w.size, WriteSize: int64(len(p))}
	}
	return n, err
}

// replacement is what the client gets for an infected mail with action =
// delete: the mail's own header fields, less those that describe its
// body, the Subject tagged, and a text (the recipient notice) saying what
// was found.
func (s *session) replacement(r *retrieval) []byte {
	head := r.head
	from := proxy.HeaderValue(head, "From")
	n, err := s.p.Notices.Render("recipient", notify.Fields{Service: "pop", Name: r.replace,
		Object: proxy.HeaderValue(head, "Subject"), Client: s.Client.String(), Action: "delete", Sender: from})
	text := n.Body
	if err != nil {
		s.log.Warn("notice template", zap.Error(err))
		text = "A mail to you carried " + r.replace + " and was removed by the gateway.\r\n"
	}
	var b bytes.Buffer
	tagged := false
	for _, field := range headerFields(head) {
		name, value, _ := strings.Cut(field, ":")
		name = strings.TrimSpace(name)
		switch {
		case strings.HasPrefix(strings.ToLower(name), "content-"), strings.EqualFold(name, "MIME-Version"):
			continue
		case strings.EqualFold(name, "Subject") && !tagged:
			field = name + ": " + s.p.Svc.VirusSubjectTag + " " + strings.TrimLeft(value, " ")
			tagged = true
		}
		b.WriteString(field)
	}
	if !tagged {
		b.WriteString("Subject: " + s.p.Svc.VirusSubjectTag + "\r\n")
	}
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\nX-Virus-Status: infected(%s)\r\n\r\n", proxy.Sanitize(r.replace))
	b.WriteString(strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\n", "\r\n"))
	return b.Bytes()
}

// headerFields splits a header block into its fields, each with its
// folded lines and line ends.
func headerFields(head []byte) []string {
	var out []string
	for _, l := range strings.SplitAfter(string(head), "\n") {
		switch {
		case strings.TrimRight(l, "\r\n") == "":
			continue
		case (l[0] == ' ' || l[0] == '\t') && len(out) > 0:
			out[len(out)-1] += l
		case strings.Contains(l, ":"):
			out = append(out, l)
		}
	}
	for i, f := range out {
		if !strings.HasSuffix(f, "\n") {
			out[i] = f + "\r\n"
		}
	}
	return out
}

// begin starts the transfer of a retrieval, its access record as the
// session knows it.
func (s *session) begin(cmd Command) *proxy.Transfer {
	rec := &logs.Access{Client: s.Client.String(), Result: "POP3", Method: cmd.Verb,
		URL: "pop://" + s.user + "@" + s.server, User: s.user, Service: "pop", Slot: slots.SlotOf(s.C),
		Detail: "mail " + cmd.Arg}
	if a, ok := s.srv.RemoteAddr().(*net.TCPAddr); ok {
		rec.Server = a.IP.String()
	}
	return s.p.Begin(rec)
}
