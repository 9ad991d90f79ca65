// Package sigfiles says which signature files a fsavd_signatures path
// names: the path itself when it is one (.hdb, .hsb, .ndb), or every such
// file of the directory; a path that holds none is an error. The settings
// check and the bundled engine both read it, so that check accepts what
// the engine loads.
package sigfiles

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
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
