package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/outcome"
	"github.com/fsigkd/fsigkd/scanner"
)

func applied(t *testing.T, h HeadChange, mail string) string {
	t.Helper()
	var b strings.Builder
	w := bufio.NewWriter(&b)
	src := bufio.NewReader(strings.NewReader(mail))
	if err := h.Apply(w, src); err != nil {
		t.Fatal(err)
	}
	rest := new(strings.Builder)
	bufio.NewReader(src).WriteTo(rest)
	w.Flush()
	return b.String() + rest.String()
}

// TestHeadChange: the Subject tagged (folded lines kept) or replaced
// whole, one added where there is none, and fields removed with every
// folded line of every occurrence, the body untouched.
func TestHeadChange(t *testing.T) {
	mail := "Received: x\r\nX-Spam: old\r\n\tfolded\r\nSubject: an offer,\r\n folded\r\nX-Spam: again\r\n\r\nX-Spam: in the body\r\n"
	for _, c := range []struct {
		h    HeadChange
		want string
	}{
		{HeadChange{Tag: "[SPAM]"}, "Received: x\r\nX-Spam: old\r\n\tfolded\r\nSubject: [SPAM] an offer,\r\n folded\r\nX-Spam: again\r\n\r\nX-Spam: in the body\r\n"},
		{HeadChange{Tag: "[SPAM]", Subject: "*** SPAM *** an offer"}, "Received: x\r\nX-Spam: old\r\n\tfolded\r\nSubject: *** SPAM *** an offer\r\nX-Spam: again\r\n\r\nX-Spam: in the body\r\n"},
		{HeadChange{Remove: []string{"x-spam"}}, "Received: x\r\nSubject: an offer,\r\n folded\r\n\r\nX-Spam: in the body\r\n"},
	} {
		if got := applied(t, c.h, mail); got != c.want {
			t.Errorf("%+v:\n%q\nwant\n%q", c.h, got, c.want)
		}
	}
	if got := applied(t, HeadChange{Tag: "[SPAM]"}, "From: a\r\n\r\nbody\r\n"); got != "From: a\r\nSubject: [SPAM]\r\n\r\nbody\r\n" {
		t.Errorf("no Subject: %q", got)
	}
	if got := applied(t, HeadChange{Tag: "[SPAM]"}, "Subject:\r\n\r\n"); got != "Subject: [SPAM]\r\n\r\n" {
		t.Errorf("empty Subject: %q", got)
	}
}

// verdict is a spam engine that answers v: rspamd's actions that its
// test patterns cannot ask for (soft reject, greylist) and its header
// lists, for the mapping alone.
type verdict scanner.SpamVerdict

func (v verdict) Check(context.Context, *scanner.Object) (scanner.SpamVerdict, error) {
	return scanner.SpamVerdict(v), nil
}

// TestSpamMarkOfEachVerdict: what each engine's verdict makes of a mail.
func TestSpamMarkOfEachVerdict(t *testing.T) {
	f, _ := os.Create(filepath.Join(t.TempDir(), "m"))
	defer f.Close()
	f.WriteString("Subject: x\r\n\r\nx\r\n")
	svc := &conf.Service{SpamSubjectTag: "[SPAM]", SpamRejectScore: 20}
	for _, c := range []struct {
		v    scanner.SpamVerdict
		want SpamMark
	}{
		{scanner.SpamVerdict{Spam: true, Score: 6}, SpamMark{Head: HeadChange{Tag: "[SPAM]"}}},                // spamd
		{scanner.SpamVerdict{Spam: true, Score: 25}, SpamMark{Head: HeadChange{Tag: "[SPAM]"}, Reject: true}}, // spamd, spam_reject_score
		{scanner.SpamVerdict{Score: 1, Action: "no action"}, SpamMark{}},                                      // rspamd
		{scanner.SpamVerdict{Spam: true, Score: 7, Action: "add header"}, SpamMark{}},                         // headers only
		{scanner.SpamVerdict{Spam: true, Action: "rewrite subject", Subject: "*** x"}, SpamMark{Head: HeadChange{Tag: "[SPAM]", Subject: "*** x"}}},
		{scanner.SpamVerdict{Spam: true, Score: 16, Action: "reject"}, SpamMark{Head: HeadChange{Tag: "[SPAM]"}, Reject: true}},
		{scanner.SpamVerdict{Score: 5, Action: "soft reject"}, SpamMark{TryLater: true}},
		{scanner.SpamVerdict{Score: 4, Action: "greylist"}, SpamMark{TryLater: true}},
		{scanner.SpamVerdict{Action: "no action", AddHeaders: []scanner.HeaderField{{Name: "X-Spamd-Bar", Value: "+"}}, RemoveHeaders: []string{"X-Spam"}},
			SpamMark{Head: HeadChange{Remove: []string{"X-Spam"}}}},
	} {
		com := &Common{Svc: svc, Spam: verdict(c.v)}
		got := com.CheckSpam(&scanner.Object{File: f, Size: 17}, nil)
		if got.Head.Tag != c.want.Head.Tag || got.Head.Subject != c.want.Head.Subject || strings.Join(got.Head.Remove, ",") != strings.Join(c.want.Head.Remove, ",") ||
			got.Reject != c.want.Reject || got.TryLater != c.want.TryLater {
			t.Errorf("%+v: %+v", c.v, got)
		}
		if len(c.v.AddHeaders) > 0 && !strings.Contains(strings.Join(got.Headers, "\n"), "X-Spamd-Bar: +") {
			t.Errorf("%+v: headers %v", c.v, got.Headers)
		}
	}
}

// TestMailFieldsAndSpamRefusal: what a delivered mail carries first in
// its header, for each kind the pipeline can deliver, and what the relay
// and the milter say (and log) of spam they do not take.
func TestMailFieldsAndSpamRefusal(t *testing.T) {
	clean := Mail{Outcome: Outcome{Result: outcome.Result{Kind: outcome.Clean}, Decision: outcome.Decision{Delivery: outcome.Deliver, Status: "clean(fsigkd)"}}}
	if f := clean.Fields(false); len(f) != 0 {
		t.Errorf("clean, status_header = no: %q", f)
	}
	if f := clean.Fields(true); len(f) != 1 || f[0] != "X-Virus-Status: clean(fsigkd)" {
		t.Errorf("clean: %q", f)
	}
	passed := Mail{Outcome: Outcome{Result: outcome.Result{Kind: outcome.Infected, Name: "Eicar"}, Decision: outcome.Decision{Delivery: outcome.Deliver, Status: "infected(Eicar)"}},
		Spam: SpamMark{Headers: []string{"X-Spam-Flag: YES"}, Head: HeadChange{Tag: "[SPAM]"}}}
	if f := passed.Fields(false); strings.Join(f, "|") != "X-Virus-Status: infected(Eicar)|X-Spam-Flag: YES" {
		t.Errorf("passed infected spam: %q", f)
	}
	for _, c := range []struct {
		name   string
		spam   SpamMark
		reply  Reply
		detect string
		action string
	}{
		{"reject", SpamMark{Reject: true, Head: HeadChange{Tag: "[SPAM]"}}, SpamRefusal, "SPAM", "DENY"},
		{"greylist", SpamMark{TryLater: true}, SpamLater, "SPAM", ""},
		{"tagged", SpamMark{Head: HeadChange{Tag: "[SPAM]"}}, Reply{}, "SPAM", "CHANGE_SUBJECT"},
		{"ham", SpamMark{}, Reply{}, "", ""},
	} {
		rec := &logs.Access{}
		r, refused := Mail{Spam: c.spam}.SpamRefusal(rec)
		if r != c.reply || refused != (c.reply.Code != 0) || rec.Detect != c.detect || rec.Action != c.action || rec.Status != c.reply.Code {
			t.Errorf("%s: %+v %v, record %q %q %d", c.name, r, refused, rec.Detect, rec.Action, rec.Status)
		}
	}
}

// TestForgedAuthenticationResultsTakenOut: a field claiming the gateway's
// name (any case, a version after it, its value folded onto the next
// line) is taken out whole, folded lines and all; one of another server,
// or of a name that merely begins alike, stays.
func TestForgedAuthenticationResultsTakenOut(t *testing.T) {
	head := "Authentication-Results: GW.test 1; dkim=pass\r\n\theader.d=bank.example\r\n" +
		"Authentication-Results:\r\n gw.test; spf=pass\r\n" +
		"Authentication-Results: gw.tester; dkim=pass\r\n" +
		"Authentication-Results: mx.other; dkim=pass\r\n" +
		"Subject: hi\r\n\r\nbody\r\n"
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	if err := (HeadChange{Forged: "gw.test"}).Apply(w, bufio.NewReader(strings.NewReader(head))); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	want := "Authentication-Results: gw.tester; dkim=pass\r\nAuthentication-Results: mx.other; dkim=pass\r\nSubject: hi\r\n\r\n"
	if out.String() != want {
		t.Fatalf("got\n%q\nwant\n%q", out.String(), want)
	}
}

// FuzzHeadChange: whatever header a mail brings, the change keeps the
// body as it came, never panics, and leaves no field that claims the
// gateway's name.
func FuzzHeadChange(f *testing.F) {
	f.Add([]byte("Authentication-Results: gw.test; dkim=pass\r\nSubject: hi\r\n\r\nbody\r\n"))
	f.Add([]byte("Authentication-Results:\r\n gw.test; x\r\n\tmore\r\n\r\n"))
	f.Add([]byte("Subject:\r\n\r\n"))
	f.Fuzz(func(t *testing.T, mail []byte) {
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		src := bufio.NewReader(bytes.NewReader(mail))
		if err := (HeadChange{Forged: "gw.test", Tag: "[T]", Remove: []string{"X-Spam-Flag"}}).Apply(w, src); err != nil {
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(src)
		w.Flush()
		// The body begins after the header's first empty line.
		for off := 0; off < len(mail); {
			j := bytes.IndexByte(mail[off:], '\n')
			if j < 0 {
				break
			}
			if line := string(mail[off : off+j+1]); line == "\r\n" || line == "\n" {
				if !bytes.Equal(rest, mail[off+j+1:]) {
					t.Fatalf("the body changed: %q", rest)
				}
				break
			}
			off += j + 1
		}
		for _, line := range strings.Split(out.String(), "\r\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Authentication-Results") && ClaimedBy(v, "gw.test") {
				t.Fatalf("a forged field stayed: %q", out.String())
			}
		}
	})
}
