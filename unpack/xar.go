package unpack

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
)

// XAR archives ("xar!": macOS installer packages, .pkg, and Safari
// extensions are ones): a header, a table of contents in XML compressed
// with zlib, then the heap the files' data lie in, each at the offset and
// length its entry gives, encoded as its entry says (zlib and LZMA
// decoded here; bzip2 and xz streams walked as the streams they are, as
// ClamAV walks them; or stored). Every file of the table is walked under
// its path; the table itself too. An encoding not read here leaves the
// file unopened (Heuristics.Unsupported.XAR, suspected; ClamAV scans it
// as it is).

var magicXar = []byte("xar!")

// maxXarTOC bounds the table of contents unpacked (an Apple installer's
// is a few hundred KiB).
const maxXarTOC = 16 << 20

func isXar(d []byte) bool {
	return len(d) >= 28 && bytes.HasPrefix(d, magicXar) && binary.BigEndian.Uint16(d[4:]) >= 28
}

// xarEntry is a file of the table: its path and its data's place.
type xarEntry struct {
	path           string
	offset, length int64
	encoding       string
	dir            bool
}

func (s *scan) xar(data []byte, where string, depth int) {
	broken := func(at string) {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: join(where, at), Kind: Suspected, Depth: depth - 1})
	}
	head := int64(binary.BigEndian.Uint16(data[4:]))
	packed := binary.BigEndian.Uint64(data[8:])
	if head > int64(len(data)) || packed > uint64(int64(len(data))-head) {
		broken("")
		return
	}
	heap := data[head+int64(packed):]
	zr, err := zlib.NewReader(bytes.NewReader(data[head : head+int64(packed)]))
	if err != nil {
		broken("")
		return
	}
	toc, err := io.ReadAll(io.LimitReader(zr, maxXarTOC+1))
	if len(toc) > maxXarTOC {
		s.exceeded("FileSize", join(where, "xar-toc"), depth)
		return
	}
	damaged := err != nil
	entries, err := xarEntries(toc, s.lim.MaxFiles)
	damaged = damaged || err != nil
	s.memberData(toc, int64(packed), join(where, "xar-toc"), depth)
	for _, e := range entries {
		if s.stop {
			return
		}
		if e.dir {
			continue
		}
		at := join(where, e.path)
		if e.offset < 0 || e.length < 0 || e.offset > int64(len(heap)) || e.length > int64(len(heap))-e.offset {
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: at, Kind: Suspected, Depth: depth})
			continue
		}
		stored := heap[e.offset : e.offset+e.length]
		r, err := xarDecoder(stored, e.encoding)
		if err != nil {
			s.add(Detection{Name: "Heuristics.Unsupported.XAR", Path: at, Kind: Suspected, Depth: depth})
			continue
		}
		s.member(r, e.length, at, depth)
	}
	if damaged {
		broken("")
	}
}

// xarDecoder reads a file's data in its encoding.
func xarDecoder(b []byte, encoding string) (io.Reader, error) {
	switch encoding {
	case "", "application/octet-stream":
		return bytes.NewReader(b), nil
	case "application/x-gzip": // zlib, as xar writes it
		return zlib.NewReader(bytes.NewReader(b))
	case "application/x-bzip2", "application/x-xz":
		// Walked as the stream it is (opened as bzip2 or xz, inside
		// it), as ClamAV walks it: a logical signature's Container is
		// then the stream's.
		return bytes.NewReader(b), nil
	case "application/x-lzma": // the "alone" format: properties, size, stream
		if len(b) < 13 {
			return nil, errors.New("xar: lzma: short")
		}
		return lzmaReader(b[:5], binary.LittleEndian.Uint64(b[5:13]), coderMemory.Load(), bytes.NewReader(b[13:]))
	}
	return nil, errors.New("xar: encoding " + strconv.Quote(encoding))
}

// xarEntries reads the files of a table of contents, at most limit (one
// more says there were more), each with the path of the directories it
// lies in.
func xarEntries(toc []byte, limit int) ([]xarEntry, error) {
	dec := xml.NewDecoder(bytes.NewReader(toc))
	var out []xarEntry
	var stack []*xarEntry // the <file> elements open
	var names []string    // their names, outermost first
	var text strings.Builder
	inData, root := false, false
	for len(out) <= limit {
		tok, err := dec.Token()
		if err == io.EOF && !root {
			return out, errors.New("xar: no table")
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			text.Reset()
			switch t.Name.Local {
			case "xar":
				root = true
			case "file":
				if len(stack) >= 256 {
					return out, errors.New("xar: directories too deep")
				}
				stack = append(stack, &xarEntry{})
				names = append(names, "")
			case "data":
				inData = true
			case "encoding":
				if len(stack) > 0 && inData {
					for _, a := range t.Attr {
						if a.Name.Local == "style" {
							stack[len(stack)-1].encoding = a.Value
						}
					}
				}
			}
		case xml.CharData:
			if text.Len() < 4096 {
				text.Write(t)
			}
		case xml.EndElement:
			if len(stack) == 0 {
				continue
			}
			e := stack[len(stack)-1]
			v := strings.TrimSpace(text.String())
			n, _ := strconv.ParseInt(v, 10, 64)
			switch name := t.Name.Local; {
			case name == "data":
				inData = false
			case name == "name" && !inData:
				names[len(names)-1] = v
			case name == "type" && !inData:
				e.dir = v == "directory"
			case name == "offset" && inData:
				e.offset = n
			case name == "length" && inData:
				e.length = n
			case name == "file":
				e.path = strings.Join(names, "/")
				out = append(out, *e)
				stack, names = stack[:len(stack)-1], names[:len(names)-1]
			}
			text.Reset()
		}
	}
	return out, nil
}
