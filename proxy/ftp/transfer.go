package ftp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/logs"
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
	rec := s.access("RETR", arg)
	defer func() { rec.Elapsed = time.Since(rec.Start); s.p.Logs.Access(rec) }()
	sd, r, ok, alive := s.serverTransfer(Command{Verb: "RETR", Arg: arg})
	if !ok {
		rec.Status = r.Code
		return alive
	}
	defer sd.Close()
	f, err := s.p.Spool.Create("ftp")
	if err != nil {
		s.p.SpoolFailed(err)
		rec.Status, rec.Detail = 451, "spool failure"
		sd.Close()
		s.serverReply()
		s.reply("451 The gateway cannot take the file now; try again later.")
		return true
	}
	defer f.Close()
	follow := proxy.Follow{C: &s.p.Common}
	defer follow.Close()
	var got atomic.Int64
	var over bool
	var recvErr error
	gone := s.keepAlive(false, func() {
		over, recvErr = s.receive(f, sd, &got, false, &follow)
	}, func() string { return fmt.Sprintf("%d bytes received, still fetching.", got.Load()) }, func() { sd.Close() })
	if gone {
		return s.clientGone(rec)
	}
	if over {
		follow.Close() // not scanned: the engine's follow ends here
		return s.oversize(arg, f, sd, rest, rec)
	}
	sd.Close()
	final, err := s.serverReply()
	if err != nil {
		s.endPreliminary("Transfer broken off.", "451 The server closed the connection during the transfer.")
		return false
	}
	if s.p.SpoolFailed(recvErr) {
		rec.Status, rec.Detail = 451, "spool failure"
		s.endPreliminary("Transfer broken off.", "451 The gateway cannot take the file now; try again later.")
		return true
	}
	if recvErr != nil || final.Code/100 != 2 {
		rec.Status, rec.Detail = 451, "server broke off the transfer"
		s.endPreliminary("Transfer broken off.", "451 Transfer aborted by the server: "+final.Text())
		return true
	}
	url := rec.URL
	var pass bool
	var why string
	if s.keepAlive(true, func() { pass, why = s.judge(f, url, rec, follow.Following()) }, func() string { return "Scanning for viruses." }, nil) {
		return s.clientGone(rec)
	}
	if !pass {
		rec.Status = 550
		s.endPreliminary("Scan complete.", "550 "+arg+": "+why+"; not sent.")
		return true
	}
	if rest > f.Size() {
		rest = f.Size()
	}
	s.reply("150 Scan complete; opening the data connection.")
	cd, err := s.clientData()
	if err != nil {
		s.dataFailed(err)
		return true
	}
	n, err := s.p.Send(s.log, cd, f, rest, f.Size()-rest, url)
	cd.Close()
	rec.Bytes = n
	if err != nil {
		rec.Status = 426
		s.reply("426 Data connection broken; transfer aborted.")
		return true
	}
	rec.Status = final.Code
	s.reply(final.Raw())
	return true
}

// clientGone ends a session whose client closed its control connection
// during a download: what was fetched is dropped (the spool file with it)
// and the slot is freed; the access log says why.
func (s *session) clientGone(rec *logs.Access) bool {
	s.log.Info("client gone during a transfer; the transfer is given up")
	rec.Status, rec.Detail = 426, "client gone"
	if rec.Action == "" { // not judged yet
		rec.Action = "NONE"
	}
	return false
}

// receive copies a data connection into f, up to max_scan_size (over: the
// connection had more, still to be read), failing on a stall of
// data_timeout; an upload (fromClient) is also held to proxy.MinRate,
// since a client trickling it would hold its slot. got follows the bytes,
// for the progress lines; follow, the engine's follow of f.
func (s *session) receive(f *spool.File, src net.Conn, got *atomic.Int64, fromClient bool, follow *proxy.Follow) (over bool, err error) {
	var rate int64
	if fromClient {
		rate = proxy.MinRate
	}
	return f.Fill(proxy.Paced(src, src, s.p.Svc.DataTimeout, rate), s.p.Svc.MaxScanSize, func() {
		got.Store(f.Size())
		follow.Grew(f)
	})
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
	rec := s.access(cmd.Verb, cmd.Arg)
	defer func() { rec.Elapsed = time.Since(rec.Start); s.p.Logs.Access(rec) }()
	f, err := s.p.Spool.Create("ftp")
	if err != nil {
		s.p.SpoolFailed(err)
		rec.Status, rec.Detail = 451, "spool failure"
		s.reply("451 The gateway cannot take the file now; try again later.")
		return true
	}
	defer f.Close()
	s.reply("150 Ok to send data.")
	cd, err := s.clientData()
	if err != nil {
		s.dataFailed(err)
		return true
	}
	follow := proxy.Follow{C: &s.p.Common}
	defer follow.Close()
	var got atomic.Int64
	over, err := s.receive(f, cd, &got, true, &follow)
	cd.Close()
	switch {
	case over:
		rec.Status = 552
		s.reply("552 The file is larger than this gateway scans.")
		return true
	case s.p.SpoolFailed(err):
		rec.Status, rec.Detail = 451, "spool failure"
		s.reply("451 The gateway cannot take the file now; nothing was stored; try again later.")
		return true
	case err != nil:
		rec.Status = 426
		s.reply("426 Data connection broken; nothing was stored.")
		return true
	}
	pass, why := s.judge(f, rec.URL, rec, follow.Following())
	if !pass {
		rec.Status = 550
		s.reply("550 " + cmd.Arg + ": " + why + "; not stored.")
		return true
	}
	sd, r, ok, alive := s.serverTransfer(cmd)
	if !ok {
		rec.Status = r.Code
		return alive
	}
	defer sd.Close()
	n, err := s.p.Send(s.log, sd, f, 0, f.Size(), rec.URL)
	sd.Close()
	rec.Bytes = n
	final, rerr := s.serverReply()
	if rerr != nil {
		s.reply("421 The server closed the connection.")
		return false
	}
	if err != nil && final.Code/100 == 2 {
		final = Reply{Code: 451, Lines: []string{"451 The upload to the server broke off."}}
	}
	rec.Status = final.Code
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
func (s *session) oversize(arg string, f *spool.File, sd net.Conn, rest int64, rec *logs.Access) bool {
	if !s.p.Oversize(rec, "").Delivered() {
		sd.Close()
		rec.Status = 550
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
		sent, err = s.p.Send(s.log, cd, f, rest, f.Size()-rest, rec.URL)
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
	rec.Bytes = sent
	final, rerr := s.serverReply()
	if rerr != nil {
		s.reply("421 The server closed the connection.")
		return false
	}
	if err != nil || final.Code/100 != 2 {
		rec.Status = 451
		s.reply("451 Transfer aborted.")
		return true
	}
	rec.Status = final.Code
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
