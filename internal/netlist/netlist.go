// Package netlist reads the address lists of the settings (allow_clients,
// allow_servers, deny_servers): networks in CIDR, bare addresses, and the
// word self for every address of the gateway's own interfaces.
package netlist

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// List is a list of networks, and maybe the gateway's own addresses.
type List struct {
	Nets []*net.IPNet
	Self bool // every address of the gateway's own interfaces

	text string // as the settings wrote it
}

// UnmarshalText reads the list as the settings write it (Parse): a
// setting of this type is parsed once, where the settings are checked.
func (n *List) UnmarshalText(b []byte) error {
	l, err := Parse(string(b))
	if err != nil {
		return err
	}
	*n = l
	return nil
}

// MarshalText writes the list as the settings wrote it.
func (n List) MarshalText() ([]byte, error) { return []byte(n.text), nil }

// Empty tells whether the list names nothing.
func (n List) Empty() bool { return len(n.Nets) == 0 && !n.Self }

// String is the list as the settings wrote it.
func (n List) String() string { return n.text }

// Parse reads a comma-separated list of networks (CIDR), bare
// addresses and the word self.
func Parse(list string) (List, error) {
	n := List{text: strings.TrimSpace(list)}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
		case strings.EqualFold(s, "self"):
			n.Self = true
		case strings.Contains(s, "/"):
			_, nw, err := net.ParseCIDR(s)
			if err != nil {
				return List{}, fmt.Errorf("%q is not a network (CIDR), an address or self", s)
			}
			n.Nets = append(n.Nets, nw)
		default:
			ip := net.ParseIP(s)
			if ip == nil {
				return List{}, fmt.Errorf("%q is not a network (CIDR), an address or self", s)
			}
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			n.Nets = append(n.Nets, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
		}
	}
	return n, nil
}

// Contains tells whether ip is in the list.
func (n List) Contains(ip net.IP) bool {
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	for _, nw := range n.Nets {
		if nw.Contains(ip) {
			return true
		}
	}
	return n.Self && ownAddress(ip)
}

// The gateway's own addresses, looked up at most once every few seconds.
var own struct {
	sync.Mutex
	at    time.Time
	addrs []net.IP
}

func ownAddress(ip net.IP) bool {
	own.Lock()
	defer own.Unlock()
	if time.Since(own.at) > 5*time.Second {
		own.addrs = own.addrs[:0]
		if as, err := net.InterfaceAddrs(); err == nil {
			for _, a := range as {
				if n, ok := a.(*net.IPNet); ok {
					own.addrs = append(own.addrs, n.IP)
				}
			}
		}
		own.at = time.Now()
	}
	for _, a := range own.addrs {
		if a.Equal(ip) {
			return true
		}
	}
	return false
}
