// Package sigfiles says which signature files a fsavd_signatures path
// names: the path itself when it is one (.hdb, .hsb, .ndb), or every such
// file of the directory; a path that holds none is an error. The settings
// check and the bundled engine both read it, so that check accepts what
// the engine loads.
package sigfiles

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Exts are the signature files' extensions.
var Exts = []string{".hdb", ".hsb", ".ndb"}

func isSig(name string) bool {
	for _, e := range Exts {
		if filepath.Ext(name) == e {
			return true
		}
	}
	return false
}

// List is the signature files of path, sorted.
func List(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		if !isSig(path) {
			return nil, fmt.Errorf("%s is not a signature file (.hdb, .hsb, .ndb)", path)
		}
		return []string{path}, nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() && isSig(e.Name()) {
			out = append(out, filepath.Join(path, e.Name()))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no signature file (.hdb, .hsb, .ndb)", path)
	}
	sort.Strings(out)
	return out, nil
}

// Set is what a signature path holds, as its files say: the signatures of
// each kind (hash: .hdb and .hsb lines; body: .ndb lines) and when the
// newest file was written. Lines are counted as written; the engine says
// at load what it could not read.
type Set struct {
	Files  int
	Kinds  map[string]int
	Newest time.Time
}

// Describe counts what path holds; an empty path holds nothing (EICAR,
// built into the engine, is not counted here). A file unchanged since it
// was last counted (same size and time) is not read again: the master
// looks every hour, and a real database is hundreds of megabytes.
func Describe(path string) (Set, error) {
	set := Set{Kinds: map[string]int{}}
	if path == "" {
		return set, nil
	}
	files, err := List(path)
	if err != nil {
		return set, err
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return set, err
		}
		if fi.ModTime().After(set.Newest) {
			set.Newest = fi.ModTime()
		}
		n, err := count(f, fi)
		if err != nil {
			return set, err
		}
		kind := "body"
		if filepath.Ext(f) != ".ndb" {
			kind = "hash"
		}
		set.Kinds[kind] += n
		set.Files++
	}
	return set, nil
}

// counted is a file's signatures as last counted, with the size and time
// it had then.
type counted struct {
	size int64
	mod  time.Time
	n    int
}

var (
	countedMu sync.Mutex
	countedBy = map[string]counted{}
)

// count is the signature lines of file f (stat fi): neither empty nor a
// comment. It reads the file as a stream, never whole.
func count(f string, fi os.FileInfo) (int, error) {
	countedMu.Lock()
	c, ok := countedBy[f]
	countedMu.Unlock()
	if ok && c.size == fi.Size() && c.mod.Equal(fi.ModTime()) {
		return c.n, nil
	}
	fh, err := os.Open(f)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	n := 0
	r := bufio.NewReaderSize(fh, 64<<10)
	for {
		l, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: count it once, by its start.
			if l = bytes.TrimSpace(l); len(l) > 0 && l[0] != '#' {
				n++
			}
			for err == bufio.ErrBufferFull {
				_, err = r.ReadSlice('\n')
			}
			if err == nil {
				continue
			}
		} else if l = bytes.TrimSpace(l); len(l) > 0 && l[0] != '#' {
			n++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	countedMu.Lock()
	countedBy[f] = counted{size: fi.Size(), mod: fi.ModTime(), n: n}
	countedMu.Unlock()
	return n, nil
}
