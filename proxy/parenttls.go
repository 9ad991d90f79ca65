package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"time"

	"go.uber.org/zap"
)

// TLS towards a service's server or next hop (parent_tls, SMTP and
// POP3): none, never; may (as shipped), whenever the server offers it,
// encrypted but not authenticated, as mail servers do between themselves
// (a certificate that does not verify is logged, once an hour for a
// server, and the session goes on); verify, required, the certificate's
// chain checked to the system's roots and its name: a server that offers
// no TLS, or whose certificate fails, gets no session (the client is told
// to try later).

// ErrParentTLS: parent_tls = verify, and the server offers no TLS or its
// certificate does not verify.
var ErrParentTLS = errors.New("the server's TLS could not be verified (parent_tls = verify)")

// ParentTLSMode is the service's parent_tls.
func (c *Common) ParentTLSMode() string { return c.Svc.ParentTLS }

// ParentTLS is the TLS configuration towards server (host:port, for the
// log), whose name is name.
func (c *Common) ParentTLS(server, name string) *tls.Config {
	cfg := &tls.Config{ServerName: name, MinVersion: tls.VersionTLS12}
	if c.Svc.ParentTLS == "verify" {
		return cfg
	}
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return nil
		}
		inter := x509.NewCertPool()
		for _, ic := range cs.PeerCertificates[1:] {
			inter.AddCert(ic)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: name, Intermediates: inter})
		if err != nil && c.OnceIn("parent-unverified "+server, time.Hour) {
			c.Log.Info("the server's certificate does not verify: the session is encrypted, not authenticated (parent_tls = may)",
				zap.String("server", server), zap.Error(err))
		}
		return nil
	}
	return cfg
}

// ParentTLSFailed wraps a failed TLS start towards a server with
// parent_tls = verify as ErrParentTLS (so that the client is told why);
// other modes' failures are returned as they are.
func (c *Common) ParentTLSFailed(err error) error {
	if c.Svc.ParentTLS == "verify" {
		return errors.Join(ErrParentTLS, err)
	}
	return err
}

// ParentTLSMissing is what a server that offers no TLS (why) means:
// nothing, the session going on in the clear, unless parent_tls = verify
// (ErrParentTLS).
func (c *Common) ParentTLSMissing(why error) error {
	if c.Svc.ParentTLS == "verify" {
		return errors.Join(ErrParentTLS, why)
	}
	return nil
}
