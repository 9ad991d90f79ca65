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

func (p *Ports) UnmarshalText(b []byte) error {
	var out Ports
	for _, s := range strings.Split(string(b), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q is not a port (1 to 65535)", s)
		}
		out = append(out, n)
	}
	*p = out
	return nil
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
	var out Domains
	for _, s := range strings.Split(string(b), ",") {
		if s = strings.ToLower(strings.Trim(strings.TrimSpace(s), ".")); s == "" {
			continue
		}
		if !isDomain(s) {
			return fmt.Errorf("%q is not a domain name", s)
		}
		out = append(out, s)
	}
	*d = out
	return nil
}

func (d Domains) MarshalText() ([]byte, error) { return []byte(strings.Join(d, ", ")), nil }

// Paths is a comma-separated list of service paths (/name: the ICAP
// services' respmod_paths and reqmod_paths).
type Paths []string

func (p *Paths) UnmarshalText(b []byte) error {
	var out Paths
	for _, s := range strings.Split(string(b), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !strings.HasPrefix(s, "/") || strings.ContainsAny(s, " \t?#") {
			return fmt.Errorf("%q is not a service path (/name)", s)
		}
		out = append(out, s)
	}
	*p = out
	return nil
}

func (p Paths) MarshalText() ([]byte, error) { return []byte(strings.Join(p, ", ")), nil }

// Has tells whether path is in the list.
func (p Paths) Has(path string) bool { return slices.Contains(p, path) }
