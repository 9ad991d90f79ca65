package main

import (
	"bufio"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
)

// startNullICAP serves an ICAP server that looks at nothing: OPTIONS
// offers Preview: 0 and Allow: 204, and every RESPMOD or REQMOD is
// answered 204 once its headers (and the empty preview) are read. Squid
// behind it measures what Squid's ICAP client costs by itself: the
// ceiling of any ICAP server's rate through Squid on this machine.
func startNullICAP() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveNullICAP(c)
		}
	}()
	return ln.Addr().String()
}

func serveNullICAP(c net.Conn) {
	defer c.Close()
	tp := textproto.NewReader(bufio.NewReader(c))
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		head, err := tp.ReadMIMEHeader()
		if err != nil {
			return
		}
		if strings.HasPrefix(line, "OPTIONS ") {
			io.WriteString(c, "ICAP/1.0 200 OK\r\nMethods: RESPMOD, REQMOD\r\nISTag: \"null\"\r\nPreview: 0\r\nTransfer-Preview: *\r\nAllow: 204\r\nEncapsulated: null-body=0\r\n\r\n")
			continue
		}
		// Encapsulated: the last offset is where the body (or nothing)
		// starts; the headers before it are skipped.
		enc := head.Get("Encapsulated")
		last := enc[strings.LastIndexByte(enc, ',')+1:]
		name, off, _ := strings.Cut(strings.TrimSpace(last), "=")
		n, err := strconv.Atoi(off)
		if err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, tp.R, int64(n)); err != nil {
			return
		}
		if name != "null-body" {
			// The preview: chunks up to the last, empty one.
			for {
				size, err := tp.ReadLine()
				if err != nil {
					return
				}
				sz, _, _ := strings.Cut(size, ";")
				k, err := strconv.ParseInt(strings.TrimSpace(sz), 16, 64)
				if err != nil {
					return
				}
				if _, err := io.CopyN(io.Discard, tp.R, k+2); err != nil {
					return
				}
				if k == 0 {
					break
				}
			}
		}
		io.WriteString(c, "ICAP/1.0 204 No Content\r\nISTag: \"null\"\r\nEncapsulated: null-body=0\r\n\r\n")
	}
}
