// Package enginetest starts the real engines for tests, from Debian's
// packages: clamd (with a database of EICAR and one test signature of
// ours), spamd, and c-icap with its virus_scan service over that clamd.
// Each runs in a temp directory on Unix sockets and loopback ports, and is
// stopped when the test ends. A missing program skips the test with the
// package to install, unless CI is set: there it fails.
package enginetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/fsavd"
	"github.com/fsigkd/fsigkd/fsavd/engine"
)

// TestString is what the test signature of ours matches; TestName is
// the name it is loaded under (clamd adds ".UNOFFICIAL").
const (
	TestString = "fsigkd-test-signature-3b1f9c"
	TestName   = "Fsigkd.Test.Signature"
)

// NDB is a .ndb file with EICAR and the test signature.
func NDB() string {
	return "Eicar-Test-Signature:0:*:" + hex.EncodeToString([]byte(eicar.String)) + "\n" +
		TestName + ":0:*:" + hex.EncodeToString([]byte(TestString)) + "\n"
}

// Need skips (or, under CI, fails) a test when program is not installed.
func Need(t testing.TB, program, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
		if _, err := os.Stat(filepath.Join(dir, program)); err == nil {
			return filepath.Join(dir, program)
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not installed (Debian package %s), and CI must run this test", program, pkg)
	}
	t.Skipf("%s not installed: apt-get install %s", program, pkg)
	return ""
}

// NeedRoot skips a test that needs root (mounts, namespaces, fanotify),
// unless CI is set: there it fails, since CI runs as root and must run it.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("needs root (%s), and CI must run it", why)
		}
		t.Skipf("needs root: %s", why)
	}
}

// ShortDir is a temp directory with a short name: Unix socket paths are
// limited to 108 bytes.
func ShortDir(t testing.TB) string {
	dir, err := os.MkdirTemp("", "fsk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// FreePort is a loopback port nothing listens on.
func FreePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Proc is a started engine.
type Proc struct {
	t    testing.TB
	Cmd  *exec.Cmd
	Dir  string
	Sock string // its Unix socket, if any
	Addr string // its TCP address, if any
	args []string
	log  string
	done chan struct{}
	// ready says when a started process serves.
	ready func() bool
}

func (p *Proc) start() {
	p.t.Helper()
	p.Cmd = exec.Command(p.args[0], p.args[1:]...)
	out, _ := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	p.Cmd.Stdout, p.Cmd.Stderr = out, out
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.Cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func() { p.Cmd.Wait(); out.Close(); close(p.done) }()
	deadline := time.Now().Add(90 * time.Second)
	for !p.ready() {
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.log)
			p.t.Fatalf("%s exited at start (%v):\n%s", p.args[0], p.Cmd.ProcessState, b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(p.log)
			p.t.Fatalf("%s did not start:\n%s", p.args[0], b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the engine (its whole process group) and waits for it.
func (p *Proc) Stop() {
	if p.Cmd == nil || p.Cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	if p.Sock != "" {
		os.Remove(p.Sock)
	}
}

// Restart starts the engine again after Stop.
func (p *Proc) Restart() { p.Stop(); p.start() }

// Freeze stops the engine's processes (SIGSTOP) so that it hangs;
// Thaw lets them go on.
func (p *Proc) Freeze() { syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGSTOP) }

// Thaw undoes Freeze.
func (p *Proc) Thaw() { syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGCONT) }

// Log is what the engine wrote.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

func dialable(network, addr string) func() bool {
	return func() bool {
		c, err := net.DialTimeout(network, addr, 200*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
}

// Clamd starts clamd on a Unix socket and a loopback port with a database
// of EICAR and the test signature. streamMax is StreamMaxLength ("" for
// clamd's default).
func Clamd(t testing.TB, streamMax string) *Proc {
	t.Helper()
	bin := Need(t, "clamd", "clamav-daemon")
	dir := ShortDir(t)
	os.Mkdir(filepath.Join(dir, "db"), 0o755)
	os.WriteFile(filepath.Join(dir, "db", "test.ndb"), []byte(NDB()), 0o644)
	p := &Proc{t: t, Dir: dir, Sock: filepath.Join(dir, "clamd.sock"), Addr: fmt.Sprintf("127.0.0.1:%d", FreePort(t)), log: filepath.Join(dir, "clamd.out")}
	_, port, _ := net.SplitHostPort(p.Addr)
	conf := fmt.Sprintf("Foreground yes\nLocalSocket %s\nTCPSocket %s\nTCPAddr 127.0.0.1\nDatabaseDirectory %s/db\nLogFile %s/clamd.log\nPidFile %s/clamd.pid\nMaxThreads 4\n",
		p.Sock, port, dir, dir, dir)
	if streamMax != "" {
		conf += "StreamMaxLength " + streamMax + "\n"
	}
	os.WriteFile(filepath.Join(dir, "clamd.conf"), []byte(conf), 0o644)
	p.args = []string{bin, "-c", filepath.Join(dir, "clamd.conf")}
	p.ready = func() bool { return dialable("unix", p.Sock)() && dialable("tcp", p.Addr)() }
	p.start()
	t.Cleanup(p.Stop)
	return p
}

// Spamd starts spamd on a Unix socket, local tests only (no network).
func Spamd(t testing.TB) *Proc {
	t.Helper()
	bin := Need(t, "spamd", "spamd")
	dir := ShortDir(t)
	os.Chmod(dir, 0o755)
	p := &Proc{t: t, Dir: dir, Sock: filepath.Join(dir, "spamd.sock"), log: filepath.Join(dir, "spamd.out")}
	p.args = []string{bin, "--local", "--socketpath=" + p.Sock, "--pidfile=" + filepath.Join(dir, "spamd.pid"),
		"--nouser-config", "--max-children=2", "--min-children=1", "--syslog=stderr"}
	if os.Geteuid() == 0 {
		p.args = append(p.args, "--username=nobody")
	}
	p.ready = dialable("unix", p.Sock)
	p.start()
	t.Cleanup(p.Stop)
	return p
}

// CICAP starts c-icap with virus_scan (service "avscan") over clamdSock.
func CICAP(t testing.TB, clamdSock string) *Proc {
	t.Helper()
	bin := Need(t, "c-icap", "c-icap")
	mods := "/usr/lib/x86_64-linux-gnu/c_icap"
	if m, _ := filepath.Glob("/usr/lib/*/c_icap/virus_scan.so"); len(m) > 0 {
		mods = filepath.Dir(m[0])
	} else if os.Getenv("CI") != "" {
		t.Fatal("c-icap's virus_scan module not installed (libc-icap-mod-virus-scan)")
	} else {
		t.Skip("c-icap's virus_scan module not installed: apt-get install libc-icap-mod-virus-scan")
	}
	dir := ShortDir(t)
	os.Mkdir(filepath.Join(dir, "tmp"), 0o755)
	p := &Proc{t: t, Dir: dir, Addr: fmt.Sprintf("127.0.0.1:%d", FreePort(t)), log: filepath.Join(dir, "c-icap.out")}
	conf := strings.Join([]string{
		"PidFile " + dir + "/c-icap.pid",
		"CommandsSocket " + dir + "/c-icap.ctl",
		"Port " + p.Addr,
		"ServerLog " + dir + "/server.log",
		"AccessLog " + dir + "/access.log",
		"TmpDir " + dir + "/tmp",
		"StartServers 1", "MaxServers 2", "MinSpareThreads 2", "MaxSpareThreads 4", "ThreadsPerChild 4",
		"ModulesDir " + mods, "ServicesDir " + mods,
		"Module common clamd_mod.so",
		"clamd_mod.ClamdSocket " + clamdSock,
		"Service avscan virus_scan.so",
		"virus_scan.DefaultEngine clamd",
		"virus_scan.ScanFileTypes TEXT DATA EXECUTABLE ARCHIVE GIF JPEG MSOFFICE",
	}, "\n") + "\n"
	os.WriteFile(filepath.Join(dir, "c-icap.conf"), []byte(conf), 0o644)
	p.args = []string{bin, "-N", "-f", filepath.Join(dir, "c-icap.conf")}
	p.ready = dialable("tcp", p.Addr)
	p.start()
	t.Cleanup(p.Stop)
	return p
}

// Rspamd starts rspamd's normal worker on a loopback port with a minimal
// configuration of our own: no Lua rules, hence no remote maps, and DNS
// pointed at loopback, so that it never reaches out. GTUBE is in its core.
func Rspamd(t testing.TB) *Proc {
	t.Helper()
	bin := Need(t, "rspamd", "rspamd")
	dir := ShortDir(t)
	os.Mkdir(filepath.Join(dir, "run"), 0o755)
	p := &Proc{t: t, Dir: dir, Addr: fmt.Sprintf("127.0.0.1:%d", FreePort(t)), log: filepath.Join(dir, "rspamd.out")}
	conf := fmt.Sprintf(`options {
  pidfile = "%s/run/rspamd.pid";
  dns { nameserver = ["127.0.0.1:53"]; timeout = 0.1s; retransmits = 1; }
}
logging { type = "file"; filename = "%s/rspamd.log"; level = "info"; }
worker "normal" { bind_socket = "%s"; count = 1; }
actions { reject = 15; add_header = 6; greylist = 4; }
`, dir, dir, p.Addr)
	os.WriteFile(filepath.Join(dir, "rspamd.conf"), []byte(conf), 0o644)
	p.args = []string{bin, "-f", "-c", filepath.Join(dir, "rspamd.conf"), "--insecure"}
	if os.Geteuid() == 0 {
		p.args = append(p.args, "-u", "root", "-g", "root")
	}
	p.ready = dialable("tcp", p.Addr)
	p.start()
	t.Cleanup(p.Stop)
	return p
}

// NXDomain is a resolver whose every answer is "no such name", from a DNS
// server of our own on loopback: tests that need a name that does not
// resolve never send a query off the machine.
func NXDomain(t testing.TB) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			// The query back as a response (QR), recursion available,
			// RCODE 3 (NXDOMAIN), no answers.
			resp := append([]byte(nil), buf[:n]...)
			resp[2] |= 0x80
			resp[3] = 0x80 | 3
			for i := 6; i < 12; i++ {
				resp[i] = 0
			}
			pc.WriteTo(resp, from)
		}
	}()
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

// FTPServer is a vsftpd on loopback serving anonymous FTP from Root, with
// uploads allowed in Root/pub.
type FTPServer struct {
	*Proc
	Root string
}

// VSFTPD starts vsftpd with anonymous read and write.
func VSFTPD(t testing.TB) *FTPServer {
	t.Helper()
	bin := Need(t, "vsftpd", "vsftpd")
	dir := ShortDir(t)
	os.Chmod(dir, 0o755)
	root := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(root, "pub"), 0o755)
	os.Chmod(filepath.Join(root, "pub"), 0o777) // the ftp user writes here
	os.Mkdir(filepath.Join(dir, "empty"), 0o755)
	p := &Proc{t: t, Dir: dir, Addr: fmt.Sprintf("127.0.0.1:%d", FreePort(t)), log: filepath.Join(dir, "vsftpd.out")}
	_, port, _ := net.SplitHostPort(p.Addr)
	conf := VSFTPDConfig(dir, root, "127.0.0.1", port)
	os.WriteFile(filepath.Join(dir, "vsftpd.conf"), []byte(conf), 0o644)
	p.args = []string{bin, filepath.Join(dir, "vsftpd.conf")}
	p.ready = dialable("tcp", p.Addr)
	p.start()
	t.Cleanup(p.Stop)
	return &FTPServer{Proc: p, Root: root}
}

// VSFTPDConfig is vsftpd's configuration for anonymous FTP from root on
// addr:port, uploads allowed where the ftp user may write; dir holds its
// log and the empty directory vsftpd needs.
func VSFTPDConfig(dir, root, addr, port string) string {
	return strings.Join([]string{
		"listen=YES", "listen_address=" + addr, "listen_port=" + port, "background=NO",
		"anonymous_enable=YES", "local_enable=NO", "anon_root=" + root, "no_anon_password=YES",
		"write_enable=YES", "anon_upload_enable=YES", "anon_mkdir_write_enable=YES", "anon_other_write_enable=YES", "anon_umask=022",
		"pasv_enable=YES", "pasv_address=" + addr, "port_enable=YES", "connect_from_port_20=NO",
		"seccomp_sandbox=NO", "secure_chroot_dir=" + filepath.Join(dir, "empty"),
		"ascii_download_enable=YES", "ascii_upload_enable=YES",
		"xferlog_enable=YES", "xferlog_std_format=NO", "vsftpd_log_file=" + filepath.Join(dir, "vsftpd.log"),
	}, "\n") + "\n"
}

// FsavdSocket serves the bundled fsavd (EICAR only) in this process on a
// socket in a short directory, for the proxies' tests, and returns it.
func FsavdSocket(t testing.TB) string {
	t.Helper()
	sock := filepath.Join(ShortDir(t), "fsavd-socket-0")
	FsavdAt(t, sock, nil)
	return sock
}

// FsavdAt serves the bundled fsavd on sock until the test ends; with
// startErr it greets every client with that failure (M16).
func FsavdAt(t testing.TB, sock string, startErr error) {
	t.Helper()
	db, err := engine.Load("")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fsavd.Server{Engine: engine.New(db), StartErr: startErr}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		srv.Shutdown(ctx)
		cancel()
	})
}

// Output collects a process's output while a test reads it.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String is what was written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// Daemon starts a fsigkd master (args: the command line, such as "ip netns
// exec gw fsigkd -f -c FILE"), waits until it serves, and stops it with
// SIGTERM when the test ends, showing its output if the test failed.
func Daemon(t testing.TB, args ...string) *Output {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	out := &Output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("fsigkd:\n%s", out.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "INFO [main] serving"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("fsigkd did not start:\n%s", out.String())
		}
	}
	return out
}

// Mail is one mail a MailSink took.
type Mail struct {
	From string
	To   []string
	Data []byte
	Peer string // the client's address
	TLS  bool   // it came over STARTTLS
}

// MailSink is a mail server (go-smtp) that records what it takes: the next
// hop or the admin mail server of the tests.
type MailSink struct {
	Addr      string
	mu        sync.Mutex
	mails     []Mail
	rcptError *gosmtp.SMTPError
}

// NewMailSink serves on ln (nil: a new port on 127.0.0.1), offering
// STARTTLS with tlsConfig when it is set, until the test ends.
func NewMailSink(t testing.TB, ln net.Listener, tlsConfig *tls.Config) *MailSink {
	t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	s := &MailSink{Addr: ln.Addr().String()}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &sinkSession{s: s, c: c}, nil
	}))
	srv.Domain = "sink.test"
	srv.TLSConfig = tlsConfig
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

// RefuseRcpt makes every RCPT fail with e (nil: accept again).
func (s *MailSink) RefuseRcpt(e *gosmtp.SMTPError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcptError = e
}

// Mails is what the sink took so far.
func (s *MailSink) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

type sinkSession struct {
	s    *MailSink
	c    *gosmtp.Conn
	from string
	to   []string
}

func (ss *sinkSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *sinkSession) Logout() error { return nil }

func (ss *sinkSession) Mail(from string, _ *gosmtp.MailOptions) error {
	ss.from = from
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	ss.s.mu.Lock()
	e := ss.s.rcptError
	ss.s.mu.Unlock()
	if e != nil {
		return e
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, tlsOn := ss.c.TLSConnectionState()
	ss.s.mu.Lock()
	ss.s.mails = append(ss.s.mails, Mail{From: ss.from, To: ss.to, Data: b, Peer: ss.c.Conn().RemoteAddr().String(), TLS: tlsOn})
	ss.s.mu.Unlock()
	return nil
}

// ScriptedSMTP is a fake mail server for the faults a real one will not
// give on demand. answer gives the reply to each step: stage is GREETING,
// EHLO, HELO, MAIL FROM, RCPT TO, DATA, DATA END, QUIT or the verb of any
// other command, line the command as sent; an empty reply hangs up. It
// returns the server's address.
func ScriptedSMTP(t testing.TB, answer func(stage, line string) string) string {
	t.Helper()
	return Fake(t, "tcp", "127.0.0.1:0", func(c net.Conn) { scripted(c, answer) })
}

// Fake listens on network and address (a port of its choosing with
// 127.0.0.1:0) until the test ends, serving each connection with serve,
// which closes it. It returns the address. For fake servers, which stand
// in for a real one only for a fault it cannot be made to give.
func Fake(t testing.TB, network, address string, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return ln.Addr().String()
}

func scripted(c net.Conn, answer func(stage, line string) string) {
	defer c.Close()
	br := bufio.NewReader(c)
	say := func(stage, line string) bool {
		r := answer(stage, line)
		if r == "" {
			return false
		}
		_, err := io.WriteString(c, r+"\r\n")
		return err == nil
	}
	if !say("GREETING", "") {
		return
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		stage := strings.ToUpper(strings.Fields(line + " x")[0])
		switch stage {
		case "MAIL":
			stage = "MAIL FROM"
		case "RCPT":
			stage = "RCPT TO"
		}
		if !say(stage, line) || stage == "QUIT" {
			return
		}
		if stage == "DATA" {
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			if !say("DATA END", "") {
				return
			}
		}
	}
}

// SMTPDefault is an ordinary server's reply at stage.
func SMTPDefault(stage string) string {
	switch stage {
	case "GREETING":
		return "220 fake ESMTP"
	case "DATA":
		return "354 go ahead"
	case "QUIT":
		return "221 bye"
	}
	return "250 ok"
}
