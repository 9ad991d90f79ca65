package scanner

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

func TestReplyParsers(t *testing.T) {
	if r, err := ParseFsavdLine("ARCHIVE_INFECTED\t/tmp/x.zip/e.com\tEICAR_Test_File\tAquarius\t0\t0\t0\t0"); err != nil || r.Name != "EICAR_Test_File" {
		t.Errorf("fsavd: %+v %v", r, err)
	}
	if _, err := ParseFsavdLine("INFECTED\t/tmp/x"); err == nil {
		t.Error("fsavd: a detection without a name accepted")
	}
	if r, _ := ParseClamdReply("fd[7]: Eicar-Test-Signature FOUND"); r.Found != "Eicar-Test-Signature" {
		t.Errorf("clamd: %+v", r)
	}
	if r, _ := ParseClamdReply("INSTREAM size limit exceeded. ERROR"); r.Error != "INSTREAM size limit exceeded." {
		t.Errorf("clamd error: %+v", r)
	}
	r, err := ParseSpamdReply("SPAMD/1.1 0 EX_OK\r\nContent-length: 11\r\nSpam: True ; 1002.7 / 5.0\r\n\r\nGTUBE,OTHER")
	if err != nil || !r.Spam || r.Score != 1002.7 || r.Threshold != 5 || strings.Join(r.Symbols, "|") != "GTUBE|OTHER" {
		t.Errorf("spamd: %+v %v", r, err)
	}
	if r, _ := ParseSpamdReply("SPAMD/1.0 76 Bad header line: x\r\n\r\n"); r.Code != 76 {
		t.Errorf("spamd error: %+v", r)
	}
	v, err := ParseRspamdReply([]byte(`{"is_skipped":false,"score":15.2,"required_score":15,"action":"reject","symbols":{"GTUBE":{"score":0}}}`))
	if err != nil || !v.Spam || v.Score != 15.2 || v.Symbols[0] != "GTUBE" {
		t.Errorf("rspamd: %+v %v", v, err)
	}
	// rspamd's rewritten Subject, and the header changes of its "milter"
	// block: a value, an object with an order, a list; names that are no
	// header names and line ends in values dropped.
	v, err = ParseRspamdReply([]byte(`{"score":8,"required_score":15,"action":"rewrite subject","subject":"*** SPAM *** x\r\nBcc: y",
		"milter":{"add_headers":{"X-Spamd-Bar":"++++","X-Spamd-Result":{"value":"default: False","order":0},"X-Two":[{"value":"a","order":2},"b"],"Bad Name":"x","X-Evil":"a\r\nBcc: b"},
		"remove_headers":{"X-Spam":1,"Bad:Name":0}}}`))
	if err != nil || v.Subject != "*** SPAM *** x  Bcc: y" || strings.Join(v.RemoveHeaders, ",") != "X-Spam" {
		t.Errorf("rspamd subject and removals: %+v %v", v, err)
	}
	var adds []string
	for _, h := range v.AddHeaders {
		adds = append(adds, h.Name+"="+h.Value)
	}
	if got := strings.Join(adds, "|"); got != "X-Evil=a  Bcc: b|X-Spamd-Bar=++++|X-Spamd-Result=default: False|X-Two=b|X-Two=a" {
		t.Errorf("rspamd add_headers: %s", got)
	}
	h := textproto.MIMEHeader{"X-Infection-Found": {"Type=0; Resolution=2; Threat=Eicar-Test-Signature;"}}
	if ICAPThreat(h) != "Eicar-Test-Signature" {
		t.Error("icap threat")
	}
	// F-Secure's ICAP servers name the threat in a header of their own.
	h = textproto.MIMEHeader{"X-Fsecure-Scan-Result": {"infected"}, "X-Fsecure-Infection-Name": {`"EICAR_Test_File"`}}
	if got := ICAPThreat(h); got != "EICAR_Test_File" {
		t.Errorf("X-FSecure-Infection-Name read as %q", got)
	}
}

func FuzzParseFsavdLine(f *testing.F) {
	for _, s := range []string{"OK\tScan ok.", "CLEAN\t/x", "INFECTED\t/x\tn\te", "SCAN_FAILURE\t/x\t0x1\tm", "SUSPECTED\t\t\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseFsavdLine(s)
		if err == nil && statusOf(r.Kind) != Suspected && r.Name == "" && r.Kind != "OK" && r.Kind != "ERROR" && r.Kind != "CLEAN" && r.Kind != "SCAN_FAILURE" && r.Kind != "OPEN_ARCHIVE" && r.Kind != "CLOSE_ARCHIVE" {
			t.Fatalf("detection without a name from %q", s)
		}
	})
}

func FuzzParseClamdReply(f *testing.F) {
	for _, s := range []string{"stream: OK", "fd[3]: X FOUND", "x ERROR", ": FOUND", " ERROR"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseClamdReply(s)
		if err == nil && r.Found == "" && r.Error == "" && !strings.HasSuffix(s, ": OK") {
			t.Fatalf("%q read as clean", s)
		}
	})
}

func FuzzParseSpamdReply(f *testing.F) {
	f.Add("SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1.0 / 5.0\r\n\r\nA,B")
	f.Add("SPAMD/1.0 76 Bad")
	f.Fuzz(func(t *testing.T, s string) { ParseSpamdReply(s) })
}

func FuzzParseRspamdReply(f *testing.F) {
	f.Add([]byte(`{"score":1,"required_score":15,"action":"no action","symbols":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) { ParseRspamdReply(b) })
}

func FuzzParseICAPStatus(f *testing.F) {
	f.Add("ICAP/1.0 204 Unmodified")
	f.Fuzz(func(t *testing.T, s string) { ParseICAPStatus(s) })
}

// fakeSpamd answers every request with reply: the faults the real spamd
// cannot be made to give on demand (a missing database, a failed start of
// its engine) come as its documented exit codes.
func fakeSpamd(t *testing.T, reply string) string {
	return servertest.Fake(t, "unix", filepath.Join(testenv.ShortDir(t), "spamd.sock"), func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		n := 0
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if strings.HasPrefix(line, "Content-length: ") {
				n, _ = strconv.Atoi(strings.TrimSpace(line[16:]))
			}
			if line == "\r\n" {
				break
			}
		}
		io.CopyN(io.Discard, br, int64(n))
		io.WriteString(c, reply)
	})
}

func TestSpamEngineFaultsAreDocumentedMessages(t *testing.T) {
	for reply, want := range map[string]string{
		"SPAMD/1.0 78 EX_CONFIG: rules not found\r\n\r\n": "Commtouch database error: Initial database update may be on going. Wait a moment. (dlopen(%s) failed. dlerror(): EX_CONFIG: rules not found)",
		"SPAMD/1.0 69 Service Unavailable: x\r\n\r\n":     "Commtouch database error: Initial database update may be on going. Wait a moment. (FsasFunctionsInitialize failed.)",
	} {
		sock := fakeSpamd(t, reply)
		eps, _ := ParseEndpoints(sock, "")
		_, err := NewSpamd(&Pool{Endpoints: eps}).Check(ctx(t), object(t, []byte("Subject: x\r\n\r\nhi\r\n")))
		if strings.Contains(want, "%s") {
			want = fmt.Sprintf(want, sock)
		}
		if m, _ := errorMsg(err); m != want {
			t.Errorf("%q: got %q (%v)", reply, m, err)
		}
		if KindOf(err) != Broken {
			t.Errorf("%q: kind %v", reply, KindOf(err))
		}
	}
}

// TestDetectionNamesCannotInject: whatever an engine (or a signature
// file, or an ICAP server) names a detection, the name that goes into
// replies and headers has no line end or other control byte.
func TestDetectionNamesCannotInject(t *testing.T) {
	for in, want := range map[string]string{
		"Eicar-Test-Signature":                   "Eicar-Test-Signature",
		"Evil\r\n250 2.0.0 Ok: queued":           "Evil??250 2.0.0 Ok: queued",
		"X\r\nX-Virus-Status: clean(fsigkd)\r\n": "X??X-Virus-Status: clean(fsigkd)??",
		"tab\there\x00nul":                       "tab?here?nul",
		"":                                       "Unnamed",
		strings.Repeat("n", 1000):                strings.Repeat("n", maxName),
	} {
		var v Verdict
		v.add(Infected, in)
		if v.Names[0] != want {
			t.Errorf("%q: %q, want %q", in, v.Names[0], want)
		}
	}
	// Through each engine's reply parser too.
	var v Verdict
	h := textproto.MIMEHeader{"X-Infection-Found": {"Type=0; Resolution=2; Threat=A\rB;"}}
	v.add(Infected, ICAPThreat(h))
	if strings.ContainsAny(v.Name(), "\r\n") {
		t.Errorf("ICAP threat %q", v.Name())
	}
}
