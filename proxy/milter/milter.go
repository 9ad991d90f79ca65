// Package milter is fsigkd's milter service: the mail server (Postfix's
// smtpd_milters and non_smtpd_milters, Sendmail's INPUT_MAIL_FILTER)
// hands each mail to it as it receives it, and its verdict is the mail
// server's own reply at the end of DATA. Nothing is queued twice, and the
// client that sent the mail is the one told it was refused.
//
// The protocol is Sendmail's milter protocol, version 6 (as Postfix 2.6
// and later and Sendmail 8.14 and later speak it), served by
// github.com/d--j/go-milter. The options are negotiated: the milter asks
// for no replies before the end of the message, no DATA or unknown
// command events, and header values with their leading space, each only
// as far as the MTA offers it; it needs to add and change header fields.
//
// A mail is spooled as it comes (its header fields as the MTA saw them,
// then the body chunks, up to max_scan_size), and at its end judged by
// the one pipeline, as the relay's DATA is, with the client's address,
// HELO, sender and recipients the MTA gives. The answer:
//
//   - delivered (clean, or passed per the settings): X-Virus-Status is
//     inserted first in the header (the mail is only prepended to), with
//     the X-Spam-* fields and the Subject tagged when fsasd_service finds
//     spam; accepted;
//   - refused (action = deny, a rule, scan_failure = block, an oversize
//     refused, spam at spam_reject_score): 554 with the relay's text
//     ("5.7.1 Infected by <name>"), which the MTA gives its client;
//   - not scanned with scan_failure = tempfail (as shipped), or a spool
//     that failed: 451 4.3.0, the sender keeps the mail and tries later;
//   - action = blackhole: discarded (the client is told it was taken);
//     action = hold: taken and held by the MTA (Postfix's hold queue,
//     the reason naming what was found), marked X-Virus-Status:
//     infected(...), for the administrator to release or delete there.
//
// With quarantine = yes (as shipped) a refused or discarded mail is kept
// in quarantine_dir as for the relay. The access log has a line per
// recipient, Result MILTER, Method DATA, the status the MTA is told to
// give (250 when accepted), and the MTA's queue id in the detail.
//
// Slots: each MTA connection holds one for as long as the MTA keeps it
// (Postfix: one per SMTP session), so pre_spawn should be at least the
// MTA's number of smtpd processes; the milter's default is 128 (Postfix's
// default_process_limit is 100). A connection is never evicted for a
// waiting one: the MTA would apply its milter_default_action to a mail in
// flight. The MTA must have begun negotiating within header_timeout of its
// connection, and an MTA connection silent for idle_timeout is closed.
// The scan itself is bounded by av_timeout (120 s), within Postfix's
// milter_content_timeout (300 s).
package milter

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	gomilter "github.com/d--j/go-milter"
	"golang.org/x/sys/unix"

	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/slots"
	"github.com/fsigkd/fsigkd/worker"
)

// Proxy is the milter service.
type Proxy struct {
	proxy.Common
	srv *gomilter.Server
}

// New builds the service from a worker's environment.
func New(env *worker.Env) (worker.Service, error) {
	return proxy.Build(env, func(c proxy.Common) *Proxy { return &Proxy{Common: c} }, (*Proxy).init)
}

// needed are the actions the milter cannot work without: X-Virus-Status
// and the spam fields are added, a spam Subject changed, a mail held
// (action = hold).
const needed = gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptQuarantine

// wanted are the protocol options asked for, each taken only when the
// MTA offers it: fewer round trips (no reply before the end of the
// message), fewer events, and header values as they were written.
const wanted = gomilter.OptNoReplies | gomilter.OptNoUnknown | gomilter.OptNoData | gomilter.OptHeaderLeadingSpace

func (p *Proxy) init() error {
	if err := p.Common.Init(); err != nil {
		return err
	}
	// The library's warnings (a peer that broke the protocol) go to the
	// error log, at debug: the peer's fault, said to the peer by closing.
	// (The library has one for the process, which serves one service.)
	log := p.Log.Named("protocol")
	setLogOnce.Do(func() {
		gomilter.LogWarning = func(format string, v ...any) { log.Debug(fmt.Sprintf(format, v...)) }
	})
	p.srv = gomilter.NewServer(
		gomilter.WithMilter(func() gomilter.Milter { return &session{p: p} }),
		gomilter.WithActions(needed),
		gomilter.WithProtocols(wanted),
		gomilter.WithNegotiationCallback(negotiate),
		gomilter.WithMacroRequest(gomilter.StageEOM, []gomilter.MacroName{gomilter.MacroQueueId}),
		gomilter.WithReadTimeout(p.Svc.IdleTimeout),
		gomilter.WithWriteTimeout(p.Svc.IdleTimeout),
	)
	return nil
}

var setLogOnce sync.Once

// negotiate takes what the MTA offers of what the milter wants; only the
// actions it needs are required.
func negotiate(mtaVersion, milterVersion uint32, mtaActions, milterActions gomilter.OptAction, mtaProtocol, milterProtocol gomilter.OptProtocol, offered gomilter.DataSize) (uint32, gomilter.OptAction, gomilter.OptProtocol, gomilter.DataSize, error) {
	if mtaActions&needed != needed {
		return 0, 0, 0, 0, fmt.Errorf("the MTA does not let a milter add and change header fields (it offers %v)", mtaActions)
	}
	return min(mtaVersion, milterVersion), milterActions & mtaActions, milterProtocol & mtaProtocol, offered, nil
}

// Serve accepts MTA connections until ln is closed.
func (p *Proxy) Serve(ln net.Listener) error {
	p.Listening(ln.Addr())
	err := p.srv.Serve(firstReadBy{ln, p.Svc.HeaderTimeout})
	if errors.Is(err, gomilter.ErrServerClosed) {
		return net.ErrClosed
	}
	return err
}

// Shutdown stops accepting and waits for the MTA connections until ctx
// ends; the admin notices still queued go out.
func (p *Proxy) Shutdown(ctx context.Context) error {
	err := p.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		p.srv.Close()
	}
	if errors.Is(err, net.ErrClosed) || errors.Is(err, gomilter.ErrServerClosed) {
		err = nil // the listener was closed first, by the worker
	}
	p.CloseNotices()
	return err
}

// firstReadBy gives each MTA connection header_timeout from its accept to
// begin negotiating: the protocol's read timeout (idle_timeout) would let
// a silent peer hold its slot that long.
type firstReadBy struct {
	net.Listener
	within time.Duration
}

func (l firstReadBy) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	first := slots.FirstRead(c, time.Now().Add(l.within))
	return &buffered{Conn: first, r: bufio.NewReaderSize(&quickAck{first, rawOf(c)}, 16<<10)}, nil
}

// buffered reads the MTA through a buffer: the protocol library reads a
// packet as its 4-byte length and then its data, two system calls a
// packet unbuffered, while the MTA writes a mail's packets back to back
// (it expects no reply before the end of the message).
type buffered struct {
	net.Conn
	r *bufio.Reader
}

func (b *buffered) Read(p []byte) (int, error) { return b.r.Read(p) }

// NetConn is the connection under the wrapper, for the slot's accounting.
func (b *buffered) NetConn() net.Conn { return b.Conn }

// quickAck acknowledges what it reads at once. The MTA writes a command
// as several small packets (its macros, then the command) and, with
// Nagle's algorithm on its socket, holds the second until the first is
// acknowledged; the milter answers nothing before the end of the
// message, so a delayed acknowledgement (40 ms on Linux) would stall
// every mail. TCP_QUICKACK does not stay set: it is set again after each
// read.
type quickAck struct {
	net.Conn
	raw syscall.RawConn // nil: not TCP
}

func (q *quickAck) Read(p []byte) (int, error) {
	n, err := q.Conn.Read(p)
	if q.raw != nil && n > 0 {
		q.raw.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, unix.TCP_QUICKACK, 1) })
	}
	return n, err
}

// rawOf is c's socket, under the slot's wrapper.
func rawOf(c net.Conn) syscall.RawConn {
	for {
		if tc, ok := c.(*net.TCPConn); ok {
			raw, err := tc.SyscallConn()
			if err != nil {
				return nil
			}
			return raw
		}
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = w.NetConn()
	}
}
