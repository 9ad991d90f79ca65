// Package mailpath writes a mail address as the path of an SMTP MAIL FROM
// or RCPT TO (RFC 5321 4.1.2), from the address as a client's command was
// parsed: the local part as a dot-atom when it is one, quoted otherwise,
// so that nothing in it (a space, a '>', a comma) can be read by the next
// hop as the end of the path, a second address or parameters. The relay
// writes every address it passes on this way, and so does every mail the
// gateway sends itself (notices, a release from the quarantine).
package mailpath

import (
	"errors"
	"net"
	"strings"
)

// ErrBadAddress is an address no path can carry: a control character, no
// domain, a domain that is no domain.
var ErrBadAddress = errors.New("bad address syntax")

// Format is addr as a path, in angle brackets ("" is the null path, <>).
func Format(addr string) (string, error) {
	if addr == "" {
		return "<>", nil
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return "", ErrBadAddress
	}
	local, domain := addr[:at], addr[at+1:]
	if !validDomain(domain) {
		return "", ErrBadAddress
	}
	if len(local) >= 2 && local[0] == '"' && local[len(local)-1] == '"' {
		local = unquote(local[1 : len(local)-1])
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; c < ' ' || c == 0x7f {
			return "", ErrBadAddress
		}
	}
	if !dotAtom(local) {
		local = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(local) + `"`
	}
	return "<" + local + "@" + domain + ">", nil
}

// unquote undoes a quoted-string's quoted pairs.
func unquote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if r >= 0x80 { // SMTPUTF8 local parts
			continue
		}
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-/=?^_`{|}~.", r)) {
			return false
		}
	}
	return true
}

// validDomain: a name of letters, digits, hyphens and dots (or UTF-8), or
// an address literal in brackets.
func validDomain(d string) bool {
	if strings.HasPrefix(d, "[") && strings.HasSuffix(d, "]") {
		lit := strings.TrimPrefix(d[1:len(d)-1], "IPv6:")
		return net.ParseIP(lit) != nil
	}
	if d == "" || len(d) > 255 || d[0] == '.' || d[len(d)-1] == '.' || strings.Contains(d, "..") {
		return false
	}
	for _, r := range d {
		if !(r >= 0x80 || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}
