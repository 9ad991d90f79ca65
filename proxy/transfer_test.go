package proxy_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/proxytest"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/outcome"
	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/scanner"
)

// carry takes data through the transfer driver as a protocol does
// (Begin, Object, Fill, then Judge or Oversize, End) with the section's
// keys, and gives the outcome and the access log's lines.
func carry(t *testing.T, service, keys string, data []byte, meta scanner.Meta) (proxy.Outcome, []string) {
	t.Helper()
	c, kit := proxytest.Common(t, service, keys)
	if err := c.Init(); err != nil {
		t.Fatal(err)
	}
	tr := c.Begin(&logs.Access{Client: "192.0.2.7", Method: "GET", URL: meta.URL, Service: service})
	var out proxy.Outcome
	if !tr.Skips(meta) {
		o := tr.Object()
		over, err := o.Fill(bytes.NewReader(data), nil)
		if err != nil {
			t.Fatal(err)
		}
		if over {
			out = o.Oversize("")
		} else {
			out = o.Judge(proxy.Subject{Meta: meta})
		}
	} else {
		out = proxy.Outcome{Result: outcome.Result{Kind: outcome.Skipped}}
	}
	tr.End()
	tr.End() // a second End writes nothing
	log := strings.TrimSpace(kit.AccessLog())
	if log == "" {
		return out, nil
	}
	return out, strings.Split(log, "\n")
}

func field(line, word string) bool { return strings.Contains(line, word) }

// TestDriverCleanAndInfected: the driver's one way, clean and infected,
// as HTTP's settings decide: one access line each, written by End alone
// (twice called), saying what the pipeline found and what was done.
func TestDriverCleanAndInfected(t *testing.T) {
	meta := scanner.Meta{Service: "http", URL: "http://example.test/f", Client: "192.0.2.7"}
	out, lines := carry(t, "http", "", []byte("an ordinary text"), meta)
	if out.Kind != outcome.Clean || out.Delivery != outcome.Deliver || len(lines) != 1 || !field(lines[0], "CLEAN") {
		t.Errorf("clean: %v %v %q", out.Kind, out.Delivery, lines)
	}
	out, lines = carry(t, "http", "", []byte(eicar.String), meta)
	if out.Kind != outcome.Infected || out.Delivery != outcome.Refuse || len(lines) != 1 || !field(lines[0], "INFECTED") || !field(lines[0], "DENY") {
		t.Errorf("infected: %v %v %q", out.Kind, out.Delivery, lines)
	}
	out, lines = carry(t, "http", "action = pass", []byte(eicar.String), meta)
	if out.Kind != outcome.Infected || out.Delivery != outcome.Deliver || len(lines) != 1 || !field(lines[0], "PASS") {
		t.Errorf("infected, action = pass: %v %v %q", out.Kind, out.Delivery, lines)
	}
}

// TestDriverOversize: past max_scan_size Fill stops (over) and the
// object is judged by oversize_action alone: passed unscanned (never as
// clean) or refused.
func TestDriverOversize(t *testing.T) {
	meta := scanner.Meta{Service: "http", URL: "http://example.test/big"}
	big := bytes.Repeat([]byte("x"), 4096)
	out, lines := carry(t, "http", "max_scan_size = 1K", big, meta)
	if out.Kind != outcome.Oversize || out.Delivery != outcome.Deliver || len(lines) != 1 || field(lines[0], "CLEAN") {
		t.Errorf("oversize, pass: %v %v %q", out.Kind, out.Delivery, lines)
	}
	out, _ = carry(t, "http", "max_scan_size = 1K\noversize_action = block", big, meta)
	if out.Kind != outcome.Oversize || out.Delivery != outcome.Refuse {
		t.Errorf("oversize, block: %v %v", out.Kind, out.Delivery)
	}
}

// TestDriverEngineDown: an engine that cannot be reached leaves the
// object not scanned, which scan_failure decides, never clean; the
// relay's tempfail says try later.
func TestDriverEngineDown(t *testing.T) {
	dead := filepath.Join(t.TempDir(), "no-engine")
	meta := scanner.Meta{Service: "http", URL: "http://example.test/f"}
	for _, c := range []struct {
		service, keys string
		want          outcome.Delivery
	}{
		{"http", "", outcome.Refuse},
		{"http", "scan_failure = pass", outcome.Deliver},
		{"smtp", "", outcome.TryLater},
	} {
		cm, kit := proxytest.Common(t, c.service, c.keys)
		g := cm.Global
		g.AVServers = dead
		sc, err := scanner.FromConfig(g, nil)
		if err != nil {
			t.Fatal(err)
		}
		cm.Scanner = sc
		if err := cm.Init(); err != nil {
			t.Fatal(err)
		}
		tr := cm.Begin(&logs.Access{URL: meta.URL, Service: c.service})
		o := tr.Object()
		o.Fill(strings.NewReader("some bytes"), nil)
		out := o.Judge(proxy.Subject{Meta: meta})
		tr.End()
		if out.Kind != outcome.NotScanned || out.Delivery != c.want || strings.Contains(kit.AccessLog(), "CLEAN") {
			t.Errorf("%s %q: %v %v\n%s", c.service, c.keys, out.Kind, out.Delivery, kit.AccessLog())
		}
	}
}

// TestDriverSkipAndRules: a skip list lets the object pass unscanned and
// says so; a type rule refuses what an archive holds, whatever the engine
// says.
func TestDriverSkipAndRules(t *testing.T) {
	meta := scanner.Meta{Service: "http", URL: "http://example.test/f", Client: "192.0.2.7"}
	out, lines := carry(t, "http", "skip_clients = 192.0.2.0/24", []byte(eicar.String), meta)
	if out.Kind != outcome.Skipped || len(lines) != 1 || !field(lines[0], "skip_clients") {
		t.Errorf("skipped: %v %q", out.Kind, lines)
	}
	zip := eicar.Zip(map[string][]byte{"docs/readme.txt": eicar.WindowsProgram(false)})
	out, lines = carry(t, "http", "block_types = exe", zip, meta)
	if out.Kind != outcome.Blocked || out.Delivery != outcome.Refuse || len(lines) != 1 || !field(lines[0], "block_types=exe") {
		t.Errorf("type rule: %v %v %q", out.Kind, out.Delivery, lines)
	}
}

// TestDriverGivesTheSpoolBack: every object's spool file is given back
// by End, those of a transfer with two objects (an upload and a
// download) included (proxytest fails a test that leaves one behind).
func TestDriverGivesTheSpoolBack(t *testing.T) {
	c, _ := proxytest.Common(t, "http", "")
	if err := c.Init(); err != nil {
		t.Fatal(err)
	}
	tr := c.Begin(&logs.Access{URL: "http://example.test/up"})
	up, down := tr.Object(), tr.Object()
	up.Fill(strings.NewReader("the upload"), nil)
	down.Fill(strings.NewReader("the download"), nil)
	if up.File() == nil || down.File() == nil || up.File().Path() == down.File().Path() {
		t.Fatal("two objects, one file")
	}
	path := down.File().Path()
	tr.End()
	if _, err := os.Stat(path); err == nil {
		if b, _ := os.ReadFile(path); len(b) != 0 {
			t.Errorf("the download's spool file still holds %q", b)
		}
	}
}

// TestJudgeMailWithRealSpamd: a mail is scanned, and only one the
// decision delivers is asked of the spam engine (a real spamd): GTUBE is
// tagged and gets its X-Spam headers after X-Virus-Status; an infected
// mail is refused without a spam check; one past max_scan_size is not read
// at all.
func TestJudgeMailWithRealSpamd(t *testing.T) {
	spamd := proxytest.Spamd(t)
	judge := func(keys, mail string) proxy.Mail {
		c, _ := proxytest.Common(t, "smtp", keys)
		c.Spam = spamd
		if err := c.Init(); err != nil {
			t.Fatal(err)
		}
		tr := c.Begin(&logs.Access{URL: "mail:rcpt@example.test", Service: "smtp"})
		defer tr.End()
		o := tr.Object()
		over, err := o.Fill(strings.NewReader(mail), nil)
		if err != nil {
			t.Fatal(err)
		}
		meta := scanner.Meta{Service: "smtp", Sender: "a@example.test", Recipients: []string{"rcpt@example.test"}}
		return o.JudgeMail(proxy.Subject{Meta: meta}, proxy.ReadHead(o.File()), over, true)
	}
	head := "From: a@example.test\r\nTo: rcpt@example.test\r\nSubject: offer\r\n\r\n"
	spam := judge("fsasd_service = yes", head+eicar.GTUBE+"\r\n")
	if spam.Kind != outcome.Clean || spam.Spam.Head.Tag == "" || len(spam.Fields(true)) < 2 || !strings.HasPrefix(spam.Fields(true)[0], "X-Virus-Status: clean") {
		t.Errorf("GTUBE: %v %+v %q", spam.Kind, spam.Spam, spam.Fields(true))
	}
	virus := judge("fsasd_service = yes", head+eicar.String+"\r\n")
	if virus.Delivery == outcome.Deliver || len(virus.Spam.Headers) != 0 {
		t.Errorf("EICAR: %v, spam checked %q", virus.Delivery, virus.Spam.Headers)
	}
	big := judge("fsasd_service = yes\nmax_scan_size = 1K", head+strings.Repeat("spam spam\r\n", 300)+eicar.GTUBE+"\r\n")
	if big.Kind != outcome.Oversize || len(big.Spam.Headers) != 0 {
		t.Errorf("oversize: %v, spam checked %q", big.Kind, big.Spam.Headers)
	}
}

// TestDKIMCheckReadsNoHeaderPastMaxHead: a signed mail whose header runs
// past what the gateway reads of a header (256 KiB: an attacker's way to
// make the check read without end) gets no check and no key lookup; the
// same signature on a header of ordinary size is looked up.
func TestDKIMCheckReadsNoHeaderPastMaxHead(t *testing.T) {
	c, _ := proxytest.Common(t, "smtp", "")
	lookups := 0
	c.LookupTXT = func(_ context.Context, name string) ([]string, error) {
		lookups++
		return nil, &net.DNSError{Err: "no DNS in the tests", Name: name, IsTemporary: true}
	}
	if err := c.Init(); err != nil {
		t.Fatal(err)
	}
	sig := "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel; h=from; bh=AAAA; b=AAAA\r\nFrom: a@example.com\r\n"
	check := func(mail string) string {
		tr := c.Begin(&logs.Access{URL: "mail"})
		defer tr.End()
		o := tr.Object()
		o.Fill(strings.NewReader(mail), nil)
		return c.AuthResults(o.File(), proxy.ReadHead(o.File()))
	}
	long := sig + strings.Repeat("X-Padding: "+strings.Repeat("p", 100)+"\r\n", 3000) + "\r\nbody\r\n"
	if got := check(long); got != "" || lookups != 0 {
		t.Fatalf("a header past 256 KiB: %q, %d lookups", got, lookups)
	}
	if got := check(sig + "\r\nbody\r\n"); !strings.Contains(got, "dkim=temperror") || lookups != 1 {
		t.Fatalf("an ordinary header: %q, %d lookups", got, lookups)
	}
}
