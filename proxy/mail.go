package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/fsigkd/fsigkd/catalog"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/proxy/outcome"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/spool"
)

// The mail services (SMTP, POP3) read and mark mail headers alike.

// maxHead bounds the header block read for decisions.
const maxHead = 256 << 10

// ReadHead is the mail's header block (up to maxHead).
func ReadHead(f *spool.File) []byte {
	b := make([]byte, min(f.Size(), maxHead))
	n, _ := f.OS().ReadAt(b, 0)
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

// TagSubject copies the header block from src to w with tag put before
// the Subject (or a Subject of just the tag added), and stops at the body.
func TagSubject(w *bufio.Writer, src *bufio.Reader, tag string) error {
	done := false
	for {
		line, err := src.ReadString('\n')
		if err != nil && line == "" {
			if !done {
				w.WriteString("Subject: " + tag + "\r\n")
			}
			return nil
		}
		if line == "\r\n" || line == "\n" {
			if !done {
				w.WriteString("Subject: " + tag + "\r\n")
			}
			w.WriteString(line)
			return nil
		}
		if k, v, ok := strings.Cut(line, ":"); ok && !done && strings.EqualFold(strings.TrimSpace(k), "Subject") {
			line = k + ": " + tag + " " + strings.TrimLeft(v, " ")
			done = true
		}
		w.WriteString(line)
	}
}

// SpamMark is what the spam check makes of a mail about to be delivered.
type SpamMark struct {
	// Headers are the X-Spam-* fields to add (none: not checked).
	Headers []string
	// Tag goes before the Subject ("": not spam).
	Tag string
	// Reject: spam scoring spam_reject_score or more (SMTP refuses it).
	Reject bool
	// SubjectKept: spam whose Subject a DKIM signature covers, left
	// untagged (spam_tag_signed = no).
	SubjectKept bool
}

// Note says the mark in rec (not a Reject, which the service refuses in
// its words): the Subject tagged, or kept for its signature.
func (m SpamMark) Note(rec *logs.Access) {
	switch {
	case m.Tag != "":
		rec.Detect, rec.Action = "SPAM", "CHANGE_SUBJECT"
	case m.SubjectKept:
		rec.Detect = "SPAM"
		rec.AddDetail("DKIM-signed: Subject kept")
	}
}

// signed tells whether the mail in f carries a DKIM-Signature field.
func signed(f *os.File, size int64) bool {
	b := make([]byte, min(size, maxHead))
	n, _ := f.ReadAt(b, 0)
	head := b[:n]
	if i := bytes.Index(head, []byte("\r\n\r\n")); i >= 0 {
		head = head[:i+2]
	}
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
func (c *Common) CheckSpam(obj *scanner.Object) SpamMark {
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
	if v.Spam {
		mark.Tag = c.Svc.SpamSubjectTag
		mark.Reject = c.Svc.SpamRejectScore > 0 && v.Score >= c.Svc.SpamRejectScore
		if mark.Tag != "" && !c.Svc.SpamTagSigned && obj.File != nil && signed(obj.File, obj.Size) {
			mark.Tag, mark.SubjectKept = "", true
		}
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

// SpamRefusal is the reply to spam scoring spam_reject_score or more.
var SpamRefusal = Reply{554, [3]int{5, 7, 1}, "Rejected as spam"}

// Sanitize keeps a header line on one line.
func Sanitize(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }
