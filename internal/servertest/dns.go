package servertest

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// DNS is dnsmasq answering on a free loopback port with the TXT records
// given (name: its text, split into strings of at most 255 bytes, as a
// long DKIM key's record is), and nothing else: it asks no other server.
type DNS struct {
	*testenv.Proc
}

// NewDNS starts it.
func NewDNS(t testing.TB, txt map[string]string) *DNS {
	t.Helper()
	bin := testenv.Need(t, "dnsmasq", "dnsmasq-base")
	dir := testenv.ShortDir(t)
	port := testenv.FreePort(t)
	args := []string{bin, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--listen-address=127.0.0.1",
		"--bind-interfaces", "--port=" + strconv.Itoa(port), "--log-facility=" + filepath.Join(dir, "dnsmasq.log"), "--pid-file=" + filepath.Join(dir, "pid"), "--user=root"}
	for name, text := range txt {
		arg := "--txt-record=" + name
		for len(text) > 0 {
			n := min(len(text), 255)
			arg += "," + text[:n] // (no commas in a DKIM record)
			text = text[n:]
		}
		args = append(args, arg)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	d := &DNS{&testenv.Proc{Dir: dir, Addr: addr, LogFile: filepath.Join(dir, "dnsmasq.out"), Args: args, Ready: testenv.Dialable("tcp", addr)}}
	d.Start(t)
	return d
}

// LookupTXT looks TXT records up at this server alone, as the gateway's
// DKIM check does at the system's.
func (d *DNS) LookupTXT(ctx context.Context, name string) ([]string, error) {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, network, d.Addr)
	}}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return r.LookupTXT(ctx, name)
}
