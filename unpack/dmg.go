package unpack

import (
	"bytes"
	"compress/bzip2"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// Apple disk images (UDIF, .dmg): how macOS programs are downloaded.
// Read here: the trailer ("koly") at the end, the property list it
// points at, and each of its block tables ("mish", one a partition):
// every chunk of sectors stored, zero, or compressed with ADC, zlib or
// bzip2, as ClamAV reads them; each partition's sectors walked as one
// object (a FAT volume in it is opened as one; an HFS+ one is matched
// as it is, where its files lie whole in most images, and a zip in it
// is opened where it lies). A chunk of another compression (LZFSE,
// LZMA: hdiutil's ULFO and ULMO) is Heuristics.Unsupported.DMG,
// suspected: ClamAV skips such a chunk.

const (
	dmgMaxPlist  = 16 << 20
	dmgMaxChunks = 1 << 20 // chunks of one image
	dmgSector    = 512
)

// isDMG tells whether d ends with a UDIF trailer.
func isDMG(d []byte) bool {
	return len(d) >= 512 && bytes.Equal(d[len(d)-512:len(d)-508], []byte("koly"))
}

// dmgChunk is one chunk of a block table.
type dmgChunk struct {
	typ            uint32
	sector, count  int64
	offset, length int64
}

// dmgTable is a block table: a partition's name and its chunks.
type dmgTable struct {
	name   string
	chunks []dmgChunk
}

// dmgTables reads the trailer and the block tables of the property
// list; false when they are not whole.
func dmgTables(d []byte) ([]dmgTable, bool) {
	k := d[len(d)-512:]
	xmlOff, xmlLen := int64(binary.BigEndian.Uint64(k[216:])), int64(binary.BigEndian.Uint64(k[224:]))
	dataOff := int64(binary.BigEndian.Uint64(k[24:]))
	if xmlOff < 0 || xmlLen <= 0 || xmlLen > dmgMaxPlist || xmlOff > int64(len(d)) || xmlLen > int64(len(d))-xmlOff || dataOff < 0 {
		return nil, false
	}
	var plist struct {
		Dict struct {
			Inner []byte `xml:",innerxml"`
		} `xml:"dict"`
	}
	if err := xml.Unmarshal(d[xmlOff:xmlOff+xmlLen], &plist); err != nil {
		return nil, false
	}
	var tables []dmgTable
	chunks := 0
	for _, e := range dmgBlkx(plist.Dict.Inner) {
		m := e.data
		if len(m) < 204 || !bytes.Equal(m[:4], []byte("mish")) {
			return nil, false
		}
		first := int64(binary.BigEndian.Uint64(m[8:]))
		start := int64(binary.BigEndian.Uint64(m[24:])) + dataOff
		n := int(binary.BigEndian.Uint32(m[200:]))
		if n < 0 || 204+40*n > len(m) || chunks+n > dmgMaxChunks {
			return nil, false
		}
		chunks += n
		t := dmgTable{name: e.name}
		for i := range n {
			c := m[204+40*i:]
			ch := dmgChunk{
				typ:    binary.BigEndian.Uint32(c),
				sector: first + int64(binary.BigEndian.Uint64(c[8:])),
				count:  int64(binary.BigEndian.Uint64(c[16:])),
				offset: start + int64(binary.BigEndian.Uint64(c[24:])),
				length: int64(binary.BigEndian.Uint64(c[32:])),
			}
			if ch.count < 0 || ch.count > 1<<40 || ch.length < 0 || ch.offset < 0 {
				return nil, false
			}
			t.chunks = append(t.chunks, ch)
		}
		tables = append(tables, t)
	}
	return tables, len(tables) > 0
}

// dmgEntry is a block table as the property list gives it.
type dmgEntry struct {
	name string
	data []byte
}

// dmgBlkx reads the "blkx" array of the resource fork's dictionary: each
// dictionary's Name (or CFName) and Data. The property list is read as
// a flat run of elements: a key, then its value.
func dmgBlkx(inner []byte) []dmgEntry {
	dec := xml.NewDecoder(bytes.NewReader(inner))
	var out []dmgEntry
	var key, text string
	inBlkx, depth, blkxDepth := false, 0, 0
	var cur *dmgEntry
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			text = ""
			if inBlkx && t.Name.Local == "dict" && depth == blkxDepth+1 {
				out = append(out, dmgEntry{})
				cur = &out[len(out)-1]
			}
			if t.Name.Local == "array" && key == "blkx" && !inBlkx {
				inBlkx, blkxDepth = true, depth
			}
		case xml.CharData:
			text += string(t)
		case xml.EndElement:
			switch t.Name.Local {
			case "key":
				key = strings.TrimSpace(text)
			case "string":
				if cur != nil && (key == "Name" || key == "CFName" && cur.name == "") {
					cur.name = strings.TrimSpace(text)
				}
			case "data":
				if cur != nil && key == "Data" {
					cur.data, _ = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), ""))
				}
			case "array":
				if inBlkx && depth == blkxDepth {
					inBlkx = false
				}
			case "dict":
				if inBlkx && depth == blkxDepth+1 {
					cur = nil
				}
			}
			depth--
		}
	}
	return out
}

// dmg walks a disk image's partitions.
func (s *scan) dmg(data []byte, where string, depth int) {
	tables, ok := dmgTables(data)
	if !ok {
		s.brokenAt(where, depth-1)
		return
	}
	for i, t := range tables {
		if s.stop {
			return
		}
		at := join(where, fmt.Sprintf("partition-%d", i))
		var size int64
		for _, c := range t.chunks {
			if c.typ != 0x7ffffffe && c.typ != 0xffffffff {
				size = max(size, (c.sector-t.chunks[0].sector+c.count)*dmgSector)
			}
		}
		if size == 0 {
			continue
		}
		if size > s.lim.MaxFileSize {
			s.exceeded("FileSize", at, depth)
			continue
		}
		r := &dmgReader{d: data, chunks: t.chunks}
		s.member(r, 0, at, depth)
		if r.unsupported {
			s.add(Detection{Name: "Heuristics.Unsupported.DMG", Path: at, Kind: Suspected, Depth: depth})
		}
		if r.broken {
			s.brokenAt(at, depth)
		}
	}
}

// dmgReader reads a partition's sectors, chunk by chunk.
type dmgReader struct {
	d           []byte
	chunks      []dmgChunk
	next        int
	pos         int64 // the sector read up to, from the first chunk's
	buf         []byte
	unsupported bool
	broken      bool
}

func (r *dmgReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.next >= len(r.chunks) {
			return 0, io.EOF
		}
		c := r.chunks[r.next]
		r.next++
		if c.typ == 0x7ffffffe || c.typ == 0xffffffff { // a comment, the end
			continue
		}
		if gap := c.sector - r.chunks[0].sector - r.pos; gap > 0 {
			// Sectors no chunk gives: zeros (bounded by the member's limits).
			r.buf = make([]byte, min(gap*dmgSector, 1<<20))
			r.pos += int64(len(r.buf)) / dmgSector
			r.next--
			continue
		}
		want := c.count * dmgSector
		if want > 64<<20 {
			r.broken = true
			return 0, io.ErrUnexpectedEOF
		}
		var out []byte
		switch c.typ {
		case 0, 2: // zeros
			out = make([]byte, want)
		default:
			if c.offset > int64(len(r.d)) || c.length > int64(len(r.d))-c.offset {
				r.broken = true
				return 0, io.ErrUnexpectedEOF
			}
			in := r.d[c.offset : c.offset+c.length]
			var err error
			switch c.typ {
			case 1:
				out = in
			case 0x80000004:
				out, err = adc(in, int(want))
			case 0x80000005:
				var zr io.ReadCloser
				if zr, err = zlib.NewReader(bytes.NewReader(in)); err == nil {
					out, err = readUpTo(zr, want)
				}
			case 0x80000006:
				out, err = readUpTo(bzip2.NewReader(bytes.NewReader(in)), want)
			default:
				r.unsupported = true
				out = make([]byte, want) // read on: what follows is scanned
			}
			if err != nil {
				r.broken = true
				return 0, io.ErrUnexpectedEOF
			}
		}
		if int64(len(out)) < want {
			out = append(out, make([]byte, want-int64(len(out)))...)
		}
		r.buf = out[:want]
		r.pos += c.count
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// readUpTo reads at most n bytes of r.
func readUpTo(r io.Reader, n int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, n))
	if err == io.ErrUnexpectedEOF {
		err = nil // a chunk's stream may end before its sectors do
	}
	return b, err
}

// adc decompresses Apple Data Compression: runs of literals, and copies
// of 3 to 18 bytes (a distance of up to 1,024 back) or 4 to 67 bytes (up
// to 65,536 back).
func adc(in []byte, max int) ([]byte, error) {
	out := make([]byte, 0, max)
	for i := 0; i < len(in) && len(out) < max; {
		c := in[i]
		var n, dist int
		switch {
		case c&0x80 != 0:
			n = int(c&0x7f) + 1
			if i+1+n > len(in) {
				return out, io.ErrUnexpectedEOF
			}
			out = append(out, in[i+1:i+1+n]...)
			i += 1 + n
			continue
		case c&0x40 != 0:
			if i+3 > len(in) {
				return out, io.ErrUnexpectedEOF
			}
			n, dist = int(c&0x3f)+4, int(in[i+1])<<8|int(in[i+2])+1
			i += 3
		default:
			if i+2 > len(in) {
				return out, io.ErrUnexpectedEOF
			}
			n, dist = int(c>>2&0x0f)+3, int(c&3)<<8|int(in[i+1])+1
			i += 2
		}
		if dist > len(out) {
			return out, io.ErrUnexpectedEOF
		}
		for range n {
			out = append(out, out[len(out)-dist])
		}
	}
	return out, nil
}
