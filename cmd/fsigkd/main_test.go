package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/daemontest"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// TestGatewayEndToEnd runs the real fsigkd binary, as the README's run
// command does (the bundled fsavd started by the master), with HTTP, SMTP
// FTP and POP3 in their worker processes, and drives each with a real
// client: curl, swaks, curl again for FTP and POP3.
func TestGatewayEndToEnd(t *testing.T) {
	curl := testenv.Need(t, "curl", "curl")
	swaks := testenv.Need(t, "swaks", "swaks")
	dir := testenv.ShortDir(t)
	bin := filepath.Join(dir, "fsigkd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// The servers: an origin, a next mail hop, an FTP server.
	clean := make([]byte, 2<<20)
	rand.Read(clean)
	origin, _ := net.Listen("tcp", "127.0.0.1:0")
	defer origin.Close()
	go http.Serve(origin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/eicar.com" {
			w.Write([]byte(eicar.String))
			return
		}
		w.Write(clean)
	}))
	hop := servertest.NewMailSink(t, nil, nil)
	ftp := servertest.VSFTPD(t)
	os.WriteFile(filepath.Join(ftp.Root, "clean.bin"), clean, 0o644)
	os.WriteFile(filepath.Join(ftp.Root, "eicar.com"), []byte(eicar.String), 0o644)
	pop := servertest.Dovecot(t, "")
	popClean := "From: a@example.com\r\nSubject: hi\r\n\r\nclean\r\n"
	pop.Put(t, []byte(popClean))
	pop.Put(t, []byte("From: a@example.com\r\nSubject: hi\r\n\r\n"+eicar.String+"\r\n"))

	ports := map[string]int{"http": testenv.FreePort(t), "smtp": testenv.FreePort(t), "ftp": testenv.FreePort(t), "pop": testenv.FreePort(t)}
	_, hopPort, _ := net.SplitHostPort(hop.Addr)
	ini := fmt.Sprintf(`base_dir = %s/state
console = no
[http]
enable = yes
bind_addr = 127.0.0.1
port = %d
deny_servers =
[smtp]
enable = yes
bind_addr = 127.0.0.1
port = %d
parent_server_host = 127.0.0.1
parent_server_port = %s
[ftp]
enable = yes
bind_addr = 127.0.0.1
port = %d
deny_servers =
[pop]
enable = yes
bind_addr = 127.0.0.1
port = %d
deny_servers =
`, dir, ports["http"], ports["smtp"], hopPort, ports["ftp"], ports["pop"])
	conf := filepath.Join(dir, "fsigk.ini")
	os.WriteFile(conf, []byte(ini), 0o644)
	daemontest.Daemon(t, bin, "-f", "-c", conf)

	proxy := fmt.Sprintf("http://127.0.0.1:%d", ports["http"])
	got, err := exec.Command(curl, "-s", "-x", proxy, "http://"+origin.Addr().String()+"/clean").Output()
	if err != nil || !bytes.Equal(got, clean) {
		t.Errorf("HTTP clean: %v, %d bytes", err, len(got))
	}
	code, _ := exec.Command(curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "-x", proxy, "http://"+origin.Addr().String()+"/eicar.com").Output()
	if string(code) != "403" {
		t.Errorf("HTTP EICAR: %s", code)
	}

	att := filepath.Join(dir, "eicar.com")
	os.WriteFile(att, []byte(eicar.String), 0o644)
	smtpAddr := fmt.Sprintf("127.0.0.1:%d", ports["smtp"])
	sw, _ := exec.Command(swaks, "--server", smtpAddr, "--from", "a@example.com", "--to", "b@example.com", "--attach", "@"+att).CombinedOutput()
	if !strings.Contains(string(sw), "554 5.7.1 Infected by Eicar-Test-Signature") {
		t.Errorf("SMTP EICAR:\n%s", sw)
	}
	if sw, err := exec.Command(swaks, "--server", smtpAddr, "--from", "a@example.com", "--to", "b@example.com", "--body", "hello").CombinedOutput(); err != nil {
		t.Errorf("SMTP clean: %v\n%s", err, sw)
	}

	user := strings.NewReplacer("@", "%40", ":", "%3A").Replace("anonymous@" + ftp.Addr)
	ftpURL := fmt.Sprintf("ftp://%s:x@127.0.0.1:%d/", user, ports["ftp"])
	got, err = exec.Command(curl, "-s", ftpURL+"clean.bin").Output()
	if err != nil || !bytes.Equal(got, clean) {
		t.Errorf("FTP clean: %v, %d bytes", err, len(got))
	}
	if got, err := exec.Command(curl, "-s", ftpURL+"eicar.com").Output(); err == nil || bytes.Contains(got, []byte("EICAR")) {
		t.Errorf("FTP EICAR came through: %q", got)
	}

	popUser := strings.NewReplacer("@", "%40", ":", "%3A").Replace("alice@" + pop.Addr)
	popURL := fmt.Sprintf("pop3://%s:secret@127.0.0.1:%d/", popUser, ports["pop"])
	if got, err := exec.Command(curl, "-s", popURL+"1").Output(); err != nil || string(got) != popClean {
		t.Errorf("POP3 clean: %v, %q", err, got)
	}
	if got, _ := exec.Command(curl, "-s", popURL+"2").Output(); !bytes.Contains(got, []byte("[VIRUS REMOVED]")) || bytes.Contains(got, []byte("EICAR-STANDARD")) {
		t.Errorf("POP3 EICAR: %q", got)
	}

	if n := len(hop.Mails()); n != 1 {
		t.Errorf("the next hop got %d mails, want the clean one", n)
	}
	status, err := exec.Command(bin, "status", "-c", conf).Output()
	if err != nil || !strings.Contains(string(status), "http ") || !strings.Contains(string(status), "smtp ") || !strings.Contains(string(status), "ftp ") || !strings.Contains(string(status), "pop ") {
		t.Errorf("status: %v\n%s", err, status)
	}
	access, _ := os.ReadFile(filepath.Join(dir, "state", "log", "access.log"))
	for _, want := range []string{"PROXY-STAT:http:", "PROXY-STAT:smtp:", "PROXY-STAT:ftp:", "PROXY-STAT:pop:", "DETECT-STAT:INFECTED:Eicar-Test-Signature:"} {
		if !strings.Contains(string(access), want) {
			t.Errorf("access log lacks %q:\n%s", want, access)
		}
	}
}

// TestCommandLine: version and help print and exit 0, a subcommand's -h
// too; every error is one "fsigkd: " line, exit 1 for a bad settings file,
// 2 for bad usage.
func TestCommandLine(t *testing.T) {
	bin := binary(t)
	bad := filepath.Join(t.TempDir(), "bad.ini")
	os.WriteFile(bad, []byte("[http]\nenable = perhaps\n"), 0o644)
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"version"}, 0, "fsigkd ", ""},
		{[]string{"--version"}, 0, "fsigkd ", ""},
		{[]string{"help"}, 0, "usage:", ""},
		{[]string{"-h"}, 0, "usage:", ""},
		{[]string{"--help"}, 0, "usage:", ""},
		{[]string{"check", "-h"}, 0, "usage: fsigkd check", ""},
		{[]string{"status", "-h"}, 0, "usage: fsigkd status", ""},
		{[]string{"bogus"}, 2, "", "fsigkd: unknown command"},
		{[]string{"-x"}, 2, "", "fsigkd: flag provided but not defined"},
		{[]string{"check", "-x"}, 2, "", "fsigkd: check: flag provided but not defined"},
		{[]string{"check", "-c", bad}, 1, "", "fsigkd: " + bad + ":2: enable:"},
		{[]string{"-f", "-c", bad}, 1, "", "fsigkd: " + bad + ":2: enable:"},
		{[]string{"rules", "-c", bad}, 1, "", "fsigkd: " + bad + ":2: enable:"},
		{[]string{"rules", "-h"}, 0, "usage: fsigkd rules [-c FILE] [--format", ""},
		{[]string{"rules", "--format", "pf", "-c", "../../deploy/fsigk.ini"}, 2, "", "fsigkd: rules: format \"pf\""},
		{[]string{"rules", "--format=shell", "-c", "../../deploy/fsigk.ini"}, 0, "#!/bin/sh", ""},
	} {
		cmd := exec.Command(bin, tc.args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != tc.code || !strings.HasPrefix(out.String(), tc.stdout) || !strings.HasPrefix(errb.String(), tc.stderr) {
			t.Errorf("fsigkd %v: exit %d, stdout %q, stderr %q", tc.args, code, out.String(), errb.String())
		}
	}
	// Without arguments and without the installed settings file (the
	// package's test may have it in place meanwhile): how to give one.
	if _, err := os.Stat(DefaultConfig); os.IsNotExist(err) {
		b, _ := exec.Command(bin).CombinedOutput()
		if !strings.Contains(string(b), "give one with -c FILE") || !strings.Contains(string(b), "fsigkd help") {
			t.Errorf("fsigkd without arguments: %q", b)
		}
	}
}
