// Package fsavd serves F-Secure's fsavd protocol over a Unix socket with
// the bundled engine (package engine), so that any fsavd client (our own,
// Samba's virusfilter, Exim's malware scanner) can use it.
//
// The protocol, as its public clients speak it: lines end in LF, fields are
// separated by TAB. On connect the server sends DBVERSION\t<version>. Then:
//
//	PROTOCOL\t<n>                 OK\t...
//	CONFIGURE\t<OPTION>\t<value>  OK\t...   (ARCHIVE, MAXARCH, MIME, RISKWARE,
//	                                         FILTER, STOPONFIRST, TIMEOUT)
//	SCAN\t<absolute path>         result lines, then OK\tScan ok.
//	anything else                 ERROR\t<text>
//
// fsigkd's own options, which other fsavd servers answer with ERROR:
// CONFIGURE\tBLOCKTYPES\t<types> and CONFIGURE\tBLOCKNAMES\t<patterns>
// (comma-separated, as block_types and block_names take them, without
// @files) apply the gateway's type and name rules in the scan's own pass
// over the object and everything opened in it; the first that refuses is
// reported as BLOCKED\t<path>[/<member>]\t<rule>\t<engine>.
//
// CONFIGURE\tSCANFD\t1 (Unix sockets only) has the server take
// SCANFD\t<name>, sent in one message with the file's descriptor
// (SCM_RIGHTS, as clamd's FILDES): the open file is scanned whole and its
// results are named <name>. Nothing is opened by path, so the server
// needs no access to the client's spool, and the spool's file is never
// opened and closed a second time (on ext4, closing a file that was
// emptied with truncate starts its writeback: a disk write per object).
//
// CONFIGURE\tFOLLOW\t1 (Unix sockets only) has the server take a file
// still being written: FOLLOWFD\t<name>, with the descriptor as SCANFD
// sends it, then GROWN\t<size> as the file grows (no reply to either),
// then SCANFOLLOWED, answered as SCANFD is. Meanwhile the engine searches
// each new stretch of the file (engine.Follow), so that the scan at the
// end verifies what was found and searches only what came since: the
// gateway spools a large download and the engine reads it in the same
// time, rather than one after the other.
//
// CONFIGURE\tSCANBYTES\t1 has the server take a small object's bytes
// themselves: SCANBYTES\t<name>\t<n>, then the n bytes (at most
// MaxInline), answered as SCANFD is. A gateway keeps a small object in
// memory, and sends it so rather than writing it to its spool and passing
// the descriptor: by strace of 1 KiB objects, that was three system calls
// of the gateway's and four of the server's an object (the write, the
// spool file's stat and truncation; receiving the descriptor, its stat,
// read and close).
//
// Result lines: CLEAN\t<path>; INFECTED, ARCHIVE_INFECTED or MIME_INFECTED
// \t<path>\t<name>\t<engine> (with protocol 9, four more integer fields,
// here zeros); SUSPECTED likewise for objects the engine could not look
// into fully (over a limit, encrypted, broken); SCAN_FAILURE\t<path>\t0x<code>
// \t<message> for a file that could not be read.
//
// An engine whose signatures did not load greets with ERROR\tvsc_start()
// error: <why> and closes: clients report M16.
package fsavd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/fsavd/engine"
	"github.com/fsigkd/fsigkd/internal/sendwait"
	"github.com/fsigkd/fsigkd/internal/sessions"
	"github.com/fsigkd/fsigkd/policy"
	"github.com/fsigkd/fsigkd/unpack"
)

// EngineName is the fourth field of a detection line.
const EngineName = "fsigkd"

// Server serves the protocol with an engine.
type Server struct {
	Engine *engine.Engine
	// StartErr, when set, is why the engine could not start: every client
	// is greeted with ERROR and dropped.
	StartErr error
	Log      *zap.Logger
	// IdleTimeout drops a client silent this long (zero: 5 minutes).
	IdleTimeout time.Duration

	mu       sync.Mutex // guards Engine and StartErr after a reload
	ln       net.Listener
	sessions sessions.Set
}

// maxLine bounds a command line: a path of PATH_MAX and the verb.
const maxLine = 4096 + 64

// Serve accepts clients until ln is closed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	if s.Log == nil {
		s.Log = zap.NewNop()
	}
	s.mu.Unlock()
	s.sessions.OnPanic = func(r any) { s.Log.Error("panic in a client session", zap.Any("panic", r), zap.Stack("stack")) }
	return s.sessions.Serve(heldReplies{ln}, s.serveConn)
}

// heldReplies gives each client's replies held until its session reads
// the next command (sendwait.Hold): the wait for it is then armed before
// the reply leaves, and the read finds the command. The session's set
// closes the held connection, which sends a held reply first.
type heldReplies struct{ net.Listener }

func (l heldReplies) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return sendwait.Hold(c), nil
}

// Shutdown stops accepting, drops clients waiting between commands, and
// waits for scans under way until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
	}
	s.mu.Unlock()
	return s.sessions.Shutdown(ctx)
}

type session struct {
	eng      *engine.Engine
	protocol int
	opt      engine.Options
	maxArch  int
	timeout  time.Duration
	// The gateway's type and name rules (BLOCKTYPES, BLOCKNAMES), as
	// given and read.
	blockTypes, blockNames string
	rules                  *policy.Rules
	// fds keeps the descriptors that came over a Unix socket; scanFD:
	// the client said it sends them (CONFIGURE SCANFD 1).
	fds    *fdReader
	scanFD bool
	// bytes: the client said it sends small objects' bytes (CONFIGURE
	// SCANBYTES 1).
	bytes bool
	// follow: the client said it sends files to follow (CONFIGURE
	// FOLLOW 1); following is the one it sent last.
	follow    bool
	following *following
}

// following is a file being written that the session searches as it
// grows (FOLLOWFD).
type following struct {
	file *os.File
	name string
	fl   *engine.Follow
}

// stopFollowing closes the file followed, if any.
func (ss *session) stopFollowing() {
	if ss.following != nil {
		ss.following.file.Close()
		ss.following = nil
	}
}

func (s *Server) serveConn(c net.Conn) {
	idle := s.IdleTimeout
	if idle <= 0 {
		idle = 5 * time.Minute
	}
	w := bufio.NewWriter(c)
	s.mu.Lock()
	eng, startErr := s.Engine, s.StartErr
	s.mu.Unlock()
	if startErr != nil {
		fmt.Fprintf(w, "ERROR\tvsc_start() error: %s\n", oneLine(startErr.Error()))
		w.Flush()
		return
	}
	fmt.Fprintf(w, "DBVERSION\t%s\n", eng.DB().Version)
	if w.Flush() != nil {
		return
	}
	ss := &session{protocol: 5, eng: eng}
	defer ss.stopFollowing()
	r := bufio.NewReaderSize(c, maxLine)
	var await func() error // what a read of the socket itself does first
	uc, ok := c.(*net.UnixConn)
	if hc, held := c.(*sendwait.Conn); held {
		uc, ok = hc.NetConn().(*net.UnixConn)
		await = hc.Await
	}
	if ok {
		ss.fds = newFDReader(uc, await)
		defer ss.fds.close()
		r = bufio.NewReaderSize(ss.fds, maxLine)
	}
	for {
		c.SetReadDeadline(time.Now().Add(idle))
		if !s.sessions.SetIdle(c, true) {
			return
		}
		line, err := readLine(r)
		s.sessions.SetIdle(c, false)
		if err != nil {
			if errors.Is(err, errTooLong) {
				fmt.Fprintf(w, "ERROR\tLine too long\n")
				w.Flush()
			}
			return
		}
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		switch strings.ToUpper(f[0]) {
		case "PROTOCOL":
			n, err := strconv.Atoi(field(f, 1))
			if err != nil || n < 1 {
				fmt.Fprintf(w, "ERROR\tBad protocol version\n")
				break
			}
			ss.protocol = n
			fmt.Fprintf(w, "OK\tProtocol version %d\n", n)
		case "CONFIGURE":
			opt := strings.ToUpper(field(f, 1))
			configure := ss.configure
			if opt == "BLOCKTYPES" || opt == "BLOCKNAMES" {
				configure = ss.configureRules
			}
			if err := configure(opt, field(f, 2)); err != nil {
				fmt.Fprintf(w, "ERROR\t%s\n", err)
			} else {
				fmt.Fprintf(w, "OK\tOption set\n")
			}
		case "SCAN":
			s.scan(w, ss, strings.Join(f[1:], "\t"), nil, nil)
		case "SCANFD":
			name := strings.Join(f[1:], "\t")
			file := ss.fds.take(name)
			switch {
			case file == nil:
				fmt.Fprintf(w, "SCAN_FAILURE\t%s\t0x%x\tNo descriptor came with SCANFD\n", name, 2)
				fmt.Fprintf(w, "OK\tScan ok.\n")
			case !ss.scanFD:
				file.Close()
				fmt.Fprintf(w, "SCAN_FAILURE\t%s\t0x%x\tSCANFD needs CONFIGURE SCANFD 1\n", name, 2)
				fmt.Fprintf(w, "OK\tScan ok.\n")
			default:
				s.scan(w, ss, name, file, nil)
				file.Close()
			}
		case "SCANBYTES":
			n, err := strconv.Atoi(field(f, 2))
			if err != nil || n < 0 || n > MaxInline || len(f) != 3 {
				fmt.Fprintf(w, "ERROR\tBad SCANBYTES length\n")
				w.Flush()
				return // the bytes that follow cannot be told from commands
			}
			buf := inlineBufs.Get().(*[]byte)
			data := (*buf)[:n]
			c.SetReadDeadline(time.Now().Add(idle))
			if _, err := io.ReadFull(r, data); err != nil {
				inlineBufs.Put(buf)
				return
			}
			if !ss.bytes {
				fmt.Fprintf(w, "SCAN_FAILURE\t%s\t0x%x\tSCANBYTES needs CONFIGURE SCANBYTES 1\n", f[1], 2)
				fmt.Fprintf(w, "OK\tScan ok.\n")
			} else {
				s.scanData(w, ss, f[1], data)
			}
			inlineBufs.Put(buf)
		case "FOLLOWFD":
			// No reply: the client goes on spooling.
			ss.stopFollowing()
			name := strings.Join(f[1:], "\t")
			if file := ss.fds.take(name); file != nil && ss.follow {
				ss.following = &following{file: file, name: name, fl: ss.eng.Follow()}
			} else if file != nil {
				file.Close()
			}
		case "GROWN":
			n, err := strconv.ParseInt(field(f, 1), 10, 64)
			if fw := ss.following; fw != nil && err == nil {
				fw.fl.Grow(fw.file, n) // a failure leaves it to the scan
			}
		case "SCANFOLLOWED":
			if fw := ss.following; fw == nil {
				fmt.Fprintf(w, "SCAN_FAILURE\t\t0x%x\tNothing followed\n", 2)
				fmt.Fprintf(w, "OK\tScan ok.\n")
			} else {
				s.scan(w, ss, fw.name, fw.file, fw.fl)
				ss.stopFollowing()
			}
		case "QUIT":
			fmt.Fprintf(w, "OK\tBye\n")
			w.Flush()
			return
		default:
			fmt.Fprintf(w, "ERROR\tUnknown command\n")
		}
		c.SetWriteDeadline(time.Now().Add(idle))
		if w.Flush() != nil {
			return
		}
	}
}

var errTooLong = errors.New("line too long")

func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", errTooLong
	}
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

func field(f []string, i int) string {
	if i < len(f) {
		return f[i]
	}
	return ""
}

func (ss *session) configure(opt, val string) error {
	n, err := strconv.Atoi(val)
	if err != nil {
		return fmt.Errorf("Bad value for %s", opt)
	}
	switch strings.ToUpper(opt) {
	case "ARCHIVE":
		ss.opt.Archives = n != 0
	case "MIME":
		ss.opt.MIME = n != 0
	case "RISKWARE":
		ss.opt.Riskware = n != 0
	case "STOPONFIRST":
		ss.opt.StopOnFirst = n != 0
	case "MAXARCH":
		ss.maxArch = n
	case "TIMEOUT":
		ss.timeout = time.Duration(n) * time.Second
	case "SCANFD":
		if ss.fds == nil {
			return errors.New("Descriptors need a Unix socket")
		}
		ss.scanFD = n != 0
	case "SCANBYTES":
		ss.bytes = n != 0
	case "FOLLOW":
		if ss.fds == nil {
			return errors.New("Descriptors need a Unix socket")
		}
		ss.follow = n != 0
	case "FILTER":
		// Accepted for compatibility; the engine scans every file.
	default:
		return fmt.Errorf("Unknown option %s", opt)
	}
	return nil
}

// configureRules takes BLOCKTYPES and BLOCKNAMES, fsigkd's own options:
// the gateway's type and name rules, applied in the scan's own pass.
func (ss *session) configureRules(opt, val string) error {
	types, names := ss.blockTypes, ss.blockNames
	if strings.EqualFold(opt, "BLOCKTYPES") {
		types = val
	} else {
		names = val
	}
	r, err := policy.ParseRules(types, names)
	if err != nil || strings.Contains(val, "@") {
		return fmt.Errorf("Bad value for %s", opt)
	}
	ss.blockTypes, ss.blockNames, ss.rules = types, names, r
	return nil
}

// MaxInline is the most bytes SCANBYTES takes.
const MaxInline = 64 << 10

// inlineBufs holds the buffers SCANBYTES reads into.
var inlineBufs = sync.Pool{New: func() any { b := make([]byte, MaxInline); return &b }}

// scanData is scan for an object's bytes sent with SCANBYTES, named
// name.
func (s *Server) scanData(w *bufio.Writer, ss *session, name string, data []byte) {
	s.scanWith(w, ss, name, func(e *engine.Engine, visit unpack.Visit) ([]engine.Detection, error) {
		return e.ScanData(data, ss.opt, visit), nil
	})
}

// scan scans file (when set; path otherwise), with what fl searched of
// it ahead when set, and writes the result lines.
func (s *Server) scan(w *bufio.Writer, ss *session, path string, file *os.File, fl *engine.Follow) {
	if file == nil && (path == "" || !filepath.IsAbs(path)) {
		fmt.Fprintf(w, "SCAN_FAILURE\t%s\t0x%x\tPath must be absolute\n", path, 2)
		fmt.Fprintf(w, "OK\tScan ok.\n")
		return
	}
	s.scanWith(w, ss, path, func(e *engine.Engine, visit unpack.Visit) ([]engine.Detection, error) {
		switch {
		case fl != nil:
			return e.ScanFollowed(file, fl, ss.opt, visit)
		case file != nil:
			return e.ScanOpen(file, ss.opt, visit)
		}
		return e.ScanFile(path, ss.opt, visit)
	})
}

// scanWith has scanIt scan the object named path with the session's
// engine and rules, and writes the result lines.
func (s *Server) scanWith(w *bufio.Writer, ss *session, path string, scanIt func(*engine.Engine, unpack.Visit) ([]engine.Detection, error)) {
	e := ss.eng
	if ss.maxArch > 0 {
		lim := e.Limits
		lim.MaxDepth = ss.maxArch
		e = &engine.Engine{Limits: lim}
		e.Swap(ss.eng.DB())
	}
	var blocked, blockedAt string
	var visit unpack.Visit
	if !ss.rules.Empty() {
		// The rules see what the scan opens, in its pass; the first
		// that refuses is reported, and the scan goes on.
		visit = func(data []byte, where string) bool {
			if blocked == "" {
				if rule := ss.rules.Check(data, where); rule != "" {
					blocked, blockedAt = rule, where
				}
			}
			return false
		}
	}
	found, err := scanIt(e, visit)
	switch {
	case err != nil:
		fmt.Fprintf(w, "SCAN_FAILURE\t%s\t0x%x\t%s\n", path, 1, oneLine(err.Error()))
	case len(found) == 0 && blocked == "":
		fmt.Fprintf(w, "CLEAN\t%s\n", path)
	}
	extra := ""
	if ss.protocol >= 9 {
		extra = "\t0\t0\t0\t0"
	}
	if blocked != "" {
		where := path
		if blockedAt != "" {
			where = path + "/" + blockedAt
		}
		fmt.Fprintf(w, "BLOCKED\t%s\t%s\t%s%s\n", oneLine(where), oneLine(blocked), EngineName, extra)
	}
	for _, d := range found {
		verb := "INFECTED"
		if d.Kind == engine.Riskware {
			verb = "RISKWARE"
		}
		if d.Kind == engine.Suspected {
			verb = "SUSPECTED"
		} else if d.Depth > 0 && ss.opt.MIME && !ss.opt.Archives {
			verb = "MIME_" + verb
		} else if d.Depth > 0 {
			verb = "ARCHIVE_" + verb
		}
		where := path
		if d.Path != "" {
			where = path + "/" + d.Path
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s%s\n", verb, oneLine(where), oneLine(d.Name), EngineName, extra)
	}
	fmt.Fprintf(w, "OK\tScan ok.\n")
}

// oneLine keeps a field on its line and in its column.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		return r
	}, s)
}
