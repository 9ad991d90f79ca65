// Package logs writes fsigkd's two logs: the error log, one line per event
// as "<time> <LEVEL> [<location>] <message>" with the levels CRITICAL,
// WARNING, INFO and DEBUG, and the access log, one squid-like line per
// request, mail or transfer with the DETECT-STAT, ACTION and PROXY-STAT
// fields. Both are files under the log directory, appended to by the master
// and every worker (O_APPEND keeps each line whole), and reopened on
// SIGUSR1 so that logrotate can move them.
//
// The location of an error-log line is the zap logger's name, with ':'
// between its parts ("http:accept"); documented messages go through Emit so
// that their level is the catalogue's.
package logs

import (
	"encoding/json"
	"fmt"
	"io"
	"log/syslog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fsigkd/fsigkd/catalog"
	"github.com/fsigkd/fsigkd/metrics"
)

// TimeLayout is the error log's time stamp: one field, no spaces.
const TimeLayout = "2006-01-02T15:04:05.000-0700"

// Logs is the open pair of logs of one process.
type Logs struct {
	Error  *zap.Logger
	errf   *File
	access *File
	json   bool // the access log as JSON lines
}

// Options says where and how much to log.
type Options struct {
	Dir        string // log directory; empty: error log to Stderr only, no access log
	Level      string // critical, warning, info or debug
	Foreground bool   // also copy the error log to standard error
	Syslog     bool   // also send the error log to syslog (log_syslog)
	SyslogAddr string // syslog's socket ("": the system's, /dev/log)
	AccessJSON bool   // the access log as one JSON object a line (access_log_format = json)
}

// Open opens (creating) error.log and access.log under o.Dir.
func Open(o Options) (*Logs, error) {
	l := &Logs{}
	var sinks []zapcore.WriteSyncer
	if o.Dir != "" {
		if err := os.MkdirAll(o.Dir, 0o750); err != nil {
			return nil, err
		}
		var err error
		if l.errf, err = OpenFile(filepath.Join(o.Dir, "error.log")); err != nil {
			return nil, err
		}
		if l.access, err = OpenFile(filepath.Join(o.Dir, "access.log")); err != nil {
			l.errf.Close()
			return nil, err
		}
		sinks = append(sinks, l.errf)
	}
	if o.Foreground || o.Dir == "" {
		sinks = append(sinks, zapcore.Lock(os.Stderr))
	}
	core := zapcore.NewCore(NewEncoder(), zapcore.NewMultiWriteSyncer(sinks...), ParseLevel(o.Level))
	if o.Syslog {
		sc, err := newSyslogCore(o.SyslogAddr, ParseLevel(o.Level))
		if err != nil {
			for _, f := range []*File{l.errf, l.access} {
				if f != nil {
					f.Close()
				}
			}
			return nil, fmt.Errorf("log_syslog: %v", err)
		}
		core = zapcore.NewTee(core, sc)
	}
	// A line the file cannot take is counted and said by the File
	// itself, not once more a line by zap.
	l.Error = zap.New(core, zap.ErrorOutput(zapcore.AddSync(io.Discard)))
	l.json = o.AccessJSON
	for _, f := range []*File{l.errf, l.access} {
		if f != nil {
			f.Lost = l.lost
		}
	}
	return l, nil
}

// lost says in the error log, once a log takes lines again, how many it
// lost (the same words went to standard error and syslog).
func (l *Logs) lost(name string, n int64, since time.Time, err error) {
	l.Error.Named("logs").Warn(fmt.Sprintf("%s.log: %s lost since %s: %s", name, count(n, "line"), since.Format(TimeLayout), why(err)))
}

// NewEncoder is the error log's line format.
func NewEncoder() zapcore.Encoder { return zapcore.NewConsoleEncoder(lineConfig(true)) }

// lineConfig is the error log's line: "<time> <LEVEL> [<location>]
// <message> <fields>", the time left out for syslog, which stamps its own.
func lineConfig(withTime bool) zapcore.EncoderConfig {
	c := zapcore.EncoderConfig{
		LevelKey:         "l",
		NameKey:          "n",
		MessageKey:       "m",
		LineEnding:       "\n",
		ConsoleSeparator: " ",
		EncodeLevel:      encodeLevel,
		EncodeName: func(name string, enc zapcore.PrimitiveArrayEncoder) {
			enc.AppendString("[" + strings.ReplaceAll(name, ".", ":") + "]")
		},
		EncodeDuration: zapcore.StringDurationEncoder,
	}
	if withTime {
		c.TimeKey, c.EncodeTime = "t", zapcore.TimeEncoderOfLayout(TimeLayout)
	}
	return c
}

func encodeLevel(l zapcore.Level, enc zapcore.PrimitiveArrayEncoder) {
	enc.AppendString(LevelName(l))
}

// LevelName is the error log's word for a zap level.
func LevelName(l zapcore.Level) string {
	switch {
	case l >= zapcore.ErrorLevel:
		return "CRITICAL"
	case l == zapcore.WarnLevel:
		return "WARNING"
	case l == zapcore.InfoLevel:
		return "INFO"
	}
	return "DEBUG"
}

// ParseLevel maps a log_level setting to zap's level.
func ParseLevel(s string) zapcore.Level {
	switch strings.ToLower(s) {
	case "critical":
		return zapcore.ErrorLevel
	case "warning":
		return zapcore.WarnLevel
	case "debug":
		return zapcore.DebugLevel
	}
	return zapcore.InfoLevel
}

// Emit logs a documented message at its catalogue level.
func Emit(lg *zap.Logger, m catalog.Message) {
	metrics.Message(m.ID)
	var lvl zapcore.Level
	switch m.Level {
	case catalog.Critical:
		lvl = zapcore.ErrorLevel
	case catalog.Warning:
		lvl = zapcore.WarnLevel
	case catalog.Info:
		lvl = zapcore.InfoLevel
	default:
		lvl = zapcore.DebugLevel
	}
	if ce := lg.Check(lvl, m.Text); ce != nil {
		ce.Write()
	}
}

// Reopen reopens both files by name, after logrotate moved them.
func (l *Logs) Reopen() error {
	for _, f := range []*File{l.errf, l.access} {
		if f == nil {
			continue
		}
		if err := f.Reopen(); err != nil {
			return err
		}
	}
	return nil
}

// Close flushes and closes the files.
func (l *Logs) Close() {
	_ = l.Error.Sync()
	for _, f := range []*File{l.errf, l.access} {
		if f != nil {
			f.Close()
		}
	}
}

// Access writes one access-log line. It is safe for concurrent use.
// pid is this process's: os.Getpid is a system call, once a request it
// was by strace of 1 KiB objects.
var pid = os.Getpid()

func (l *Logs) Access(a *Access) {
	if l == nil || l.access == nil {
		return
	}
	metrics.Request(a.Elapsed)
	if a.PID == 0 {
		a.PID = pid
	}
	if l.json {
		_, _ = l.access.Write([]byte(a.JSON()))
		return
	}
	bp := lineBufs.Get().(*[]byte)
	*bp = a.AppendFormat((*bp)[:0])
	_, _ = l.access.Write(*bp)
	lineBufs.Put(bp)
}

// lineBufs keeps the buffers access-log lines are formatted into.
var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// File is an append-only log file that can be reopened under the same name.
//
// A write that fails (log_dir full, its quota, an I/O error) loses its
// line, and a log that cannot be written cannot say so itself: the loss is
// counted (fsigkd_log_lines_lost_total{log}) and said elsewhere, on
// standard error (the journal, under systemd) and to syslog, when it
// begins and once a minute while it lasts; when a line is written again,
// what was lost is said there and, through Lost, in the error log.
type File struct {
	mu   sync.Mutex
	path string
	f    *os.File
	name string // error or access: the metric's label and the words' name

	// While lines are lost: since when, how many, the last error, when
	// it was last said, and whether a line was cut short in the file.
	since   time.Time
	lost    int64
	err     error
	said    time.Time
	partial bool
	// Lost, when set, is told (outside the lock) that lost lines were
	// lost between since and now, once the file takes lines again.
	Lost func(name string, lost int64, since time.Time, err error)
}

// OpenFile opens path for appending, creating it.
func OpenFile(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	return &File{path: path, f: f, name: strings.TrimSuffix(filepath.Base(path), ".log")}, nil
}

// lossSaid is how often a loss that lasts is said again.
const lossSaid = time.Minute

// Write appends p in one write call, so lines from several processes do not
// interleave.
func (f *File) Write(p []byte) (int, error) {
	f.mu.Lock()
	if f.partial {
		// The last line that failed was cut short: end it, so that the
		// next one stands on its own.
		if _, err := f.f.Write([]byte("\n")); err == nil {
			f.partial = false
		}
	}
	n, err := f.f.Write(p)
	now := time.Now()
	if err != nil {
		f.partial = f.partial || n > 0 && n < len(p)
		f.lost++
		if f.lost == 1 {
			f.since = now
		}
		f.err = err
		metrics.Add("fsigkd_log_lines_lost_total", 1, "log", f.name)
		if now.Sub(f.said) >= lossSaid {
			f.said = now
			elsewhere(fmt.Sprintf("cannot write %s: %v; its lines are lost until it can (%d so far)", f.path, why(err), f.lost))
		}
		f.mu.Unlock()
		return n, err
	}
	if f.lost == 0 {
		f.mu.Unlock()
		return n, nil
	}
	lost, since, lerr, report := f.lost, f.since, f.err, f.Lost
	f.lost, f.said = 0, time.Time{}
	f.mu.Unlock()
	elsewhere(fmt.Sprintf("writing %s again; %s lost since %s (%v)", f.path, count(lost, "line"), since.Format(TimeLayout), why(lerr)))
	if report != nil {
		report(f.name, lost, since, lerr)
	}
	return n, nil
}

// Sync is a no-op: every Write goes straight to the kernel.
func (f *File) Sync() error { return nil }

// Loss says what the logs lost, from the counters of the gateway's
// processes (metrics.Totals.Gather): "" when nothing, or such as "532 log
// lines lost since the gateway started (access 520, error 12)", for
// fsigkd status and the console.
func Loss(counters []metrics.Sample) string {
	by := map[string]float64{}
	var total float64
	for _, c := range counters {
		if c.Name == "fsigkd_log_lines_lost_total" {
			by[c.Labels["log"]] += c.Value
			total += c.Value
		}
	}
	if total == 0 {
		return ""
	}
	var parts []string
	for _, name := range []string{"access", "error"} {
		if by[name] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", name, int64(by[name])))
		}
	}
	return fmt.Sprintf("%s lost since the gateway started (%s)", count(int64(total), "log line"), strings.Join(parts, ", "))
}

// count is n things, "1 line" or "2 lines".
func count(n int64, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// why is an error's words without its path: the errno's text when it has
// one ("No space left on device").
func why(err error) string {
	if en, ok := catalog.Errno(err); ok {
		return catalog.Strerror(en)
	}
	return err.Error()
}

// elsewhere says what the logs cannot: on standard error and to syslog
// (whatever log_syslog says), best effort.
func elsewhere(msg string) {
	fmt.Fprintf(os.Stderr, "fsigkd[%d]: %s\n", pid, msg)
	if w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_WARNING, "fsigkd"); err == nil {
		w.Warning(msg)
		w.Close()
	}
}

// Reopen swaps in a freshly opened file of the same name.
func (f *File) Reopen() error {
	nf, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("reopen %s: %w", f.path, err)
	}
	f.mu.Lock()
	old := f.f
	f.f = nf
	f.mu.Unlock()
	return old.Close()
}

// Close closes the file.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.f.Close()
}

// Access is one access-log record.
type Access struct {
	Start       time.Time
	Elapsed     time.Duration
	Client      string // client IP
	Result      string // e.g. TCP_MISS, SMTP, FTP
	Status      int    // protocol status or reply code
	Bytes       int64  // bytes sent to the client (or the next hop, for uploads and mail)
	Method      string // HTTP method, SMTP DATA, FTP RETR/STOR
	URL         string // URL, mail:<recipient>, ftp://host/path
	User        string
	Server      string // server IP; empty when none was reached
	ContentType string

	Detect     string // CLEAN, INFECTED or SPAM; empty when not scanned
	Name       string // detection name(s)
	File       string // file name inside the object, when known
	Quarantine string
	Action     string // NONE, PASS, DELETE, DENY, SENDBACK, BLACKHOLE, CHANGE_SUBJECT

	Service  string
	Slot     int
	PID      int // the worker's; zero: this process's (Logs.Access fills it in)
	Files    int // files scanned
	Checks   int // engine calls
	ScanTime time.Duration
	Detail   string
}

// AddDetail adds d to the record's detail.
func (a *Access) AddDetail(d string) {
	if a.Detail == "" {
		a.Detail = d
	} else {
		a.Detail += "; " + d
	}
}

// Format renders the record as one line. Fields are separated by spaces,
// and so spaces and control bytes inside a field are %-escaped; in the
// colon-separated groups colons are escaped too.
func (a *Access) Format() string { return string(a.AppendFormat(nil)) }

// AppendFormat appends the record as Format renders it to b. It is
// written out, not made by fmt: with its 26 fields boxed, formatting was
// a worker's largest source of garbage per request.
func (a *Access) AppendFormat(b []byte) []byte {
	field := func(s string) {
		b = append(b, ' ')
		if s == "" {
			b = append(b, '-')
			return
		}
		b = appendEscaped(b, s, false)
	}
	num := func(sep byte, n int64) {
		b = append(b, sep)
		b = strconv.AppendInt(b, n, 10)
	}
	b = strconv.AppendInt(b, a.Start.Unix(), 10)
	b = append(b, '.')
	ms := a.Start.Nanosecond() / 1e6
	b = append(b, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	num(' ', a.Elapsed.Milliseconds())
	field(a.Client)
	field(a.Result)
	num('/', int64(a.Status))
	num(' ', a.Bytes)
	field(a.Method)
	field(a.URL)
	field(a.User)
	if a.Server != "" {
		b = append(b, " DIRECT/"...)
		b = appendEscaped(b, a.Server, false)
	} else {
		b = append(b, " NONE/-"...)
	}
	field(a.ContentType)
	b = append(b, " DETECT-STAT:"...)
	for _, s := range []string{a.Detect, a.Name, a.File, a.Quarantine} {
		b = appendEscaped(b, s, true)
		b = append(b, ':')
	}
	b = append(b, ": ACTION:"...)
	if a.Action == "" {
		b = append(b, "NONE"...)
	} else {
		b = appendEscaped(b, a.Action, true)
	}
	b = append(b, ": PROXY-STAT:"...)
	b = appendEscaped(b, a.Service, true)
	num(':', int64(a.Slot))
	num(':', int64(a.PID))
	b = append(b, ':')
	b = appendEscaped(b, a.Server, true)
	num(':', int64(a.Files))
	num(':', int64(a.Checks))
	num(':', a.ScanTime.Milliseconds())
	b = append(b, ':')
	b = appendEscaped(b, a.Detail, true)
	return append(b, ":\n"...)
}

// JSON renders the record as one JSON object and a line end, for log
// collectors (access_log_format = json): the fields of Format, named, the
// text unescaped.
func (a *Access) JSON() string {
	b, _ := json.Marshal(accessJSON{float64(a.Start.UnixMilli()) / 1000, a.Elapsed.Milliseconds(), a.Client, a.Result, a.Status, a.Bytes, a.Method, a.URL, a.User,
		a.Server, a.ContentType, a.Detect, a.Name, a.File, a.Quarantine, orNoneRaw(a.Action), a.Service, a.Slot, a.PID,
		a.Files, a.Checks, a.ScanTime.Milliseconds(), a.Detail})
	return string(b) + "\n"
}

// accessJSON is a record as access_log_format = json writes it.
type accessJSON struct {
	Time        float64 `json:"time"`
	ElapsedMS   int64   `json:"elapsed_ms"`
	Client      string  `json:"client"`
	Result      string  `json:"result"`
	Status      int     `json:"status"`
	Bytes       int64   `json:"bytes"`
	Method      string  `json:"method"`
	URL         string  `json:"url"`
	User        string  `json:"user"`
	Server      string  `json:"server"`
	ContentType string  `json:"content_type"`
	Detect      string  `json:"detect"`
	Name        string  `json:"name"`
	File        string  `json:"file"`
	Quarantine  string  `json:"quarantine"`
	Action      string  `json:"action"`
	Service     string  `json:"service"`
	Slot        int     `json:"slot"`
	PID         int     `json:"pid"`
	Files       int     `json:"files"`
	Checks      int     `json:"checks"`
	ScanMS      int64   `json:"scan_ms"`
	Detail      string  `json:"detail"`
}

// Tail is the last limit bytes of the file at path (a log), for diag and
// the console.
func Tail(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(0, st.Size()-limit)
	b := make([]byte, st.Size()-off)
	n, err := f.ReadAt(b, off)
	if err != nil && err != io.EOF {
		return b[:n], err
	}
	return b[:n], nil
}

func orNoneRaw(s string) string {
	if s == "" {
		return "NONE"
	}
	return s
}

// escaped says whether c is written %XX in a log field.
func escaped(c byte, colon bool) bool {
	return c <= ' ' || c == 0x7f || c == '%' || (colon && c == ':')
}

// appendEscaped appends s to b with every byte escaped says must be
// written %XX so written.
func appendEscaped(b []byte, s string, colon bool) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		if c := s[i]; escaped(c, colon) {
			b = append(b, '%', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return b
}
