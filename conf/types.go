package conf

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The settings whose values are lists read themselves (UnmarshalText),
// once, where the settings are checked; the services get them parsed, and
// they are written back (MarshalText) for check's dump and for the
// workers. The address lists are netlist.List; the decision settings
// (action, scan_failure, oversize_action, encrypted_action) are
// outcome's.

// Ports is a comma-separated list of TCP ports (connect_ports,
// intercept_ports).
type Ports []int

// items reads a comma-separated list, each item trimmed and read by
// item; empty items are passed over.
func items[T any](b []byte, item func(string) (T, error)) ([]T, error) {
	var out []T
	for _, s := range strings.Split(string(b), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		v, err := item(s)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (p *Ports) UnmarshalText(b []byte) error {
	out, err := items(b, func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 65535 {
			return 0, fmt.Errorf("%q is not a port (1 to 65535)", s)
		}
		return n, nil
	})
	*p = out
	return err
}

func (p Ports) MarshalText() ([]byte, error) {
	s := make([]string, len(p))
	for i, n := range p {
		s[i] = strconv.Itoa(n)
	}
	return []byte(strings.Join(s, ", ")), nil
}

// Has tells whether n is in the list.
func (p Ports) Has(n int) bool { return slices.Contains(p, n) }

// Domains is a comma-separated list of domain names (local_domains),
// kept without case and without outer dots.
type Domains []string

func (d *Domains) UnmarshalText(b []byte) error {
	out, err := items(b, func(s string) (string, error) {
		if s = strings.ToLower(strings.Trim(s, ".")); s != "" && !isDomain(s) {
			return "", fmt.Errorf("%q is not a domain name", s)
		}
		return s, nil
	})
	*d = slices.DeleteFunc(out, func(s string) bool { return s == "" }) // "." alone
	return err
}

func (d Domains) MarshalText() ([]byte, error) { return []byte(strings.Join(d, ", ")), nil }

// Paths is a comma-separated list of service paths (/name: the ICAP
// services' respmod_paths and reqmod_paths).
type Paths []string

func (p *Paths) UnmarshalText(b []byte) error {
	out, err := items(b, func(s string) (string, error) {
		if !strings.HasPrefix(s, "/") || strings.ContainsAny(s, " \t?#") {
			return "", fmt.Errorf("%q is not a service path (/name)", s)
		}
		return s, nil
	})
	*p = out
	return err
}

func (p Paths) MarshalText() ([]byte, error) { return []byte(strings.Join(p, ", ")), nil }

// Has tells whether path is in the list.
func (p Paths) Has(path string) bool { return slices.Contains(p, path) }
