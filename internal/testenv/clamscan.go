package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ClamscanView runs clamscan (with a database of one signature that
// matches nothing) over objects, leaving its temporary files, and
// returns for each object the content of the file it wrote called view
// (ClamAV's normalised views: "javascript", "nocomment.html", ...); an
// object with none has no entry. Names must not hold one another.
func ClamscanView(t testing.TB, objects map[string][]byte, view string) map[string]string {
	t.Helper()
	clamscan := Need(t, "clamscan", "clamav")
	dir := t.TempDir()
	in, tmp := filepath.Join(dir, "in"), filepath.Join(dir, "tmp")
	for _, d := range []string{in, tmp} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	db := filepath.Join(dir, "none.ndb")
	if err := os.WriteFile(db, []byte("Test.Nothing:0:*:00112233445566778899aabbccddeeff\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, b := range objects {
		if err := os.WriteFile(filepath.Join(in, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(clamscan, "--leave-temps", "--tempdir="+tmp, "-d", db, in).CombinedOutput(); err != nil {
		t.Fatalf("clamscan: %v\n%s", err, out)
	}
	views := map[string]string{}
	filepath.Walk(tmp, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || info.Name() != view {
			return nil
		}
		for name := range objects {
			// clamscan names a file's directory "<time>-<name>.<random>".
			if strings.Contains(path, "-"+name+".") {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				views[name] = string(b)
			}
		}
		return nil
	})
	return views
}
