package engine

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// TestMailReadAsReadersReadIt: each trick of eicar.Mails hides EICAR from
// a strict parser but not from a mail reader; the engine finds it in each,
// and in none of them is EICAR in the clear (the raw pass cannot find it).
func TestMailReadAsReadersReadIt(t *testing.T) {
	e := builtin(t)
	for name, msg := range eicar.Mails() {
		if strings.Contains(msg, eicar.String) {
			t.Fatalf("%s: EICAR is in the clear", name)
		}
		d := e.ScanBytes([]byte(msg), all)
		if len(d) == 0 || d[0].Name != "Eicar-Test-Signature" {
			t.Errorf("%s: %s", name, names(d))
		}
		// The same with LF line ends, as some stores keep mail.
		lf := strings.ReplaceAll(msg, "\r\n", "\n")
		if d := e.ScanBytes([]byte(lf), all); len(d) == 0 || d[0].Name != "Eicar-Test-Signature" {
			t.Errorf("%s, LF lines: %s", name, names(d))
		}
	}
	for name, msg := range eicar.MailsWith("an ordinary attachment, nothing in it") {
		if d := e.ScanBytes([]byte(msg), all); len(d) != 0 {
			t.Errorf("%s, clean: %s", name, names(d))
		}
	}
}

// TestUUEncodedTextIsScanned: uuencoded text in a file fetched over
// HTTP is found too.
func TestUUEncodedTextIsScanned(t *testing.T) {
	e := builtin(t)
	if d := e.ScanBytes([]byte("readme\n"+eicar.UUEncode("e.com", []byte(eicar.String))), all); len(d) == 0 {
		t.Fatal("uuencoded EICAR in a text file not found")
	}
}

// TestMailReadingsAreBounded: a mail built so that every level is read
// four ways (two Content-Type and two Content-Transfer-Encoding fields,
// each reading a message again) would be walked 4^12 times; the walk stops
// at maxParts entities and says so, never passing it as clean.
func TestMailReadingsAreBounded(t *testing.T) {
	e := builtin(t)
	level := "Content-Type: message/rfc822\r\nContent-Type: message/global\r\nContent-Transfer-Encoding: 7bit\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
	msg := "From: a@example.com\r\n" + strings.Repeat(level, 12) + "the end\r\n"
	e.Limits = Limits{MaxDepth: 20}
	d := e.ScanBytes([]byte(msg), all)
	if len(d) != 1 || d[0].Name != "Heuristics.Limits.Exceeded.Files" || d[0].Kind != Suspected {
		t.Fatalf("%s", names(d))
	}
}

func FuzzMIME(f *testing.F) {
	for _, m := range eicar.Mails() {
		f.Add([]byte(m))
	}
	db, _ := Load("")
	e := New(db)
	e.Limits = Limits{MaxFileSize: 1 << 20, MaxTotal: 4 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		e.ScanBytes(append([]byte("From: a@b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"), data...), Options{MIME: true})
	})
}

// TestOpaqueSignedMail: an S/MIME opaque-signed mail
// (application/pkcs7-mime, signed-data) carries the signed entity inside
// its CMS structure, where a mail reader shows it; EICAR attached in it
// went through. Signed by openssl (-nodetach), with a base64 attachment
// and as a plain text: EICAR is found; the clean twin is clean.
func TestOpaqueSignedMail(t *testing.T) {
	e := builtin(t)
	ossl := tool(t, "openssl", "openssl")
	dir := t.TempDir()
	if out, err := exec.Command(ossl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", filepath.Join(dir, "k.pem"),
		"-out", filepath.Join(dir, "c.pem"), "-days", "1", "-subj", "/CN=signer").CombinedOutput(); err != nil {
		t.Fatalf("openssl req: %v %s", err, out)
	}
	sign := func(entity string) []byte {
		c := exec.Command(ossl, "smime", "-sign", "-nodetach", "-signer", filepath.Join(dir, "c.pem"), "-inkey", filepath.Join(dir, "k.pem"), "-outform", "SMIME")
		c.Stdin = strings.NewReader(entity)
		out, err := c.Output()
		if err != nil {
			t.Fatalf("openssl smime: %v", err)
		}
		return append([]byte("From: a@example.com\r\nTo: b@example.com\r\nSubject: signed\r\n"), out...)
	}
	attach := func(payload string) string {
		return "Content-Type: application/octet-stream; name=e.com\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
			base64.StdEncoding.EncodeToString([]byte(payload)) + "\r\n"
	}
	for name, entity := range map[string]string{
		"a base64 attachment": attach(eicar.String),
		"a plain text":        "Content-Type: text/plain\r\n\r\n" + eicar.String + "\r\n",
	} {
		mail := sign(entity)
		if strings.Contains(string(mail), eicar.String) {
			t.Fatalf("%s: EICAR in the clear", name)
		}
		if d := e.ScanBytes(mail, all); len(d) == 0 || d[0].Name != "Eicar-Test-Signature" {
			t.Errorf("%s: %s", name, names(d))
		}
	}
	if d := e.ScanBytes(sign(attach("an ordinary attachment")), all); len(d) != 0 {
		t.Errorf("clean: %s", names(d))
	}
}

// TestMessageInParts: a message sent as message/partial fragments (RFC
// 2046 5.2.2) hid its attachment from a walk that read each fragment
// alone. All fragments in one mail: joined and walked, EICAR found, the
// clean twin clean. A fragment alone cannot be read whole: never clean.
func TestMessageInParts(t *testing.T) {
	e := builtin(t)
	inner := func(payload string) string {
		return "Subject: the real one\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream; name=e.com\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
			base64.StdEncoding.EncodeToString([]byte(payload)) + "\r\n"
	}
	fragments := func(msg string, n int) []string {
		var out []string
		size := (len(msg) + n - 1) / n
		for i := 0; i < n; i++ {
			out = append(out, fmt.Sprintf("Content-Type: message/partial; id=\"abc@example.com\"; number=%d; total=%d\r\n\r\n%s",
				i+1, n, msg[i*size:min((i+1)*size, len(msg))]))
		}
		return out
	}
	mail := func(parts []string) []byte {
		var b strings.Builder
		b.WriteString("From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n")
		for _, p := range parts {
			b.WriteString("--b\r\n" + p + "\r\n")
		}
		b.WriteString("--b--\r\n")
		return []byte(b.String())
	}
	bad := fragments(inner(eicar.String), 3)
	// Out of order, as they may come.
	if d := e.ScanBytes(mail([]string{bad[2], bad[0], bad[1]}), all); len(d) == 0 || d[0].Name != "Eicar-Test-Signature" {
		t.Errorf("all fragments: %s", names(d))
	}
	if d := e.ScanBytes(mail(fragments(inner("an ordinary attachment"), 3)), all); len(d) != 0 {
		t.Errorf("clean: %s", names(d))
	}
	if d := e.ScanBytes(mail(bad[:1]), all); len(d) == 0 || d[0].Name != "Heuristics.Partial.Message" {
		t.Errorf("one fragment alone: %s", names(d))
	}
}

// mboxForms are mailboxes (mbox files, as mail readers keep and export
// them) carrying payload as a file in base64, each a way the file sits
// in one.
func mboxForms(payload []byte) map[string]string {
	b64 := base64.StdEncoding.EncodeToString(payload)
	var lines []string
	for len(b64) > 76 {
		lines = append(lines, b64[:76])
		b64 = b64[76:]
	}
	body := strings.Join(append(lines, b64), "\n") + "\n"
	sep := func(who string) string { return "From " + who + "@example.com Mon Dec  7 10:00:00 2026\n" }
	plain := func(who string) string { return "From: " + who + "@example.com\nSubject: hello\n\nnothing here\n\n" }
	single := "From: z@example.com\nSubject: a file\nContent-Type: application/zip; name=a.zip\nContent-Transfer-Encoding: base64\n\n" + body
	multi := "From: z@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\n" +
		"Hello,\nFrom the team\nRegards\n>From the archive\n--B\nContent-Type: application/zip\nContent-Transfer-Encoding: base64\n\n" + body + "--B--\n"
	return map[string]string{
		"one message":                       sep("z") + single,
		"first line escaped (>From)":        ">" + sep("z") + single,
		"the second of two":                 sep("a") + plain("a") + sep("z") + single,
		"the third of three, CRLF lines":    strings.ReplaceAll(sep("a")+plain("a")+sep("b")+plain("b")+sep("z")+single, "\n", "\r\n"),
		"multipart, From lines in its text": sep("a") + plain("a") + sep("z") + multi,
	}
}

// TestMboxFilesReadAsMailReadersReadThem: a file in a mailbox (an mbox
// file fetched, attached or archived) went through when its mail was
// not multipart: the separator line ("From " and the sender) was no
// header field, so the mailbox was no mail. Python's mailbox module
// (mbox, as mail readers split it) finds the file in the same message
// of each form it reads (not a first line escaped, which ClamAV reads;
// it splits a message at every line that begins with "From ", where
// mutt and the engine look for a header after it), clamscan in each; the
// engine finds EICAR in each, and in each inside a zip; the clean twins
// are clean.
func TestMboxFilesReadAsMailReadersReadThem(t *testing.T) {
	e := builtin(t)
	zipped := eicar.Zip(map[string][]byte{"e.com": []byte(eicar.String)})
	clean := eicar.Zip(map[string][]byte{"e.com": []byte("nothing")})
	py := testenv.Need(t, "python3", "python3")
	db := eicarSigDir(t)
	corpus := t.TempDir()
	forms := mboxForms(zipped)
	for name, box := range forms {
		os.WriteFile(filepath.Join(corpus, name), []byte(box), 0o644)
	}
	theirs := clamscanFinds(t, db, corpus)
	for name, box := range forms {
		if theirs[name] != "Eicar-Test-Signature" {
			t.Errorf("%s: clamscan finds %q", name, theirs[name])
		}
		if !strings.HasPrefix(name, "first line escaped") && !strings.HasPrefix(name, "multipart, From lines") {
			f := filepath.Join(t.TempDir(), "box")
			os.WriteFile(f, []byte(box), 0o644)
			out, err := exec.Command(py, "-c", `import mailbox, sys, zipfile, io
for i, m in enumerate(mailbox.mbox(sys.argv[1])):
    for p in m.walk():
        d = p.get_payload(decode=True)
        if d and d.startswith(b"PK"):
            print(i, zipfile.ZipFile(io.BytesIO(d)).read("e.com").decode())`, f).CombinedOutput()
			if err != nil || !strings.Contains(string(out), eicar.String) {
				t.Errorf("%s: Python's mailbox: %v %s", name, err, out)
			}
		}
		if d := e.ScanBytes([]byte(box), all); len(d) == 0 || d[0].Name != "Eicar-Test-Signature" {
			t.Errorf("%s: %s", name, names(d))
		}
		if d := e.ScanBytes(eicar.Zip(map[string][]byte{"box.mbox": []byte(box)}), all); len(d) == 0 || d[0].Name != "Eicar-Test-Signature" {
			t.Errorf("%s, in a zip: %s", name, names(d))
		}
	}
	for name, box := range mboxForms(clean) {
		if d := e.ScanBytes([]byte(box), all); len(d) != 0 {
			t.Errorf("%s, clean: %s", name, names(d))
		}
	}
}

// TestMboxMessagesAreBounded: a mailbox of many messages is walked up to
// the bound on entities, and said to be past it, never clean.
func TestMboxMessagesAreBounded(t *testing.T) {
	e := builtin(t)
	box := strings.Repeat("From a@example.com Mon Dec  7 10:00:00 2026\nFrom: a@example.com\n\nhi\n", 5000)
	d := e.ScanBytes([]byte(box), all)
	if len(d) != 1 || d[0].Name != "Heuristics.Limits.Exceeded.Files" || d[0].Kind != Suspected {
		t.Fatalf("%s", names(d))
	}
}

// TestMailStartsReadAsReadersReadThem: a mail whose header starts
// otherwise than on its first byte, or whose lines end otherwise than
// with LF, went through when its attachment was not in a multipart (its
// file in base64, the mail single-part): each form is read by the reader
// named (clamscan with EICAR's signature, Python's email parser, Python's
// MMDF mailbox), which finds the file; the engine finds EICAR in each;
// the clean twins are clean.
func TestMailStartsReadAsReadersReadThem(t *testing.T) {
	py := testenv.Need(t, "python3", "python3")
	forms := func(payload []byte) map[string]struct {
		mail    string
		readers []string
	} {
		b64 := base64.StdEncoding.EncodeToString(payload)
		m := "From: a@example.com\nSubject: a file\nContent-Type: application/zip; name=a.zip\nContent-Transfer-Encoding: base64\n\n" + b64 + "\n"
		crlf := strings.ReplaceAll(m, "\n", "\r\n")
		return map[string]struct {
			mail    string
			readers []string
		}{
			"a blank line first":            {"\n" + m, []string{"clamscan"}},
			"a line of spaces first":        {"  \r\n" + crlf, []string{"clamscan"}},
			"a first line that is no field": {"Not A Field: x\n" + m, []string{"clamscan"}},
			"lines ended by CR alone":       {strings.ReplaceAll(m, "\n", "\r"), []string{"python-email"}},
			"an MMDF mailbox, the second message": {"\x01\x01\x01\x01\nFrom: b@example.com\nSubject: hi\n\nnothing\n\x01\x01\x01\x01\n" +
				"\x01\x01\x01\x01\n" + m + "\x01\x01\x01\x01\n", []string{"clamscan", "python-mmdf"}},
		}
	}
	e := builtin(t)
	db := eicarSigDir(t)
	corpus := t.TempDir()
	infected := forms(eicar.Zip(map[string][]byte{"e.com": []byte(eicar.String)}))
	for name, f := range infected {
		os.WriteFile(filepath.Join(corpus, name), []byte(f.mail), 0o644)
	}
	theirs := clamscanFinds(t, db, corpus)
	for name, f := range infected {
		for _, r := range f.readers {
			switch r {
			case "clamscan":
				if theirs[name] != "Eicar-Test-Signature" {
					t.Errorf("%s: clamscan finds %q", name, theirs[name])
				}
			case "python-email", "python-mmdf":
				read := `email.message_from_bytes(open(sys.argv[1], "rb").read()).walk()`
				if r == "python-mmdf" {
					read = `(p for m in mailbox.MMDF(sys.argv[1]) for p in m.walk())`
				}
				out, err := exec.Command(py, "-c", `import email, mailbox, sys, zipfile, io
for p in `+read+`:
    d = p.get_payload(decode=True)
    if d and d.startswith(b"PK"):
        print(zipfile.ZipFile(io.BytesIO(d)).read("e.com").decode())`, filepath.Join(corpus, name)).CombinedOutput()
				if err != nil || !strings.Contains(string(out), eicar.String) {
					t.Errorf("%s: %s: %v %s", name, r, err, out)
				}
			}
		}
		if d := e.ScanBytes([]byte(f.mail), all); len(d) == 0 || d[0].Name != "Eicar-Test-Signature" {
			t.Errorf("%s: %s", name, names(d))
		}
	}
	for name, f := range forms(eicar.Zip(map[string][]byte{"e.com": []byte("nothing")})) {
		if d := e.ScanBytes([]byte(f.mail), all); len(d) != 0 {
			t.Errorf("%s, clean: %s", name, names(d))
		}
	}
}
