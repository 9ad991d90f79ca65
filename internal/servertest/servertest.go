// Package servertest starts the servers the proxies' tests talk to: real
// ones (vsftpd, Dovecot) and, for the faults a real one cannot be made to
// give, fakes (a scripted SMTP server, any listener, a DNS server that
// knows no name); and a mail sink (go-smtp) that records what it takes.
package servertest

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

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
	*testenv.Proc
	Root string
}

// VSFTPD starts vsftpd with anonymous read and write, and the extra
// settings given (such as anon_max_rate=N, a slow server).
func VSFTPD(t testing.TB, extra ...string) *FTPServer {
	t.Helper()
	bin := testenv.Need(t, "vsftpd", "vsftpd")
	dir := testenv.ShortDir(t)
	os.Chmod(dir, 0o755)
	root := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(root, "pub"), 0o755)
	os.Chmod(filepath.Join(root, "pub"), 0o777) // the ftp user writes here
	os.Mkdir(filepath.Join(dir, "empty"), 0o755)
	p := &testenv.Proc{Dir: dir, Addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), LogFile: filepath.Join(dir, "vsftpd.out")}
	_, port, _ := net.SplitHostPort(p.Addr)
	conf := VSFTPDConfig(dir, root, "127.0.0.1", port) + strings.Join(append(extra, ""), "\n")
	os.WriteFile(filepath.Join(dir, "vsftpd.conf"), []byte(conf), 0o644)
	p.Args = []string{bin, filepath.Join(dir, "vsftpd.conf")}
	p.Ready = testenv.Dialable("tcp", p.Addr)
	p.Start(t)
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

// Mail is one mail a MailSink took.
type Mail struct {
	From string
	To   []string
	Data []byte
	Peer string // the client's address
	TLS  bool   // it came over STARTTLS
	UTF8 bool   // MAIL said SMTPUTF8
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
	srv.EnableSMTPUTF8, srv.EnableDSN = true, true
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
	utf8 bool
}

func (ss *sinkSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *sinkSession) Logout() error { return nil }

func (ss *sinkSession) Mail(from string, opts *gosmtp.MailOptions) error {
	ss.from, ss.utf8 = from, opts != nil && opts.UTF8
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
	ss.s.mails = append(ss.s.mails, Mail{From: ss.from, To: ss.to, Data: b, Peer: ss.c.Conn().RemoteAddr().String(), TLS: tlsOn, UTF8: ss.utf8})
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
	go Serve(ln, serve)
	return ln.Addr().String()
}

// Serve accepts on ln until it is closed, serving each connection with
// serve on a goroutine of its own; for Fake, and for the benchmark's
// stand-ins, which have no test to end with.
func Serve(ln net.Listener, serve func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go serve(c)
	}
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
