package http

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/slots"
)

// tunnel serves CONNECT: to an allowed port only, then the bytes are
// relayed both ways by the kernel (splice between the two TCP sockets).
func (s *session) tunnel(req *Request, tr *proxy.Transfer) {
	tr.Rec.URL, tr.Rec.Result = req.Target, "TCP_TUNNEL"
	host, port, err := net.SplitHostPort(req.Target)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil || host == "" {
		tr.Rec.Status = 400
		s.writeError(400, "Bad Request", "CONNECT needs host:port.", true)
		return
	}
	if !s.p.Svc.ConnectPorts.Has(n) {
		tr.Rec.Status, tr.Rec.Result = 403, "TCP_DENIED"
		s.writeError(403, "Forbidden", "CONNECT to port "+port+" is not allowed.", true)
		return
	}
	if s.tls != nil {
		tr.Rec.Status = 405
		s.writeError(405, "Method Not Allowed", "CONNECT inside HTTPS is not served.", true)
		return
	}
	if entry := s.p.blockHosts.Match(host); entry != "" {
		s.blockHost(tr, req.Target, entry)
		return
	}
	if s.p.mitm != nil && s.p.mitm.bypass.Match(host) == "" {
		s.intercept(req, tr, host, n, true)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var up net.Conn
	if s.p.Svc.ParentServerHost != "" {
		up, err = s.p.Dial(ctx, net.ParseIP(s.client), "tcp", s.p.ParentAddr())
		if err == nil {
			// The parent answers the CONNECT; its reply is relayed as is.
			_, err = io.WriteString(up, "CONNECT "+req.Target+" HTTP/1.1\r\nHost: "+req.Target+"\r\n\r\n")
		}
	} else {
		up, err = s.p.DialServer(ctx, &s.p.reach, net.ParseIP(s.client), host, n)
	}
	if errors.Is(err, proxy.ErrServerRefused) {
		s.refuseServer(tr, req.Target)
		return
	}
	if s.p.OutOfFiles(err, "connect") {
		s.unavailable(tr)
		return
	}
	if err != nil {
		tr.Rec.Status = 502
		s.log.Info("tunnel: server unreachable", zap.String("target", req.Target), zap.Error(err))
		s.writeError(502, "Bad Gateway", "The server could not be reached.", true)
		return
	}
	defer up.Close()
	if ta, ok := up.RemoteAddr().(*net.TCPAddr); ok {
		tr.Rec.Server = ta.IP.String()
	}
	tr.Rec.Status = 200
	if s.p.Svc.ParentServerHost == "" {
		if _, err := io.WriteString(s.c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
			return
		}
	}
	// Bytes the client sent after its CONNECT head are already read.
	if n := s.br.Buffered(); n > 0 {
		b, _ := s.br.Peek(n)
		if _, err := up.Write(b); err != nil {
			return
		}
	}
	s.relay(tr, up)
}

// relay relays the client's connection and up both ways until both end
// or neither moves for idle_timeout.
func (s *session) relay(tr *proxy.Transfer, up net.Conn) {
	client := s.c
	if sc, ok := client.(*slots.Conn); ok {
		client = sc.NetConn()
	}
	var wg sync.WaitGroup
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	idle := s.p.Svc.IdleTimeout
	wg.Add(2)
	go func() { defer wg.Done(); tr.Rec.Bytes = relay(client, up, idle, &last) }()
	go func() { defer wg.Done(); relay(up, client, idle, &last) }()
	wg.Wait()
}

// relay copies src to dst until src ends, then half-closes dst. With two
// TCP sockets the copy is splice(2), in pieces, so that the tunnel can be
// dropped when neither way has moved a byte for idle (a tunnel holds a
// slot: one left open and silent must not hold it forever). last is the
// tunnel's last activity, shared by both ways.
func relay(dst, src net.Conn, idle time.Duration, last *atomic.Int64) int64 {
	var total int64
	for {
		src.SetReadDeadline(time.Now().Add(idle))
		n, err := io.CopyN(dst, src, 1<<20)
		total += n
		if n > 0 {
			last.Store(time.Now().UnixNano())
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, last.Load())) < idle {
			continue // this way is quiet, the other is not
		}
		if err != nil {
			if err != io.EOF {
				// Idle, or broken: both ways end.
				src.Close()
				dst.Close()
				return total
			}
			break
		}
	}
	// A TCP socket half-closes; a TLS connection (intercepted, or to
	// the server) says close_notify and still reads.
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		dst.Close()
	}
	return total
}

// refuseServer answers a request for a server the settings keep clients
// from (allow_servers, deny_servers): 403, logged.
func (s *session) refuseServer(tr *proxy.Transfer, target string) {
	tr.Rec.Status, tr.Rec.Result, tr.Rec.Detail = 403, "TCP_DENIED", "server not allowed"
	if s.p.Once("server-refused") { // once a minute: a client can ask as often as it likes
		s.log.Warn("a client asked for a server it may not reach", zap.String("client", s.client), zap.String("target", target))
	}
	s.writeError(403, "Forbidden", "This gateway does not connect to that server.", true)
}
