// Package diag writes diag.tar.gz, what support asks for when something
// breaks (the documented messages ask for it): each part is collected on
// its own, and a part that cannot be collected is replaced by a file that
// says why, so that the archive as a whole never fails for one part.
package diag

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fsigkd/fsigkd/logs"
)

// Part is one file of the archive.
type Part struct {
	Name    string // its path in the archive
	What    string // what it holds, for CONTENTS.txt (personal data named)
	Collect func() ([]byte, error)
}

// Contents lists the parts, one a line with what each holds, those in
// failed said not collected: the archive's CONTENTS.txt, and what the
// command prints, so that what leaves the machine is known.
func Contents(parts []Part, failed []string) string {
	var b strings.Builder
	for _, p := range parts {
		fmt.Fprintf(&b, "  %-28s %s", p.Name, p.What)
		for _, f := range failed {
			if f == p.Name {
				fmt.Fprintf(&b, " (not collected: %s.error.txt says why)", p.Name)
				break
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Write writes parts to w as a gzipped tar under the directory "diag/".
// A part that fails becomes Name + ".error.txt" with its error (and what
// it collected before failing, if anything, still goes in as Name).
// Failed lists those parts.
func Write(w io.Writer, parts []Part) (failed []string, err error) {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	now := time.Now()
	add := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: "diag/" + name, Mode: 0o644, Size: int64(len(b)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	for _, p := range parts {
		b, cerr := collect(p)
		if len(b) > 0 || cerr == nil {
			if err := add(p.Name, b); err != nil {
				return failed, err
			}
		}
		if cerr != nil {
			failed = append(failed, p.Name)
			if err := add(p.Name+".error.txt", []byte(cerr.Error()+"\n")); err != nil {
				return failed, err
			}
		}
	}
	if err := add("CONTENTS.txt", []byte("What this archive holds (the files are under diag/):\n\n"+Contents(parts, failed))); err != nil {
		return failed, err
	}
	if err := tw.Close(); err != nil {
		return failed, err
	}
	return failed, gz.Close()
}

// collect runs one part, a panic included, as an error of that part.
func collect(p Part) (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("collecting it failed: %v", r)
		}
	}()
	return p.Collect()
}

// Command is a part made by running a program (the first of candidates
// that is installed); its output, standard error included.
func Command(timeout time.Duration, candidates ...[]string) func() ([]byte, error) {
	return func() ([]byte, error) {
		var tried []string
		for _, c := range candidates {
			bin, err := exec.LookPath(c[0])
			if err != nil {
				for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
					if _, e := os.Stat(filepath.Join(d, c[0])); e == nil {
						bin, err = filepath.Join(d, c[0]), nil
						break
					}
				}
			}
			if err != nil {
				tried = append(tried, c[0])
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			out, err := exec.CommandContext(ctx, bin, c[1:]...).CombinedOutput()
			cancel()
			header := "$ " + strings.Join(c, " ") + "\n"
			if err != nil {
				return append([]byte(header), out...), fmt.Errorf("%s: %v", strings.Join(c, " "), err)
			}
			return append([]byte(header), out...), nil
		}
		return nil, fmt.Errorf("none of these programs is installed: %s", strings.Join(tried, ", "))
	}
}

// Files is a part that reads the files named, each under a header.
func Files(paths ...string) func() ([]byte, error) {
	return func() ([]byte, error) {
		var b strings.Builder
		var errs []string
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			fmt.Fprintf(&b, "%s: %s\n", p, strings.TrimSpace(string(data)))
		}
		if len(errs) > 0 {
			return []byte(b.String()), fmt.Errorf("%s", strings.Join(errs, "; "))
		}
		return []byte(b.String()), nil
	}
}

// Tail is a part that holds the last limit bytes of a file (a log).
func Tail(path string, limit int64) func() ([]byte, error) {
	return func() ([]byte, error) { return logs.Tail(path, limit) }
}

// Cores is a part that lists the core files in dir (core, core.*), with
// their sizes and times: the files themselves are too large to send
// unasked.
func Cores(dir string) func() ([]byte, error) {
	return func() ([]byte, error) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		var lines []string
		for _, e := range ents {
			if n := e.Name(); n == "core" || strings.HasPrefix(n, "core.") {
				if info, err := e.Info(); err == nil {
					lines = append(lines, fmt.Sprintf("%s\t%d bytes\t%s", filepath.Join(dir, n), info.Size(), info.ModTime().UTC().Format(time.RFC3339)))
				}
			}
		}
		sort.Strings(lines)
		if len(lines) == 0 {
			return []byte("no core files in " + dir + "\n"), nil
		}
		return []byte(strings.Join(lines, "\n") + "\n"), nil
	}
}
