package smtp

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// TestMailTricksAreBlockedAtTheRelay: every way of eicar.Mails to hide
// EICAR from a strict parser but not from a mail reader is refused by the
// relay, and the next hop gets none of them; the same mails with a clean
// attachment are delivered byte for byte.
func TestMailTricksAreBlockedAtTheRelay(t *testing.T) {
	e := newEnv(t, "")
	e.start()
	for name, msg := range eicar.Mails() {
		err := e.send("a@example.com", []string{"b@example.com"}, msg)
		if err == nil || !strings.Contains(err.Error(), "Infected") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := len(e.sink.Mails()); n != 0 {
		t.Fatalf("%d infected mails reached the next hop", n)
	}
	clean := eicar.MailsWith("an ordinary attachment")
	for _, msg := range clean {
		if err := e.send("a@example.com", []string{"b@example.com"}, msg); err != nil {
			t.Fatalf("clean: %v", err)
		}
	}
	for _, m := range e.sink.Mails() {
		found := false
		for _, msg := range clean {
			found = found || strings.HasSuffix(string(m.Data), msg)
		}
		if !found {
			t.Errorf("a clean mail changed on the way: %q", m.Data)
		}
	}
}

// pythonReader prints FOUND when Python's email package, reading a mail as
// a mail program does (every part decoded, x-uuencode included, uuencoded
// blocks in text parts decoded too), ends up with the payload.
const pythonReader = `
import sys, email, binascii
payload = sys.argv[1].encode()
msg = email.message_from_bytes(sys.stdin.buffer.read())
found = False
for part in msg.walk():
    if part.is_multipart():
        continue
    data = part.get_payload(decode=True) or b""
    found = found or payload in data
    lines = data.splitlines()
    for i, l in enumerate(lines):
        if l.startswith(b"begin "):
            out = b""
            for u in lines[i+1:]:
                if u.strip() == b"end":
                    break
                try:
                    out += binascii.a2b_uu(u)
                except binascii.Error:
                    pass
            found = found or payload in out
print("FOUND" if found else "none")
`

// TestAMailReaderFindsWhatTheRelayBlocks: the tricks are real: Python's
// email package (as a mail program reads) gets EICAR out of several of
// them, and each of those is blocked above.
func TestAMailReaderFindsWhatTheRelayBlocks(t *testing.T) {
	py := testenv.Need(t, "python3", "python3")
	found := 0
	for name, msg := range eicar.Mails() {
		cmd := exec.Command(py, "-c", pythonReader, eicar.String)
		cmd.Stdin = strings.NewReader(msg)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.TrimSpace(string(out)) == "FOUND" {
			found++
			t.Logf("Python's email reads EICAR out of: %s", name)
		}
	}
	if found < 5 {
		t.Fatalf("Python's email found EICAR in only %d tricks", found)
	}
}

// encryptedZip is a zip whose one member is flagged encrypted: no engine
// can look into it.
func encryptedZip(t *testing.T) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "secret.txt", Method: zip.Store, Flags: 1})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("what the key would show"))
	zw.Close()
	return b.Bytes()
}

// TestEncryptedAction: an encrypted archive is refused by default, and
// with encrypted_action = pass (or notify) delivered marked, logged
// DETECT-STAT:ENCRYPTED; never as clean.
func TestEncryptedAction(t *testing.T) {
	mail := "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: application/zip; name=s.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(encryptedZip(t)) + "\r\n"
	for _, c := range []struct {
		action string
		refuse bool
	}{{"block", true}, {"pass", false}, {"notify", false}} {
		t.Run(c.action, func(t *testing.T) {
			e := newEnv(t, "encrypted_action = "+c.action)
			e.start()
			err := e.send("a@example.com", []string{"b@example.com"}, mail)
			if c.refuse {
				if err == nil || !strings.Contains(err.Error(), "Heuristics.Encrypted.Zip") {
					t.Fatalf("send: %v", err)
				}
			} else {
				got := e.sink.Mails()
				if err != nil || len(got) != 1 || !strings.Contains(string(got[0].Data), "X-Virus-Status: unscanned(encrypted)") {
					t.Fatalf("send: %v, %d mails", err, len(got))
				}
			}
			b, _ := os.ReadFile(filepath.Join(e.logDir, "access.log"))
			if !strings.Contains(string(b), "DETECT-STAT:ENCRYPTED:Heuristics.Encrypted.Zip") {
				t.Errorf("access log:\n%s", b)
			}
		})
	}
}

// TestSkipListsForMail: a skip-listed sender, or a mail whose every
// recipient is skip-listed, is delivered unscanned and marked so
// (X-Virus-Status: unscanned(skipped), DETECT-STAT:SKIPPED); one listed
// recipient beside an unlisted one does not get a virus past the others.
func TestSkipListsForMail(t *testing.T) {
	for _, c := range []struct {
		name, from string
		to         []string
		skipped    bool
	}{
		{"sender", "scanner@trusted.example", []string{"b@example.com"}, true},
		{"sender's subdomain", "x@mail.trusted.example", []string{"b@example.com"}, true},
		{"every recipient", "a@example.com", []string{"abuse@example.com", "x@lists.example.org"}, true},
		{"one recipient unlisted", "a@example.com", []string{"abuse@example.com", "victim@example.com"}, false},
		{"nothing listed", "a@example.com", []string{"b@example.com"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, "skip_senders = @trusted.example\nskip_recipients = abuse@example.com, @lists.example.org")
			e.start()
			err := e.send(c.from, c.to, eicarMail())
			b, _ := os.ReadFile(filepath.Join(e.logDir, "access.log"))
			if !c.skipped {
				if code(err) != 554 || strings.Contains(string(b), "SKIPPED") {
					t.Fatalf("send: %v\n%s", err, b)
				}
				return
			}
			got := e.sink.Mails()
			if err != nil || len(got) != 1 || !strings.Contains(string(got[0].Data), "X-Virus-Status: unscanned(skipped)") {
				t.Fatalf("send: %v, %d mails", err, len(got))
			}
			if !strings.Contains(string(b), "DETECT-STAT:SKIPPED:skip_") || strings.Contains(string(b), "CLEAN") {
				t.Fatalf("access log:\n%s", b)
			}
		})
	}
}

// TestTypeRulesInMail: a Windows program renamed .txt in a zip attached
// to a mail is refused by block_types (554, the rule named), even with
// action = pass; the same mail without the program goes through.
func TestTypeRulesInMail(t *testing.T) {
	mail := func(data []byte) string {
		return "From: a@example.com\r\nSubject: docs\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--B\r\nContent-Type: application/zip; name=docs.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
			base64.StdEncoding.EncodeToString(zipOf("readme.txt", data)) + "\r\n--B--\r\n"
	}
	for _, action := range []string{"deny", "pass"} {
		e := newEnv(t, "block_types = exe\naction = "+action)
		e.start()
		err := e.send("a@example.com", []string{"b@example.com"}, mail(eicar.WindowsProgram(false)))
		if code(err) != 554 || !strings.Contains(err.Error(), "block_types=exe") {
			t.Fatalf("action %s: %v", action, err)
		}
		if err := e.send("a@example.com", []string{"b@example.com"}, mail([]byte("plain text"))); err != nil {
			t.Fatalf("action %s, clean: %v", action, err)
		}
		b, _ := os.ReadFile(filepath.Join(e.logDir, "access.log"))
		if !strings.Contains(string(b), "DETECT-STAT:BLOCKED:block_types=exe:") || len(e.sink.Mails()) != 1 {
			t.Fatalf("action %s: %d mails delivered, access log:\n%s", action, len(e.sink.Mails()), b)
		}
	}
}

// zipWithPassword is a zip made by Info-ZIP's zip with -P.
func zipWithPassword(t *testing.T, pw string, name string, data []byte) []byte {
	t.Helper()
	zipTool := testenv.Need(t, "zip", "zip")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, name), data, 0o644)
	cmd := exec.Command(zipTool, "-q", "-P", pw, "x.zip", name)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("zip: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "x.zip"))
	return b
}

// TestArchivePasswordsFromTheBody: an encrypted zip whose password the
// mail's text gives is opened and its members scanned: EICAR in it is
// refused by name, a program in it by type, a clean one delivered as
// clean; without the password (or with archive_passwords off) the
// encrypted archive follows encrypted_action.
func TestArchivePasswordsFromTheBody(t *testing.T) {
	mail := func(body string, zipData []byte) string {
		return "From: a@example.com\r\nSubject: documents\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body +
			"\r\n--B\r\nContent-Type: application/zip; name=docs.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
			base64.StdEncoding.EncodeToString(zipData) + "\r\n--B--\r\n"
	}
	const body = "Hello,\r\nthe documents are attached. The password is S3cret-99.\r\n"
	for _, c := range []struct {
		name, keys, body string
		data             []byte
		wantErr          string // "" delivered
		wantLog          string
	}{
		{"eicar, password given", "", body, zipWithPassword(t, "S3cret-99", "report.txt", []byte(eicar.String)), "Eicar-Test-Signature", "DETECT-STAT:INFECTED:Eicar-Test-Signature:"},
		{"program, password given", "block_types = exe", body, zipWithPassword(t, "S3cret-99", "report.txt", eicar.WindowsProgram(false)), "block_types=exe", "DETECT-STAT:BLOCKED:block_types=exe:"},
		{"clean, password given", "", body, zipWithPassword(t, "S3cret-99", "report.txt", []byte("quarterly figures")), "", "DETECT-STAT:CLEAN:"},
		{"clean, no password", "", "Hello, see attached.", zipWithPassword(t, "S3cret-99", "report.txt", []byte("quarterly figures")), "Heuristics.Encrypted.Zip", "DETECT-STAT:ENCRYPTED:"},
		{"clean, wrong password", "", "password: nope", zipWithPassword(t, "S3cret-99", "report.txt", []byte("quarterly figures")), "Heuristics.Encrypted.Zip", "DETECT-STAT:ENCRYPTED:"},
		{"switched off", "archive_passwords = no", body, zipWithPassword(t, "S3cret-99", "report.txt", []byte("quarterly figures")), "Heuristics.Encrypted.Zip", "DETECT-STAT:ENCRYPTED:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.keys)
			e.start()
			err := e.send("a@example.com", []string{"b@example.com"}, mail(c.body, c.data))
			b, _ := os.ReadFile(filepath.Join(e.logDir, "access.log"))
			switch {
			case c.wantErr == "" && (err != nil || len(e.sink.Mails()) != 1 || !strings.Contains(string(e.sink.Mails()[0].Data), "X-Virus-Status: clean(fsigkd)")):
				t.Fatalf("not delivered clean: %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("send: %v, want %q", err, c.wantErr)
			case !strings.Contains(string(b), c.wantLog):
				t.Fatalf("access log lacks %q:\n%s", c.wantLog, b)
			case c.keys != "archive_passwords = no" && strings.Contains(c.body, "S3cret") && !strings.Contains(string(b), "opened%20with%20a%20password"):
				t.Fatalf("the access log does not say the archive was opened:\n%s", b)
			}
		})
	}
}
