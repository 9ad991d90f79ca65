package engine

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
)

// TestPUASignaturesAsClamscanReadsThem: the signatures of potentially
// unwanted programs (ClamAV's u files: .hdu, .ndu, .ldu) find what
// clamscan --detect-pua finds, under the same names, as riskware; asked
// for no riskware (clamd's default, DetectPUA no), the engine finds
// nothing of them, as clamscan without --detect-pua, and still finds the
// virus beside them.
func TestPUASignaturesAsClamscanReadsThem(t *testing.T) {
	tool := []byte("a remote administration tool some sites do not want")
	adware := []byte("an adware bundle that shows advertisements")
	logical := []byte("a miner: POOL-ADDRESS and WALLET-ID in one file")
	sum := md5.Sum(tool)
	hx := func(b string) string { return hex.EncodeToString([]byte(b)) }
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pua.hdu"), fmt.Appendf(nil, "%s:%d:PUA.Win.Tool.Remote\n", hex.EncodeToString(sum[:]), len(tool)), 0o644)
	os.WriteFile(filepath.Join(dir, "pua.ndu"), []byte("PUA.Win.Adware.Bundle:0:*:"+hx("adware bundle that shows")+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "pua.ldu"), []byte("PUA.Win.Miner.Coin;Engine:51-255,Target:0;0&1;"+hx("POOL-ADDRESS")+";"+hx("WALLET-ID")+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "virus.ndb"), []byte("Test.Virus.Beside:0:*:"+hx("a real virus")+"\n"), 0o644)
	objects := map[string][]byte{
		"tool":       tool,
		"adware":     adware,
		"miner":      logical,
		"zipped":     eicar.Zip(map[string][]byte{"setup.exe": adware}),
		"virus":      []byte("this is a real virus"),
		"clean":      []byte("nothing to see"),
		"tool-plus1": append([]byte("x"), tool...),
	}
	corpus := t.TempDir()
	for name, b := range objects {
		os.WriteFile(filepath.Join(corpus, name), b, 0o644)
	}
	withPUA, without := clamscanFinds(t, dir, corpus, "--detect-pua=yes"), clamscanFinds(t, dir, corpus)
	if len(withPUA) != 5 || len(without) != 1 {
		t.Fatalf("clamscan found %v with --detect-pua, %v without", withPUA, without)
	}
	db, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(db.Unsupported) != 0 {
		t.Errorf("not read: %v", db.Unsupported)
	}
	e := New(db)
	for _, c := range []struct {
		riskware bool
		theirs   map[string]string
	}{{true, withPUA}, {false, without}} {
		opt := all
		opt.Riskware = c.riskware
		for name, b := range objects {
			found := e.ScanBytes(b, opt)
			var names []string
			for _, d := range found {
				names = append(names, d.Name)
				if want := strings.HasPrefix(d.Name, "PUA."); (d.Kind == Riskware) != want {
					t.Errorf("%s: %s is of kind %v", name, d.Name, d.Kind)
				}
			}
			if ours := strings.Join(names, ","); ours != c.theirs[name] {
				t.Errorf("riskware %v, %s: the engine says %q, clamscan %q", c.riskware, name, ours, c.theirs[name])
			}
		}
	}
}
