package scanner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/fsigkd/fsigkd/catalog"
)

// Fsavd is a client of the fsavd protocol (F-Secure's, and the bundled
// fsavd's). The bundled fsavd is passed the spooled file's descriptor;
// another engine opens the file by its path, so it must be able to read
// temp_dir.
type Fsavd struct {
	Pool     *Pool
	Riskware bool // ask for riskware detections too
	Timeout  int  // the engine's own per-scan timeout, seconds (0: its default)

	version atomic.Value // the signature database's version, from the last greeting

	// The type and name rules the engine is to apply (SetRules).
	blockTypes, blockNames string
}

// maxRulesLine bounds the rules sent on a line; longer ones are left to
// the gateway's own walk.
const maxRulesLine = 3500

// SetRules has the engine apply the gateway's type and name rules in its
// pass (fsigkd's BLOCKTYPES and BLOCKNAMES options; an engine that does
// not take them leaves them to the gateway). Call it before the first
// scan.
func (f *Fsavd) SetRules(types, names string) {
	if len(types) > maxRulesLine || len(names) > maxRulesLine || strings.ContainsAny(types+names, "\t\n") {
		return
	}
	f.blockTypes, f.blockNames = types, names
}

// Version is the version of the engine's signature database, as its
// last greeting said ("" before any).
func (f *Fsavd) Version() string {
	v, _ := f.version.Load().(string)
	return v
}

// RefreshVersion makes a new connection (the engine names its version in
// the greeting only) and keeps it in the pool.
func (f *Fsavd) RefreshVersion(ctx context.Context) error { return f.Pool.DialFresh(ctx) }

// NewFsavd makes a client for endpoints, filling in the pool's protocol
// parts (greeting and options on each connection, M25 for a dead socket).
func NewFsavd(p *Pool, riskware bool) *Fsavd {
	f := &Fsavd{Pool: p, Riskware: riskware}
	p.Engine = "fsavd"
	p.DownMsg = catalog.M25
	p.Prepare = f.prepare
	return f
}

// readReply reads one reply line; the connection's reader (4 KiB) bounds
// it.
func readReply(c *Conn) (string, error) {
	line, err := c.R.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("reply line longer than %d bytes", c.R.Size())
	}
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

func (f *Fsavd) prepare(c *Conn) error {
	greet, err := readReply(c)
	if err != nil {
		return err
	}
	if strings.HasPrefix(greet, "ERROR") {
		m := catalog.M16()
		return &Error{Kind: Broken, Engine: "fsavd", Endpoint: c.ep.Name, Err: errors.New(strings.TrimPrefix(greet, "ERROR\t")), Msg: &m}
	}
	if !strings.HasPrefix(greet, "DBVERSION\t") {
		return &Error{Kind: Protocol, Engine: "fsavd", Endpoint: c.ep.Name, Err: fmt.Errorf("greeting %q", greet)}
	}
	f.version.Store(strings.TrimPrefix(greet, "DBVERSION\t"))
	cmds := []string{"PROTOCOL\t9", "CONFIGURE\tARCHIVE\t1", "CONFIGURE\tMIME\t1", "CONFIGURE\tRISKWARE\t" + b01(f.Riskware)}
	if f.Timeout > 0 {
		cmds = append(cmds, fmt.Sprintf("CONFIGURE\tTIMEOUT\t%d", f.Timeout))
	}
	for _, cmd := range cmds {
		if err := configure(c, cmd); err != nil {
			return err
		}
	}
	// fsigkd's own options; other engines answer ERROR and are given
	// files, and paths.
	if c.Bytes, err = tryConfigure(c, "CONFIGURE\tSCANBYTES\t1"); err != nil {
		return err
	}
	if _, ok := c.Conn.(*net.UnixConn); ok {
		if c.Fildes, err = tryConfigure(c, "CONFIGURE\tSCANFD\t1"); err != nil {
			return err
		}
		if c.Fildes {
			if c.Follow, err = tryConfigure(c, "CONFIGURE\tFOLLOW\t1"); err != nil {
				return err
			}
		}
	}
	if f.blockTypes != "" || f.blockNames != "" {
		// An engine that does not know the options answers ERROR: the
		// connection serves all the same, and the gateway walks the
		// objects itself.
		okTypes, err := tryConfigure(c, "CONFIGURE\tBLOCKTYPES\t"+f.blockTypes)
		if err != nil {
			return err
		}
		okNames, err := tryConfigure(c, "CONFIGURE\tBLOCKNAMES\t"+f.blockNames)
		if err != nil {
			return err
		}
		c.Rules = okTypes && okNames
	}
	return nil
}

// configure sends one option and reads its OK.
func configure(c *Conn, cmd string) error {
	if _, err := c.Write([]byte(cmd + "\n")); err != nil {
		return err
	}
	reply, err := readReply(c)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(reply, "OK") {
		return &Error{Kind: Protocol, Engine: "fsavd", Endpoint: c.ep.Name, Err: fmt.Errorf("%s: %q", cmd, reply)}
	}
	return nil
}

// tryConfigure sends an option the engine may not know: ok says it took
// it; err is the connection's failure.
func tryConfigure(c *Conn, cmd string) (ok bool, err error) {
	if _, err := c.Write([]byte(cmd + "\n")); err != nil {
		return false, err
	}
	reply, err := readReply(c)
	if err != nil {
		return false, err
	}
	return strings.HasPrefix(reply, "OK"), nil
}

func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Ping checks that an endpoint greets.
func (f *Fsavd) Ping(ctx context.Context) error {
	return f.Pool.Do(ctx, func(c *Conn) (bool, error) { return true, nil })
}

// Scan asks the engine to scan obj.Path; an object it followed as it was
// spooled (obj.Follow) is scanned on the connection that followed it.
func (f *Fsavd) Scan(ctx context.Context, obj *Object) (Verdict, error) {
	// An object held in memory goes by its bytes (SCANBYTES) where the
	// connection takes them, else it is written to its file first.
	inMemory := obj.InMemory() && len(obj.Data) <= maxInline
	if !inMemory {
		if err := obj.Files(); err != nil {
			return Verdict{}, err
		}
		if strings.ContainsAny(obj.Path, "\n\t") || obj.Path == "" {
			return Verdict{}, &Error{Kind: Refused, Engine: "fsavd", Err: fmt.Errorf("path %q cannot be sent", obj.Path)}
		}
	}
	if fw := obj.Follow; fw != nil && fw.f == f && !obj.Partial {
		if v, ok := fw.finish(ctx, obj); ok {
			return v, nil
		}
		// The follow broke (the engine dropped the session, or
		// restarted): the object is scanned afresh.
	}
	var v Verdict
	var unsent error // why the object could not be sent: its file not written, or gone from its name
	err := f.Pool.Do(ctx, func(c *Conn) (bool, error) {
		if inMemory && !c.Bytes {
			unsent = obj.Files()
		}
		if unsent == nil && obj.InPlace != nil && byName(c, obj) {
			unsent = obj.InPlace()
		}
		if unsent != nil {
			return true, nil // nothing sent: the connection is as it was
		}
		if !obj.Partial {
			return f.exchange(c, obj, &v, func() error { return send(c, obj) })
		}
		if err := configure(c, "CONFIGURE\tARCHIVE\t0"); err != nil {
			return false, err
		}
		reuse, err := f.exchange(c, obj, &v, func() error { return send(c, obj) })
		// A connection that cannot be put back as it came (archives
		// opened) is not put back at all.
		if reuse && configure(c, "CONFIGURE\tARCHIVE\t1") != nil {
			reuse = false
		}
		return reuse, err
	})
	if unsent != nil {
		return Verdict{}, unsent
	}
	return v, err
}

// exchange sends a scan's request (send) and reads its result lines into
// v; reuse says whether c may serve again.
func (f *Fsavd) exchange(c *Conn, obj *Object, v *Verdict, send func() error) (reuse bool, err error) {
	*v = Verdict{Engine: "fsavd " + c.ep.Name, RulesChecked: c.Rules}
	if err := send(); err != nil {
		return false, err
	}
	var failure error
	for lines := 0; ; lines++ {
		line, err := readReply(c)
		if err != nil {
			return false, err
		}
		if lines > 10000 {
			return false, errors.New("too many result lines")
		}
		r, err := ParseFsavdLine(line)
		if err != nil {
			return false, &Error{Kind: Protocol, Engine: "fsavd", Endpoint: c.ep.Name, Err: err}
		}
		switch r.Kind {
		case "OK":
			if failure != nil && v.Status == Clean {
				return true, failure
			}
			return true, nil
		case "CLEAN", "OPEN_ARCHIVE", "CLOSE_ARCHIVE":
		case "BLOCKED":
			if v.Rule == "" {
				v.Rule = safeName(r.Name)
				v.RuleAt = strings.TrimPrefix(strings.TrimPrefix(r.Path, sentAs(obj)), "/")
			}
		case "SCAN_FAILURE":
			failure = &Error{Kind: Refused, Engine: "fsavd", Endpoint: c.ep.Name, Err: fmt.Errorf("%s %s", r.Code, r.Message)}
		case "ERROR":
			return true, &Error{Kind: Protocol, Engine: "fsavd", Endpoint: c.ep.Name, Err: errors.New(r.Message)}
		default:
			if len(v.Names) == 0 {
				v.At = strings.TrimPrefix(strings.TrimPrefix(r.Path, sentAs(obj)), "/")
			}
			v.add(statusOf(r.Kind), r.Name)
		}
	}
}

// maxInline is the most bytes sent with SCANBYTES (package fsavd's
// MaxInline); inlineName names such an object in the engine's results.
const (
	maxInline  = 64 << 10
	inlineName = "object"
)

// sentAs is the name obj goes to the engine by.
func sentAs(obj *Object) string {
	if obj.InMemory() {
		return inlineName
	}
	return obj.Path
}

// send asks for the scan of obj: by its bytes where it is held in memory
// and the connection takes them (SCANBYTES), by descriptor where the
// connection takes one (nothing is opened by path; see package fsavd's
// SCANFD), by path otherwise.
func send(c *Conn, obj *Object) error {
	if obj.InMemory() {
		b := make([]byte, 0, len(obj.Data)+64)
		b = append(fmt.Appendf(b, "SCANBYTES\t%s\t%d\n", inlineName, len(obj.Data)), obj.Data...)
		return c.ask(b)
	}
	if byName(c, obj) {
		return c.ask([]byte("SCAN\t" + obj.Path + "\n"))
	}
	return sendWithFile(c.Conn.(*net.UnixConn), "SCANFD\t"+obj.Path+"\n", obj.File)
}

// byName tells whether obj goes to the engine on c by its name, not by
// its descriptor.
func byName(c *Conn, obj *Object) bool {
	_, unix := c.Conn.(*net.UnixConn)
	return !unix || !c.Fildes || obj.File == nil
}

// sendWithFile writes msg with f's descriptor in the same message
// (SCM_RIGHTS): clamd's FILDES and fsavd's SCANFD.
func sendWithFile(uc *net.UnixConn, msg string, f *os.File) error {
	_, _, err := uc.WriteMsgUnix([]byte(msg), unix.UnixRights(int(f.Fd())), nil)
	return err
}

// severity orders statuses: an infection outweighs a suspicion, which
// outweighs riskware.
var severity = map[Status]int{Clean: 0, Riskware: 1, Suspected: 2, Infected: 3}

// add records a detection, the most severe status winning.
func (v *Verdict) add(s Status, name string) {
	name = safeName(name)
	if severity[s] > severity[v.Status] {
		v.Status = s
	}
	for _, n := range v.Names {
		if n == name {
			return
		}
	}
	v.Names = append(v.Names, name)
}

// maxName bounds a detection name.
const maxName = 256

// safeName keeps an engine's detection name fit for the places it goes:
// reply lines (SMTP 554, FTP 550, POP3 -ERR), header fields (ICAP
// X-Infection-Found, X-Virus-Status) and logs. A control byte (a CR or LF
// would end a reply or a header early and start one of the engine's
// making) becomes '?', and the name is cut at maxName bytes.
func safeName(name string) string {
	b := []byte(name)
	if len(b) > maxName {
		b = b[:maxName]
	}
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = '?'
		}
	}
	if len(b) == 0 {
		return "Unnamed"
	}
	return string(b)
}

func statusOf(kind string) Status {
	switch {
	case strings.HasSuffix(kind, "RISKWARE"):
		return Riskware
	case strings.HasSuffix(kind, "INFECTED"):
		return Infected
	}
	return Suspected
}

// FsavdLine is one parsed line of an fsavd reply.
type FsavdLine struct {
	Kind    string // CLEAN, INFECTED, ARCHIVE_INFECTED, SUSPECTED, SCAN_FAILURE, OK, ERROR...
	Path    string
	Name    string // detection name
	Code    string // SCAN_FAILURE's 0x code
	Message string
}

// ParseFsavdLine reads one reply line of the fsavd protocol.
func ParseFsavdLine(line string) (FsavdLine, error) {
	f := strings.Split(line, "\t")
	r := FsavdLine{Kind: f[0]}
	switch {
	case f[0] == "OK" || f[0] == "ERROR":
		if len(f) > 1 {
			r.Message = strings.Join(f[1:], "\t")
		}
	case f[0] == "CLEAN" || f[0] == "OPEN_ARCHIVE" || f[0] == "CLOSE_ARCHIVE":
		if len(f) < 2 {
			return r, fmt.Errorf("%s without a path", f[0])
		}
		r.Path = f[1]
	case f[0] == "SCAN_FAILURE":
		if len(f) < 3 {
			return r, fmt.Errorf("short SCAN_FAILURE line %q", line)
		}
		r.Path, r.Code = f[1], f[2]
		if len(f) > 3 {
			r.Message = strings.Join(f[3:], "\t")
		}
	case strings.HasSuffix(f[0], "INFECTED") || strings.HasSuffix(f[0], "RISKWARE") || f[0] == "SUSPECTED" || f[0] == "BLOCKED":
		if len(f) < 3 || f[2] == "" {
			return r, fmt.Errorf("detection line without a name: %q", line)
		}
		r.Path, r.Name = f[1], f[2]
	default:
		return r, fmt.Errorf("unknown reply %q", line)
	}
	return r, nil
}
