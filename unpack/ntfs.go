package unpack

import (
	"bytes"
	"encoding/binary"
	"io"
	"slices"
	"strconv"
)

// NTFS volumes: the boot sector, the master file table where its own
// record's data runs put it, each record (its update sequence checked
// and undone), and each file's data streams, the unnamed one and the
// alternate ones (walked as "name:stream"): resident in the record, or
// in runs of clusters (sparse ones read as zeros), put together from
// every record that holds a piece (a file of many fragments), and
// compressed ones (LZNT1, in units of clusters) decompressed. Names are
// the file's long name (not its DOS one) under its directories. The
// volume's own files (the first 16 records: $MFT, $LogFile...) are not
// walked; an encrypted stream (EFS), which no one without its key reads,
// is suspected.

const (
	ntfsMaxRecords = 1 << 20
	ntfsMaxRuns    = 1 << 16 // runs of one stream
	ntfsFirstUser  = 16      // the records before are the volume's own files
)

// ntfsVol is an NTFS volume's layout.
type ntfsVol struct {
	v       volume
	cluster int64
	record  int64
	mft     []extent // where the master file table is on the image
	mftSize int64
}

// A piece of a data stream: an attribute of one record (a stream
// fragmented enough has pieces in several records).
type ntfsPiece struct {
	name      string
	lowVCN    int64
	size      int64 // the stream's size (in its first piece)
	flags     uint16
	unit      int // compression unit: 2^unit clusters
	resident  []byte
	runs      []ntfsRun
	malformed bool
}

// An ntfsRun is n clusters from lcn, or n clusters of zeros (lcn < 0).
type ntfsRun struct{ lcn, n int64 }

func openNTFS(v volume) (*ntfsVol, bool) {
	b, ok := v.read(0, 512)
	if !ok || !bytes.Equal(b[3:11], []byte("NTFS    ")) {
		return nil, false
	}
	bps := int64(binary.LittleEndian.Uint16(b[11:]))
	spc := int64(b[13])
	if spc > 0x80 {
		spc = 1 << (256 - spc)
	}
	n := &ntfsVol{v: v, cluster: bps * spc}
	if rec := int8(b[64]); rec < 0 {
		n.record = 1 << -rec
	} else {
		n.record = int64(rec) * n.cluster
	}
	if bps < 256 || bps > 4096 || spc == 0 || n.cluster > 2<<20 || n.record < 512 || n.record > 64<<10 {
		return nil, false
	}
	// The master file table's first record describes the table itself.
	mft := int64(binary.LittleEndian.Uint64(b[48:])) * n.cluster
	rec, ok := n.readRecord(mft)
	if !ok {
		return nil, false
	}
	var data *ntfsPiece
	for _, p := range n.attributes(rec, nil) {
		if p.name == "" && p.lowVCN == 0 {
			data = &p
			break
		}
	}
	if data == nil || data.resident != nil {
		return nil, false
	}
	n.mftSize = data.size
	if n.mft, ok = n.runExtents(data.runs, data.size); !ok {
		return nil, false
	}
	return n, true
}

// readRecord reads the record at off on the volume, its update
// sequence undone; false for a record that is none or whose sectors
// were not all written.
func (n *ntfsVol) readRecord(off int64) ([]byte, bool) {
	raw, ok := n.v.read(off, n.record)
	if !ok {
		return nil, false
	}
	return n.fixRecord(raw)
}

// records calls f with each record of the master file table that is
// one, in order, reading the table's extents once through.
func (n *ntfsVol) records(max int64, f func(i int64, rec []byte) bool) {
	raw := make([]byte, 0, n.record)
	var i int64
	for _, e := range n.mft {
		for at := int64(0); at < e.n && i < max; {
			take := min(e.n-at, n.record-int64(len(raw)))
			if e.off >= 0 {
				raw = append(raw, n.v.k.d[e.off+at:e.off+at+take]...)
			} else {
				raw = append(raw, make([]byte, take)...)
			}
			at += take
			if int64(len(raw)) < n.record {
				continue
			}
			if rec, ok := n.fixRecord(raw); ok && !f(i, rec) {
				return
			}
			raw = raw[:0]
			i++
		}
	}
}

// fixRecord checks a record and undoes its update sequence, in a copy.
func (n *ntfsVol) fixRecord(raw []byte) ([]byte, bool) {
	if !bytes.Equal(raw[:4], []byte("FILE")) {
		return nil, false
	}
	rec := bytes.Clone(raw)
	usa, count := int(binary.LittleEndian.Uint16(rec[4:])), int(binary.LittleEndian.Uint16(rec[6:]))
	if count < 1 || usa+2*count > len(rec) || int64(count-1)*512 > n.record {
		return nil, false
	}
	for i := 1; i < count; i++ {
		end := i*512 - 2
		if !bytes.Equal(rec[end:end+2], rec[usa:usa+2]) {
			return nil, false // a torn write
		}
		copy(rec[end:end+2], rec[usa+2*i:usa+2*i+2])
	}
	return rec, true
}

// attributes reads a record's data streams' pieces, and its names (the
// long one preferred) with their parent records into names.
func (n *ntfsVol) attributes(rec []byte, names func(parent int64, name string, dos bool)) []ntfsPiece {
	var pieces []ntfsPiece
	for at := int(binary.LittleEndian.Uint16(rec[20:])); at+16 <= len(rec); {
		typ := binary.LittleEndian.Uint32(rec[at:])
		length := int(binary.LittleEndian.Uint32(rec[at+4:]))
		if typ == 0xffffffff || length < 16 || at+length > len(rec) {
			break
		}
		a := rec[at : at+length]
		at += length
		nonResident := a[8] != 0
		nameLen, nameOff := int(a[9]), int(binary.LittleEndian.Uint16(a[10:]))
		if nameOff+2*nameLen > len(a) {
			continue
		}
		attrName := utf16Text(a[nameOff:nameOff+2*nameLen], binary.LittleEndian)
		switch typ {
		case 0x30: // a file name
			if nonResident || names == nil || len(a) < 24 {
				continue
			}
			voff, vlen := int(binary.LittleEndian.Uint16(a[20:])), int(binary.LittleEndian.Uint32(a[16:]))
			if voff+vlen > len(a) || vlen < 66 {
				continue
			}
			v := a[voff : voff+vlen]
			l := int(v[64])
			if 66+2*l > len(v) {
				continue
			}
			names(int64(binary.LittleEndian.Uint64(v)&(1<<48-1)), utf16Text(v[66:66+2*l], binary.LittleEndian), v[65] == 2)
		case 0x80: // data
			p := ntfsPiece{name: attrName, flags: binary.LittleEndian.Uint16(a[12:])}
			if !nonResident {
				voff, vlen := int(binary.LittleEndian.Uint16(a[20:])), int(binary.LittleEndian.Uint32(a[16:]))
				if len(a) < 24 || voff+vlen > len(a) {
					p.malformed = true
				} else {
					p.resident = a[voff : voff+vlen]
					p.size = int64(vlen)
				}
				pieces = append(pieces, p)
				continue
			}
			if len(a) < 64 {
				p.malformed = true
				pieces = append(pieces, p)
				continue
			}
			p.lowVCN = int64(binary.LittleEndian.Uint64(a[16:]))
			p.unit = int(binary.LittleEndian.Uint16(a[34:]))
			p.size = int64(binary.LittleEndian.Uint64(a[48:]))
			runsAt := int(binary.LittleEndian.Uint16(a[32:]))
			if runsAt > len(a) {
				p.malformed = true
				pieces = append(pieces, p)
				continue
			}
			runs, ok := ntfsRuns(a[runsAt:])
			p.runs, p.malformed = runs, !ok || p.lowVCN < 0 || p.size < 0 || p.unit > 16
			pieces = append(pieces, p)
		}
	}
	return pieces
}

// ntfsRuns decodes a mapping pairs array: each run's length and its
// offset from the run before (none: sparse).
func ntfsRuns(b []byte) ([]ntfsRun, bool) {
	var runs []ntfsRun
	lcn := int64(0)
	for i := 0; i < len(b) && b[i] != 0; {
		ln, lo := int(b[i]&15), int(b[i]>>4)
		i++
		if ln == 0 || ln > 8 || lo > 8 || i+ln+lo > len(b) || len(runs) >= ntfsMaxRuns {
			return runs, false
		}
		var n int64
		for j := ln - 1; j >= 0; j-- {
			n = n<<8 | int64(b[i+j])
		}
		i += ln
		if n <= 0 {
			return runs, false
		}
		if lo == 0 {
			runs = append(runs, ntfsRun{-1, n})
			continue
		}
		var off int64
		for j := lo - 1; j >= 0; j-- {
			off = off<<8 | int64(b[i+j])
		}
		off = off << (64 - 8*lo) >> (64 - 8*lo) // signed
		i += lo
		lcn += off
		if lcn < 0 {
			return runs, false
		}
		runs = append(runs, ntfsRun{lcn, n})
	}
	return runs, true
}

// runExtents is where runs' first size bytes are on the image.
func (n *ntfsVol) runExtents(runs []ntfsRun, size int64) ([]extent, bool) {
	var ext []extent
	left := size
	for _, r := range runs {
		if left <= 0 {
			break
		}
		if r.n > (1<<62)/n.cluster {
			return nil, false
		}
		take := min(left, r.n*n.cluster)
		var ok bool
		if r.lcn < 0 {
			ext = append(ext, extent{-1, take})
		} else if ext, ok = n.v.extents(ext, r.lcn*n.cluster, take); !ok {
			return nil, false
		}
		left -= take
	}
	return ext, left <= 0
}

// ntfs walks an NTFS volume's files.
func (s *scan) ntfs(v volume, room *int64, where string, depth int) {
	broken := func(at string) { s.brokenAt(join(where, at), depth) }
	n, ok := openNTFS(v)
	if !ok {
		broken("")
		return
	}
	type node struct {
		parent int64
		name   string
		long   bool
	}
	nodes := map[int64]node{}
	streams := map[int64][]ntfsPiece{}
	n.records(min(n.mftSize/n.record, ntfsMaxRecords), func(i int64, rec []byte) bool {
		if binary.LittleEndian.Uint16(rec[22:])&1 == 0 {
			return true // not in use
		}
		base := int64(binary.LittleEndian.Uint64(rec[32:]) & (1<<48 - 1))
		if base == 0 {
			base = i
		}
		pieces := n.attributes(rec, func(parent int64, name string, dos bool) {
			if nd, ok := nodes[base]; !ok || !nd.long && !dos {
				nodes[base] = node{parent, name, !dos}
			}
		})
		if base >= ntfsFirstUser {
			streams[base] = append(streams[base], pieces...)
		}
		return !s.stop
	})
	// pathOf is a record's path from the root (record 5); system says
	// it is under $Extend (record 11: the volume's journal, quotas...).
	pathOf := func(r int64) (path string, system bool) {
		var parts []string
		for range 64 {
			nd, ok := nodes[r]
			if !ok || r == 5 || nd.parent == r {
				break
			}
			if nd.parent == 11 {
				system = true
			}
			parts = append(parts, nd.name)
			r = nd.parent
		}
		slices.Reverse(parts)
		return joinParts(parts), system
	}
	recs := make([]int64, 0, len(streams))
	for r := range streams {
		recs = append(recs, r)
	}
	slices.Sort(recs)
	for _, r := range recs {
		if s.stop {
			return
		}
		path, system := pathOf(r)
		if system {
			continue
		}
		if path == "" {
			path = "record-" + strconv.FormatInt(r, 10)
		}
		byName := map[string][]ntfsPiece{}
		var order []string
		for _, p := range streams[r] {
			if _, ok := byName[p.name]; !ok {
				order = append(order, p.name)
			}
			byName[p.name] = append(byName[p.name], p)
		}
		for _, name := range order {
			at := path
			if name != "" {
				at += ":" + name
			}
			n.stream(s, byName[name], room, join(where, at), depth, broken)
		}
	}
}

func joinParts(parts []string) string {
	out := ""
	for _, p := range parts {
		out = join(out, p)
	}
	return out
}

// stream walks one data stream, from its pieces.
func (n *ntfsVol) stream(s *scan, pieces []ntfsPiece, room *int64, where string, depth int, broken func(string)) {
	slices.SortFunc(pieces, func(a, b ntfsPiece) int { return int(a.lowVCN - b.lowVCN) })
	first := pieces[0]
	for _, p := range pieces {
		if p.malformed {
			broken(where)
			return
		}
	}
	switch {
	case first.flags&0x4000 != 0:
		s.add(Detection{Name: "Heuristics.Encrypted.NTFS", Path: where, Kind: Suspected, Depth: depth})
		return
	case first.resident != nil:
		if len(first.resident) > 0 {
			s.inPlace(first.resident, room, where, depth)
		}
		return
	case first.size == 0:
		return
	case first.size > s.lim.MaxFileSize:
		s.exceeded("FileSize", where, depth)
		return
	}
	var runs []ntfsRun
	vcn := int64(0)
	for _, p := range pieces {
		if p.lowVCN != vcn || len(runs)+len(p.runs) > ntfsMaxRuns {
			broken(where) // a piece missing, or overlapping
			return
		}
		runs = append(runs, p.runs...)
		for _, r := range p.runs {
			vcn += r.n
		}
	}
	if first.flags&0x00ff != 0 {
		n.compressed(s, runs, first, where, depth, broken)
		return
	}
	ext, ok := n.runExtents(runs, first.size)
	if !ok {
		broken(where)
		return
	}
	s.extentsFile(n.v.k.d, ext, room, where, depth)
}

// compressed walks a compressed stream: its clusters in units of
// 2^unit; a unit of all its clusters is stored, one with fewer (then
// zeros) LZNT1-compressed, one of none zeros.
func (n *ntfsVol) compressed(s *scan, runs []ntfsRun, p ntfsPiece, where string, depth int, broken func(string)) {
	if p.unit == 0 || n.cluster > 64<<10 {
		broken(where)
		return
	}
	unit := int64(1) << p.unit
	// The clusters, each an LCN or -1, unit by unit.
	var clusters []int64
	for _, r := range runs {
		if int64(len(clusters))+r.n > (p.size/n.cluster+2*unit)+unit {
			break
		}
		for j := range r.n {
			if r.lcn < 0 {
				clusters = append(clusters, -1)
			} else {
				clusters = append(clusters, r.lcn+j)
			}
		}
	}
	pr, pw := io.Pipe()
	go func() {
		var err error
		defer func() { pw.CloseWithError(err) }()
		left := p.size
		for u := int64(0); left > 0; u++ {
			from := u * unit
			if from >= int64(len(clusters)) {
				err = io.ErrUnexpectedEOF
				return
			}
			cs := clusters[from:min(from+unit, int64(len(clusters)))]
			stored := 0
			for _, c := range cs {
				if c >= 0 {
					stored++
				}
			}
			var out []byte
			switch {
			case stored == 0:
				out = make([]byte, unit*n.cluster)
			default:
				var in []byte
				for _, c := range cs[:stored] {
					b, ok := n.v.read(c*n.cluster, n.cluster)
					if !ok {
						err = io.ErrUnexpectedEOF
						return
					}
					in = append(in, b...)
				}
				if stored == len(cs) && int64(stored) == unit {
					out = in
				} else if out, err = lzChunks(in, int(unit*n.cluster), true, io.ErrUnexpectedEOF); err != nil {
					return
				} else if size := int(unit * n.cluster); len(out) > size {
					out = out[:size]
				} else {
					out = append(out, make([]byte, size-len(out))...) // a unit's rest is zeros
				}
			}
			take := min(int64(len(out)), left)
			if _, err = pw.Write(out[:take]); err != nil {
				return
			}
			left -= take
		}
	}()
	s.member(pr, 0, where, depth)
	pr.Close()
}
