package tproxy

import (
	"fmt"
	"slices"
	"strconv"
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

// implicitTLSPorts are the ports of the protocols spoken over TLS from the
// first byte (RFC 8314) that a transparent service's tls_port takes.
var implicitTLSPorts = map[string]string{"smtp": "465", "pop": "995", "ftp": "990"}

func diversions(cfg *conf.Config) []diversion {
	var out []diversion
	for _, s := range cfg.Enabled() {
		if !s.Transparent {
			continue
		}
		var ports []string
		for _, p := range s.InterceptPorts {
			ports = append(ports, strconv.Itoa(p))
		}
		if s.Name == "http" && s.TLSIntercept && !slices.Contains(ports, "443") {
			// HTTPS interception takes the TLS connections too: the
			// HTTP service tells them by their first byte.
			ports = append(ports, "443")
		}
		if len(ports) > 0 {
			// TPROXY whenever the upstream leaves from the client's
			// address; REDIRECT (NAT) is enough otherwise.
			out = append(out, diversion{s.Name, ports, s.Port, s.TransparentTproxy})
		}
		if tls, ok := implicitTLSPorts[s.Name]; ok && s.TLSPort != 0 {
			// The protocol's implicit-TLS port goes to tls_port.
			out = append(out, diversion{s.Name + " (TLS)", []string{tls}, s.TLSPort, s.TransparentTproxy})
		}
	}
	return out
}

// Formats of Rules: a ruleset for nft -f, for iptables-restore, or a
// shell script that sets everything up.
var Formats = []string{"nft", "iptables", "shell"}

// Rules is the firewall and routing set-up for the transparent services of
// cfg, in one format that its tool takes whole: "nft" (fsigkd rules | nft
// -f -), "iptables" (iptables-restore --noflush), or "shell" (an sh script
// that loads the nftables ruleset and adds the policy routing). The policy
// routing TPROXY needs is commands of ip(8): in the two rulesets it is
// written as comments to run. The gateway's own upstream connections (mark
// OwnMark) leave through OUTPUT and are never diverted; the prerouting
// rules skip them should they come back through a local interface.
func Rules(cfg *conf.Config, format string) (string, error) {
	known := false
	for _, f := range Formats {
		known = known || f == format
	}
	if !known {
		return "", fmt.Errorf("format %q: one of %s", format, strings.Join(Formats, ", "))
	}
	ds := diversions(cfg)
	var b strings.Builder
	if len(ds) == 0 {
		b.WriteString("# No enabled service has transparent = yes: no rules are needed.\n")
		if format == "shell" {
			return "#!/bin/sh\n" + b.String(), nil
		}
		return b.String(), nil
	}
	anyTproxy := false
	var head strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&head, "# %s: tcp port %s -> fsigkd port %d (%s)\n", d.service, strings.Join(d.ports, ","), d.to, map[bool]string{true: "TPROXY", false: "REDIRECT"}[d.tproxy])
		anyTproxy = anyTproxy || d.tproxy
	}
	switch format {
	case "nft":
		b.WriteString("# fsigkd: nftables ruleset; load with: fsigkd rules | nft -f -\n")
		b.WriteString(head.String())
		nftRules(&b, ds)
		if anyTproxy {
			b.WriteString("\n# and the policy routing TPROXY needs, as root:\n")
			routing(&b, "# ")
		}
	case "iptables":
		b.WriteString("# fsigkd: iptables ruleset; load with: fsigkd rules --format iptables | iptables-restore --noflush\n")
		b.WriteString(head.String())
		iptablesRules(&b, ds, anyTproxy)
		if anyTproxy {
			b.WriteString("# and the policy routing TPROXY needs, as root:\n")
			routing(&b, "# ")
		}
	case "shell":
		b.WriteString("#!/bin/sh\n# fsigkd: firewall and routing for the transparent services; run as root.\n")
		b.WriteString(head.String())
		b.WriteString("set -e\nnft -f - <<'EOF'\n")
		nftRules(&b, ds)
		b.WriteString("EOF\n")
		if anyTproxy {
			routing(&b, "")
		}
	}
	return b.String(), nil
}

func nftRules(b *strings.Builder, ds []diversion) {
	anyTproxy, anyRedirect := false, false
	for _, d := range ds {
		anyTproxy = anyTproxy || d.tproxy
		anyRedirect = anyRedirect || !d.tproxy
	}
	if anyTproxy {
		fmt.Fprintf(b, "table inet fsigkd {\n\tchain prerouting {\n\t\ttype filter hook prerouting priority mangle; policy accept;\n")
		fmt.Fprintf(b, "\t\tmeta mark %#x accept comment \"the gateway's own traffic\"\n", OwnMark)
		fmt.Fprintf(b, "\t\tmeta l4proto tcp socket transparent 1 meta mark set %#x accept comment \"connections fsigkd holds\"\n", DivertMark)
		for _, d := range ds {
			if d.tproxy {
				fmt.Fprintf(b, "\t\tmeta nfproto ipv4 tcp dport { %s } tproxy ip to :%d meta mark set %#x accept\n", strings.Join(d.ports, ", "), d.to, DivertMark)
				fmt.Fprintf(b, "\t\tmeta nfproto ipv6 tcp dport { %s } tproxy ip6 to :%d meta mark set %#x accept\n", strings.Join(d.ports, ", "), d.to, DivertMark)
			}
		}
		b.WriteString("\t}\n}\n")
	}
	if anyRedirect {
		b.WriteString("table inet fsigkd_nat {\n\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n")
		fmt.Fprintf(b, "\t\tmeta mark %#x accept\n", OwnMark)
		for _, d := range ds {
			if !d.tproxy {
				fmt.Fprintf(b, "\t\ttcp dport { %s } redirect to :%d\n", strings.Join(d.ports, ", "), d.to)
			}
		}
		b.WriteString("\t}\n}\n")
	}
}

// iptablesRules writes the tables as iptables-restore reads them (IPv4).
func iptablesRules(b *strings.Builder, ds []diversion, anyTproxy bool) {
	if anyTproxy {
		b.WriteString("*mangle\n:FSIGKD_DIVERT - [0:0]\n")
		fmt.Fprintf(b, "-A FSIGKD_DIVERT -j MARK --set-mark %#x\n", DivertMark)
		b.WriteString("-A FSIGKD_DIVERT -j ACCEPT\n")
		fmt.Fprintf(b, "-A PREROUTING -m mark --mark %#x -j ACCEPT\n", OwnMark)
		b.WriteString("-A PREROUTING -p tcp -m socket --transparent -j FSIGKD_DIVERT\n")
		for _, d := range ds {
			for _, p := range d.ports {
				if d.tproxy {
					fmt.Fprintf(b, "-A PREROUTING -p tcp --dport %s -j TPROXY --tproxy-mark %#x/%#x --on-port %d\n", p, DivertMark, DivertMark, d.to)
				}
			}
		}
		b.WriteString("COMMIT\n")
	}
	nat := false
	for _, d := range ds {
		for _, p := range d.ports {
			if !d.tproxy {
				if !nat {
					b.WriteString("*nat\n")
					nat = true
				}
				fmt.Fprintf(b, "-A PREROUTING -p tcp --dport %s -m mark ! --mark %#x -j REDIRECT --to-ports %d\n", p, OwnMark, d.to)
			}
		}
	}
	if nat {
		b.WriteString("COMMIT\n")
	}
}

// routing writes the policy routing of TPROXY, each line after prefix.
func routing(b *strings.Builder, prefix string) {
	fmt.Fprintf(b, "%sip rule add fwmark %#x lookup %d\n", prefix, DivertMark, RouteTable)
	fmt.Fprintf(b, "%sip route add local 0.0.0.0/0 dev lo table %d\n", prefix, RouteTable)
	fmt.Fprintf(b, "%sip -6 rule add fwmark %#x lookup %d\n", prefix, DivertMark, RouteTable)
	fmt.Fprintf(b, "%sip -6 route add local ::/0 dev lo table %d\n", prefix, RouteTable)
}
