package fsavd

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/fsavd/engine"
)

// FuzzSession feeds a client's whole side of a session to the server:
// whatever it sends, the server answers line by line within its limits
// and ends the session when the client does, without a panic. Inputs
// that name an absolute path are left out (a path is opened, and a fuzzer
// is not to be let read the machine's files).
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"PROTOCOL\t9\nCONFIGURE\tARCHIVE\t1\nCONFIGURE\tMIME\t1\nSCAN\trelative\nQUIT\n",
		"CONFIGURE\tSCANFD\t1\nSCANFD\tname\n",
		"CONFIGURE\tBLOCKTYPES\texe,lnk\nCONFIGURE\tBLOCKNAMES\t*.scr\nCONFIGURE\tMAXARCH\t-5\n",
		"CONFIGURE\tTIMEOUT\tx\nPING\n\n\r\n",
		"CONFIGURE\tFOLLOW\t1\nFOLLOWFD\tname\nGROWN\t4194304\nGROWN\t-1\nGROWN\tx\nSCANFOLLOWED\nSCANFOLLOWED\n",
		"CONFIGURE\tSCANBYTES\t1\nSCANBYTES\tobject\t5\nhelloSCANBYTES\tobject\t3\nab",
		"SCANBYTES\tobject\t2\nxx\nSCANBYTES\tx\t99999999\n",
	} {
		f.Add([]byte(s))
	}
	db, err := engine.Load("")
	if err != nil {
		f.Fatal(err)
	}
	srv := &Server{Engine: engine.New(db), Log: zap.NewNop()}
	f.Fuzz(func(t *testing.T, in []byte) {
		if bytes.Contains(in, []byte("\t/")) || bytes.Contains(in, []byte(" /")) {
			return
		}
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer server.Close()
			if srv.sessions.Add(server) {
				defer srv.sessions.Done(server)
				srv.serveConn(server)
			}
		}()
		go func() {
			client.SetWriteDeadline(time.Now().Add(5 * time.Second))
			client.Write(in)
			client.Close()
		}()
		go io.Copy(io.Discard, client)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("the session did not end with its client: %q", in)
		}
	})
}
