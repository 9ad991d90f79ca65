package fsavd

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/fsigkd/fsigkd/fsavd/engine"
	"github.com/fsigkd/fsigkd/policy"
	"github.com/fsigkd/fsigkd/unpack"
)

// BenchmarkScanWithRules is what the type and name rules add to the
// engine's scan when it applies them in its own pass: the same scan of
// random objects (nothing to find), without and with a dozen rules.
func BenchmarkScanWithRules(b *testing.B) {
	db, err := engine.Load("")
	if err != nil {
		b.Fatal(err)
	}
	e := engine.New(db)
	rules, err := policy.ParseRules("exe, dll, msi, lnk, iso, vhd, office-macro, hta, js, vbs, ps1, bat", "*.scr, *.pif, *.com")
	if err != nil {
		b.Fatal(err)
	}
	opt := engine.Options{Archives: true, MIME: true}
	for _, size := range []int{1 << 10, 1 << 20} {
		data := make([]byte, size)
		rand.Read(data)
		file := filepath.Join(b.TempDir(), "obj")
		os.WriteFile(file, data, 0o644)
		for _, with := range []bool{false, true} {
			name := map[int]string{1 << 10: "1KiB", 1 << 20: "1MiB"}[size] + map[bool]string{false: "/plain", true: "/rules"}[with]
			b.Run(name, func(b *testing.B) {
				var visit unpack.Visit
				if with {
					visit = func(data []byte, where string) bool { rules.Check(data, where); return false }
				}
				b.SetBytes(int64(size))
				for b.Loop() {
					if _, err := e.ScanFile(file, opt, visit); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
