package fsavd_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/fsavd"
	"github.com/fsigkd/fsigkd/fsavd/engine"
	"github.com/fsigkd/fsigkd/internal/enginetest"
	"github.com/fsigkd/fsigkd/internal/testenv"
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

// TestScanBytes: a small object's bytes sent with SCANBYTES are scanned
// and answered as SCANFD answers, named as sent; without CONFIGURE
// SCANBYTES 1 they are read and refused; a length past MaxInline or not
// a number ends the session (what follows cannot be told from commands),
// as a connection closed before the bytes all came does.
func TestScanBytes(t *testing.T) {
	sock := enginetest.FsavdSocket(t)
	dial := func() (net.Conn, func() string, func(string)) {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		line := func() string { l, _ := br.ReadString('\n'); return strings.TrimRight(l, "\n") }
		line() // DBVERSION
		return c, line, func(s string) { c.Write([]byte(s)) }
	}
	_, line, send := dial()
	send("SCANBYTES\tobject\t5\nhello")
	if r := line(); !strings.HasPrefix(r, "SCAN_FAILURE\tobject\t") {
		t.Fatalf("without the option: %q", r)
	}
	line()
	send("CONFIGURE\tSCANBYTES\t1\n")
	if r := line(); !strings.HasPrefix(r, "OK\t") {
		t.Fatalf("CONFIGURE SCANBYTES: %q", r)
	}
	send("SCANBYTES\tobject\t" + fmt.Sprint(len(eicar.String)) + "\n" + eicar.String + "SCANBYTES\tobject\t5\nhello")
	if r := line(); r != "INFECTED\tobject\tEicar-Test-Signature\tfsigkd" {
		t.Fatalf("EICAR: %q", r)
	}
	line()
	if r := line(); r != "CLEAN\tobject" {
		t.Fatalf("clean: %q", r)
	}
	line()
	zipped := eicar.Zip(map[string][]byte{"e.com": []byte(eicar.String)})
	send("CONFIGURE\tARCHIVE\t1\nSCANBYTES\tobject\t" + fmt.Sprint(len(zipped)) + "\n" + string(zipped))
	line()
	if r := line(); r != "ARCHIVE_INFECTED\tobject/e.com\tEicar-Test-Signature\tfsigkd" {
		t.Fatalf("EICAR in a zip: %q", r)
	}
	for _, bad := range []string{"SCANBYTES\tobject\t" + fmt.Sprint(fsavd.MaxInline+1) + "\n", "SCANBYTES\tobject\tx\n", "SCANBYTES\tobject\t-1\n"} {
		c, line, send := dial()
		send("CONFIGURE\tSCANBYTES\t1\n" + bad)
		line()
		if r := line(); r != "ERROR\tBad SCANBYTES length" {
			t.Errorf("%q: %q", bad, r)
		}
		if r := line(); r != "" {
			t.Errorf("%q: the session went on: %q", bad, r)
		}
		c.Close()
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

// TestRiskwareAsTheClientAsks: a potentially unwanted program's
// signature (a PUA file's) is reported RISKWARE, in an archive
// ARCHIVE_RISKWARE, to a client that asks for riskware, and is no
// detection at all for one that does not; a virus is INFECTED either way.
func TestRiskwareAsTheClientAsks(t *testing.T) {
	sigs := t.TempDir()
	os.WriteFile(filepath.Join(sigs, "pua.ndu"), []byte("PUA.Win.Tool.Remote:0:*:"+hex.EncodeToString([]byte("remote administration tool"))+"\n"), 0o644)
	db, err := engine.Load(sigs)
	if err != nil {
		t.Fatal(err)
	}
	srv := &fsavd.Server{Engine: engine.New(db)}
	sock := filepath.Join(testenv.ShortDir(t), "fsavd-socket-0")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	dir := t.TempDir()
	tool := filepath.Join(dir, "tool.exe")
	os.WriteFile(tool, []byte("a remote administration tool"), 0o644)
	zipped := filepath.Join(dir, "tool.zip")
	os.WriteFile(zipped, eicar.Zip(map[string][]byte{"tool.exe": []byte("a remote administration tool")}), 0o644)
	virus := filepath.Join(dir, "e.com")
	os.WriteFile(virus, []byte(eicar.String), 0o644)
	for _, riskware := range []string{"1", "0"} {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		line := func() string { l, _ := br.ReadString('\n'); return strings.TrimRight(l, "\n") }
		line() // DBVERSION
		say := func(cmd string) string { c.Write([]byte(cmd + "\n")); return line() }
		for _, cmd := range []string{"PROTOCOL\t9", "CONFIGURE\tARCHIVE\t1", "CONFIGURE\tRISKWARE\t" + riskware} {
			if r := say(cmd); !strings.HasPrefix(r, "OK\t") {
				t.Fatalf("%s: %q", cmd, r)
			}
		}
		want := map[string]string{tool: "RISKWARE\t" + tool + "\tPUA.Win.Tool.Remote\tfsigkd\t0\t0\t0\t0",
			zipped: "ARCHIVE_RISKWARE\t" + zipped + "/tool.exe\tPUA.Win.Tool.Remote\tfsigkd\t0\t0\t0\t0",
			virus:  "INFECTED\t" + virus + "\tEicar-Test-Signature\tfsigkd\t0\t0\t0\t0"}
		if riskware == "0" {
			want[tool], want[zipped] = "CLEAN\t"+tool, "CLEAN\t"+zipped
		}
		for _, f := range []string{tool, zipped, virus} {
			if r := say("SCAN\t" + f); r != want[f] {
				t.Errorf("RISKWARE %s, %s: %q, want %q", riskware, filepath.Base(f), r, want[f])
			}
			for r := line(); r != "OK\tScan ok." && r != ""; r = line() {
				t.Errorf("more: %q", r)
			}
		}
		c.Close()
	}
}
