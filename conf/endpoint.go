package conf

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
)

// Endpoint is one address of an engine.
type Endpoint struct {
	Name    string // as configured, for the logs (M24, M25)
	Network string // unix or tcp
	Address string
}

// ParseEndpoints reads a comma-separated list: a path (absolute, or
// relative to baseDir; "unix:" may stand before it) is a Unix socket,
// host:port (or "tcp:host:port") is TCP.
func ParseEndpoints(list, baseDir string) ([]Endpoint, error) {
	var out []Endpoint
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		ep := Endpoint{Name: item}
		rest := item
		switch {
		case strings.HasPrefix(item, "unix:"):
			rest = item[5:]
			ep.Network = "unix"
		case strings.HasPrefix(item, "tcp:"):
			rest = item[4:]
			ep.Network = "tcp"
		case strings.HasPrefix(item, "/") || strings.HasPrefix(item, "."):
			ep.Network = "unix"
		default:
			ep.Network = "tcp"
		}
		if ep.Network == "unix" {
			if !filepath.IsAbs(rest) {
				rest = filepath.Join(baseDir, rest)
			}
		} else if _, _, err := net.SplitHostPort(rest); err != nil {
			return nil, fmt.Errorf("%q is neither a socket path nor host:port", item)
		}
		ep.Address = rest
		out = append(out, ep)
	}
	if len(out) == 0 {
		return nil, errors.New("no endpoint")
	}
	return out, nil
}
