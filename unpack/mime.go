package unpack

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/quotedprintable"
	"sort"
	"strconv"
	"strings"
)

// The MIME walker reads a mail as leniently as the most lenient mail
// reader, and where readers differ it scans every reading:
//
//   - a header line that is no field (no colon) is skipped by some readers
//     and ends the header for others: both readings are scanned;
//   - a field given twice (Content-Type, Content-Transfer-Encoding) is read
//     as the first by some and the last by others: both are scanned, and
//     so is each of two boundary parameters of one Content-Type;
//   - a header block has no size limit but the object's own;
//   - parts are split on their delimiter lines by hand, so a damaged part
//     header does not end the walk; what is before the first and after
//     the last delimiter is scanned too;
//   - base64 with stray characters, quoted-printable, a transfer coding
//     named loosely (x-base64), and uuencode (an x-uuencode part, and
//     "begin 644 name" blocks anywhere in a text, as Outlook and
//     Thunderbird decode them; "begin-base64" too, see uu.go).
//
// Every entity walked counts against maxParts per object, so the readings
// cannot multiply past a bound.

// maxParts bounds the MIME entities walked in one object (every reading
// counted), like MaxFiles for archives.
const maxParts = 1000

// maxReadings bounds the readings of one entity.
const maxReadings = 4

// isMail tells whether data starts like a mail, as a reader or ClamAV
// takes one: after what mailText skips, a first line that is a header
// field and a header block that names MIME, a sender or another field
// only mail has, or two of a header's fields near its start as ClamAV
// types a mail by them (MailFieldsNear: a first line that is none, as
// readings reads past it); or like a mailbox (mailboxMessages) whose
// first message does.
func isMail(d []byte) bool {
	if msgs := mailboxMessages(d, 1); len(msgs) > 0 {
		return isMail(msgs[0])
	}
	d = mailText(d[:min(len(d), 1<<20)])
	if MailFieldsNear(d) {
		return true
	}
	first, _, _ := bytes.Cut(d[:min(len(d), 4096)], []byte("\n"))
	colon := bytes.IndexByte(first, ':')
	if colon <= 0 || !isFieldName(first[:colon]) {
		return false
	}
	head := d
	if end := headerEnd(head); end >= 0 {
		head = head[:end]
	}
	h := bytes.ToLower(head)
	for _, f := range []string{"mime-version:", "content-type:", "from:", "received:", "return-path:", "message-id:", "subject:"} {
		if bytes.HasPrefix(h, []byte(f)) || bytes.Contains(h, []byte("\n"+f)) {
			return true
		}
	}
	return false
}

// mailText is d where a mail's header starts, as readers and ClamAV find
// it: past lines that are empty or white space alone (ClamAV reads past
// them); its lines ended by LF, where d's
// first 4 KiB end theirs with CR alone and its first line so ended is a
// header field (a mail saved on an old Mac, which Python's email reads
// line by line: a copy).
func mailText(d []byte) []byte {
	for {
		line, rest := cutLine(d)
		if rest == nil || len(bytes.Trim(line, " \t\r")) > 0 {
			break
		}
		d = rest
	}
	if head := d[:min(len(d), 4096)]; bytes.IndexByte(head, '\n') < 0 {
		if first, _, ok := bytes.Cut(head, []byte("\r")); ok && headerFieldAt(first) {
			d = bytes.ReplaceAll(d, []byte("\r"), []byte("\n"))
		}
	}
	return d
}

// mailFields are the header fields of ClamAV's pairs (mailPairs), each at
// a line's start: a capital letter stands for either case.
var mailFields = []string{"\nFrom: ", "\nMIME-Version: ", "\nContent-Type: ", "\nMessage-Id: ", "\nReceived: "}

// mailPair is two of mailFields by which ClamAV types a text as a mail
// when they stand near its start: the first begins at a byte from 1 to
// from, the second at most gap bytes after the first ends.
type mailPair struct{ first, second, from, gap int }

// mailPairs are ClamAV's (its file types' "Mail file" patterns), but
// for "Delivered-To:" and "Received:" (MailFieldsNear).
var mailPairs = []mailPair{{0, 1, 1024, 1024}, {0, 2, 1024, 2048}, {1, 2, 1024, 2048}, {3, 2, 1024, 1024}, {4, 2, 2048, 2048}}

// mailNear is how far into an object MailFieldsNear reads.
const mailNear = 2048 + len("\nReceived: ") + 2048 + len("\nContent-Type: ")

// MailFieldsNear tells whether one of ClamAV's pairs of a mail's header
// fields stands near data's start: what makes ClamAV type a text as a
// mail though its first line is no field. It reads at most mailNear
// bytes, each line's start once.
func MailFieldsNear(data []byte) bool {
	region := data[:min(len(data), mailNear)]
	var at [5][]int // the places of each of mailFields, in order
	for i := 0; ; {
		k := bytes.IndexByte(region[i:], '\n')
		if k < 0 {
			break
		}
		p := i + k
		for f, name := range mailFields {
			if fieldAt(region, p, name, false) {
				at[f] = append(at[f], p)
				break
			}
		}
		i = p + 1
	}
	for _, pr := range mailPairs {
		for _, i := range at[pr.first] {
			if i < 1 || i > pr.from {
				continue
			}
			end := i + len(mailFields[pr.first])
			seconds := at[pr.second]
			if k := sort.SearchInts(seconds, end); k < len(seconds) && seconds[k] <= end+pr.gap {
				return true
			}
		}
	}
	// "Delivered-To:" from byte 1 to 1,024, "Received:" at most 256 bytes
	// after it, each as written.
	for i := 1; i <= 1024 && i < len(region); {
		k := bytes.Index(region[i:], []byte("Delivered-To:"))
		if k < 0 || i+k > 1024 {
			break
		}
		end := i + k + len("Delivered-To:")
		if bytes.Contains(region[end:min(len(region), end+256+len("Received:"))], []byte("Received:")) {
			return true
		}
		i += k + 1
	}
	return false
}

// fieldAt tells whether f (see mailFields) stands in data at i.
func fieldAt(data []byte, i int, f string, exact bool) bool {
	if i+len(f) > len(data) {
		return false
	}
	for k := range len(f) {
		c, w := data[i+k], f[k]
		if c != w && (exact || w < 'A' || w > 'Z' || c != w+'a'-'A') {
			return false
		}
	}
	return true
}

func isFieldName(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return len(b) > 0
}

// headerEnd is the offset of the blank line that ends a header, or -1.
func headerEnd(d []byte) int {
	a := bytes.Index(d, []byte("\n\n"))
	if b := bytes.Index(d, []byte("\n\r\n")); b >= 0 && (a < 0 || b < a) {
		a = b
	}
	return a
}

// field is one header field, its name in lower case, its value unfolded.
type field struct{ name, value string }

// reading is one way of reading an entity: its fields, and its body.
type reading struct {
	fields []field
	body   []byte
}

// values are the distinct values of a field, in order.
func (r reading) values(name string) []string {
	var out []string
	for _, f := range r.fields {
		if f.name == name && !contains(out, f.value) {
			out = append(out, f.value)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// readings reads an entity's header line by line. At the first line that
// is neither a field nor a continuation, it forks: one reading starts the
// body there, the other skips the line (and any later such line).
func readings(d []byte) []reading {
	var out []reading
	var fields []field
	forked := false
	rest := d
	for len(rest) > 0 {
		line, next := cutLine(rest)
		t := bytes.TrimRight(line, "\r")
		switch {
		case len(t) == 0:
			return append(out, reading{fields: fields, body: next})
		case (t[0] == ' ' || t[0] == '\t') && len(fields) > 0:
			fields[len(fields)-1].value += " " + strings.TrimSpace(string(t))
		default:
			name, value, ok := bytes.Cut(t, []byte(":"))
			if name = bytes.TrimRight(name, " \t"); ok && isFieldName(name) {
				fields = append(fields, field{strings.ToLower(string(name)), strings.TrimSpace(string(value))})
				break
			}
			if !forked {
				forked = true
				out = append(out, reading{fields: append([]field(nil), fields...), body: rest})
			}
		}
		rest = next
	}
	return append(out, reading{fields: fields})
}

// cutLine splits d after its first LF (the line without it).
func cutLine(d []byte) (line, rest []byte) {
	if i := bytes.IndexByte(d, '\n'); i >= 0 {
		return d[:i], d[i+1:]
	}
	return d, nil
}

// multipartBody tells whether d is a multipart body without its header
// (an upload's multipart/form-data, as the server gets it): a line that
// is a delimiter ("--" and a boundary of RFC 2046's characters) among
// the first preambleMax bytes, as a reader skips a preamble to find it,
// followed by a part header that names its content, and the same
// delimiter again at a later line's start. Every such line of the
// preamble is a candidate, so a decoy before the real one hides nothing,
// and the body is gone through once for all of them.
func multipartBody(d []byte) (boundary string, ok bool) {
	var cands []string
	seen := map[string]int{} // a candidate's lines, itself included
	for off := 0; off < min(len(d), preambleMax); {
		line, rest := cutLine(d[off:])
		off += len(line) + 1
		if line = bytes.TrimRight(line, "\r"); isDelimiter(line) && namesContent(rest[:min(len(rest), 1024)]) {
			if _, dup := seen[string(line)]; !dup {
				seen[string(line)] = 0
				cands = append(cands, string(line))
			}
		}
	}
	if len(cands) == 0 {
		return "", false
	}
	for off := 0; off < len(d); {
		line, _ := cutLine(d[off:])
		off += len(line) + 1
		if !bytes.HasPrefix(line, []byte("--")) {
			continue
		}
		line = bytes.TrimRight(line, "\r \t")
		if _, ok := seen[string(line)]; ok {
			seen[string(line)]++
		} else if l, ok := bytes.CutSuffix(line, []byte("--")); ok {
			if _, ok := seen[string(l)]; ok {
				seen[string(l)]++
			}
		}
	}
	for _, c := range cands {
		if seen[c] >= 2 {
			return c[2:], true
		}
	}
	return "", false
}

// preambleMax is how far into a body its first delimiter is looked for.
// A reader (Go's mime/multipart, PHP) skips any preamble, however long;
// behind one longer than this the parts are not walked, though the raw
// bytes are scanned still.
const preambleMax = 64 << 10

// isDelimiter tells whether line can be a multipart delimiter: "--" and
// a boundary of RFC 2046's characters, at most 70 of them.
func isDelimiter(line []byte) bool {
	if len(line) < 3 || len(line) > 72 || !bytes.HasPrefix(line, []byte("--")) {
		return false
	}
	for _, c := range line[2:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("'()+_,-./:=? ", c) >= 0) {
			return false
		}
	}
	return true
}

// namesContent tells whether head, what follows a delimiter, holds a part
// header field that names its content.
func namesContent(head []byte) bool {
	head = bytes.ToLower(head)
	return bytes.Contains(head, []byte("content-disposition:")) || bytes.Contains(head, []byte("content-type:"))
}

// readingMail tells whether data is a mail being read already: a
// reading of a mail that is the mail whole again (a first line that is
// no field, read as the start of its text), which would be read again
// and again.
func (s *scan) readingMail(data []byte) bool {
	for _, m := range s.mails {
		if len(m) == len(data) && bytes.Equal(m, data) {
			return true
		}
	}
	return false
}

// mail walks a message, or each message of a mailbox.
func (s *scan) mail(data []byte, where string, depth int) {
	s.mails = append(s.mails, data)
	s.within = append(s.within, TypeMail)
	defer func() { s.mails, s.within = s.mails[:len(s.mails)-1], s.within[:len(s.within)-1] }()
	msgs := mailboxMessages(data, maxParts+1)
	switch len(msgs) {
	case 0:
		s.entity(mailText(data), where, depth, 0, false)
	case 1:
		s.entity(mailText(msgs[0]), where, depth, 0, false)
	default:
		for i, m := range msgs {
			if s.stop {
				return
			}
			s.entity(mailText(m), join(where, "message-"+strconv.Itoa(i+1)), depth, 0, false)
		}
	}
}

// mmdfSeparator is the line that begins and ends each message of an MMDF
// mailbox (mutt's other format).
var mmdfSeparator = []byte("\x01\x01\x01\x01")

// mailboxMessages are the messages of a mailbox (as mail readers keep
// and export one, mutt opens it, Thunderbird imports it), at most max.
// An mbox file begins with a separator line, "From " and the sender (or,
// as ClamAV also reads it, ">From "), and each further line that begins
// with "From " and is followed by a header field begins the next
// message; a message is what lies between its separator line and the
// next. An MMDF mailbox holds each message between two lines of four
// 0x01 bytes. nil: data is no mailbox.
func mailboxMessages(data []byte, max int) [][]byte {
	mmdf := bytes.HasPrefix(data, mmdfSeparator)
	if !mmdf && !bytes.HasPrefix(data, []byte("From ")) && !bytes.HasPrefix(data, []byte(">From ")) {
		return nil
	}
	var msgs [][]byte
	start := -1 // the current message's first byte
	for i := 0; i < len(data) && len(msgs) < max; {
		end := bytes.IndexByte(data[i:], '\n')
		if end < 0 {
			break
		}
		next := i + end + 1
		separator := i == 0 || !mmdf && bytes.HasPrefix(data[i:], []byte("From ")) && headerFieldAt(data[next:]) ||
			mmdf && bytes.Equal(bytes.TrimRight(data[i:i+end], "\r"), mmdfSeparator)
		if separator {
			if start >= 0 && (!mmdf || len(bytes.TrimSpace(data[start:i])) > 0) {
				msgs = append(msgs, data[start:i])
			}
			start = next
		}
		i = next
	}
	if start >= 0 && len(msgs) < max && (!mmdf || len(bytes.TrimSpace(data[start:])) > 0) {
		msgs = append(msgs, data[start:])
	}
	return msgs
}

// headerFieldAt tells whether d begins with a header field's name and
// its colon.
func headerFieldAt(d []byte) bool {
	line, _, _ := bytes.Cut(d[:min(len(d), 998)], []byte("\n"))
	colon := bytes.IndexByte(line, ':')
	return colon > 0 && isFieldName(line[:colon])
}

// entity scans one MIME entity in every reading of it; part: it is a
// part of a multipart, not a message (what ClamAV describes differs).
func (s *scan) entity(d []byte, where string, depth, level int, part bool) {
	if level > s.lim.MaxDepth {
		s.exceeded("Depth", where, depth)
		return
	}
	n := 0
	for _, r := range readings(d) {
		cts := r.values("content-type")
		if len(cts) == 0 {
			cts = []string{""}
		}
		ctes := r.values("content-transfer-encoding")
		if len(ctes) == 0 {
			ctes = []string{""}
		}
		for _, ct := range cts {
			for _, cte := range ctes {
				if s.stop || n >= maxReadings {
					return
				}
				n++
				s.parts++
				if s.parts > maxParts {
					s.exceeded("Files", where, depth)
					return
				}
				s.readAs(r, ct, cte, where, depth, level, part)
			}
		}
	}
}

// readAs scans an entity's body as Content-Type ct and transfer coding
// cte; part: the entity is a part of a multipart, not a message's top.
func (s *scan) readAs(r reading, ct, cte, where string, depth, level int, part bool) {
	typ, params := mediaType(ct)
	if strings.HasPrefix(typ, "multipart/") && len(params["boundary"]) > 0 {
		for _, b := range params["boundary"] {
			s.multipart(r.body, b, where, depth, level)
		}
		return
	}
	body := decodeBody(r.body, cte)
	name := partName(r, typ)
	if s.opt.Members != nil && len(s.mails) > 0 {
		if file, size, ok := clamavPart(r, typ, params, cte, body, part); ok {
			s.describe(Member{Container: TypeMail, ContainerSize: int64(len(s.mails[len(s.mails)-1])), Name: file,
				Packed: size, Size: size}, where, depth)
		}
	}
	if typ == "message/rfc822" || typ == "message/global" {
		s.entity(body, join(where, name), depth+1, level+1, false)
		return
	}
	if typ == "message/partial" {
		s.partialFragment(params, body, where, depth, level)
		return
	}
	if strings.HasSuffix(typ, "pkcs7-mime") {
		// Opaque-signed: the signed entity, as a reader shows it.
		if content, ok := smimeContent(body); ok {
			s.entity(content, join(where, name), depth+1, level+1, false)
		}
	}
	s.memberData(body, -1, join(where, name), depth)
	if strings.Contains(strings.ToLower(cte), "base64") {
		// Pads inside, the other reading: past them, the quanta run on
		// (the first reading starts a new quantum at each).
		if alt := base64PastPads(r.body); alt != nil && !bytes.Equal(alt, body) {
			s.memberData(alt, -1, join(where, name), depth)
		}
	}
}

// base64PastPads decodes base64 whose pads ('=') stand inside the text
// (quoted-printable soft line breaks left in it, "=\r\n") as a reader
// that passes over every character outside the alphabet, pads included,
// reads it: the quanta run on across them. nil when no pad stands before
// more base64.
func base64PastPads(body []byte) []byte {
	i := bytes.IndexByte(body, '=')
	if i < 0 || bytes.IndexFunc(body[i:], func(r rune) bool { return r < 0x80 && b64Alphabet[byte(r)] }) < 0 {
		return nil
	}
	kept := make([]byte, 0, len(body))
	for _, c := range body {
		if b64Alphabet[c] {
			kept = append(kept, c)
		}
	}
	if len(kept)%4 == 1 {
		kept = kept[:len(kept)-1]
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(kept)))
	n, _ := base64.RawStdEncoding.Decode(out, kept)
	return out[:n]
}

// multipart splits body on lines that start with "--"+boundary (what
// follows on the line does not matter) and walks every part; the text
// before the first and after the last delimiter is scanned too.
func (s *scan) multipart(body []byte, boundary, where string, depth, level int) {
	delim := []byte("--" + boundary)
	var parts [][]byte
	start, found := 0, false
	for off := 0; off < len(body); {
		line, _ := cutLine(body[off:])
		next := off + len(line) + 1
		if bytes.HasPrefix(line, delim) {
			parts = append(parts, body[start:max(start, off-1)])
			start, found = min(next, len(body)), true
		}
		off = next
	}
	if !found {
		// No delimiter: the body is read as one text, as readers show it.
		s.memberData(body, -1, join(where, "multipart-body"), depth)
		return
	}
	parts = append(parts, body[start:])
	for i, p := range parts {
		if s.stop {
			return
		}
		if i == 0 || i == len(parts)-1 {
			// Preamble and epilogue: text, which may hold uuencode.
			if len(bytes.TrimSpace(p)) > 0 {
				s.memberData(p, -1, join(where, "text"), depth)
			}
			continue
		}
		s.entity(p, where, depth, level+1, true)
	}
}

// mediaType reads a Content-Type value: the type in lower case, and every
// value of every parameter (a parameter given twice keeps both).
func mediaType(v string) (string, map[string][]string) {
	params := map[string][]string{}
	typ, _, _ := strings.Cut(v, ";")
	typ = strings.ToLower(strings.TrimSpace(typ))
	if _, p, err := mime.ParseMediaType(v); err == nil {
		for k, x := range p {
			params[k] = []string{x}
		}
		return typ, params
	}
	// Lenient: split on semicolons outside quotes.
	var parts []string
	quoted, from := false, 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '"':
			quoted = !quoted
		case ';':
			if !quoted {
				parts = append(parts, v[from:i])
				from = i + 1
			}
		}
	}
	parts = append(parts, v[from:])
	for _, p := range parts[1:] {
		k, x, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		x = strings.TrimSpace(x)
		if len(x) >= 2 && x[0] == '"' && x[len(x)-1] == '"' {
			x = strings.ReplaceAll(x[1:len(x)-1], `\"`, `"`)
		}
		if x != "" && !contains(params[k], x) {
			params[k] = append(params[k], x)
		}
	}
	return typ, params
}

// partName is the name a reader shows for a part.
func partName(r reading, typ string) string {
	if name, ok := fileName(r); ok {
		return name
	}
	if typ == "" {
		typ = "text/plain"
	}
	return strings.ReplaceAll(typ, "/", "-")
}

// fileName is the file name a part's fields give it, if they give one.
func fileName(r reading) (string, bool) {
	for _, h := range []struct{ field, param string }{{"content-disposition", "filename"}, {"content-type", "name"}} {
		for _, v := range r.values(h.field) {
			if _, p := mediaType(v); len(p[h.param]) > 0 {
				return p[h.param][0], true
			}
		}
	}
	return "", false
}

// clamavPart is how ClamAV's mail reader describes a part to container
// signatures (read from clamscan's account of each, its CDBNAME lines):
// a part of a multipart, or a message's top when it is no text. Its name:
// a text part's is its Content-Disposition filename; an attached one
// with none is "unknown"; an inline one is "mixedtextportion" unless it
// is plain text as it is (no coding), which is "attachment" without a
// name, "unknown" with only a Content-Type name; another part's is its
// filename, else its Content-Type name, else "attachment"; made safe.
// Its size: a base64 part's bytes; another's, its text without carriage
// returns and one line end more (ClamAV writes each line with one).
func clamavPart(r reading, typ string, params map[string][]string, cte string, body []byte, part bool) (string, int64, bool) {
	major, sub, _ := strings.Cut(typ, "/")
	if typ == "" {
		major, sub = "text", "plain"
	}
	var disp string
	var dparams map[string][]string
	if v := r.values("content-disposition"); len(v) > 0 {
		disp, dparams = mediaType(v[0])
	}
	first := func(p map[string][]string, k string) string {
		if len(p[k]) > 0 {
			return p[k][0]
		}
		return ""
	}
	fname, cname := first(dparams, "filename"), first(params, "name")
	enc := strings.ToLower(strings.TrimSpace(cte))
	size := int64(len(body))
	if !strings.Contains(enc, "base64") {
		size = int64(len(body)-bytes.Count(body, []byte{'\r'})) + 1
	}
	name := fname
	switch major {
	case "multipart", "message":
		return "", 0, false
	case "text":
		if !part {
			return "", 0, false // a message's text is no attachment
		}
		switch disp {
		case "attachment":
		case "", "inline":
			switch {
			case sub != "plain" || enc != "" && enc != "7bit":
				name = "mixedtextportion"
			case fname == "" && cname == "":
				name = "attachment"
			}
		default:
			return "", 0, false
		}
		if name == "" {
			name = "unknown"
		}
	default:
		if name == "" {
			name = cname
		}
		if name == "" {
			name = "attachment"
		}
	}
	return clamavSafeName(name), size, true
}

// clamavSafeName is a name as ClamAV keeps a mail part's: every byte but
// letters, digits, '.' and '_' made '_'.
func clamavSafeName(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c == '.' || c == '_' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			b[i] = '_'
		}
	}
	return string(b)
}

// decodeBody undoes a transfer coding as leniently as readers do: the
// coding's name is looked for in the value ("x-base64").
func decodeBody(body []byte, cte string) []byte {
	c := strings.ToLower(cte)
	var r io.Reader
	switch {
	case strings.Contains(c, "base64"):
		return lenientBase64(body)
	case strings.Contains(c, "quoted-printable"):
		r = quotedprintable.NewReader(bytes.NewReader(body))
	case strings.Contains(c, "uu"):
		if blocks := uuBlocks(body); len(blocks) > 0 {
			return blocks[0].data
		}
		return uudecodeLines(body)
	default:
		return body
	}
	out, _ := io.ReadAll(r) // what decoded before an error is what a reader shows
	return out
}

// lenientBase64 decodes base64 as mail readers do: characters that are not
// base64 (line breaks, stray bytes) are dropped, padding may be missing,
// and padding in the middle (pieces encoded one after another) starts a
// new piece, so that a sloppy or crafty encoder cannot hide a part.
func lenientBase64(body []byte) []byte {
	// One output buffer, pieces decoded straight into it, and runs of
	// alphabet characters copied whole: the byte-at-a-time form was a
	// fifth of the CPU of retrieving mail with attachments.
	out := make([]byte, 0, len(body)/4*3+3)
	// Well-formed base64 (the standard decoder skips CR and LF) is the
	// common case, and what the lenient reading gives for it.
	if n, err := base64.StdEncoding.Decode(out[:cap(out)], body); err == nil {
		return out[:n]
	}
	piece := make([]byte, 0, min(len(body), 64<<10))
	flush := func() {
		if len(piece)%4 == 1 {
			piece = piece[:len(piece)-1] // a lone character carries no byte
		}
		n, _ := base64.RawStdEncoding.Decode(out[len(out):cap(out)], piece)
		out = out[:len(out)+n]
		piece = piece[:0]
	}
	for i := 0; i < len(body); {
		j := i
		for j < len(body) && b64Alphabet[body[j]] {
			j++
		}
		if j > i {
			if len(piece)+j-i > cap(piece) && len(piece) >= 4 {
				// Decode whole quanta now to keep the piece buffer small.
				q := len(piece) / 4 * 4
				n, _ := base64.RawStdEncoding.Decode(out[len(out):cap(out)], piece[:q])
				out = out[:len(out)+n]
				piece = append(piece[:0], piece[q:]...)
			}
			piece = append(piece, body[i:j]...)
			i = j
			continue
		}
		if body[i] == '=' && len(piece) > 0 {
			flush()
		}
		i++
	}
	if len(piece) > 0 {
		flush()
	}
	return out
}

// b64Alphabet marks the characters of base64's standard alphabet.
var b64Alphabet = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") {
		t[c] = true
	}
	return t
}()

// partial is the fragments of one message/partial message seen so far.
type partial struct {
	total int
	frags map[int][]byte
	where string
	done  bool
	depth int
}

// maxFragments bounds the fragments of one partial message.
const maxFragments = 100

// partialFragment keeps one fragment of a message sent in parts (RFC
// 2046 5.2.2): when every fragment of its id is in this object, the
// message is joined and walked; end says what is left incomplete.
func (s *scan) partialFragment(params map[string][]string, body []byte, where string, depth, level int) {
	id := first(params["id"])
	number, _ := strconv.Atoi(first(params["number"]))
	total, _ := strconv.Atoi(first(params["total"]))
	if s.partials == nil {
		s.partials = map[string]*partial{}
	}
	p := s.partials[id]
	if p == nil {
		p = &partial{frags: map[int][]byte{}, where: where, depth: depth}
		s.partials[id] = p
	}
	if total > 0 && total <= maxFragments {
		p.total = total
	}
	if number >= 1 && number <= maxFragments && len(p.frags) < maxFragments {
		p.frags[number] = body
	}
	if p.done || p.total == 0 || len(p.frags) < p.total {
		return
	}
	var whole []byte
	for i := 1; i <= p.total; i++ {
		f, ok := p.frags[i]
		if !ok {
			return
		}
		whole = append(whole, f...)
	}
	p.done = true
	// The first fragment carries the message's own header fields, the
	// joined body the rest: read as one message.
	s.entity(whole, join(where, "message-"+id), depth+1, level+1, false)
}

// end closes a walk: a message sent in parts whose fragments are not all
// here was not read, and is not judged clean.
func (s *scan) end() {
	for id, p := range s.partials {
		if !p.done {
			s.add(Detection{Name: "Heuristics.Partial.Message", Path: join(p.where, "message-"+id), Kind: Suspected, Depth: p.depth})
		}
	}
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
