package main

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// TestQuarantineListShowReleaseDelete: a mail the relay refuses (as
// shipped, mail is kept) and a download the FTP proxy blocks (quarantine =
// yes) are kept, their ids in the access log; `fsigkd quarantine` lists
// them, shows one, sends the mail on to its recipients through the next
// hop, writes the file out byte for byte, and deletes them.
func TestQuarantineListShowReleaseDelete(t *testing.T) {
	curl := testenv.Need(t, "curl", "curl")
	g := gateway(t, 4, map[string]string{"ftp": "quarantine = yes"})
	q := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(binary(t), append([]string{"quarantine", "-c", g.conf}, args...)...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}

	mail := "From: mallory@example.com\r\nTo: alice@example.com\r\nSubject: invoice\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream; name=e.com\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte(eicar.String)) + "\r\n"
	c, err := gosmtp.Dial(g.addr("smtp"))
	if err != nil {
		t.Fatal(err)
	}
	err = c.SendMail("mallory@example.com", []string{"alice@example.com", "bob@example.com"}, strings.NewReader(mail))
	c.Close()
	if err == nil || !strings.Contains(err.Error(), "554") {
		t.Fatalf("the infected mail: %v", err)
	}
	os.WriteFile(filepath.Join(g.ftp.Root, "eicar.com"), []byte(eicar.String), 0o644)
	if out, err := exec.Command(curl, "-s", "--max-time", "20",
		"ftp://anonymous%40"+strings.ReplaceAll(g.ftp.Addr, ":", "%3A")+":x@"+g.addr("ftp")+"/eicar.com").Output(); err == nil || strings.Contains(string(out), "EICAR") {
		t.Fatalf("EICAR over FTP: %v %q", err, out)
	}

	idRe := regexp.MustCompile(`DETECT-STAT:INFECTED:Eicar-Test-Signature:[^:]*:([0-9]{8}-[0-9]{6}-[0-9a-f]{8}):`)
	var ids []string
	waitFor(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(g.dir, "state", "log", "access.log"))
		ids = nil
		for _, m := range idRe.FindAllStringSubmatch(string(b), -1) {
			ids = append(ids, m[1])
		}
		return len(ids) >= 3 // the mail's two recipients' lines, and the file's
	})

	list, code := q("list")
	mailID, fileID := "", ""
	for _, l := range strings.Split(list, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 4 && f[4] == "smtp":
			mailID = f[0]
		case len(f) > 4 && f[4] == "ftp":
			fileID = f[0]
		}
	}
	if code != 0 || mailID == "" || fileID == "" || !strings.Contains(list, "mail from <mallory@example.com> to <alice@example.com>, <bob@example.com>") {
		t.Fatalf("list (%d):\n%s", code, list)
	}
	if !strings.Contains(strings.Join(ids, " "), mailID) || !strings.Contains(strings.Join(ids, " "), fileID) {
		t.Fatalf("ids %v; list:\n%s", ids, list)
	}
	if out, _ := q("show", mailID); !strings.Contains(out, `"verdict": "Eicar-Test-Signature"`) || !strings.Contains(out, `"sha256"`) {
		t.Fatalf("show:\n%s", out)
	}

	if out, code := q("release", mailID); code != 0 {
		t.Fatalf("release of the mail (%d): %s", code, out)
	}
	got := g.hop.Mails()
	if len(got) != 1 || len(got[0].To) != 2 || got[0].From != "mallory@example.com" ||
		!strings.Contains(string(got[0].Data), "X-Fsigkd-Released: "+mailID) || !strings.Contains(string(got[0].Data), base64.StdEncoding.EncodeToString([]byte(eicar.String))) {
		t.Fatalf("the next hop got %d mails: %+v", len(got), got)
	}
	if out, code := q("release", fileID); code != 2 || !strings.Contains(out, "-o FILE") {
		t.Fatalf("release of a file without -o (%d): %s", code, out)
	}
	dest := filepath.Join(t.TempDir(), "released")
	if out, code := q("release", fileID, "-o", dest); code != 0 {
		t.Fatalf("release -o (%d): %s", code, out)
	}
	if b, _ := os.ReadFile(dest); string(b) != eicar.String {
		t.Fatalf("released file %q", b)
	}
	for _, id := range []string{mailID, fileID} {
		if out, code := q("delete", id); code != 0 {
			t.Fatalf("delete (%d): %s", code, out)
		}
	}
	if out, code := q("show", mailID); code != 2 || !strings.Contains(out, "no such quarantine entry") {
		t.Fatalf("show after delete (%d): %s", code, out)
	}
	// Each release and deletion is in this gateway's log in the
	// quarantine, with who did it and the gateway that kept the entry.
	host, _ := os.Hostname()
	logged, _ := os.ReadFile(filepath.Join(g.dir, "state", "quarantine", "log", host+".log"))
	for _, want := range []string{"release " + mailID + " to 2 recipient(s)", "release " + fileID + " to " + dest, "delete " + mailID, "delete " + fileID, "user=", "kept-by=" + host} {
		if !strings.Contains(string(logged), want) {
			t.Errorf("the quarantine's log lacks %q:\n%s", want, logged)
		}
	}
	if out, code := q("show", "../../etc/passwd"); code != 2 {
		t.Fatalf("a path as id (%d): %s", code, out)
	}
}

// TestReleaseSendsOnlyWhereTheRelayWould: a mail kept from a client in
// relay_clients, to a local and an outside recipient. With the settings
// as they were, release sends it; with that client no longer in
// relay_clients, release refuses (the relay would not send to the
// outside recipient for it now) and nothing reaches the next hop.
func TestReleaseSendsOnlyWhereTheRelayWould(t *testing.T) {
	g := gateway(t, 4, map[string]string{"smtp": "local_domains = example.com\nrelay_clients = 127.0.0.0/8"})
	mail := "From: mallory@example.com\r\nSubject: invoice\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream; name=e.com\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte(eicar.String)) + "\r\n"
	c, err := gosmtp.Dial(g.addr("smtp"))
	if err != nil {
		t.Fatal(err)
	}
	err = c.SendMail("mallory@example.com", []string{"alice@example.com", "eve@outside.test"}, strings.NewReader(mail))
	c.Close()
	if err == nil || !strings.Contains(err.Error(), "554") {
		t.Fatalf("the infected mail: %v", err)
	}
	idRe := regexp.MustCompile(`DETECT-STAT:INFECTED:Eicar-Test-Signature:[^:]*:([0-9]{8}-[0-9]{6}-[0-9a-f]{8}):`)
	var id string
	waitFor(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(g.dir, "state", "log", "access.log"))
		if m := idRe.FindSubmatch(b); m != nil {
			id = string(m[1])
		}
		return id != ""
	})
	release := func() (string, int) {
		out, err := exec.Command(binary(t), "quarantine", "-c", g.conf, "release", id).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		return string(out), 0
	}
	ini, _ := os.ReadFile(g.conf)
	os.WriteFile(g.conf, []byte(strings.Replace(string(ini), "relay_clients = 127.0.0.0/8", "relay_clients = 10.0.0.0/8", 1)), 0o644)
	if out, code := release(); code != 2 || !strings.Contains(out, "does not send to eve@outside.test for client 127.0.0.1") {
		t.Fatalf("release to an outside recipient for a client the relay no longer relays for (%d): %s", code, out)
	}
	if got := g.hop.Mails(); len(got) != 0 {
		t.Fatalf("the next hop got %d mails", len(got))
	}
	os.WriteFile(g.conf, ini, 0o644)
	if out, code := release(); code != 0 {
		t.Fatalf("release with the settings as they were (%d): %s", code, out)
	}
	if got := g.hop.Mails(); len(got) != 1 || len(got[0].To) != 2 {
		t.Fatalf("the next hop got %+v", got)
	}
}
