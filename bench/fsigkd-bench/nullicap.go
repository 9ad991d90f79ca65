package main

import (
	"bufio"
	"io"
	"net"

	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/proxy/icap"
)

// startNullICAP serves an ICAP server that looks at nothing: OPTIONS
// offers Preview: 0 and Allow: 204, and every RESPMOD or REQMOD is
// answered 204 once its head (and the empty preview) is read, with the
// gateway's own ICAP parser. Squid behind it measures what Squid's ICAP
// client costs by itself: the ceiling of any ICAP server's rate through
// Squid on this machine.
func startNullICAP() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	go servertest.Serve(ln, serveNullICAP)
	return ln.Addr().String()
}

func serveNullICAP(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := icap.ReadRequest(br, 64<<10)
		if err != nil {
			return
		}
		if req.Method == "OPTIONS" {
			io.WriteString(c, "ICAP/1.0 200 OK\r\nMethods: RESPMOD, REQMOD\r\nISTag: \"null\"\r\nPreview: 0\r\nTransfer-Preview: *\r\nAllow: 204\r\nEncapsulated: null-body=0\r\n\r\n")
			continue
		}
		if req.Body != "null-body" {
			if _, err := io.Copy(io.Discard, icap.Body(br)); err != nil {
				return
			}
		}
		io.WriteString(c, "ICAP/1.0 204 No Content\r\nISTag: \"null\"\r\nEncapsulated: null-body=0\r\n\r\n")
	}
}
