package ftp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/spool"
)

// dataFailed answers a data connection that did not come.
func (s *session) dataFailed(err error) {
	if errors.Is(err, errSource) {
		s.reply("530 Invalid Connection Source.")
	} else {
		s.reply("425 Cannot open the data connection.")
	}
}

// retr fetches the file whole, scans it, then sends it (from REST's
// offset). false ends the session.
func (s *session) retr(arg string) bool {
	rest, ready := s.transferStart()
	if !ready {
		return true
	}
	defer s.closeData()
	t := s.begin("RETR", arg)
	defer t.End()
	o := t.Object()
	sd, r, ok, alive := s.serverTransfer(Command{Verb: "RETR", Arg: arg})
	if !ok {
		t.Rec.Status = r.Code
		return alive
	}
	defer sd.Close()
	final, fetched, alive := s.fetch(arg, o, sd, rest, t)
	if !fetched {
		return alive
	}
	var pass bool
	var why string
	if s.keepAlive(true, func() { pass, why = s.judge(o) }, func() string { return "Scanning for viruses." }, nil) {
		return s.clientGone(t)
	}
	if !pass {
		t.Rec.Status = 550
		s.endPreliminary("Scan complete.", "550 "+arg+": "+why+"; not sent.")
		return true
	}
	return s.sendScanned(o.File(), rest, final, t)
}

// fetch receives the file from the server's data connection sd into o,
// the client kept waiting meanwhile, and reads the server's final reply;
// fetched false: the client was answered (or is gone), alive says
// whether the session goes on.
func (s *session) fetch(arg string, o *proxy.Object, sd net.Conn, rest int64, t *proxy.Transfer) (final Reply, fetched, alive bool) {
	var got atomic.Int64
	var over bool
	var recvErr error
	gone := s.keepAlive(false, func() {
		over, recvErr = s.receive(o, sd, &got, false)
	}, func() string { return fmt.Sprintf("%d bytes received, still fetching.", got.Load()) }, func() { sd.Close() })
	switch {
	case gone:
		return Reply{}, false, s.clientGone(t)
	case over:
		return Reply{}, false, s.oversize(arg, o, sd, rest)
	}
	sd.Close()
	final, err := s.serverReply()
	switch {
	case err != nil:
		s.endPreliminary("Transfer broken off.", "451 The server closed the connection during the transfer.")
		return Reply{}, false, false
	case proxy.SpoolFailure(recvErr):
		t.Rec.Status = 451
		s.endPreliminary("Transfer broken off.", "451 The gateway cannot take the file now; try again later.")
		return Reply{}, false, true
	case recvErr != nil || final.Code/100 != 2:
		t.Rec.Status, t.Rec.Detail = 451, "server broke off the transfer"
		s.endPreliminary("Transfer broken off.", "451 Transfer aborted by the server: "+final.Text())
		return Reply{}, false, true
	}
	return final, true, true
}

// sendScanned sends the scanned file f (from REST's offset rest) to the
// client over a data connection, and then the server's final reply.
func (s *session) sendScanned(f *spool.File, rest int64, final Reply, t *proxy.Transfer) bool {
	rest = min(rest, f.Size())
	s.reply("150 Scan complete; opening the data connection.")
	cd, err := s.clientData()
	if err != nil {
		s.dataFailed(err)
		return true
	}
	n, err := s.p.Send(s.log, cd, f, rest, f.Size()-rest, t.Rec.URL)
	cd.Close()
	t.Rec.Bytes = n
	if err != nil {
		t.Rec.Status = 426
		s.reply("426 Data connection broken; transfer aborted.")
		return true
	}
	t.Rec.Status = final.Code
	s.reply(final.Raw())
	return true
}

// clientGone ends a session whose client closed its control connection
// during a download: what was fetched is dropped (the spool file with it)
// and the slot is freed; the access log says why.
func (s *session) clientGone(t *proxy.Transfer) bool {
	s.log.Info("client gone during a transfer; the transfer is given up")
	t.Rec.Status, t.Rec.Detail = 426, "client gone"
	if t.Rec.Action == "" { // not judged yet
		t.Rec.Action = "NONE"
	}
	return false
}

// receive copies a data connection into the object's spool, up to
// max_scan_size (over: the connection had more, still to be read),
// failing on a stall of data_timeout; an upload (fromClient) is also
// held to proxy.MinRate, since a client trickling it would hold its
// slot. got follows the bytes, for the progress lines.
func (s *session) receive(o *proxy.Object, src net.Conn, got *atomic.Int64, fromClient bool) (over bool, err error) {
	var rate int64
	if fromClient {
		rate = proxy.MinRate
	}
	return o.Fill(proxy.Paced(src, src, s.p.Svc.DataTimeout, rate), func() { got.Store(o.File().Size()) })
}

// store takes the file from the client, scans it, and only then sends it
// to the server. false ends the session.
func (s *session) store(cmd Command) bool {
	rest, ready := s.transferStart()
	if !ready {
		return true
	}
	defer s.closeData()
	if rest > 0 {
		s.reply("550 A restarted upload cannot be scanned whole; send the whole file.")
		return true
	}
	t := s.begin(cmd.Verb, cmd.Arg)
	defer t.End()
	o := t.Object()
	if _, err := o.Spool(); err != nil {
		t.Rec.Status = 451
		s.reply("451 The gateway cannot take the file now; try again later.")
		return true
	}
	s.reply("150 Ok to send data.")
	cd, err := s.clientData()
	if err != nil {
		s.dataFailed(err)
		return true
	}
	var got atomic.Int64
	over, err := s.receive(o, cd, &got, true)
	cd.Close()
	switch {
	case over:
		t.Rec.Status = 552
		s.reply("552 The file is larger than this gateway scans.")
		return true
	case proxy.SpoolFailure(err):
		t.Rec.Status = 451
		s.reply("451 The gateway cannot take the file now; nothing was stored; try again later.")
		return true
	case err != nil:
		t.Rec.Status = 426
		s.reply("426 Data connection broken; nothing was stored.")
		return true
	}
	if pass, why := s.judge(o); !pass {
		t.Rec.Status = 550
		s.reply("550 " + cmd.Arg + ": " + why + "; not stored.")
		return true
	}
	sd, r, ok, alive := s.serverTransfer(cmd)
	if !ok {
		t.Rec.Status = r.Code
		return alive
	}
	defer sd.Close()
	return s.storeScanned(o.File(), sd, t)
}

// storeScanned sends the scanned file f to the server's data connection
// sd, and the server's final reply to the client.
func (s *session) storeScanned(f *spool.File, sd net.Conn, t *proxy.Transfer) bool {
	n, err := s.p.Send(s.log, sd, f, 0, f.Size(), t.Rec.URL)
	sd.Close()
	t.Rec.Bytes = n
	final, rerr := s.serverReply()
	if rerr != nil {
		s.reply("421 The server closed the connection.")
		return false
	}
	if err != nil && final.Code/100 == 2 {
		final = Reply{Code: 451, Lines: []string{"451 The upload to the server broke off."}}
	}
	t.Rec.Status = final.Code
	s.reply(final.Raw())
	return true
}

// listing relays LIST, NLST and MLSD unscanned, server to client.
func (s *session) listing(cmd Command) bool {
	if _, ready := s.transferStart(); !ready {
		return true
	}
	defer s.closeData()
	sd, r, ok, alive := s.serverTransfer(cmd)
	if !ok {
		return alive
	}
	defer sd.Close()
	s.reply(r.Raw())
	cd, err := s.clientData()
	if err != nil {
		s.dataFailed(err)
		return true
	}
	sd.SetDeadline(time.Now().Add(s.p.Svc.IdleTimeout))
	_, cerr := io.Copy(cd, sd) // splice between two TCP sockets
	cd.Close()
	sd.Close()
	final, err := s.serverReply()
	if err != nil {
		s.reply("421 The server closed the connection.")
		return false
	}
	if cerr != nil && final.Code/100 == 2 {
		final = Reply{Code: 426, Lines: []string{"426 Data connection broken."}}
	}
	s.reply(final.Raw())
	return true
}

// oversize handles a download over max_scan_size: passed unscanned (what
// was spooled, then the rest straight from the server) or refused, per
// oversize_action, and logged either way.
func (s *session) oversize(arg string, o *proxy.Object, sd net.Conn, rest int64) bool {
	f := o.File()
	if !o.Oversize("").Delivered() {
		sd.Close()
		o.Rec.Status = 550
		_, err := s.serverReply()
		s.endPreliminary("Too large.", "550 "+arg+": larger than this gateway scans; not sent.")
		return err == nil // the session ends if the server has gone
	}
	s.reply("150 Larger than this gateway scans: passed unscanned.")
	cd, err := s.clientData()
	if err != nil {
		sd.Close()
		s.serverReply()
		s.dataFailed(err)
		return true
	}
	var sent int64
	if rest < f.Size() {
		sent, err = s.p.Send(s.log, cd, f, rest, f.Size()-rest, o.Rec.URL)
		rest = 0
	} else {
		rest -= f.Size()
	}
	if err == nil {
		if rest > 0 {
			_, err = io.CopyN(io.Discard, sd, rest)
		}
		if err == nil {
			var n int64
			n, err = io.Copy(cd, sd)
			sent += n
		}
	}
	cd.Close()
	sd.Close()
	o.Rec.Bytes = sent
	final, rerr := s.serverReply()
	if rerr != nil {
		s.reply("421 The server closed the connection.")
		return false
	}
	if err != nil || final.Code/100 != 2 {
		o.Rec.Status = 451
		s.reply("451 Transfer aborted.")
		return true
	}
	o.Rec.Status = final.Code
	s.reply(final.Raw())
	return true
}

// serverTransfer opens the data connection to the server and sends it the
// transfer command. Unless ok, the client has had its answer (the server's
// refusal among them) and alive says whether the session goes on.
func (s *session) serverTransfer(cmd Command) (sd net.Conn, r Reply, ok, alive bool) {
	sd, ln, err := s.serverData()
	if err != nil {
		s.log.Info("server data connection", zap.Error(err))
		s.reply("425 Cannot open a data connection to the server.")
		return nil, Reply{Code: 425}, false, true
	}
	closeAll := func() {
		if sd != nil {
			sd.Close()
		}
		if ln != nil {
			ln.Close()
		}
	}
	r, err = s.toServer(cmd.Verb + argSuffix(cmd.Arg))
	if err != nil {
		closeAll()
		s.reply("421 The server closed the connection.")
		return nil, Reply{Code: 421}, false, false
	}
	if r.Code/100 != 1 {
		closeAll()
		s.reply(r.Raw())
		return nil, r, false, true
	}
	if ln != nil {
		// Active: the server connects now, from its own address only.
		sd, err = acceptFrom(ln, time.Now().Add(s.p.Svc.DataTimeout), s.srv.RemoteAddr().(*net.TCPAddr).IP)
		ln.Close()
		if err != nil {
			s.serverReply() // its failure of the transfer
			s.reply("425 The server did not open the data connection.")
			return nil, Reply{Code: 425}, false, true
		}
	}
	if s.srvP {
		// PROT P: the gateway is the data connection's TLS client, its
		// session the control connection's (servers such as vsftpd
		// require that reuse). The server starts its side once it has
		// the transfer command, so the handshake comes after it.
		if sd, err = dataTLS(tls.Client(sd, s.srvTLS), s.p.Svc.DataTimeout); err != nil {
			s.log.Info("server data connection TLS", zap.Error(err))
			s.serverReply()
			s.reply("425 Cannot open a data connection to the server.")
			return nil, Reply{Code: 425}, false, true
		}
	}
	return sd, r, true, true
}

// transferStart takes the REST offset (a transfer uses it up) and makes
// sure the client has set up its data connection; when not, the client
// has had its answer.
func (s *session) transferStart() (rest int64, ready bool) {
	rest, s.rest = s.rest, 0
	if !s.hasDataMode() {
		s.reply("530 please use PORT/PASV command at first.")
		return rest, false
	}
	return rest, true
}
