// Package catalog holds the documented error-log messages (M01 to M25) that
// operators grep for, in one table. Each message is a template with {name}
// placeholders and a function that fills them, so that call sites cannot
// misspell a message: the text is written once, here, and a test holds every
// template to the published catalogue byte for byte.
package catalog

import (
	"errors"
	"strconv"
	"strings"
	"syscall"
)

// Level is the severity a message is documented with.
type Level int

// The levels of the error log, most severe first.
const (
	Critical Level = iota
	Warning
	Info
	Debug
)

func (l Level) String() string {
	switch l {
	case Critical:
		return "CRITICAL"
	case Warning:
		return "WARNING"
	case Info:
		return "INFO"
	default:
		return "DEBUG"
	}
}

// Message is one filled-in catalogue entry, ready to be logged.
type Message struct {
	ID    string
	Level Level
	Text  string
}

// Entry is one row of the catalogue: its id, documented level and template.
type Entry struct {
	ID       string
	Level    Level
	Template string
}

// Entries is the catalogue. The templates are byte for byte the published
// texts; placeholders are written {name}. Where the published text shows a
// concrete errno (M01, M13, M14, M20) the template generalises it to
// {strerror}({errno}) so that every errno of that call takes the same shape.
var Entries = map[string]Entry{
	"M01": {"M01", Critical, "bind={strerror}({errno}) (addr={addr}, port={port}). # Please check whether other service(mail/web server,etc...) is already running on port {port}."},
	"M02": {"M02", Warning, "Maximum connections: warning: Client connections reached maximum connections({max}). More request will be blocked/rejected. If there is many warnings, please increase 'Maximum Connections' settings(pre_spawn value of virusgw.ini) of this service. ({suggest} will be good value as start line)."},
	"M03": {"M03", Warning, "getaddrinfo failed. admin_mx_host=[{host}] admin_mx_port=[{port}] gai_strerror=[{err}]"},
	"M04": {"M04", Warning, "connect={strerror}({errno}) cannot connect to admin mail server[{host}:{port}]"},
	"M05": {"M05", Warning, "smtp error: {stage} line: buf=[{reply}] (expected {code})"},
	"M06": {"M06", Critical, "semget={strerror}({errno}) semget failure. Childnum(pre_spawn={n}) may be large. If needed, maximum semaphore number(SEMMNI) can be increased by adding a line like 'kernel.sem=250 128000 32 512' in '/etc/sysctl.conf' and running 'sysctl -p'."},
	"M07": {"M07", Warning, "sendfile timeout: No data can be sent for {secs} seconds. There may be a temporary network problem between receiver. / URL=[{url}], n={n}, written={written}, filelen={filelen}, writesize={writesize}"},
	"M08": {"M08", Warning, "Too large header (>{limit}) ignored. URL=[{url}]"},
	"M09": {"M09", Critical, "not enough diskspace in temporary directory [{dir}]. ({kb} kB free?)(ret={ret})"},
	"M10": {"M10", Critical, "Realtime virus scan seems to be enabled. Please stop realtime virus scan, or exclude scanning for temporary directory({dir})"},
	"M11": {"M11", Warning, "[{action}]:smtp error:[{stage}]: buf=[{reply}]"},
	"M12": {"M12", Warning, "NOOP command reply error [{reply}]"},
	"M13": {"M13", Warning, "System call={strerror}({errno}) {detail}"},
	"M14": {"M14", Warning, "open={strerror}({errno}) {detail}"},
	"M15": {"M15", Critical, `Cannot find tproxy(version2) interface. Tproxy kernel patch is required. Please apply the tproxy patch and check that "/proc/net/tproxy" exists. Please see document for "transparent_tproxy" settings for details.`},
	"M16": {"M16", Warning, "vsc_start() error"},
	"M17": {"M17", Warning, "child({index}) stopped.(sig=17[SIGCHLD], si_code={code}[{codename}],status={status}, childid={id}, cur_pid={pid},pid={childpid}"},
	"M18": {"M18", Warning, "core dumped(child proxy process). Please send core file(core or core.xxx) on the installation directory and diag.tar.gz to support center. (child={index},sig=17[SIGCHLD], si_code=3[CLD_DUMPED],status={status}({statusname}),childid={id},cur_pid={pid},pid={childpid})"},
	"M19": {"M19", Warning, "Error recovery: restarting service..."},
	"M20": {"M20", Warning, "accept={strerror}({errno}) main/accept_loop/accept(s={fd})"},
	"M21": {"M21", Critical, "LICENSE_ERROR#ret=-1#msg=License Expired"},
	"M22": {"M22", Warning, "Commtouch database error: Initial database update may be on going. Wait a moment. (dlopen({path}) failed. dlerror(): {err})"},
	"M23": {"M23", Warning, "Commtouch database error: Initial database update may be on going. Wait a moment. (FsasFunctionsInitialize failed.)"},
	"M24": {"M24", Warning, "fsas_open_session({socket}) failed."},
	"M25": {"M25", Warning, "fsav_open_session: Cannot connect to fsavd's socket({socket}). fsavd may be not running. Please run 'rc.fsigk_fsavd restart' to restart fsavd."},
}

// Fill replaces each {name} in tmpl with its value from kv (name, value
// pairs). Names not given are left as they are.
func Fill(tmpl string, kv ...string) string {
	if len(kv) == 0 {
		return tmpl
	}
	pairs := make([]string, 0, len(kv))
	for i := 0; i+1 < len(kv); i += 2 {
		pairs = append(pairs, "{"+kv[i]+"}", kv[i+1])
	}
	return strings.NewReplacer(pairs...).Replace(tmpl)
}

func msg(id string, kv ...string) Message {
	e := Entries[id]
	return Message{ID: id, Level: e.Level, Text: Fill(e.Template, kv...)}
}

// Errno digs the errno out of err (syscall errors wrapped in net.OpError,
// os.PathError, os.SyscallError...). ok is false when there is none.
func Errno(err error) (syscall.Errno, bool) {
	var en syscall.Errno
	if errors.As(err, &en) {
		return en, true
	}
	return 0, false
}

// Strerror is the C library's text for an errno ("Address already in use"),
// which is what the published messages show; Go's own text differs only in
// its lower-case first letter.
func Strerror(en syscall.Errno) string {
	s := en.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// errnoFields gives the {strerror} and {errno} of err, falling back to the
// error's own text and -1 when it carries no errno.
func errnoFields(err error) (string, string) {
	if en, ok := Errno(err); ok {
		return Strerror(en), strconv.Itoa(int(en))
	}
	if err == nil {
		return "Success", "0"
	}
	return err.Error(), "-1"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// M01: binding a listen address failed.
func M01(addr string, port int, err error) Message {
	s, n := errnoFields(err)
	return msg("M01", "strerror", s, "errno", n, "addr", addr, "port", itoa(int64(port)))
}

// M02: every connection slot of a service is busy.
func M02(max, suggest int) Message {
	return msg("M02", "max", itoa(int64(max)), "suggest", itoa(int64(suggest)))
}

// M03: admin_mx_host could not be resolved.
func M03(host string, port int, gaiErr string) Message {
	return msg("M03", "host", host, "port", itoa(int64(port)), "err", gaiErr)
}

// M04: the admin mail server could not be connected to.
func M04(host string, port int, err error) Message {
	s, n := errnoFields(err)
	return msg("M04", "strerror", s, "errno", n, "host", host, "port", itoa(int64(port)))
}

// M05: the admin mail server gave an unexpected reply at stage.
func M05(stage, reply string, expected int) Message {
	return msg("M05", "stage", stage, "reply", reply, "code", itoa(int64(expected)))
}

// M06: the semaphore set of a service could not be created.
func M06(err error, preSpawn int) Message {
	s, n := errnoFields(err)
	return msg("M06", "strerror", s, "errno", n, "n", itoa(int64(preSpawn)))
}

// M07: sending a scanned file made no progress for secs seconds.
func M07(secs int, url string, n, written, filelen, writesize int64) Message {
	return msg("M07", "secs", itoa(int64(secs)), "url", url, "n", itoa(n), "written", itoa(written),
		"filelen", itoa(filelen), "writesize", itoa(writesize))
}

// M08: an HTTP response header block was over the limit.
func M08(limit, url string) Message {
	return msg("M08", "limit", limit, "url", url)
}

// M09: the temporary directory has too little free space.
func M09(dir string, freeKB int64, ret int) Message {
	return msg("M09", "dir", dir, "kb", itoa(freeKB), "ret", itoa(int64(ret)))
}

// M10: the EICAR probe in the temporary directory did not read back intact.
func M10(dir string) Message { return msg("M10", "dir", dir) }

// M11: a notice to a mail's sender or recipients got an error reply.
func M11(action, stage, reply string) Message {
	return msg("M11", "action", action, "stage", stage, "reply", reply)
}

// M12: an FTP server answered a keep-alive NOOP with other than 200.
func M12(reply string) Message { return msg("M12", "reply", reply) }

// OutOfFiles tells the errors M13 is for: the process (EMFILE) or the
// system (ENFILE) has no descriptor left.
func OutOfFiles(err error) bool {
	en, ok := Errno(err)
	return ok && (en == syscall.EMFILE || en == syscall.ENFILE)
}

// M13 reports ENFILE/EMFILE from a system call. critical is for where it
// stops a service from starting; while serving it is a warning.
func M13(err error, detail string, critical bool) Message {
	s, n := errnoFields(err)
	m := msg("M13", "strerror", s, "errno", n, "detail", detail)
	if critical {
		m.Level = Critical
	}
	return m
}

// M14 reports a temporary file of the gateway that vanished.
func M14(err error, detail string, critical bool) Message {
	s, n := errnoFields(err)
	m := msg("M14", "strerror", s, "errno", n, "detail", detail)
	if critical {
		m.Level = Critical
	}
	return m
}

// M15: transparent_tproxy=yes but the kernel cannot do it.
func M15() Message { return msg("M15") }

// M16: the anti-virus engine cannot load its signatures.
func M16() Message { return msg("M16") }

// ChildExit describes how a worker process ended, as SIGCHLD's siginfo does.
type ChildExit struct {
	Index     int    // the service's index
	ChildID   int    // the worker's sequence number in this master
	MasterPID int    // cur_pid
	PID       int    // the worker's pid
	Code      int    // si_code: 1 CLD_EXITED, 2 CLD_KILLED, 3 CLD_DUMPED
	Status    int    // exit status, or the signal number
	Signal    string // the signal's name when killed, e.g. SIGSEGV
}

// CodeName is the name of a SIGCHLD si_code.
func CodeName(code int) string {
	switch code {
	case 1:
		return "CLD_EXITED"
	case 2:
		return "CLD_KILLED"
	case 3:
		return "CLD_DUMPED"
	case 4:
		return "CLD_TRAPPED"
	case 5:
		return "CLD_STOPPED"
	case 6:
		return "CLD_CONTINUED"
	}
	return "UNKNOWN"
}

// M17: a worker process ended without being asked to.
func M17(c ChildExit) Message {
	return msg("M17", "index", itoa(int64(c.Index)), "code", itoa(int64(c.Code)), "codename", CodeName(c.Code),
		"status", itoa(int64(c.Status)), "id", itoa(int64(c.ChildID)), "pid", itoa(int64(c.MasterPID)),
		"childpid", itoa(int64(c.PID)))
}

// M18: that worker dumped core.
func M18(c ChildExit) Message {
	return msg("M18", "index", itoa(int64(c.Index)), "status", itoa(int64(c.Status)), "statusname", c.Signal,
		"id", itoa(int64(c.ChildID)), "pid", itoa(int64(c.MasterPID)), "childpid", itoa(int64(c.PID)))
}

// M19: the service is being restarted after M17.
func M19() Message { return msg("M19") }

// M20: accept() failed because the client left at once.
func M20(err error, fd int) Message {
	s, n := errnoFields(err)
	return msg("M20", "strerror", s, "errno", n, "fd", itoa(int64(fd)))
}

// M21: the evaluation licence has expired.
func M21() Message { return msg("M21") }

// M22: the anti-spam engine's database or library is missing.
func M22(path, dlerr string) Message { return msg("M22", "path", path, "err", dlerr) }

// M23: the anti-spam engine failed to initialise.
func M23() Message { return msg("M23") }

// M24: the anti-spam daemon's socket cannot be reached.
func M24(socket string) Message { return msg("M24", "socket", socket) }

// M25: the anti-virus daemon's socket cannot be reached.
func M25(socket string) Message { return msg("M25", "socket", socket) }

// Carrier is an error that knows the documented message it is logged as.
type Carrier interface {
	CatalogMessage() Message
}

// Of finds the documented message carried by err, if any.
func Of(err error) (Message, bool) {
	var c Carrier
	if errors.As(err, &c) {
		return c.CatalogMessage(), true
	}
	return Message{}, false
}
