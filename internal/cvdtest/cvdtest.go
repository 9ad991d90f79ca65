// Package cvdtest builds ClamAV signature containers for tests, with
// ClamAV's own sigtool: an unsigned container (.cud) from signature files,
// and from it a .cld (the same header over the archive uncompressed, as
// freshclam leaves a database it brought up to date).
package cvdtest

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// Build has sigtool build name.cud (version given) from signature files,
// each given by its extension (".hdb" -> its content), which sigtool
// wants named name.hdb and so on; its path, alone in a directory.
func Build(t testing.TB, name string, version int, files map[string]string) string {
	t.Helper()
	sigtool := testenv.Need(t, "sigtool", "clamav")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "COPYING"), []byte("test signatures\n"), 0o644)
	for ext, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name+ext), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(sigtool, "--build="+name+".cud", "--unsigned", "--cvd-version="+strconv.Itoa(version), "--datadir="+dir)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader("tester\n") // the builder's name
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sigtool: %v\n%s", err, out)
	}
	// Alone in a directory of its own, as in a database directory.
	p := filepath.Join(t.TempDir(), name+".cud")
	if err := os.Rename(filepath.Join(dir, name+".cud"), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// CLD is the container at cud made a .cld at path: its header over its
// archive uncompressed.
func CLD(t testing.TB, cud, path string) {
	t.Helper()
	b, err := os.ReadFile(cud)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b[512:]))
	if err != nil {
		t.Fatal(err)
	}
	tar, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b[:512:512], tar...), 0o644); err != nil {
		t.Fatal(err)
	}
}
