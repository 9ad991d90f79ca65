package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// TestBehindHAProxy: HAProxy in front of the HTTP proxy (send-proxy,
// version 1) and of the SMTP relay (send-proxy-v2): a client connecting
// from 127.0.0.9 is that client in the access log, not the balancer
// (127.0.0.1); a connection from the balancer's address without a
// header is refused.
func TestBehindHAProxy(t *testing.T) {
	haproxy := testenv.Need(t, "haproxy", "haproxy")
	g := gateway(t, 4, map[string]string{
		"http": "proxy_protocol_from = 127.0.0.1/32",
		"smtp": "proxy_protocol_from = 127.0.0.1/32",
	})
	dir := t.TempDir()
	hp, sp := testenv.FreePort(t), testenv.FreePort(t)
	cfg := fmt.Sprintf(`global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend web
  bind 127.0.0.1:%d
  default_backend gw_http
backend gw_http
  server gw %s send-proxy
frontend mail
  bind 127.0.0.1:%d
  default_backend gw_smtp
backend gw_smtp
  server gw %s send-proxy-v2
`, hp, g.addr("http"), sp, g.addr("smtp"))
	conf := filepath.Join(dir, "haproxy.cfg")
	os.WriteFile(conf, []byte(cfg), 0o644)
	p := &testenv.Proc{Args: []string{haproxy, "-db", "-f", conf}, LogFile: filepath.Join(dir, "haproxy.log"), Ready: testenv.Dialable("tcp", fmt.Sprintf("127.0.0.1:%d", hp))}
	p.Start(t)
	accessLog := func() string {
		b, _ := os.ReadFile(filepath.Join(g.dir, "state", "log", "access.log"))
		return string(b)
	}

	from := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}, Timeout: 5 * time.Second}
	pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", hp))
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(pu),
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return from.DialContext(ctx, network, addr)
		}}}
	resp, err := client.Get("http://" + g.origin + "/page")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello" {
		t.Fatalf("through HAProxy: %q", b)
	}
	c, err := from.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", sp))
	if err != nil {
		t.Fatal(err)
	}
	sc := gosmtp.NewClient(c)
	if err := sc.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if err := sc.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader("Subject: hi\r\n\r\nhello\r\n")); err != nil {
		t.Fatalf("mail through HAProxy: %v", err)
	}
	sc.Quit()
	waitFor(t, func() bool {
		log := accessLog()
		return strings.Contains(log, " 127.0.0.9 TCP_MISS/200 ") && strings.Contains(log, "127.0.0.9") && strings.Count(log, " 127.0.0.9 ") >= 2
	}, accessLog)
	if strings.Contains(accessLog(), " 127.0.0.1 ") {
		t.Errorf("the balancer's address is in the access log:\n%s", accessLog())
	}
	// From the balancer's address without a header: refused.
	raw, err := net.Dial("tcp", g.addr("http"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	io.WriteString(raw, "GET http://"+g.origin+"/page HTTP/1.1\r\nHost: x\r\n\r\n")
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(raw).ReadString('\n'); err == nil {
		t.Errorf("a connection from a balancer without a header was served: %q", line)
	}
}
