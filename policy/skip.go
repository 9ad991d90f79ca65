package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"syscall"
)

// Facts are what is known of an object when a service asks about it.
type Facts struct {
	URL         string // http(s)://, ftp://, pop://...; its host is the server's
	Client      string // the client's address
	Sender      string // mail: the envelope sender (SMTP) or From (POP3)
	Recipients  []string
	ContentType string // as the server or the client said it
	FileName    string // the name the object goes by (Content-Disposition, the URL's last part, the FTP path)
}

// Skip is a service's skip lists (skip_hosts, skip_urls, skip_clients,
// skip_senders, skip_recipients, skip_types): what matches one is passed
// unscanned, and logged as skipped, never as clean.
type Skip struct {
	Hosts      Domains
	URLs       Prefixes
	Clients    Nets
	Senders    Addresses
	Recipients Addresses
	Types      Types
}

// SkipValues are the settings' values of the lists.
type SkipValues struct {
	Hosts, URLs, Clients, Senders, Recipients, Types string
}

// FilesDigest is a digest of the list files the values name, so that a
// reload sees that a file changed when the settings did not. It goes by
// what stat says of each (its identity, size, and change and modification
// times, to the nanosecond), not by reading it again: the parse has read
// it already, and a list file may be 64 MiB. A file that cannot be
// stat'ed counts by its error.
func FilesDigest(values ...string) string {
	h := sha256.New()
	for _, value := range values {
		for _, item := range strings.Split(value, ",") {
			if item = strings.TrimSpace(item); isFile(item) {
				path := strings.TrimSpace(item[1:])
				var st syscall.Stat_t
				err := syscall.Stat(path, &st)
				fmt.Fprintf(h, "%s\x00%v\x00%d %d %d %d.%d %d.%d\x00", path, err, st.Dev, st.Ino, st.Size,
					st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ParseSkip reads the lists (and their @files); the error names the list.
func ParseSkip(v SkipValues) (*Skip, error) {
	s := &Skip{}
	var err error
	for _, step := range []struct {
		key   string
		parse func() error
	}{
		{"skip_hosts", func() error { s.Hosts, err = ParseDomains(v.Hosts); return err }},
		{"skip_urls", func() error { s.URLs, err = ParsePrefixes(v.URLs); return err }},
		{"skip_clients", func() error { s.Clients, err = ParseNets(v.Clients); return err }},
		{"skip_senders", func() error { s.Senders, err = ParseAddresses(v.Senders); return err }},
		{"skip_recipients", func() error { s.Recipients, err = ParseAddresses(v.Recipients); return err }},
		{"skip_types", func() error { s.Types, err = ParseTypes(v.Types); return err }},
	} {
		if err := step.parse(); err != nil {
			return nil, &ListError{Key: step.key, Err: err}
		}
	}
	return s, nil
}

// ListError is a list that could not be read.
type ListError struct {
	Key string
	Err error
}

func (e *ListError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *ListError) Unwrap() error { return e.Err }

// Match gives the rule that lets f pass unscanned: the list's key and
// the entry ("skip_hosts", "example.com"), or "" when none does. A mail
// is skipped for its recipients only when every one of them is listed.
func (s *Skip) Match(f Facts) (key, entry string) {
	if s == nil {
		return "", ""
	}
	if e := s.Clients.Match(f.Client); e != "" {
		return "skip_clients", e
	}
	if host, path, ok := splitURL(f.URL); ok && f.URL != "" {
		if e := s.Hosts.Match(hostOnly(host)); e != "" {
			return "skip_hosts", e
		}
		if e := s.URLs.match(host, path); e != "" {
			return "skip_urls", e
		}
	}
	if e := s.Types.Match(f.ContentType); e != "" {
		return "skip_types", e
	}
	if e := s.Senders.Match(f.Sender); e != "" {
		return "skip_senders", e
	}
	if len(f.Recipients) > 0 {
		first := ""
		for _, r := range f.Recipients {
			e := s.Recipients.Match(r)
			if e == "" {
				return "", ""
			}
			if first == "" {
				first = e
			}
		}
		return "skip_recipients", first
	}
	return "", ""
}
