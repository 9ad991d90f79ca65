// Package sigfiles says which signature files a fsavd_signatures path
// names: the path itself when it is one, or every signature file and
// ClamAV container of the directory (freshclam's, /var/lib/clamav,
// included); a path that holds none the engine reads is an error. The
// settings check and the bundled engine both read it, so that check
// accepts what the engine loads.
package sigfiles

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsigkd/fsigkd/internal/cvd"
)

// Kind is what a signature file of this name holds, by its extension:
// "hash" (.hdb, .hsb: a whole file's hash; .mdb, .msb: a PE section's),
// "body" (.ndb), "logical" (.ldb) and "container" (.cdb: a container's
// metadata), which the bundled engine reads (of .ldb and .cdb, the
// signatures whose features it has); "allow", ClamAV's allow and ignore
// lists (.fp, .sfp: files known clean by their hash; .ign, .ign2:
// signatures not to use), which it reads too; "types", ClamAV's file
// types (.ftm), which type objects for the signatures of a target type
// (no signatures themselves); "unsupported", ClamAV's other kinds
// (bytecode, phishing and Authenticode signatures, YARA), counted and
// said, never loaded; "" for anything else (a container's COPYING).
func Kind(name string) string {
	switch filepath.Ext(name) {
	// The u files hold potentially unwanted programs' signatures (PUA.*),
	// in their plain kind's form: reported as riskware.
	case ".hdb", ".hsb", ".mdb", ".msb", ".imp", ".hdu", ".hsu", ".mdu", ".msu":
		return "hash"
	case ".ndb", ".ndu":
		return "body"
	case ".ldb", ".ldu":
		return "logical"
	case ".cdb":
		return "container"
	case ".fp", ".sfp", ".ign", ".ign2":
		return "allow"
	case ".ftm":
		return "types"
	case ".cbc", ".pdb", ".gdb", ".wdb",
		".crb", ".idb", ".yar", ".yara":
		return "unsupported"
	}
	return ""
}

// IsContainer tells whether name is a ClamAV container (.cvd, .cld, .cud).
func IsContainer(name string) bool {
	for _, e := range cvd.Exts {
		if filepath.Ext(name) == e {
			return true
		}
	}
	return false
}

// readable tells whether the engine reads something of name.
func readable(name string) bool {
	k := Kind(name)
	return k == "hash" || k == "body" || k == "logical" || k == "container" || IsContainer(name)
}

const what = "(.hdb, .hsb, .ndb, .ldb, .cdb, or ClamAV's .cvd, .cld, .cud)"

// List is the signature files of path, sorted: those the engine reads,
// those of kinds it does not (counted and said), and the containers;
// of a container held both as .cvd and .cld (freshclam's daily), the
// one of the higher version.
func List(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		if !readable(path) {
			return nil, fmt.Errorf("%s is not a signature file %s", path, what)
		}
		return []string{path}, nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var out []string
	newest := map[string]string{} // a container's name without its extension -> its file
	version := map[string]int{}
	n := 0
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || Kind(name) == "" && !IsContainer(name) {
			continue
		}
		if readable(name) {
			n++
		}
		p := filepath.Join(path, name)
		if !IsContainer(name) {
			out = append(out, p)
			continue
		}
		h, err := cvd.Open(p)
		if err != nil {
			return nil, err
		}
		base := strings.TrimSuffix(name, filepath.Ext(name))
		if _, ok := newest[base]; !ok || h.Version > version[base] {
			newest[base], version[base] = p, h.Version
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("%s holds no signature file %s", path, what)
	}
	for _, p := range newest {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// Set is what a signature path holds, as its files say: the signatures of
// each kind (hash: .hdb and .hsb lines; body: .ndb lines; unsupported:
// the lines of the kinds the engine does not read), a container's
// members counted by theirs, and when the newest file was written. Lines
// are counted as written; the engine says at load what it could not
// read.
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
		kinds, err := count(f, fi)
		if err != nil {
			return set, err
		}
		for k, n := range kinds {
			set.Kinds[k] += n
		}
		set.Files++
	}
	return set, nil
}

// counted is a file's signatures as last counted, with the size and time
// it had then.
type counted struct {
	size  int64
	mod   time.Time
	kinds map[string]int
}

var (
	countedMu sync.Mutex
	countedBy = map[string]counted{}
)

// count is the signature lines of file f (stat fi) by kind: neither empty
// nor a comment; a container's, member by member. It reads as a stream,
// never whole.
func count(f string, fi os.FileInfo) (map[string]int, error) {
	countedMu.Lock()
	c, ok := countedBy[f]
	countedMu.Unlock()
	if ok && c.size == fi.Size() && c.mod.Equal(fi.ModTime()) {
		return c.kinds, nil
	}
	kinds := map[string]int{}
	if IsContainer(f) {
		_, err := cvd.Each(f, func(name string, r io.Reader) error {
			if k := Kind(name); k != "" {
				n, err := Lines(r)
				kinds[k] += n
				return err
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	} else {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		n, err := Lines(fh)
		fh.Close()
		if err != nil {
			return nil, err
		}
		kinds[Kind(f)] = n
	}
	countedMu.Lock()
	countedBy[f] = counted{size: fi.Size(), mod: fi.ModTime(), kinds: kinds}
	countedMu.Unlock()
	return kinds, nil
}

// Lines counts the signature lines of r: neither empty nor a comment.
func Lines(rd io.Reader) (int, error) {
	n := 0
	r := bufio.NewReaderSize(rd, 64<<10)
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
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
