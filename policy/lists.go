// Package policy holds what an administrator decides beside the engine's
// verdict: the skip lists (what is passed unscanned, by host, URL, client,
// sender, recipient or content type) and the type and name rules (what is
// blocked whatever the engine says). It knows nothing of protocols or
// engines: a service asks it about an object's facts (Facts) and gets the
// rule that matched.
//
// A list value is comma-separated entries, and "@/path/file" items (an @
// and a path with a slash: "@lists/hosts.txt" is under base_dir), each a
// file of one entry a line (blank lines and lines starting with # are
// skipped). Lists are built for lookups: tens of thousands of entries cost
// a map lookup or a binary search, never a walk of the list.
package policy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxListFile bounds a list file.
const MaxListFile = 64 << 20

// entry is one item of a list, and where it was written.
type entry struct {
	text string
	file string // "": the setting itself
	line int
}

// isFile tells a list file item ("@/path", "@lists/x.txt": a path has a
// slash) from an "@domain" entry of an address list.
func isFile(item string) bool {
	return strings.HasPrefix(item, "@") && strings.Contains(item, "/")
}

// entries reads a list value: its inline items and the lines of its
// @files. A file that cannot be read is an error.
func entries(value string) ([]entry, error) {
	var out []entry
	for _, item := range strings.Split(value, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
		case isFile(item):
			path := strings.TrimSpace(item[1:])
			data, err := readList(path)
			if err != nil {
				return nil, err
			}
			sc := bufio.NewScanner(bytes.NewReader(data))
			sc.Buffer(nil, 1<<20)
			for n := 1; sc.Scan(); n++ {
				line := strings.TrimSpace(sc.Text())
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				out = append(out, entry{text: line, file: path, line: n})
			}
			if err := sc.Err(); err != nil {
				return nil, fmt.Errorf("%s: %v", path, err)
			}
		default:
			out = append(out, entry{text: item})
		}
	}
	return out, nil
}

func readList(path string) ([]byte, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("list file %q: not an absolute path", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("list file: %v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("list file: %v", err)
	}
	if st.Size() > MaxListFile {
		return nil, fmt.Errorf("list file %s: larger than %d MiB", path, MaxListFile>>20)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, MaxListFile)); err != nil {
		return nil, fmt.Errorf("list file %s: %v", path, err)
	}
	return buf.Bytes(), nil
}

// bad is the error for an entry that is not what its list holds.
func bad(e entry, what string) error {
	if e.file != "" {
		return fmt.Errorf("%s:%d: %q is not %s", e.file, e.line, e.text, what)
	}
	return fmt.Errorf("%q is not %s", e.text, what)
}

// Resolve makes the @files of a list value absolute, under dir, for the
// settings' loader (relative paths are under base_dir).
func Resolve(value, dir string) string {
	if !strings.Contains(value, "@") {
		return value
	}
	items := strings.Split(value, ",")
	for i, item := range items {
		item = strings.TrimSpace(item)
		items[i] = item
		if p, ok := strings.CutPrefix(item, "@"); ok && isFile(item) {
			p = strings.TrimSpace(p)
			if !strings.HasPrefix(p, "/") {
				p = strings.TrimSuffix(dir, "/") + "/" + p
			}
			items[i] = "@" + p
		}
	}
	return strings.Join(items, ", ")
}
