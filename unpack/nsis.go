package unpack

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"io"
	"strconv"
)

// NSIS installers (Nullsoft: a Windows program's stub, then its data,
// found by the data's first header: flags, 0xDEADBEEF, "NullsoftInst",
// the script's length, the data's): how many programs, and droppers of
// others, are shipped. Its files are compressed, each block on its own
// (a length whose top bit says compressed, then the bytes) or all in one
// stream (solid: a length and the bytes for the script, then for each
// file), with raw deflate, LZMA (its properties first) or NSIS's own
// bzip2 (nsisbzip2.go), which each block's or the stream's first bytes
// tell. Every block, or every record of the solid stream, is walked: the
// script as nsis-script, the files as nsis-file-N (their names lie in the
// script's string table, not read here).

// nsisMagic is the first header's signature and "NullsoftInst".
var nsisMagic = []byte("\xef\xbe\xad\xdeNullsoftInst")

// nsisHeader is the first header's length.
const nsisHeader = 28

// nsisReader decodes a block or a solid stream, by its first bytes.
func nsisReader(b []byte, limit int64) (io.Reader, error) {
	switch {
	case len(b) >= 5 && b[0] == 0x5d && binary.LittleEndian.Uint32(b[1:])&0x7fffffff > 0: // LZMA, lc 3 lp 0 pb 2
		return lzmaReader(b[:5], ^uint64(0), limit, bytes.NewReader(b[5:])) // its size unknown
	case len(b) > 0 && b[0] == '1':
		return newNSISBzip2(b), nil // nsisbzip2.go
	}
	return flate.NewReader(bytes.NewReader(b)), nil
}

// nsis walks an installer whose first header is at the start of data.
func (s *scan) nsis(data []byte, where string, depth int) {
	total := int(binary.LittleEndian.Uint32(data[24:]))
	body := data[nsisHeader:min(len(data), max(total, nsisHeader))]
	if len(body) < 4 {
		return
	}
	room := min(s.lim.MaxFileSize, s.lim.MaxTotal-s.unpacked)
	n := 0
	name := func() string {
		n++
		if n == 1 {
			return join(where, "nsis-script")
		}
		return join(where, "nsis-file-"+strconv.Itoa(n-1))
	}
	// A solid LZMA stream's first bytes, its properties and dictionary
	// (0x5d, then 00 00 80 for 8 MiB), read as a block's length would
	// say compressed, 93 bytes: they are the stream's, as ClamAV takes
	// them.
	first := binary.LittleEndian.Uint32(body)
	if first&0x7fffffff != 0x5d && first&0x80000000 != 0 && int(first&0x7fffffff) <= len(body)-4 {
		// Each block on its own.
		for off := 0; off+4 <= len(body) && !s.stop; {
			size := binary.LittleEndian.Uint32(body[off:])
			n32 := int(size & 0x7fffffff)
			block := body[off+4 : min(len(body), off+4+n32)]
			off += 4 + n32
			at := name()
			if size&0x80000000 == 0 {
				s.memberData(block, int64(len(block)), at, depth)
				continue
			}
			r, err := nsisReader(block, room)
			if s.nsisUnopened(err, at, depth) {
				return
			}
			s.member(nsisEnded(r), int64(len(block)), at, depth)
		}
		return
	}
	// Solid: one stream, a length and the bytes of each record.
	r, err := nsisReader(body, s.lim.MaxTotal)
	if s.nsisUnopened(err, where, depth-1) {
		return
	}
	r = nsisEnded(r)
	var size [4]byte
	for !s.stop {
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return
		}
		rec := io.LimitReader(r, int64(binary.LittleEndian.Uint32(size[:])&0x7fffffff))
		s.member(rec, -1, name(), depth)
		io.Copy(io.Discard, rec) // a record the limits cut short: its rest passed
	}
}

// nsisUnopened says a block or stream nsisReader did not open, and tells
// whether it did.
func (s *scan) nsisUnopened(err error, where string, depth int) bool {
	if err != nil {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth})
	}
	return err != nil
}

// nsisEnded is r whose end without an end marker (NSIS's LZMA writes
// none: the data simply ends) is its end.
func nsisEnded(r io.Reader) io.Reader { return &eofAt{r: r} }

type eofAt struct{ r io.Reader }

func (e *eofAt) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}
