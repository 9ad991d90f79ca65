package ftp

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/fsigkd/fsigkd/internal/forms"
)

// TestEveryFormOverFTP: each form of internal/forms through the proxy to
// vsftpd, fetched (RETR) and stored (STOR): with EICAR, refused (a
// refused upload never reaches the server); clean, byte for byte both
// ways.
func TestEveryFormOverFTP(t *testing.T) {
	e := newEnv(t, "").withServer()
	dir := t.TempDir()
	for i, f := range forms.All(t) {
		bad, good := fmt.Sprintf("bad%d", i), fmt.Sprintf("good%d", i)
		put(t, e, bad, f.Infected)
		put(t, e, good, f.Clean)
		if out, err := e.curl(e.url(bad)); err == nil || bytes.Equal(out, f.Infected) {
			t.Errorf("%s with EICAR, fetched: %v", f.Name, err)
		}
		if out, err := e.curl(e.url(good)); err != nil || !bytes.Equal(out, f.Clean) {
			t.Errorf("%s, clean, fetched: %v, %d bytes of %d", f.Name, err, len(out), len(f.Clean))
		}
		local := filepath.Join(dir, bad)
		os.WriteFile(local, f.Infected, 0o644)
		if _, err := e.curl("-T", local, e.url("pub/"+bad)); err == nil {
			t.Errorf("%s with EICAR, stored: accepted", f.Name)
		}
		if _, err := os.Stat(filepath.Join(e.srv.Root, "pub", bad)); err == nil {
			t.Errorf("%s with EICAR, stored: it reached the server", f.Name)
		}
		local = filepath.Join(dir, good)
		os.WriteFile(local, f.Clean, 0o644)
		if out, err := e.curl("-T", local, e.url("pub/"+good)); err != nil {
			t.Errorf("%s, clean, stored: %v %s", f.Name, err, out)
		}
		if got, _ := os.ReadFile(filepath.Join(e.srv.Root, "pub", good)); !bytes.Equal(got, f.Clean) {
			t.Errorf("%s, clean, stored: the server has %d bytes of %d", f.Name, len(got), len(f.Clean))
		}
	}
}
