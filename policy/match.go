package policy

import (
	"net/netip"
	"slices"
	"strings"
)

// Domains is a set of host names and domains: an entry matches itself and
// every name under it ("example.com" matches "www.example.com"; a leading
// "*." or "." is the same). IP addresses match themselves.
type Domains struct{ set map[string]struct{} }

// ParseDomains reads a list of domains.
func ParseDomains(value string) (Domains, error) {
	es, err := entries(value)
	if err != nil {
		return Domains{}, err
	}
	d := Domains{set: make(map[string]struct{}, len(es))}
	for _, e := range es {
		name := normHost(strings.TrimPrefix(strings.TrimPrefix(e.text, "*"), "."))
		if !hostName(name) {
			return Domains{}, bad(e, "a host name, a domain or an address")
		}
		d.set[name] = struct{}{}
	}
	return d, nil
}

// Len is how many entries the set has.
func (d Domains) Len() int { return len(d.set) }

// Match gives the entry host is, or is under ("" when none).
func (d Domains) Match(host string) string {
	if len(d.set) == 0 || host == "" {
		return ""
	}
	host = normHost(host)
	if _, err := netip.ParseAddr(host); err == nil {
		if _, ok := d.set[host]; ok {
			return host
		}
		return ""
	}
	for name := host; ; {
		if _, ok := d.set[name]; ok {
			return name
		}
		_, rest, ok := strings.Cut(name, ".")
		if !ok {
			return ""
		}
		name = rest
	}
}

func normHost(h string) string {
	h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}

// hostName: letters, digits, '-', '.', '_' (and ':' for IPv6 literals).
func hostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return !strings.Contains(h, "..")
}

// Prefixes is a set of URL prefixes. The scheme is not compared (the same
// site by http and https, or by ftp), the host is compared without case,
// the rest byte for byte: "example.com/downloads/" matches
// "http://example.com/downloads/a.zip".
type Prefixes struct {
	byHost map[string]*hostPrefixes
}

type hostPrefixes struct {
	set     map[string]struct{}
	lengths []int // the distinct lengths of the set's entries, ascending
}

// ParsePrefixes reads a list of URL prefixes.
func ParsePrefixes(value string) (Prefixes, error) {
	es, err := entries(value)
	if err != nil {
		return Prefixes{}, err
	}
	p := Prefixes{byHost: map[string]*hostPrefixes{}}
	for _, e := range es {
		host, path, ok := splitURL(e.text)
		if !ok {
			return Prefixes{}, bad(e, "a URL prefix (host/path, with or without a scheme)")
		}
		hp := p.byHost[host]
		if hp == nil {
			hp = &hostPrefixes{set: map[string]struct{}{}}
			p.byHost[host] = hp
		}
		hp.set[path] = struct{}{}
		if !slices.Contains(hp.lengths, len(path)) {
			hp.lengths = append(hp.lengths, len(path))
			slices.Sort(hp.lengths)
		}
	}
	return p, nil
}

// Match gives the prefix rawURL starts with ("" when none).
func (p Prefixes) Match(rawURL string) string {
	host, path, ok := splitURL(rawURL)
	if !ok {
		return ""
	}
	return p.match(host, path)
}

// match looks up each distinct length of the host's prefixes.
func (p Prefixes) match(host, path string) string {
	hp := p.byHost[host]
	if hp == nil {
		return ""
	}
	for _, n := range hp.lengths {
		if n > len(path) {
			break
		}
		if _, ok := hp.set[path[:n]]; ok {
			return host + path[:n]
		}
	}
	return ""
}

// splitURL takes a URL (or a prefix of one) apart into its host (with its
// port, lower case, no user info) and the rest ("/" at least).
func splitURL(s string) (host, rest string, ok bool) {
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	host, rest = s, "/"
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		host, rest = s[:i], s[i:]
		if !strings.HasPrefix(rest, "/") {
			rest = "/" + rest
		}
	}
	if i := strings.LastIndex(host, "@"); i >= 0 {
		host = host[i+1:]
	}
	host = strings.ToLower(host)
	if !hostName(normHost(hostOnly(host))) {
		return "", "", false
	}
	return host, rest, true
}

// hostOnly is host without its port.
func hostOnly(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.Index(h, "]"); i >= 0 {
			return h[1:i]
		}
	}
	if i := strings.LastIndex(h, ":"); i >= 0 && strings.Count(h, ":") == 1 {
		return h[:i]
	}
	return h
}

// Nets is a set of networks, looked up by binary search over merged
// ranges.
type Nets struct{ ranges []addrRange }

type addrRange struct{ lo, hi netip.Addr }

// ParseNets reads a list of networks (CIDR) and addresses.
func ParseNets(value string) (Nets, error) {
	es, err := entries(value)
	if err != nil {
		return Nets{}, err
	}
	var rs []addrRange
	for _, e := range es {
		var pfx netip.Prefix
		if strings.Contains(e.text, "/") {
			if pfx, err = netip.ParsePrefix(e.text); err != nil {
				return Nets{}, bad(e, "a network (CIDR) or an address")
			}
		} else {
			a, err := netip.ParseAddr(e.text)
			if err != nil {
				return Nets{}, bad(e, "a network (CIDR) or an address")
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		// An IPv4-mapped network is the IPv4 one (clients are compared
		// unmapped).
		pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-(pfx.Addr().BitLen()-pfx.Addr().Unmap().BitLen())).Masked()
		if !pfx.IsValid() {
			return Nets{}, bad(e, "a network (CIDR) or an address")
		}
		rs = append(rs, addrRange{pfx.Addr(), lastOf(pfx)})
	}
	slices.SortFunc(rs, func(a, b addrRange) int { return a.lo.Compare(b.lo) })
	var merged []addrRange
	for _, r := range rs {
		if n := len(merged); n > 0 && merged[n-1].lo.BitLen() == r.lo.BitLen() &&
			(r.lo.Compare(merged[n-1].hi) <= 0 || merged[n-1].hi.Next() == r.lo) {
			if r.hi.Compare(merged[n-1].hi) > 0 {
				merged[n-1].hi = r.hi
			}
			continue
		}
		merged = append(merged, r)
	}
	return Nets{ranges: merged}, nil
}

// lastOf is the last address of a (masked) prefix.
func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Match gives the range the address ip (text) is in ("" when none).
func (n Nets) Match(ip string) string {
	if len(n.ranges) == 0 {
		return ""
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	a = a.Unmap()
	i, _ := slices.BinarySearchFunc(n.ranges, a, func(r addrRange, a netip.Addr) int { return r.lo.Compare(a) })
	// ranges[i-1] is the last starting at or before a (or ranges[i] starts
	// at a itself).
	if i < len(n.ranges) && n.ranges[i].lo == a {
		return rangeText(n.ranges[i])
	}
	if i > 0 && n.ranges[i-1].lo.BitLen() == a.BitLen() && a.Compare(n.ranges[i-1].hi) <= 0 {
		return rangeText(n.ranges[i-1])
	}
	return ""
}

func rangeText(r addrRange) string {
	if r.lo == r.hi {
		return r.lo.String()
	}
	return r.lo.String() + "-" + r.hi.String()
}

// Addresses is a set of mail addresses and "@domain" entries (the domain
// and every domain under it).
type Addresses struct {
	exact   map[string]struct{}
	domains Domains
}

// ParseAddresses reads a list of addresses and @domains.
func ParseAddresses(value string) (Addresses, error) {
	es, err := entries(value)
	if err != nil {
		return Addresses{}, err
	}
	a := Addresses{exact: map[string]struct{}{}, domains: Domains{set: map[string]struct{}{}}}
	for _, e := range es {
		local, domain, ok := strings.Cut(strings.ToLower(e.text), "@")
		if !ok || !hostName(domain) || strings.ContainsAny(local, " <>,;") {
			return Addresses{}, bad(e, "an address (user@domain) or @domain")
		}
		if local == "" {
			a.domains.set[domain] = struct{}{}
		} else {
			a.exact[local+"@"+domain] = struct{}{}
		}
	}
	return a, nil
}

// Match gives the entry addr matches ("" when none). Angle brackets and a
// display name are taken off.
func (a Addresses) Match(addr string) string {
	if len(a.exact) == 0 && len(a.domains.set) == 0 {
		return ""
	}
	addr = strings.ToLower(strings.TrimSpace(addr))
	if i := strings.LastIndex(addr, "<"); i >= 0 {
		addr = strings.TrimSuffix(addr[i+1:], ">")
	}
	if addr == "" {
		return ""
	}
	if _, ok := a.exact[addr]; ok {
		return addr
	}
	if _, domain, ok := strings.Cut(addr, "@"); ok {
		if d := a.domains.Match(domain); d != "" {
			return "@" + d
		}
	}
	return ""
}

// Types is a set of content types: "type/subtype" or "type/*".
type Types struct{ set map[string]struct{} }

// ParseTypes reads a list of content types.
func ParseTypes(value string) (Types, error) {
	es, err := entries(value)
	if err != nil {
		return Types{}, err
	}
	t := Types{set: map[string]struct{}{}}
	for _, e := range es {
		typ, sub, ok := strings.Cut(strings.ToLower(e.text), "/")
		if !ok || typ == "" || sub == "" || strings.ContainsAny(e.text, " ;,") {
			return Types{}, bad(e, "a content type (type/subtype or type/*)")
		}
		t.set[typ+"/"+sub] = struct{}{}
	}
	return t, nil
}

// Match gives the entry the content type ct (a header value, parameters
// and all) matches ("" when none).
func (t Types) Match(ct string) string {
	if len(t.set) == 0 {
		return ""
	}
	ct, _, _ = strings.Cut(ct, ";")
	ct = strings.ToLower(strings.TrimSpace(ct))
	typ, _, ok := strings.Cut(ct, "/")
	if !ok {
		return ""
	}
	if _, ok := t.set[ct]; ok {
		return ct
	}
	if _, ok := t.set[typ+"/*"]; ok {
		return typ + "/*"
	}
	return ""
}
