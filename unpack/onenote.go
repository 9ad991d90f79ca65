package unpack

import (
	"bytes"
	"encoding/binary"
	"strconv"
)

// OneNote sections (.one): the files a page holds (attached, or shown as
// an icon a reader double-clicks; a way mail carried programs and
// scripts past scanners), each kept in a FileDataStoreObject (MS-ONESTORE
// 2.6.13): its guidHeader, cbLength (8 bytes), 4 bytes unused, 8
// reserved, then the file's cbLength bytes. Every such object of the
// section is walked, found by its GUID wherever it lies, as ClamAV finds
// them when its parser does not take the file, so that a section built
// for no parser to take hides nothing; one whose length runs past the
// section's end is walked as far as it goes and said damaged.

// oneNoteMagic is a section's guidFileType ({7B5C52E4-D88C-4DA7-AEB1-
// 5378D02996D3}) as its first bytes hold it.
var oneNoteMagic = []byte{0xe4, 0x52, 0x5c, 0x7b, 0x8c, 0xd8, 0xa7, 0x4d, 0xae, 0xb1, 0x53, 0x78, 0xd0, 0x29, 0x96, 0xd3}

// fileDataStoreGUID is a FileDataStoreObject's guidHeader
// ({BDE316E7-2665-4511-A4C4-8D4D0B7A9EAC}).
var fileDataStoreGUID = []byte{0xe7, 0x16, 0xe3, 0xbd, 0x65, 0x26, 0x11, 0x45, 0xa4, 0xc4, 0x8d, 0x4d, 0x0b, 0x7a, 0x9e, 0xac}

// fileDataHeader is the length of a FileDataStoreObject before its file.
const fileDataHeader = 16 + 8 + 4 + 8

// oneNote walks the files of the section data.
func (s *scan) oneNote(data []byte, where string, depth int) {
	n := 0
	for rest := data[len(oneNoteMagic):]; !s.stop; {
		i := bytes.Index(rest, fileDataStoreGUID)
		if i < 0 {
			return
		}
		obj := rest[i:]
		body := obj[min(len(obj), fileDataHeader):]
		cut := len(obj) < fileDataHeader
		if !cut {
			if size := binary.LittleEndian.Uint64(obj[16:24]); size <= uint64(len(body)) {
				body = body[:size]
			} else {
				cut = true
			}
		}
		n++
		at := join(where, "onenote-file-"+strconv.Itoa(n))
		s.memberData(body, int64(len(body)), at, depth)
		if cut {
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: at, Kind: Suspected, Depth: depth})
			return
		}
		rest = obj[fileDataHeader+len(body):]
	}
}
