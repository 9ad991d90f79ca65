package unpack

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// clamscanMailParts is what clamscan describes of a mail to container
// signatures, in order: its CDBNAME debug lines' names and sizes.
func clamscanMailParts(t *testing.T, mail string) []string {
	clamscan := testenv.Need(t, "clamscan", "clamav")
	dir := t.TempDir()
	db, f := filepath.Join(dir, "any.cdb"), filepath.Join(dir, "m.eml")
	os.WriteFile(db, []byte("Meta.Any:CL_TYPE_MAIL:*:.*:*:*:*:*:*:*\n"), 0o644)
	os.WriteFile(f, []byte(mail), 0o644)
	out, _ := exec.Command(clamscan, "--debug", "--allmatch", "-d", db, f).CombinedOutput()
	var got []string
	for _, m := range regexp.MustCompile(`CDBNAME:CL_TYPE_MAIL:\d+:(.*):(\d+):\d+:\d+:\d+:\d+`).FindAllStringSubmatch(string(out), -1) {
		got = append(got, m[1]+":"+m[2])
	}
	return got
}

// ourMailParts is what the walk describes of a mail to container
// signatures, in order.
func ourMailParts(mail string) []string {
	var got []string
	Scan([]byte(mail), Options{Archives: true, MIME: true, Members: func(m Member, _ func(string) bool) {
		if m.Container == TypeMail {
			got = append(got, fmt.Sprintf("%s:%d", m.Name, m.Size))
		}
	}}, Limits{}, func([]byte, func(string) bool) {})
	return got
}

// TestMailPartsDescribedAsClamscanDescribesThem: a mail's parts are
// described to container signatures (.cdb, CL_TYPE_MAIL) under the
// names and sizes clamscan gives them: a part without a name is
// "attachment", a text part attached without a file name "unknown", an
// inline text part other than plain text as it is "mixedtextportion";
// a text's size counted as ClamAV writes it (carriage returns dropped, a
// line end more), a base64 part's its bytes; a message's text body is no
// part.
func TestMailPartsDescribedAsClamscanDescribesThem(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	head := "From: a@example.com\nTo: b@example.com\nSubject: x\nMIME-Version: 1.0\n"
	multipart := func(sub string, parts ...string) string {
		m := head + "Content-Type: multipart/" + sub + "; boundary=\"bb\"\n\n"
		for _, p := range parts {
			m += "--bb\n" + p + "\n"
		}
		return m + "--bb--\n"
	}
	mails := map[string]string{
		"plain text, unnamed, named, disposition": multipart("mixed", "Content-Type: text/plain\n\nhello there\nsecond line\n",
			"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"+b64("unnamed payload bytes"),
			"Content-Type: application/octet-stream; name=\"named.bin\"\nContent-Transfer-Encoding: base64\n\n"+b64("named payload"),
			"Content-Type: application/pdf\nContent-Disposition: attachment; filename=\"doc.pdf\"\nContent-Transfer-Encoding: base64\n\n"+b64("%PDF-1.4 fake")),
		"text body alone":   head + "Content-Type: text/plain\n\njust a text body\nof two lines\n",
		"one part, named":   head + "Content-Type: application/octet-stream; name=\"single.bin\"\nContent-Transfer-Encoding: base64\n\n" + b64("single part payload") + "\n",
		"one part, unnamed": head + "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n" + b64("single unnamed") + "\n",
		"alternative":       multipart("alternative", "Content-Type: text/plain\n\nplain version", "Content-Type: text/html\n\n<html><body>html version</body></html>"),
		"qp text, inner message": multipart("mixed", "Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nqp text =3D here",
			"Content-Type: message/rfc822\n\nFrom: c@example.com\nSubject: inner\nContent-Type: application/octet-stream; name=\"inner.bin\"\nContent-Transfer-Encoding: base64\n\n"+b64("inner payload")),
		"crlf": strings.ReplaceAll(multipart("mixed", "Content-Type: text/plain\n\nline one\nline two\n",
			"Content-Type: application/octet-stream; name=\"crlf.bin\"\nContent-Transfer-Encoding: base64\n\n"+b64("crlf payload here")), "\n", "\r\n"),
		"two plain parts":            multipart("mixed", "Content-Type: text/plain\n\nfirst plain\n", "Content-Type: text/plain\n\nsecond plain part\n"),
		"inline, a type's name only": multipart("mixed", "Content-Type: text/plain; name=\"in.txt\"\nContent-Disposition: inline\n\ninline with name\n"),
		"inline, a file name":        multipart("mixed", "Content-Type: text/plain\nContent-Disposition: inline; filename=\"inl.txt\"\n\ninline fname"),
		"attached text, no name":     multipart("mixed", "Content-Type: text/plain\nContent-Disposition: attachment\n\nattached, no name\n"),
		"attached, a type's name":    multipart("mixed", "Content-Type: text/plain; name=\"only.txt\"\nContent-Disposition: attachment\n\nattach cname"),
		"html in base64":             multipart("mixed", "Content-Type: text/html\nContent-Transfer-Encoding: base64\n\n"+b64("<b>html b64</b>")),
		"picture, unnamed":           multipart("mixed", "Content-Type: image/png\nContent-Transfer-Encoding: base64\n\n"+b64("PNGBYTES")),
		"binary as it is":            multipart("mixed", "Content-Type: application/octet-stream\n\nraw seven bit\nbody\n"),
		"8bit text":                  multipart("mixed", "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\neight bit text\n"),
		"csv":                        multipart("mixed", "Content-Type: text/csv\n\na,b\n1,2\n"),
		"named text in base64":       multipart("mixed", "Content-Type: text/plain; name=\"b.txt\"\nContent-Transfer-Encoding: base64\n\n"+b64("b64 text named")),
		"qp binary":                  multipart("mixed", "Content-Type: application/octet-stream; name=\"qp.bin\"\nContent-Transfer-Encoding: quoted-printable\n\nqp=3Dbin\nline2\n"),
		"a name made safe":           multipart("mixed", "Content-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"a b(c).exe\"\nContent-Transfer-Encoding: base64\n\n"+b64("MZ payload")),
	}
	for name, m := range mails {
		want, got := clamscanMailParts(t, m), ourMailParts(m)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: %q, clamscan %q", name, got, want)
		}
	}
}
