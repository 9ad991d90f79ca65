package unpack

import (
	"bytes"
	"compress/zlib"
	"encoding/ascii85"
	"encoding/hex"
	"errors"
	"io"
	"strconv"
)

// PDF: what a reader shows or runs lies in streams, most of them
// compressed; read raw, nothing in one is found. Every stream ("stream"
// to "endstream", whatever its /Length says, in every revision an
// incremental update left) is decoded through its filters as readers
// decode them: FlateDecode, LZWDecode, ASCII85Decode, ASCIIHexDecode,
// RunLengthDecode, and chains of them, the names read with their #xx
// escapes undone and in their short forms; object streams, embedded files
// and attachments are streams too. A stream whose filter is not undone
// here (images: DCT, JPX, JBIG2, CCITTFax) is scanned as it is.

var (
	pdfMagic  = []byte("%PDF-")
	pdfStream = []byte("stream")
	pdfEnd    = []byte("endstream")
)

// isPDF tells whether d is a PDF: its header within the first KiB, as
// readers look for it.
func isPDF(d []byte) bool { return bytes.Contains(d[:min(len(d), 1024)], pdfMagic) }

func (s *scan) pdf(data []byte, where string, depth int) {
	s.pdfStreams(data, where, depth)
	s.pdfJavaScript(data, where, depth)
}

// pdfStreams walks the streams of the PDF data.
func (s *scan) pdfStreams(data []byte, where string, depth int) {
	n := 0
	for off := 0; off < len(data) && !s.stop; {
		i := bytes.Index(data[off:], pdfStream)
		if i < 0 {
			return
		}
		at := off + i
		off = at + len(pdfStream)
		// The keyword, not "endstream": after a dictionary's ">>".
		if at >= 3 && bytes.HasSuffix(data[:at], []byte("end")) {
			continue
		}
		before := bytes.TrimRight(data[max(0, at-4096):at], " \t\r\n")
		if !bytes.HasSuffix(before, []byte(">>")) {
			continue
		}
		start := off
		if start < len(data) && data[start] == '\r' {
			start++
		}
		if start < len(data) && data[start] == '\n' {
			start++
		}
		end := bytes.Index(data[start:], pdfEnd)
		if end < 0 {
			end = len(data) - start // cut short: to the end
		}
		body := bytes.TrimRight(data[start:start+end], "\r\n")
		off = start + end
		n++
		s.parts++
		if s.parts > maxParts {
			s.exceeded("Files", where, depth-1)
			return
		}
		dict := before[max(0, bytes.LastIndex(before, []byte("obj"))):]
		decoded, err := pdfDecode(body, pdfFilters(dict), s.lim.MaxFileSize)
		name := join(where, "stream"+strconv.Itoa(n))
		switch {
		case errors.Is(err, errPDFLimit):
			s.exceeded("FileSize", name, depth)
			return
		case err != nil:
			// Damaged: what decoded is scanned, and the stream as it is.
			s.memberData(decoded, int64(len(body)), name, depth)
			s.memberData(body, int64(len(body)), name+"-raw", depth)
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: name, Kind: Suspected, Depth: depth})
		default:
			s.memberData(decoded, int64(len(body)), name, depth)
		}
	}
}

// pdfFilters reads a stream dictionary's /Filter: a name or an array of
// names, #xx escapes undone, short forms made long.
func pdfFilters(dict []byte) []string {
	d := pdfUnescape(dict)
	i := bytes.Index(d, []byte("/Filter"))
	if i < 0 {
		return nil
	}
	v := bytes.TrimLeft(d[i+len("/Filter"):], " \t\r\n")
	var names [][]byte
	if bytes.HasPrefix(v, []byte("[")) {
		end := bytes.IndexByte(v, ']')
		if end < 0 {
			end = len(v)
		}
		for _, f := range bytes.Split(v[1:end], []byte("/"))[1:] {
			names = append(names, bytes.Fields(f)[0:min(1, len(bytes.Fields(f)))]...)
		}
	} else if bytes.HasPrefix(v, []byte("/")) {
		f := bytes.FieldsFunc(v[1:], func(r rune) bool {
			return r == '/' || r == '>' || r == '<' || r == '[' || r == ' ' || r == '\r' || r == '\n' || r == '\t'
		})
		if len(f) > 0 {
			names = append(names, f[0])
		}
	}
	short := map[string]string{"Fl": "FlateDecode", "LZW": "LZWDecode", "A85": "ASCII85Decode", "AHx": "ASCIIHexDecode", "RL": "RunLengthDecode"}
	var out []string
	for _, n := range names {
		name := string(n)
		if long, ok := short[name]; ok {
			name = long
		}
		out = append(out, name)
	}
	return out
}

// pdfUnescape undoes a name's #xx escapes (/Fl#61teDecode).
func pdfUnescape(b []byte) []byte {
	if bytes.IndexByte(b, '#') < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '#' && i+2 < len(b) {
			var v [1]byte
			if _, err := hex.Decode(v[:], b[i+1:i+3]); err == nil {
				out = append(out, v[0])
				i += 2
				continue
			}
		}
		out = append(out, b[i])
	}
	return out
}

var errPDFLimit = errors.New("pdf: a stream decodes past the limit")

// pdfDecode undoes filters in turn, at most limit bytes out of each.
func pdfDecode(b []byte, filters []string, limit int64) ([]byte, error) {
	for _, f := range filters {
		var out []byte
		var err error
		switch f {
		case "FlateDecode":
			var zr io.ReadCloser
			if zr, err = zlib.NewReader(bytes.NewReader(b)); err == nil {
				out, err = io.ReadAll(io.LimitReader(zr, limit+1))
				zr.Close()
			}
		case "LZWDecode":
			out, err = pdfLZW(b, limit)
		case "ASCII85Decode":
			out, err = pdfASCII85(b)
		case "ASCIIHexDecode":
			out, err = pdfASCIIHex(b)
		case "RunLengthDecode":
			out, err = pdfRunLength(b, limit)
		default:
			return b, nil // not undone here: as it is
		}
		if int64(len(out)) > limit {
			return nil, errPDFLimit
		}
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return out, err
		}
		b = out
	}
	return b, nil
}

func pdfASCII85(b []byte) ([]byte, error) {
	b = bytes.TrimSpace(b)
	b = bytes.TrimPrefix(b, []byte("<~"))
	if i := bytes.Index(b, []byte("~>")); i >= 0 {
		b = b[:i]
	}
	out := make([]byte, len(b))
	n, _, err := ascii85.Decode(out, b, true)
	return out[:n], err
}

func pdfASCIIHex(b []byte) ([]byte, error) {
	var digits []byte
	for _, c := range b {
		switch {
		case c == '>':
			goto done
		case c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
			digits = append(digits, c)
		}
	}
done:
	if len(digits)%2 == 1 {
		digits = append(digits, '0')
	}
	out := make([]byte, len(digits)/2)
	_, err := hex.Decode(out, digits)
	return out, err
}

func pdfRunLength(b []byte, limit int64) ([]byte, error) {
	var out []byte
	for i := 0; i < len(b) && int64(len(out)) <= limit; {
		n := int(b[i])
		i++
		switch {
		case n == 128:
			return out, nil
		case n < 128:
			if i+n+1 > len(b) {
				return append(out, b[i:]...), io.ErrUnexpectedEOF
			}
			out = append(out, b[i:i+n+1]...)
			i += n + 1
		default:
			if i >= len(b) {
				return out, io.ErrUnexpectedEOF
			}
			out = append(out, bytes.Repeat(b[i:i+1], 257-n)...)
			i++
		}
	}
	return out, nil
}

// pdfLZW is PDF's LZW (MSB first, 9 to 12 bits, the code width growing
// one code early, as its EarlyChange 1 default says).
func pdfLZW(b []byte, limit int64) ([]byte, error) {
	const clear, eod = 256, 257
	var out []byte
	var table [][]byte
	reset := func() {
		table = table[:0]
		for i := 0; i < 256; i++ {
			table = append(table, []byte{byte(i)})
		}
		table = append(table, nil, nil)
	}
	reset()
	width := 9
	var acc uint32
	bits := 0
	var prev []byte
	for _, c := range b {
		acc = acc<<8 | uint32(c)
		bits += 8
		for bits >= width {
			code := int(acc>>(bits-width)) & (1<<width - 1)
			bits -= width
			switch {
			case code == clear:
				reset()
				width, prev = 9, nil
				continue
			case code == eod:
				return out, nil
			}
			var entry []byte
			switch {
			case code < len(table) && table[code] != nil:
				entry = table[code]
			case code == len(table) && prev != nil:
				entry = append(append([]byte{}, prev...), prev[0])
			default:
				return out, errors.New("pdf: a bad LZW code")
			}
			out = append(out, entry...)
			if int64(len(out)) > limit {
				return out, nil
			}
			if prev != nil && len(table) < 4096 {
				table = append(table, append(append([]byte{}, prev...), entry[0]))
			}
			prev = entry
			if len(table)+1 >= 1<<width && width < 12 {
				width++
			}
		}
	}
	return out, io.ErrUnexpectedEOF
}
