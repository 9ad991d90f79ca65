package engine

import (
	"crypto/md5"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// hashLines is n MD5 signature lines (about 60 bytes each: 120,000 of
// them are more than one chunk), line i (from 1) for the object "i".
func hashLines(n int, eol string) []string {
	lines := make([]string, n)
	for i := range lines {
		data := fmt.Sprint(i + 1)
		lines[i] = fmt.Sprintf("%x:%d:Test.Line-%d%s", md5.Sum([]byte(data)), len(data), i+1, eol)
	}
	return lines
}

// TestHashFileReadInChunks: a file of hash signatures larger than a
// chunk loads whole whatever its line ends (CRLF, no newline at the end,
// comments and blank lines), every signature found by its object, the
// first and last lines of each chunk among them.
func TestHashFileReadInChunks(t *testing.T) {
	for name, eol := range map[string]string{"LF": "\n", "CRLF": "\r\n"} {
		lines := hashLines(120000, eol)
		lines[500] = "# a comment" + eol
		lines[70000] = eol
		body := strings.Join(lines, "")
		body = strings.TrimSuffix(body, eol) // the last line has no end
		if len(body) <= hashChunk {
			t.Fatalf("%d bytes: not more than one chunk", len(body))
		}
		db, err := Load(writeSigs(t, map[string]string{"big.hdb": body}))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := db.Signatures(); got != 120000-2+1 { // and EICAR
			t.Fatalf("%s: %d signatures", name, got)
		}
		for _, i := range []int{1, 499, 502, 69999, 70002, 120000} {
			if got := db.matchHash([]byte(fmt.Sprint(i)), new(digests)); len(got) != 1 || got[0] != fmt.Sprintf("Test.Line-%d", i) {
				t.Fatalf("%s: object %d: %v", name, i, got)
			}
		}
		for _, i := range []int{501, 70001} {
			if got := db.matchHash([]byte(fmt.Sprint(i)), new(digests)); len(got) != 0 {
				t.Fatalf("%s: object %d of a line not a signature: %v", name, i, got)
			}
		}
	}
}

// TestBadHashLineNamedByItsLine: a bad line in any chunk, or one too
// long, fails the load with the file and the line's own number.
func TestBadHashLineNamedByItsLine(t *testing.T) {
	for _, tc := range []struct {
		line int
		text string
		msg  string
	}{
		{1, "nothex:12:Bad", "bad hash"},
		{65000, "0123:12:Short", "not MD5"},
		{119999, "d41d8cd98f00b204e9800998ecf8427e:x:BadSize", "bad size"},
		{90000, "d41d8cd98f00b204e9800998ecf8427e:1:" + strings.Repeat("n", maxSigLine+1), "too long"},
	} {
		lines := hashLines(120000, "\n")
		lines[tc.line-1] = tc.text + "\n"
		dir := writeSigs(t, map[string]string{"big.hdb": strings.Join(lines, "")})
		_, err := Load(dir)
		var le *LoadError
		if !errors.As(err, &le) || le.Line != tc.line || le.File != filepath.Join(dir, "big.hdb") || !strings.Contains(le.Msg, tc.msg) {
			t.Fatalf("a bad line %d (%s): %v", tc.line, tc.msg, err)
		}
	}
}
