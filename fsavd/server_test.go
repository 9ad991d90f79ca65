package fsavd_test

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/enginetest"
)

// TestProtocolAsItsClientsSpeakIt: the dialogue Samba's and Exim's fsavd
// clients have with the daemon.
func TestProtocolAsItsClientsSpeakIt(t *testing.T) {
	sock := enginetest.FsavdSocket(t)
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	line := func() string { l, _ := br.ReadString('\n'); return strings.TrimRight(l, "\n") }
	if g := line(); !strings.HasPrefix(g, "DBVERSION\t") {
		t.Fatalf("greeting %q", g)
	}
	say := func(cmd string) string { c.Write([]byte(cmd + "\n")); return line() }
	if r := say("PROTOCOL\t9"); !strings.HasPrefix(r, "OK\t") {
		t.Fatalf("PROTOCOL: %q", r)
	}
	for _, opt := range []string{"ARCHIVE\t1", "MIME\t1", "RISKWARE\t0", "TIMEOUT\t30", "FILTER\t0", "MAXARCH\t5"} {
		if r := say("CONFIGURE\t" + opt); !strings.HasPrefix(r, "OK\t") {
			t.Fatalf("CONFIGURE %s: %q", opt, r)
		}
	}
	if r := say("CONFIGURE\tNOSUCH\t1"); !strings.HasPrefix(r, "ERROR\t") {
		t.Fatalf("unknown option: %q", r)
	}
	if r := say("PING"); !strings.HasPrefix(r, "ERROR\t") {
		t.Fatalf("PING (Samba's health check) wants ERROR: %q", r)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "e.com")
	os.WriteFile(bad, []byte(eicar.String), 0o644)
	good := filepath.Join(dir, "g.txt")
	os.WriteFile(good, []byte("hello"), 0o644)
	if r := say("SCAN\t" + bad); r != "INFECTED\t"+bad+"\tEicar-Test-Signature\tfsigkd\t0\t0\t0\t0" {
		t.Fatalf("SCAN EICAR: %q", r)
	}
	if r := line(); r != "OK\tScan ok." {
		t.Fatalf("after the result: %q", r)
	}
	if r := say("SCAN\t" + good); r != "CLEAN\t"+good {
		t.Fatalf("SCAN clean: %q", r)
	}
	line()
	if r := say("SCAN\trelative/path"); !strings.HasPrefix(r, "SCAN_FAILURE\trelative/path\t0x") {
		t.Fatalf("relative path: %q", r)
	}
	line()
	if r := say("SCAN\t" + filepath.Join(dir, "missing")); !strings.HasPrefix(r, "SCAN_FAILURE\t") {
		t.Fatalf("missing file: %q", r)
	}
	line()
	if r := say(strings.Repeat("x", 5000) /* past a path of PATH_MAX and the verb */); r != "ERROR\tLine too long" {
		t.Fatalf("long line: %q", r)
	}
}

// TestProtocol5HasNoExtraFields: without PROTOCOL 9 the detection line
// ends with the engine's name, as Exim's pattern expects.
func TestProtocol5HasNoExtraFields(t *testing.T) {
	sock := enginetest.FsavdSocket(t)
	c, _ := net.Dial("unix", sock)
	defer c.Close()
	br := bufio.NewReader(c)
	br.ReadString('\n')
	p := filepath.Join(t.TempDir(), "e")
	os.WriteFile(p, []byte(eicar.String), 0o644)
	c.Write([]byte("SCAN\t" + p + "\n"))
	l, _ := br.ReadString('\n')
	if l != "INFECTED\t"+p+"\tEicar-Test-Signature\tfsigkd\n" {
		t.Fatalf("%q", l)
	}
}
