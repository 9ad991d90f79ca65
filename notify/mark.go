package notify

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The mark of the gateway's own admin notices.
//
// A notice is passed by the SMTP relay without a scan (it quotes subjects
// and file names a sender chose, and scanning it could loop), so the mark
// must be something only this gateway can make: an HMAC-SHA256, under a
// secret made at first start (KeyFile under base_dir, mode 0600), over the
// notification id, the header fields that decide how a reader shows the
// mail, and the digest of the body. The key never leaves the gateway, and
// a mark taken from one notice does not fit any other mail. Notices to a
// mail's sender or recipients, which go outside, carry no mark at all.
// A mail whose mark does not verify is scanned like any other.

// KeyFile is the name of the notice key under base_dir.
const KeyFile = "notice.key"

// markedFields are the header fields the mark covers, besides the body:
// each must appear exactly once in a marked mail.
var markedFields = []string{"Message-ID", "Date", "From", "To", "Subject", "Content-Type", "Content-Transfer-Encoding", "MIME-Version"}

// maxMarked bounds the size of a mail whose mark is checked: notices are
// small, and a larger mail is simply scanned.
const maxMarked = 1 << 20

// LoadKey reads the notice key under baseDir, making it first when there is
// none (32 random bytes, hex, mode 0600).
func LoadKey(baseDir string) ([]byte, error) {
	name := filepath.Join(baseDir, KeyFile)
	b, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		if err := makeKey(name); err != nil {
			return nil, fmt.Errorf("notice key: %w", err)
		}
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fmt.Errorf("notice key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < 16 {
		return nil, fmt.Errorf("notice key %s: not at least 16 bytes in hex", name)
	}
	return key, nil
}

// makeKey writes a new key at name, unless another process just did.
func makeKey(name string) error {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = f.WriteString(hex.EncodeToString(raw) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
	}
	return err
}

// markValue is the X-Admin-Notification-Id value: the id, then the MAC.
func markValue(key []byte, id string, head []byte, body []byte) (string, bool) {
	fields, ok := uniqueFields(head)
	if !ok {
		return "", false
	}
	m := hmac.New(sha256.New, key)
	io.WriteString(m, id)
	m.Write([]byte{0})
	for _, name := range markedFields {
		io.WriteString(m, fields[strings.ToLower(name)])
		m.Write([]byte{0})
	}
	sum := sha256.Sum256(bytes.TrimRight(body, "\r\n"))
	m.Write(sum[:])
	return id + "; mac=" + base64.RawURLEncoding.EncodeToString(m.Sum(nil)), true
}

// Mark returns msg (header, blank line, body; CRLF lines, without the
// mark) with the mark added as the last header field.
func Mark(key []byte, id string, msg []byte) []byte {
	head, body, ok := splitMail(msg)
	if !ok {
		return msg
	}
	v, ok := markValue(key, id, head, body)
	if !ok {
		return msg
	}
	var b bytes.Buffer
	b.Write(head)
	fmt.Fprintf(&b, "%s: %s\r\n\r\n", IDHeader, v)
	b.Write(body)
	return b.Bytes()
}

// Verify checks the mark of a whole mail as spooled (CRLF lines), for a
// mail whose header has the field (the caller has read the header).
// Fields put above ours on the way (Received, Return-Path) do not matter;
// any change to the covered fields or the body, a second mark, or a
// second copy of a covered field makes it fail.
func Verify(key []byte, id string, r io.ReaderAt, size int64) bool {
	if size > maxMarked || len(key) == 0 {
		return false
	}
	msg := make([]byte, size)
	if n, err := r.ReadAt(msg, 0); int64(n) != size && err != nil {
		return false
	}
	h, body, ok := splitMail(msg)
	if !ok {
		return false
	}
	var got string
	var rest []byte
	count := 0
	for _, line := range headerLines(h) {
		name, value, _ := strings.Cut(line, ":")
		if strings.EqualFold(strings.TrimSpace(name), IDHeader) {
			count++
			got = strings.TrimSpace(value)
			continue
		}
		rest = append(rest, line...)
		rest = append(rest, '\r', '\n')
	}
	if count != 1 {
		return false
	}
	want, ok := markValue(key, id, rest, body)
	return ok && hmac.Equal([]byte(got), []byte(want))
}

// splitMail cuts a mail at its first blank line; the header keeps its last
// CRLF.
func splitMail(msg []byte) (head, body []byte, ok bool) {
	i := bytes.Index(msg, []byte("\r\n\r\n"))
	if i < 0 {
		return nil, nil, false
	}
	return msg[:i+2], msg[i+4:], true
}

// headerLines are the fields of a header block, folded lines joined.
func headerLines(head []byte) []string {
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(string(head), "\r\n"), "\r\n") {
		if (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) && len(out) > 0 {
			out[len(out)-1] += "\r\n" + line
			continue
		}
		out = append(out, line)
	}
	return out
}

// uniqueFields are the covered fields' values; false when one of them
// appears twice (a reader could show either) or a line is no field.
func uniqueFields(head []byte) (map[string]string, bool) {
	want := map[string]bool{}
	for _, n := range markedFields {
		want[strings.ToLower(n)] = true
	}
	out := map[string]string{}
	for _, line := range headerLines(head) {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, false
		}
		name = strings.ToLower(strings.TrimSpace(name))
		if !want[name] {
			continue
		}
		if _, dup := out[name]; dup {
			return nil, false
		}
		out[name] = strings.TrimSpace(value)
	}
	return out, true
}
