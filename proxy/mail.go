package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/fsigkd/fsigkd/catalog"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/outcome"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/spool"
)

// The mail services (SMTP, POP3) read and mark mail headers alike.

// maxHead bounds the header block read for decisions.
const maxHead = 256 << 10

// ReadHead is the mail's header block (up to maxHead).
func ReadHead(f *spool.File) []byte {
	b := make([]byte, min(f.Size(), maxHead))
	n, _ := f.ReadAt(b, 0)
	b = b[:n]
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return b[:i+2]
	}
	return b
}

// HeaderValue is the first value of a header field in a header block.
func HeaderValue(head []byte, name string) string {
	for _, line := range strings.Split(string(head), "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// HeadChange is what a mail's header block gets on its way: its Subject
// tagged or replaced, and fields removed. The relay and POP3 apply it as
// they copy the mail (Apply); the milter asks the MTA for the same.
type HeadChange struct {
	// Tag goes before the Subject; Subject, when set, replaces it (a
	// mail without one gets one).
	Tag, Subject string
	// Remove are names of fields taken out, every occurrence.
	Remove []string
	// Forged, when set, is this gateway's name: an Authentication-Results
	// field that claims it came with the mail, a forgery, and is taken
	// out (RFC 8601 5).
	Forged string
}

// ClaimedBy tells whether an Authentication-Results value names authserv
// as its author.
func ClaimedBy(value, authserv string) bool {
	id, _, _ := strings.Cut(strings.TrimSpace(value), ";")
	if f := strings.Fields(id); len(f) > 0 {
		id = f[0] // a version may follow the name
	}
	return authserv != "" && strings.EqualFold(id, authserv)
}

// value is a field's value as far as its name's author is concerned: its
// first line, or, when that is empty, its next (folded) line.
func (h HeadChange) value(first string, src *bufio.Reader) string {
	if h.Forged == "" || strings.TrimSpace(first) != "" {
		return first
	}
	next, _ := src.Peek(min(src.Buffered(), 512))
	if i := bytes.IndexByte(next, '\n'); i >= 0 && len(next) > 0 && (next[0] == ' ' || next[0] == '\t') {
		return string(next[:i])
	}
	return first
}

// takesOut tells whether the field name: value goes.
func (h HeadChange) takesOut(name, value string) bool {
	return h.Removes(name) || h.Forged != "" && strings.EqualFold(name, "Authentication-Results") && ClaimedBy(value, h.Forged)
}

// Empty tells whether the change changes nothing.
func (h HeadChange) Empty() bool {
	return h.Tag == "" && h.Subject == "" && len(h.Remove) == 0 && h.Forged == ""
}

// NewSubject is the Subject the change makes of old (the value as
// written, after the colon).
func (h HeadChange) NewSubject(old string) string {
	if h.Subject != "" {
		return h.Subject
	}
	if old = strings.TrimLeft(old, " \t"); old == "" {
		return h.Tag
	}
	return h.Tag + " " + old
}

// Removes tells whether the change takes out fields named name.
func (h HeadChange) Removes(name string) bool {
	for _, r := range h.Remove {
		if strings.EqualFold(r, name) {
			return true
		}
	}
	return false
}

// Apply copies the header block from src to w with the change made, and
// stops at the body.
func (h HeadChange) Apply(w *bufio.Writer, src *bufio.Reader) error {
	subject := h.Tag != "" || h.Subject != ""
	done, skipping := !subject, false
	end := func() {
		if !done {
			w.WriteString("Subject: " + h.NewSubject("") + "\r\n")
		}
	}
	for {
		line, err := src.ReadString('\n')
		if err != nil && line == "" {
			end()
			return nil
		}
		if line == "\r\n" || line == "\n" {
			end()
			w.WriteString(line)
			return nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			// A folded field's next line goes with its field.
			if !skipping {
				w.WriteString(line)
			}
			continue
		}
		k, v, _ := strings.Cut(line, ":")
		name := strings.TrimSpace(k)
		if skipping = h.takesOut(name, h.value(v, src)); skipping {
			continue
		}
		if !done && strings.EqualFold(name, "Subject") {
			if h.Subject != "" {
				// Replaced whole, its folded lines with it.
				line, skipping = k+": "+h.Subject+"\r\n", true
				w.WriteString(line)
				done = true
				continue
			}
			value := strings.TrimRight(v, "\r\n")
			eol := v[len(value):]
			if eol == "" {
				eol = "\r\n"
			}
			line = k + ": " + h.NewSubject(value) + eol
			done = true
		}
		w.WriteString(line)
	}
}

// SpamMark is what the spam check makes of a mail about to be delivered.
type SpamMark struct {
	// Headers are the fields to add: X-Spam-*, and those the engine asks
	// for (none: not checked).
	Headers []string
	// Head is the change to the header block: spam_subject_tag (spamd's
	// spam; rspamd's "rewrite subject", with its own Subject when it
	// gives one) and the fields the engine asks to remove.
	Head HeadChange
	// Reject: spam to refuse (554): scoring spam_reject_score or more,
	// or rspamd's "reject". The relay and the milter refuse it; POP3
	// never refuses spam.
	Reject bool
	// TryLater: rspamd's "soft reject" or "greylist": the relay and the
	// milter answer 451, the sender tries again later; POP3 delivers.
	TryLater bool
	// SubjectKept: spam whose Subject a DKIM signature covers, left
	// unchanged (spam_tag_signed = no).
	SubjectKept bool
}

// Note says the mark in rec (not a Reject, which the service refuses in
// its words): the Subject tagged, or kept for its signature.
func (m SpamMark) Note(rec *logs.Access) {
	switch {
	case m.Head.Tag != "" || m.Head.Subject != "":
		rec.Detect, rec.Action = "SPAM", "CHANGE_SUBJECT"
	case m.SubjectKept:
		rec.Detect = "SPAM"
		rec.AddDetail("DKIM-signed: Subject kept")
	}
}

// signed tells whether a mail's header block (ReadHead's) carries a
// DKIM-Signature field.
func signed(head []byte) bool {
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		if k, _, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(bytes.TrimSpace(k)), "DKIM-Signature") {
			return true
		}
	}
	return false
}

// CheckSpam has obj checked by the spam engine, when the service checks
// mail for spam. A failure is logged (a dead engine once, by the
// scanner's pool) and the mail goes on unmarked: spam checks never hold
// mail back.
func (c *Common) CheckSpam(obj *scanner.Object, head []byte) SpamMark {
	if c.Spam == nil {
		return SpamMark{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Global.ASTimeout)
	defer cancel()
	v, err := c.Spam.Check(ctx, obj)
	if err != nil {
		if m, ok := catalog.Of(err); ok && scanner.KindOf(err) != scanner.Down {
			logs.Emit(c.Log.Named("spam"), m)
		}
		return SpamMark{}
	}
	mark := SpamMark{Headers: SpamHeaders(v)}
	for _, h := range v.AddHeaders {
		mark.Headers = append(mark.Headers, h.Name+": "+h.Value)
	}
	mark.Head.Remove = v.RemoveHeaders
	switch v.Action {
	case "":
		// spamd: spam is tagged.
		if v.Spam {
			mark.Head.Tag = c.Svc.SpamSubjectTag
		}
	case "reject":
		// (Tagged too for POP3, which delivers what it cannot refuse.)
		mark.Reject, mark.Head.Tag = true, c.Svc.SpamSubjectTag
	case "soft reject", "greylist":
		mark.TryLater = true
	case "rewrite subject":
		mark.Head.Tag, mark.Head.Subject = c.Svc.SpamSubjectTag, v.Subject
	}
	if v.Spam && c.Svc.SpamRejectScore > 0 && v.Score >= c.Svc.SpamRejectScore {
		mark.Reject = true
	}
	if (mark.Head.Tag != "" || mark.Head.Subject != "") && !c.Svc.SpamTagSigned && signed(head) {
		mark.Head.Tag, mark.Head.Subject, mark.SubjectKept = "", "", true
	}
	return mark
}

// SpamHeaders are the X-Spam-* fields added to a checked mail.
func SpamHeaders(v scanner.SpamVerdict) []string {
	flag := "NO"
	if v.Spam {
		flag = "YES"
	}
	return []string{
		"X-Spam-Flag: " + flag,
		fmt.Sprintf("X-Spam-Status: %s, score=%.1f required=%.1f tests=%s", map[bool]string{true: "Yes", false: "No"}[v.Spam], v.Score, v.Threshold, strings.Join(v.Symbols, ",")),
		fmt.Sprintf("X-Spam-Score: %.1f", v.Score),
	}
}

// Reply is an SMTP reply: code, enhanced status code (RFC 3463), text.
type Reply struct {
	Code     int
	Enhanced [3]int
	Text     string
}

// MailRefusal is the reply to a mail that is not taken, the relay's and the
// milter's alike: refused for good (554) or for now (451, the sender
// keeps it and tries again).
func MailRefusal(out Outcome) Reply {
	if out.Delivery == outcome.TryLater && out.Kind == outcome.NotScanned {
		return Reply{451, [3]int{4, 3, 0}, "Virus scanning is unavailable; try again later"}
	}
	if out.Delivery == outcome.TryLater {
		// A detection the quarantine could not keep: the sender keeps it.
		return Reply{451, [3]int{4, 3, 0}, "The mail could not be handled now; try again later"}
	}
	switch out.Kind {
	case outcome.Oversize:
		return Reply{554, [3]int{5, 3, 4}, "The mail is larger than this gateway scans"}
	case outcome.NotScanned:
		return Reply{554, [3]int{5, 7, 0}, "The mail could not be scanned"}
	case outcome.Blocked:
		return Reply{554, [3]int{5, 7, 1}, "Refused by the gateway's policy (" + out.Name + ")"}
	case outcome.Infected, outcome.Riskware, outcome.Suspected, outcome.Encrypted, outcome.Clean, outcome.Skipped:
	}
	return Reply{554, [3]int{5, 7, 1}, "Infected by " + out.Name}
}

// SpamRefusal is the reply to spam scoring spam_reject_score or more,
// or that rspamd says to reject.
var SpamRefusal = Reply{554, [3]int{5, 7, 1}, "Rejected as spam"}

// SpamLater is the reply to a mail rspamd says to greylist or reject
// softly: the sender tries again later.
var SpamLater = Reply{451, [3]int{4, 7, 1}, "Try again later"}

// Sanitize keeps a header line on one line.
func Sanitize(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }

// Mail is what becomes of a received mail, the relay's, the milter's and
// the POP3 proxy's alike: its scan's Outcome and, for a mail delivered
// whole, its spam mark.
type Mail struct {
	Outcome
	Spam SpamMark
	// AuthResults is the Authentication-Results value of the mail's DKIM
	// check ("": none made, or nothing to say).
	AuthResults string
}

// JudgeMail judges the spooled mail whose head is head: oversize (not
// read, so not checked for spam either) when over, else by the one
// pipeline, its Subject naming it in notices (notice, when set, names it
// instead: POP3's mailbox and message). A mail the decision delivers is
// checked for spam when spam is set (the relay and the milter always;
// POP3 for RETR, not for a TOP's part).
func (o *Object) JudgeMail(sub Subject, head []byte, over, spam bool) Mail {
	if over {
		return Mail{Outcome: o.Oversize("mail")}
	}
	if sub.Notice == "" {
		sub.Notice = HeaderValue(head, "Subject")
	}
	m := Mail{Outcome: o.Judge(sub)}
	if spam && m.Delivery == outcome.Deliver {
		f := o.File()
		m.Spam = o.t.c.CheckSpam(objectOf(f, sub.Meta), head)
		if m.AuthResults = o.t.c.AuthResults(f, head); m.AuthResults != "" {
			// Said under this gateway's name: one the mail brought is
			// not ours.
			m.Spam.Head.Forged = o.t.c.Hostname()
		}
	}
	return m
}

// SpamRefusal is the reply to spam the relay and the milter do not take
// (SpamRefusal or SpamLater), said in rec; refused false: the mail is
// taken, its spam mark (if any) said in rec.
func (m Mail) SpamRefusal(rec *logs.Access) (r Reply, refused bool) {
	switch {
	case m.Spam.Reject:
		rec.Detect, rec.Status, rec.Action = "SPAM", SpamRefusal.Code, "DENY"
		return SpamRefusal, true
	case m.Spam.TryLater:
		rec.Detect, rec.Status = "SPAM", SpamLater.Code
		return SpamLater, true
	}
	m.Spam.Note(rec)
	return Reply{}, false
}

// Fields are the header fields put first in a delivered mail: its
// X-Virus-Status (for a clean one only when status, status_header for
// POP3), then the spam engine's.
func (m Mail) Fields(status bool) []string {
	var f []string
	if m.AuthResults != "" {
		f = append(f, "Authentication-Results: "+m.AuthResults)
	}
	if status || m.Kind != outcome.Clean {
		f = append(f, "X-Virus-Status: "+m.Status)
	}
	return append(f, m.Spam.Headers...)
}
