package tproxy

import (
	"fmt"
	"strings"

	"github.com/fsigkd/fsigkd/conf"
)

// DivertMark marks packets for local delivery by policy routing (table
// RouteTable): those of connections fsigkd holds, and those TPROXY hands it.
const (
	DivertMark = 0x1
	RouteTable = 100
)

type diversion struct {
	service string
	ports   []string
	to      int
	tproxy  bool // TPROXY (transparent sockets) rather than REDIRECT
}

func diversions(cfg *conf.Config) []diversion {
	var out []diversion
	for _, s := range cfg.Enabled() {
		if !s.Transparent {
			continue
		}
		var ports []string
		for _, p := range strings.Split(s.InterceptPorts, ",") {
			if p = strings.TrimSpace(p); p != "" {
				ports = append(ports, p)
			}
		}
		if len(ports) > 0 {
			// TPROXY whenever the upstream leaves from the client's
			// address; REDIRECT (NAT) is enough otherwise.
			out = append(out, diversion{s.Name, ports, s.Port, s.TransparentTproxy})
		}
	}
	return out
}

// Rules is the firewall and routing set-up for the transparent services of
// cfg: an nftables ruleset, the same as iptables commands, and the policy
// routing TPROXY needs. The gateway's own upstream connections (mark
// OwnMark) leave through OUTPUT and are never diverted; the prerouting
// rules skip them should they come back through a local interface.
func Rules(cfg *conf.Config) string {
	ds := diversions(cfg)
	var b strings.Builder
	if len(ds) == 0 {
		b.WriteString("# No enabled service has transparent = yes: no rules are needed.\n")
		return b.String()
	}
	anyTproxy, anyRedirect := false, false
	for _, d := range ds {
		fmt.Fprintf(&b, "# %s: tcp port %s -> fsigkd port %d (%s)\n", d.service, strings.Join(d.ports, ","), d.to, map[bool]string{true: "TPROXY", false: "REDIRECT"}[d.tproxy])
		anyTproxy = anyTproxy || d.tproxy
		anyRedirect = anyRedirect || !d.tproxy
	}
	b.WriteString("\n# --- nftables (nft -f) ---\n")
	if anyTproxy {
		fmt.Fprintf(&b, "table inet fsigkd {\n\tchain prerouting {\n\t\ttype filter hook prerouting priority mangle; policy accept;\n")
		fmt.Fprintf(&b, "\t\tmeta mark %#x accept comment \"the gateway's own traffic\"\n", OwnMark)
		fmt.Fprintf(&b, "\t\tmeta l4proto tcp socket transparent 1 meta mark set %#x accept comment \"connections fsigkd holds\"\n", DivertMark)
		for _, d := range ds {
			if d.tproxy {
				fmt.Fprintf(&b, "\t\tmeta nfproto ipv4 tcp dport { %s } tproxy ip to :%d meta mark set %#x accept\n", strings.Join(d.ports, ", "), d.to, DivertMark)
				fmt.Fprintf(&b, "\t\tmeta nfproto ipv6 tcp dport { %s } tproxy ip6 to :%d meta mark set %#x accept\n", strings.Join(d.ports, ", "), d.to, DivertMark)
			}
		}
		b.WriteString("\t}\n}\n")
	}
	if anyRedirect {
		b.WriteString("table inet fsigkd_nat {\n\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n")
		fmt.Fprintf(&b, "\t\tmeta mark %#x accept\n", OwnMark)
		for _, d := range ds {
			if !d.tproxy {
				fmt.Fprintf(&b, "\t\ttcp dport { %s } redirect to :%d\n", strings.Join(d.ports, ", "), d.to)
			}
		}
		b.WriteString("\t}\n}\n")
	}
	b.WriteString("\n# --- or iptables ---\n")
	if anyTproxy {
		b.WriteString("iptables -t mangle -N FSIGKD_DIVERT\n")
		fmt.Fprintf(&b, "iptables -t mangle -A FSIGKD_DIVERT -j MARK --set-mark %#x\n", DivertMark)
		b.WriteString("iptables -t mangle -A FSIGKD_DIVERT -j ACCEPT\n")
		fmt.Fprintf(&b, "iptables -t mangle -A PREROUTING -m mark --mark %#x -j ACCEPT\n", OwnMark)
		b.WriteString("iptables -t mangle -A PREROUTING -p tcp -m socket --transparent -j FSIGKD_DIVERT\n")
	}
	for _, d := range ds {
		for _, p := range d.ports {
			if d.tproxy {
				fmt.Fprintf(&b, "iptables -t mangle -A PREROUTING -p tcp --dport %s -j TPROXY --tproxy-mark %#x/%#x --on-port %d\n", p, DivertMark, DivertMark, d.to)
			} else {
				fmt.Fprintf(&b, "iptables -t nat -A PREROUTING -p tcp --dport %s -m mark ! --mark %#x -j REDIRECT --to-ports %d\n", p, OwnMark, d.to)
			}
		}
	}
	if anyTproxy {
		b.WriteString("\n# --- policy routing for TPROXY (both firewalls) ---\n")
		fmt.Fprintf(&b, "ip rule add fwmark %#x lookup %d\n", DivertMark, RouteTable)
		fmt.Fprintf(&b, "ip route add local 0.0.0.0/0 dev lo table %d\n", RouteTable)
		fmt.Fprintf(&b, "ip -6 rule add fwmark %#x lookup %d\n", DivertMark, RouteTable)
		fmt.Fprintf(&b, "ip -6 route add local ::/0 dev lo table %d\n", RouteTable)
	}
	return b.String()
}
