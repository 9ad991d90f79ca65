package proxy

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// ParseUser reads the USER name@host[:port] of the FTP and POP3 proxies
// (forward mode); the last @ splits, so that a name may hold one.
func ParseUser(arg string, defPort int) (user, host string, port int, err error) {
	i := strings.LastIndexByte(arg, '@')
	if i <= 0 || i == len(arg)-1 {
		return "", "", 0, errors.New("USER must be name@host[:port]")
	}
	user, hp := arg[:i], arg[i+1:]
	host, port = hp, defPort
	if h, p, e := net.SplitHostPort(hp); e == nil {
		n, e2 := strconv.Atoi(p)
		if e2 != nil || n < 1 || n > 65535 {
			return "", "", 0, fmt.Errorf("port %q", p)
		}
		host, port = h, n
	} else if strings.Count(hp, ":") == 1 {
		return "", "", 0, fmt.Errorf("server %q", hp)
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" || strings.ContainsAny(host, " /\\") {
		return "", "", 0, fmt.Errorf("server %q", hp)
	}
	// One hop only: a name that itself ends in @address or @host:port
	// would have the server (another proxy, or this one) go on.
	if j := strings.LastIndexByte(user, '@'); j >= 0 {
		next := strings.TrimSuffix(strings.TrimPrefix(user[j+1:], "["), "]")
		if _, _, e := net.SplitHostPort(user[j+1:]); e == nil || net.ParseIP(next) != nil {
			return "", "", 0, errors.New("USER names one server: name@host[:port]")
		}
	}
	return user, host, port, nil
}
