package milter

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/proxytest"
)

// serve runs the milter from keys; its address and the test kit.
func serve(t testing.TB, keys string) (string, proxytest.Kit) {
	t.Helper()
	c, kit := proxytest.Common(t, "milter", keys)
	p := &Proxy{Common: c}
	if err := p.init(); err != nil {
		t.Fatal(err)
	}
	return proxytest.Serve(t, p), kit
}

// mail sends one mail to the milter at addr as an MTA would (header
// fields, then the body in chunks of 64 KiB) and returns the milter's
// final action and the header changes it asked for.
func mail(t testing.TB, addr string, fields [][2]string, body []byte) (*gomilter.Action, []gomilter.ModifyAction) {
	t.Helper()
	s, err := gomilter.NewClient("tcp", addr).Session(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	steps := []func() (*gomilter.Action, error){
		func() (*gomilter.Action, error) { return s.Conn("client.test", gomilter.FamilyInet, 25, "192.0.2.7") },
		func() (*gomilter.Action, error) { return s.Helo("client.test") },
		func() (*gomilter.Action, error) { return s.Mail("<a@example.com>", "") },
		func() (*gomilter.Action, error) { return s.Rcpt("<b@example.net>", "") },
		s.DataStart,
	}
	for _, f := range fields {
		f := f
		steps = append(steps, func() (*gomilter.Action, error) { return s.HeaderField(f[0], f[1], nil) })
	}
	steps = append(steps, s.HeaderEnd)
	for _, step := range steps {
		a, err := step()
		if err != nil {
			t.Fatal(err)
		}
		if a.StopProcessing() {
			return a, nil
		}
	}
	if len(body) == 0 {
		body = []byte("\r\n") // the client library cannot end a mail without a body chunk
	}
	mods, a, err := s.BodyReadFrom(bytes.NewReader(body)) // and the end
	if err != nil {
		t.Fatal(err)
	}
	return a, mods
}

// TestMilterMailPastMaxScanSize: a mail larger than max_scan_size is not
// spooled past it (the MTA keeps the mail): passed marked unscanned as
// shipped, refused with oversize_action = block.
func TestMilterMailPastMaxScanSize(t *testing.T) {
	body := bytes.Repeat([]byte(strings.Repeat("x", 76)+"\r\n"), 40000) // 3 MiB
	addr, kit := serve(t, "max_scan_size = 1M")
	a, mods := mail(t, addr, [][2]string{{"Subject", " big"}}, body)
	if a.Type != gomilter.ActionAccept || len(mods) != 1 || mods[0].HeaderValue != "unscanned(fsigkd)" && mods[0].HeaderValue != " unscanned(fsigkd)" {
		t.Fatalf("%+v %+v", a, mods)
	}
	kit.WaitLog(t, "max_scan_size")
	addr, _ = serve(t, "max_scan_size = 1M\noversize_action = block")
	if a, _ := mail(t, addr, [][2]string{{"Subject", " big"}}, body); a.SMTPCode != 554 || !strings.Contains(a.SMTPReply, "5.3.4") {
		t.Fatalf("%+v", a)
	}
}

// TestMilterFloodOfHeaderFields: an MTA sending header fields without end
// is held to max_scan_size like a body.
func TestMilterFloodOfHeaderFields(t *testing.T) {
	addr, _ := serve(t, "max_scan_size = 256K\noversize_action = block")
	var fields [][2]string
	for range 20000 {
		fields = append(fields, [2]string{"X-Filler", " " + strings.Repeat("y", 60)})
	}
	if a, _ := mail(t, addr, fields, []byte("body\r\n")); a.SMTPCode != 554 {
		t.Fatalf("%+v", a)
	}
}

// TestMilterGarbageFromThePeer: bytes that are not the milter protocol (an
// SMTP client at the wrong port, a frame announcing 4 GiB) end that
// connection only; the next MTA is served.
func TestMilterGarbageFromThePeer(t *testing.T) {
	addr, _ := serve(t, "")
	for _, junk := range []string{"EHLO client.test\r\n", "\xff\xff\xff\xffO", "\x00\x00\x00\x01X", "\x00\x00\x00\x0dO\x00\x00\x00\x09\x00\x00\x01\xff\x00"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(junk))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 64)
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		c.Close()
	}
	if a, _ := mail(t, addr, [][2]string{{"Subject", " hi"}}, []byte(eicar.String+"\r\n")); a.SMTPCode != 554 {
		t.Fatalf("after the garbage: %+v", a)
	}
}

// FuzzMilterMail: any header fields and body the MTA passes get an answer
// (accepted, or refused with a reply), never a broken session.
func FuzzMilterMail(f *testing.F) {
	f.Add([]byte("Subject\x00 hi\x00\x00Hello.\r\n"))
	f.Add([]byte("Subject\x00\x00\x00" + eicar.String))
	f.Add([]byte("Subject\x00 a,\r\n folded\n\tfield\x00From\x00x\x00\x00--b\r\nContent-Type: text/plain\r\n\r\nx\r\n"))
	f.Add([]byte("\x00\x00\x00"))
	addr, _ := serve(f, "")
	f.Fuzz(func(t *testing.T, in []byte) {
		head, body, _ := bytes.Cut(in, []byte("\x00\x00"))
		var fields [][2]string
		parts := bytes.Split(head, []byte{0})
		for i := 0; i+1 < len(parts); i += 2 {
			name := strings.Map(func(r rune) rune {
				if r <= ' ' || r == ':' || r > '~' {
					return -1
				}
				return r
			}, string(parts[i]))
			if name == "" {
				name = "X"
			}
			fields = append(fields, [2]string{name, string(parts[i+1])})
		}
		a, _ := mail(t, addr, fields, body)
		switch a.Type {
		case gomilter.ActionAccept:
		case gomilter.ActionRejectWithCode:
			if a.SMTPCode != 554 && a.SMTPCode != 451 {
				t.Fatalf("%+v", a)
			}
		default:
			t.Fatalf("%+v", a)
		}
	})
}
