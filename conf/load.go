package conf

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"
	"gopkg.in/ini.v1"

	"github.com/fsigkd/fsigkd/internal/sigfiles"
	"github.com/fsigkd/fsigkd/policy"
	"github.com/fsigkd/fsigkd/tlsca"
)

// maxFileSize bounds what the loader reads: a settings file is a few KB.
const maxFileSize = 1 << 20

// Error is one bad setting: where it is and what the key allows.
type Error struct {
	File string
	Line int // 0 when the problem is not on one line
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Key, e.Msg)
	}
	if e.Key != "" {
		return fmt.Sprintf("%s: %s: %s", e.File, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Errors is every bad setting found in one load.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// source is one parsed file: its values and where each key stands.
type source struct {
	name  string
	file  *ini.File
	lines map[string]map[string]int // section -> key -> line of the value that wins
}

// loader gathers the errors and warnings of one load.
type loader struct {
	errs     Errors
	warnings []string
}

func (l *loader) fail(file string, line int, key, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (l *loader) warn(file string, line int, format string, args ...any) {
	l.warnings = append(l.warnings, fmt.Sprintf("%s:%d: ", file, line)+fmt.Sprintf(format, args...))
}

// Load reads the settings file at path (and the virusgw.ini files it names).
// Warnings (unknown keys, sections) come back even when err is nil.
func Load(path string) (*Config, []string, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, nil, err
	}
	return Parse(path, data, readLimited)
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFileSize)
	}
	return b, nil
}

// Parse builds the configuration from the text of the file named path.
// readFile reads the virusgw.ini files it names; nil forbids them.
func Parse(path string, data []byte, readFile func(string) ([]byte, error)) (*Config, []string, error) {
	l := &loader{}
	src := l.parse(path, data)
	if src == nil {
		l.sort()
		return nil, l.warnings, l.errs
	}
	cfg := &Config{File: path, Services: map[string]*Service{}}
	setDefaults(&cfg.Global, nil)
	for _, name := range Services {
		s := &Service{Name: name}
		setDefaults(s, serviceDefaults[name])
		cfg.Services[name] = s
	}

	for sec, keys := range src.lines {
		switch {
		case sec == ini.DefaultSection || sec == "global":
			l.apply(src, sec, "", fieldsOf(&cfg.Global))
		case cfg.Services[sec] != nil:
			l.apply(src, sec, sec, fieldsOf(cfg.Services[sec]))
		default:
			l.warn(path, minLine(keys), "unknown section [%s] ignored", sec)
		}
	}

	// Paths are made absolute: workers and helpers run in base_dir.
	confDir := filepath.Dir(path)
	if abs, err := filepath.Abs(confDir); err == nil {
		confDir = abs
	}
	cfg.Global.BaseDir = under(confDir, cfg.Global.BaseDir)
	for _, f := range fieldsOf(&cfg.Global) {
		if f.kind == "path" && f.v.String() != "" {
			f.v.SetString(under(cfg.Global.BaseDir, f.v.String()))
		}
	}
	for _, name := range Services {
		s := cfg.Services[name]
		if s.VirusgwIni == "" {
			continue
		}
		s.VirusgwIni = under(confDir, s.VirusgwIni)
		if readFile == nil {
			l.fail(path, src.line(name, "virusgw_ini"), "virusgw_ini", "per-service files are not allowed here")
			continue
		}
		legacy, err := readFile(s.VirusgwIni)
		if err != nil {
			l.fail(path, src.line(name, "virusgw_ini"), "virusgw_ini", "%v", err)
			continue
		}
		if lsrc := l.parse(s.VirusgwIni, legacy); lsrc != nil {
			for sec := range lsrc.lines {
				l.apply(lsrc, sec, name, fieldsOf(s))
			}
		}
	}
	for _, name := range Services {
		for _, f := range fieldsOf(cfg.Services[name]) {
			if f.kind == "path" && f.key != "virusgw_ini" && f.v.String() != "" {
				f.v.SetString(under(cfg.Global.BaseDir, f.v.String()))
			}
			if f.kind == "list" {
				f.v.SetString(policy.Resolve(f.v.String(), cfg.Global.BaseDir))
			}
		}
	}
	l.validate(cfg, src)
	l.sort()
	if len(l.errs) > 0 {
		return nil, l.warnings, l.errs
	}
	return cfg, l.warnings, nil
}

// parse checks the file's lines, indexes where each key stands, and
// hands the text to the INI library for the values.
func (l *loader) parse(name string, data []byte) *source {
	src := &source{name: name, lines: map[string]map[string]int{ini.DefaultSection: {}}}
	sec := ini.DefaultSection
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), maxFileSize)
	n := 0
	bad := false
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				l.fail(name, n, "section", "%q is not a [section] line", line)
				bad = true
				continue
			}
			sec = strings.ToLower(strings.TrimSpace(line[1 : len(line)-1]))
			if src.lines[sec] == nil {
				src.lines[sec] = map[string]int{}
			}
		default:
			i := strings.IndexAny(line, "=:")
			key := ""
			if i > 0 {
				key = strings.ToLower(strings.TrimSpace(line[:i]))
			}
			if key == "" || strings.ContainsAny(key, " \t\"'`") {
				l.fail(name, n, "syntax", "%q is not a key = value line", line)
				bad = true
				continue
			}
			if prev, dup := src.lines[sec][key]; dup {
				l.warn(name, n, "%s set again (first on line %d): this value wins", key, prev)
			}
			src.lines[sec][key] = n
		}
	}
	if err := sc.Err(); err != nil {
		l.fail(name, 0, "", "%v", err)
		return nil
	}
	if bad {
		return nil
	}
	f, err := ini.LoadSources(ini.LoadOptions{Insensitive: true, SpaceBeforeInlineComment: true}, data)
	if err != nil {
		l.fail(name, 0, "", "%v", err)
		return nil
	}
	src.file = f
	return src
}

// sort puts errors and warnings in file and line order, so that the
// report reads like the file.
func (l *loader) sort() {
	sort.SliceStable(l.errs, func(i, j int) bool {
		a, b := l.errs[i], l.errs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	sort.Strings(l.warnings)
}

func (s *source) line(sec, key string) int { return s.lines[sec][key] }

// globalLine is where a global key stands: before any section or in
// [global].
func (s *source) globalLine(key string) int {
	if n := s.lines[ini.DefaultSection][key]; n > 0 {
		return n
	}
	return s.lines["global"][key]
}

// apply sets the declared fields of service (empty for the global keys)
// from one section and warns of the rest.
func (l *loader) apply(src *source, sec, service string, fields []field) {
	section := src.file.Section(sec)
	known := map[string]bool{}
	for _, f := range fields {
		if !f.appliesTo(service) {
			continue // another service's key: unknown here
		}
		known[f.key] = true
		if !section.HasKey(f.key) {
			continue
		}
		value := section.Key(f.key).String()
		if words := serviceWords[f.key][service]; words != nil && !oneOf(strings.TrimSpace(value), words) {
			// The words this service takes, not every word of the type.
			l.fail(src.name, src.line(sec, f.key), f.key, "%q is not one of %s", strings.TrimSpace(value), strings.Join(words, ", "))
			continue
		}
		if err := f.set(value); err != nil {
			l.fail(src.name, src.line(sec, f.key), f.key, "%v", err)
		}
	}
	for key, line := range src.lines[sec] {
		if !known[key] {
			l.warn(src.name, line, "unknown key %q in [%s] ignored", key, sectionName(sec))
		}
	}
}

func sectionName(sec string) string {
	if sec == ini.DefaultSection {
		return "global"
	}
	return sec
}

func setDefaults(ptr any, over map[string]string) {
	for _, f := range fieldsOf(ptr) {
		def := f.tag.Get("default")
		if o, ok := over[f.key]; ok {
			def = o
		}
		if def == "" {
			continue
		}
		if err := f.set(def); err != nil {
			panic(fmt.Sprintf("conf: bad default for %s: %v", f.key, err))
		}
	}
}

// validate checks what no single key can: choices that depend on the
// service, and keys that must agree with each other.
func (l *loader) validate(cfg *Config, src *source) {
	type endpoint struct {
		addr string
		port int
	}
	seen := map[endpoint]string{}
	for _, name := range Services {
		s := cfg.Services[name]
		if !s.Enable {
			continue
		}
		if s.Port == 0 {
			l.fail(src.name, src.line(name, "port"), "port", "[%s] is enabled but has no port", name)
		}
		ep := endpoint{s.BindAddr, s.Port}
		if other, dup := seen[ep]; dup {
			l.fail(src.name, src.line(name, "port"), "port", "[%s] listens on %s port %d, as [%s] does", name, s.BindAddr, s.Port, other)
		}
		seen[ep] = name
		if s.TLSPort != 0 {
			tep := endpoint{s.BindAddr, s.TLSPort}
			if other, dup := seen[tep]; dup && other == name {
				l.fail(src.name, src.line(name, "tls_port"), "tls_port", "%d is port too: the TLS port is a second one", s.TLSPort)
			} else if dup {
				l.fail(src.name, src.line(name, "tls_port"), "tls_port", "[%s] listens on %s port %d, as [%s] does", name, s.BindAddr, s.TLSPort, other)
			}
			seen[tep] = name
			if s.TLSCert == "" {
				l.fail(src.name, src.line(name, "tls_port"), "tls_port", "needs tls_cert and tls_key")
			}
		}
		if s.ParentProtocol == "lmtp" && s.Transparent {
			l.fail(src.name, src.line(name, "parent_protocol"), "parent_protocol", "lmtp needs transparent = no: a diverted client speaks SMTP to its own next hop")
		}
		if s.ParentProtocol == "lmtp" && s.Action.String() == "sendback" {
			l.fail(src.name, src.line(name, "action"), "action", "sendback needs parent_protocol = smtp: an LMTP server delivers to its own mailboxes, not to the sender")
		}
		if s.TransparentTproxy && !s.Transparent {
			l.fail(src.name, src.line(name, "transparent_tproxy"), "transparent_tproxy", "yes needs transparent = yes")
		}
		// Files a service reads at start are read here first, so that a
		// worker never meets one the master did not check.
		if s.BlockPage != "" {
			if err := checkTemplate(s.BlockPage); err != nil {
				l.fail(src.name, src.line(name, "block_page"), "block_page", "%v", err)
			}
		}
		if _, err := policy.ParseSkip(s.SkipValues()); err != nil {
			var le *policy.ListError
			errors.As(err, &le)
			l.fail(src.name, src.line(name, le.Key), le.Key, "%v", le.Err)
		}
		if _, err := s.Rules(); err != nil {
			var le *policy.ListError
			errors.As(err, &le)
			l.fail(src.name, src.line(name, le.Key), le.Key, "%v", le.Err)
		}
		s.ListsDigest = policy.FilesDigest(s.SkipHosts, s.SkipURLs, s.SkipClients, s.SkipSenders, s.SkipRecipients, s.SkipTypes, s.BlockTypes, s.BlockNames)
		l.checkHTTPS(src, name, s)
		if (s.TLSCert == "") != (s.TLSKey == "") {
			l.fail(src.name, src.line(name, "tls_cert"), "tls_cert", "tls_cert and tls_key go together")
		} else if s.TLSCert != "" {
			if _, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey); err != nil {
				l.fail(src.name, src.line(name, "tls_cert"), "tls_cert", "%v", err)
			}
		}
	}
	for key, val := range map[string]string{"av_servers": cfg.Global.AVServers, "as_servers": cfg.Global.ASServers} {
		if _, err := ParseEndpoints(val, cfg.Global.BaseDir); err != nil {
			l.fail(src.name, src.globalLine(key), key, "%v", err)
		}
	}
	if u := cfg.Global.VerdictCacheRedis; u != "" {
		if _, err := redis.ParseURL(u); err != nil {
			l.fail(src.name, src.globalLine("verdict_cache_redis"), "verdict_cache_redis", "%v", err)
		}
	}
	if sigs := cfg.Global.FsavdSigs; sigs != "" {
		if _, err := sigfiles.List(sigs); err != nil {
			l.fail(src.name, src.globalLine("fsavd_signatures"), "fsavd_signatures", "%v", err)
		}
	}
	if g := cfg.Global; g.Console {
		l.checkConsole(g, src)
	}
	if _, err := LicenseExpiry(cfg.Global.License); err != nil {
		l.fail(src.name, src.globalLine("license"), "license", "%v", err)
	}
}

// checkConsole holds the console to what its address needs: off
// loopback, a password and TLS.
func (l *loader) checkConsole(g Global, src *source) {
	if (g.ConsoleTLSCert == "") != (g.ConsoleTLSKey == "") {
		l.fail(src.name, src.globalLine("console_tls_cert"), "console_tls_cert", "console_tls_cert and console_tls_key go together")
	} else if g.ConsoleTLSCert != "" {
		if _, err := tls.LoadX509KeyPair(g.ConsoleTLSCert, g.ConsoleTLSKey); err != nil {
			l.fail(src.name, src.globalLine("console_tls_cert"), "console_tls_cert", "%v", err)
		}
	}
	if g.ConsolePassword != "" {
		if _, err := bcrypt.Cost([]byte(g.ConsolePassword)); err != nil {
			l.fail(src.name, src.globalLine("console_password"), "console_password", "not a bcrypt hash (fsigkd passwd makes one)")
		}
	}
	if ip := net.ParseIP(g.ConsoleBind); ip != nil && !ip.IsLoopback() && (g.ConsolePassword == "" || g.ConsoleTLSCert == "") {
		l.fail(src.name, src.globalLine("console_bind"), "console_bind", "%s is not loopback: the console there needs console_password and console_tls_cert/_key", g.ConsoleBind)
	}
}

func minLine(keys map[string]int) int {
	m := 0
	for _, n := range keys {
		if m == 0 || n < m {
			m = n
		}
	}
	return m
}

func under(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

// LicenseExpiry reads an evaluation key (EVAL-YYYYMMDD-...): the end of its
// last day, UTC. Other keys, and no key, never expire (zero time).
func LicenseExpiry(key string) (time.Time, error) {
	if !strings.HasPrefix(strings.ToUpper(key), "EVAL-") {
		return time.Time{}, nil
	}
	rest := key[5:]
	if len(rest) < 8 {
		return time.Time{}, fmt.Errorf("evaluation key %q has no date: EVAL-YYYYMMDD-...", key)
	}
	day, err := time.Parse("20060102", rest[:8])
	if err != nil || (len(rest) > 8 && rest[8] != '-') {
		return time.Time{}, fmt.Errorf("evaluation key %q has no valid date: EVAL-YYYYMMDD-...", key)
	}
	return day.Add(24 * time.Hour), nil
}

// checkTemplate reads an HTML template file and parses it as the HTTP
// proxy will.
func checkTemplate(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	_, err = template.New("block").Parse(string(b))
	return err
}

// BaseDirOf reads only the base_dir of a settings file (a global key, before
// any section or in [global]), resolved as Load resolves it: for fsigkd
// status, which finds the running gateway even when the file has since
// been given an error.
func BaseDirOf(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	base := "."
	global := true
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			global = strings.EqualFold(strings.Trim(line, "[] "), "global")
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && global && strings.TrimSpace(k) == "base_dir" {
			base = strings.TrimSpace(v)
		}
	}
	return under(filepath.Dir(abs), base), nil
}

// checkHTTPS checks interception's keys: the CA pair (when set) loads and
// may sign, the extra roots hold a certificate, the host lists read.
func (l *loader) checkHTTPS(src *source, name string, s *Service) {
	if (s.TLSCACert == "") != (s.TLSCAKey == "") {
		l.fail(src.name, src.line(name, "tls_ca_cert"), "tls_ca_cert", "tls_ca_cert and tls_ca_key go together")
	} else if s.TLSCACert != "" {
		if _, err := tlsca.Load(s.TLSCACert, s.TLSCAKey); err != nil {
			l.fail(src.name, src.line(name, "tls_ca_cert"), "tls_ca_cert", "%v", err)
		}
	}
	if s.TLSCAFile != "" {
		if b, err := os.ReadFile(s.TLSCAFile); err != nil {
			l.fail(src.name, src.line(name, "tls_ca_file"), "tls_ca_file", "%v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			l.fail(src.name, src.line(name, "tls_ca_file"), "tls_ca_file", "%s holds no PEM certificate", s.TLSCAFile)
		}
	}
	for _, key := range []string{"tls_bypass", "block_hosts"} {
		v := s.TLSBypass
		if key == "block_hosts" {
			v = s.BlockHosts
		}
		if _, err := policy.ParseDomains(v); err != nil {
			l.fail(src.name, src.line(name, key), key, "%v", err)
		}
	}
}
