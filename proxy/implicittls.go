package proxy

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/internal/sessions"
	"github.com/fsigkd/fsigkd/slots"
	"github.com/fsigkd/fsigkd/tlsca"
)

// Implicit TLS (tls_port, RFC 8314): a second listener of a mail service
// or of the ICAP server whose clients speak TLS from their first byte
// (465, 995, ICAPS). Its connections are *tls.Conn over the slot's
// connection, sharing the service's slots; the handshake is the first
// thing a session does, within header_timeout (Handshake).

// ClientTLS is the service's TLS towards its clients, of tls_cert and
// tls_key (checked by conf): TLS 1.2 and up, modern suites; nil when no
// certificate is set.
func (c *Common) ClientTLS() (*tls.Config, error) {
	if c.Svc.TLSCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.Svc.TLSCert, c.Svc.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("tls_cert/tls_key: %v", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, CipherSuites: tlsca.ModernSuites}, nil
}

// ImplicitTLS is ln (the tls_port listener) with TLS ended on each
// connection it accepts, per cfg. With every slot busy, the idle session
// of set (nil: none) that waited longest gives its slot to a waiting
// client, as on the plain port. Its address is refused as an original
// destination, as Serve's is.
func (c *Common) ImplicitTLS(ln net.Listener, cfg *tls.Config, set *sessions.Set) net.Listener {
	if sl, ok := ln.(*slots.Listener); ok && set != nil {
		sl.Evict = set.EvictOldestIdle
		set.OnIdle(sl.Wake)
	}
	c.tlsListening.Store(ln.Addr())
	return tlsListener{ln, cfg}
}

type tlsListener struct {
	net.Listener
	cfg *tls.Config
}

func (l tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return tls.Server(c, l.cfg), nil
}

// Handshake does the TLS handshake of a connection from the tls_port
// listener within d (header_timeout: a client that says nothing holds no
// slot longer), and reports whether c is such a connection (tls) and
// whether the session may go on (ok). A failed handshake is logged at
// debug level: scanners and clients that give up are not the
// administrator's business.
func (c *Common) Handshake(conn net.Conn, d time.Duration) (isTLS, ok bool) {
	tc, isTLS := conn.(*tls.Conn)
	if !isTLS {
		return false, true
	}
	if err := Shake(tc, d); err != nil {
		if c.Log != nil {
			c.Log.Debug("a client's TLS handshake failed (tls_port)", zap.Stringer("client", conn.RemoteAddr()), zap.Error(err))
		}
		return true, false
	}
	return true, true
}

// IsTLS tells whether c, or a connection it wraps, is TLS ended here.
func IsTLS(c net.Conn) bool {
	for i := 0; i < 8 && c != nil; i++ {
		if _, ok := c.(*tls.Conn); ok {
			return true
		}
		nc, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return false
		}
		c = nc.NetConn()
	}
	return false
}

// DialTLS starts TLS on nc, a connection to server addr (host:port),
// its certificate checked per parent_tls for addr's host, within d: the
// server that speaks TLS from its first byte (where a client of tls_port
// was going, in transparent mode), or one that said yes to STLS. A
// failure closes nc (ParentTLSFailed).
func (c *Common) DialTLS(nc net.Conn, addr string, d time.Duration) (*tls.Conn, error) {
	host, _, _ := net.SplitHostPort(addr)
	return c.StartParentTLS(nc, c.ParentTLS(addr, host), d)
}

// StartParentTLS starts TLS towards a server on nc with cfg (ParentTLS's,
// perhaps with a session cache), within d; a failure closes nc, and
// with parent_tls = verify is ErrParentTLS.
func (c *Common) StartParentTLS(nc net.Conn, cfg *tls.Config, d time.Duration) (*tls.Conn, error) {
	tc := tls.Client(nc, cfg)
	if err := Shake(tc, d); err != nil {
		nc.Close()
		return nil, c.ParentTLSFailed(err)
	}
	return tc, nil
}

// ClientConn is what a line session's reader reads: the client's
// connection, and the TLS over it once the client asked for it (STLS,
// AUTH TLS). The reader is kept across: the session loop holds it.
type ClientConn struct{ net.Conn }

// UpgradeTLS ends TLS on in, the client's connection, after the command
// that asked for it was answered yes, the handshake within d. The caller
// refused the command when something was read behind it (it would have
// been read in the clear). in then reads the TLS, which is returned for
// the session to write to.
func (c *Common) UpgradeTLS(in *ClientConn, cfg *tls.Config, d time.Duration) (*tls.Conn, error) {
	tc := tls.Server(in.Conn, cfg)
	if err := Shake(tc, d); err != nil {
		return nil, err
	}
	in.Conn = tc
	return tc, nil
}

// Shake does tc's handshake within d, its connection's deadlines cleared
// after (the session sets its own).
func Shake(tc *tls.Conn, d time.Duration) error {
	tc.SetDeadline(time.Now().Add(d))
	if err := tc.Handshake(); err != nil {
		return err
	}
	return tc.SetDeadline(time.Time{})
}
