package proxy

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/fsigkd/fsigkd/policy"
)

// BenchmarkRulesIn: the rules a typical gateway sets, on random objects of
// the bench's sizes (nothing to find: the whole walk is paid).
func BenchmarkRulesIn(b *testing.B) {
	r, err := policy.ParseRules("exe, dll, msi, lnk, iso, vhd, office-macro, hta, js, vbs, ps1, bat", "*.scr, *.pif, *.com")
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{1 << 10, 1 << 20} {
		data := make([]byte, size)
		rand.Read(data)
		file := filepath.Join(b.TempDir(), "obj")
		os.WriteFile(file, data, 0o644)
		b.Run(filepath.Base(map[int]string{1 << 10: "1KiB", 1 << 20: "1MiB"}[size]), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if rule, _ := checkFile(r, file, "small", false); rule != "" {
					b.Fatal(rule)
				}
			}
		})
	}
}
