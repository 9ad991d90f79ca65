package unpack

import (
	"bytes"
	"strconv"

	"github.com/fsigkd/fsigkd/internal/screnc"
)

// Scripts encoded by Microsoft's Script Encoder (internal/screnc) are
// run by Windows as they are; droppers are sent so (.vbe, .jse, a page's
// or a .wsf's script block), and a signature of the script finds nothing
// in its encoded form. Every block in a text is decoded and walked
// (screnc-N); one whose length runs past the text is decoded as far as
// it goes.

// screncMark starts a block (also found ahead: Ahead.Wanted).
var screncMark = screnc.Mark

// scriptsEncoded walks the scripts a text holds encoded as its members:
// a text in UTF-16 (a script saved as Unicode, told by its byte order
// mark, as Windows Script Host tells it) read as the characters it holds.
func (s *scan) scriptsEncoded(data []byte, where string, depth int) {
	from := -1
	if hasBOM16(data) {
		data = fromUTF16(data)
		from = bytes.Index(data, screncMark)
	} else {
		from = s.firstScrenc(data, depth)
	}
	if from < 0 {
		return
	}
	room := min(s.lim.MaxFileSize, s.lim.MaxTotal-s.unpacked)
	for n, b := range screnc.Blocks(data, from, room) {
		if s.stop {
			return
		}
		s.nested(depth, where, func() {
			s.memberData(b, int64(len(b)), join(where, "screnc-"+strconv.Itoa(n+1)), depth+1)
		})
	}
}
