package proxy

import (
	"context"
	"errors"
	"net"
	"strconv"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/internal/netlist"
)

// Reach says which servers a service's clients may have it connect to
// (allow_servers, deny_servers), checked on the address actually
// connected to: the name is resolved once here, each address checked, and
// the address itself dialled, so that no later lookup can answer
// otherwise. Whatever the lists say, the unspecified addresses (0.0.0.0,
// ::, which Linux connects to the host itself) are refused; IPv4-mapped
// IPv6 addresses are checked as the IPv4 address they are; the word
// "self" in a list stands for every address of the gateway's own
// interfaces.
type Reach struct {
	Allow, Deny netlist.List
}

// ReachOf is a service's allow_servers and deny_servers.
func ReachOf(svc *conf.Service) Reach { return Reach{Allow: svc.AllowServers, Deny: svc.DenyServers} }

// ErrServerRefused is a server the settings do not let clients reach.
var ErrServerRefused = errors.New("server not allowed")

// Allowed tells whether clients may reach ip.
func (r *Reach) Allowed(ip net.IP) bool {
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	if ip.IsUnspecified() {
		return false
	}
	return !r.Deny.Contains(ip) && r.Allow.Contains(ip)
}

// Resolve looks host up (an address is taken as it is) and keeps the
// addresses clients may reach: ErrServerRefused when it has some, but
// none allowed.
func (r *Reach) Resolve(ctx context.Context, host string) ([]net.IP, error) {
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else {
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	}
	var ok []net.IP
	for _, ip := range ips {
		if r.Allowed(ip) {
			ok = append(ok, ip)
		}
	}
	if len(ok) == 0 {
		if len(ips) == 0 {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		return nil, ErrServerRefused
	}
	return ok, nil
}

// DialServer connects to host:port for client, to the first address of
// host that Reach allows and answers.
func (c *Common) DialServer(ctx context.Context, r *Reach, client net.IP, host string, port int) (net.Conn, error) {
	ips, err := r.Resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var last error
	for _, ip := range ips {
		conn, err := c.Dial(ctx, client, "tcp", net.JoinHostPort(ip.String(), strconv.Itoa(port)))
		if err == nil {
			return conn, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, last
}
