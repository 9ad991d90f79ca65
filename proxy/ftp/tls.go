package ftp

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"strings"
)

// Explicit FTPS (RFC 4217), both ways.
//
// Towards the client, with tls_cert: AUTH TLS (or its old names TLS-C,
// SSL) before USER encrypts the control connection; PBSZ 0 and PROT P then
// the data connections, PROT C takes that back. The gateway ends the TLS
// and reads what it scans, as for STARTTLS. CCC (back to the clear) is
// refused: the commands would then be readable and alterable on the way.
//
// Towards the server, per parent_tls: AUTH TLS after its greeting, then
// PBSZ 0 and PROT P, the data connections' TLS sessions resumed from the
// control connection's, as vsftpd requires (require_ssl_reuse).
//
// Implicit FTPS (tls_port, 990): the client's connection is TLS from its
// first byte; in transparent mode the server it was going to speaks TLS
// at once too, and is reached so.

// tlsFeatures are the FEAT lines of the client's TLS, when offered.
func (s *session) tlsFeatures() []string {
	if s.p.TLS == nil {
		return nil
	}
	return []string{" AUTH TLS", " PBSZ", " PROT"}
}

// authTLS answers AUTH before login. Nothing may follow the command in
// the same packet: it would be read in the clear.
func (s *session) authTLS(arg string) bool {
	switch mech := strings.ToUpper(strings.TrimSpace(arg)); {
	case s.p.TLS == nil:
		s.reply("502 This gateway scans transfers and cannot do TLS.")
		return true
	case s.TLSOn:
		s.reply("503 TLS is on already.")
		return true
	case mech != "TLS" && mech != "TLS-C" && mech != "SSL":
		s.reply("504 AUTH TLS is the mechanism offered.")
		return true
	}
	return s.p.StartTLS(&s.LineClient, "234 AUTH TLS successful.", "503 Commands sent after AUTH before TLS began: closing.")
}

// protection answers PBSZ and PROT, which only a session under TLS has.
func (s *session) protection(cmd Command) {
	if !s.TLSOn {
		s.reply("503 " + cmd.Verb + " needs AUTH TLS first.")
		return
	}
	arg := strings.ToUpper(strings.TrimSpace(cmd.Arg))
	switch {
	case cmd.Verb == "PBSZ":
		s.reply("200 PBSZ=0")
	case arg == "P":
		s.protP = true
		s.reply("200 PROT now Private.")
	case arg == "C":
		s.protP = false
		s.reply("200 PROT now Clear.")
	default:
		s.reply("536 Only PROT C and P are supported.")
	}
}

// feat relays the server's FEAT, its TLS lines made the gateway's own:
// what the client may ask of the gateway, not what the server offers the
// gateway.
func (s *session) feat() bool {
	r, err := s.toServer("FEAT")
	if err != nil {
		s.reply("421 The server closed the connection.")
		return false
	}
	if r.Code != 211 || len(r.Lines) < 2 {
		s.reply(r.Raw())
		return true
	}
	lines := []string{r.Lines[0]}
	for _, l := range r.Lines[1 : len(r.Lines)-1] {
		switch strings.ToUpper(strings.Fields(l + " x")[0]) {
		case "AUTH", "PBSZ", "PROT", "CCC":
			continue
		}
		lines = append(lines, l)
	}
	lines = append(append(lines, s.tlsFeatures()...), r.Lines[len(r.Lines)-1])
	s.reply(lines...)
	return true
}

// serverTLS starts TLS with the server (host, as the client named it)
// after its greeting, per parent_tls (over TLS already, implicit FTPS,
// only the data connections' protection is asked for). nil: the session
// goes on, encrypted or (may, none) in the clear.
func (s *session) serverTLS(host string) error {
	mode := s.p.ParentTLSMode()
	if s.srvTLS == nil {
		if mode == "none" {
			return nil
		}
		r, err := s.toServer("AUTH TLS")
		if err != nil {
			return err
		}
		if r.Code != 234 {
			return s.p.ParentTLSMissing(fmt.Errorf("AUTH TLS refused: %s", r.Text()))
		}
		if err := s.startServerTLS(host); err != nil {
			return err
		}
	}
	r, err := s.toServer("PBSZ 0")
	if err != nil {
		return err
	}
	if r, err = s.toServer("PROT P"); err != nil {
		return err
	}
	if r.Code/100 != 2 {
		return s.p.ParentTLSMissing(fmt.Errorf("PROT P refused: %s", r.Text()))
	}
	s.srvP = true
	return nil
}

// startServerTLS makes the server connection TLS, its certificate checked
// per parent_tls; the data connections resume its session (one cache per
// session, keyed by the name: the same for every connection to it).
func (s *session) startServerTLS(host string) error {
	cfg := s.p.ParentTLS(s.srv.RemoteAddr().String(), host)
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(2)
	tc, err := s.p.StartParentTLS(s.srv, cfg, s.p.Svc.IdleTimeout)
	if err != nil {
		return err
	}
	s.srv, s.sr, s.srvTLS = tc, bufio.NewReaderSize(tc, maxLine), cfg
	return nil
}
