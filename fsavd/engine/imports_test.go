package engine

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// TestImportHashesAsClamscanReadsThem: the import hash of Windows
// programs (the text, and the length the .imp signature names) is the
// one clamav computes (sigtool --imp), or none where clamav gives none;
// and .imp signatures made of clamav's hashes find the same programs
// under the same names in the engine as in clamscan, in a zip too. The
// one difference, kept on purpose and held here: a function imported by
// number from ws2_32 (or oleaut32, wsock32), whose numbers clamav names
// from tables of its own, gives no hash here rather than a guessed one.
func TestImportHashesAsClamscanReadsThem(t *testing.T) {
	sigtool := testenv.Need(t, "sigtool", "clamav")
	type im = [2]string
	far := 400 // the names well before the file's last 257 bytes
	programs := map[string][]byte{
		"three":        eicar.WindowsProgramImporting(far, im{"KERNEL32.dll", "ExitProcess"}, im{"KERNEL32.dll", "GetProcAddress"}, im{"user32.DLL", "MessageBoxA"}),
		"extensions":   eicar.WindowsProgramImporting(far, im{"drv.SYS", "A"}, im{"ctl.ocx", "B"}, im{"other.exe", "C"}, im{"noext", "D"}, im{"two.dots.dll", "E"}, im{"lib.dllfoo", "F"}),
		"by-number":    eicar.WindowsProgramImporting(far, im{"kernel32.dll", "#12"}, im{"kernel32.dll", "Sleep"}),
		"named-number": eicar.WindowsProgramImporting(far, im{"oleaut32.dll", "#320"}),
		"oleaut32":     eicar.WindowsProgramImporting(far, im{"oleaut32.dll", "#2"}, im{"oleaut32.dll", "#6"}),
		"winsock":      eicar.WindowsProgramImporting(far, im{"ws2_32.dll", "#3"}, im{"WSOCK32.dll", "#115"}),
		"bad-name":     eicar.WindowsProgramImporting(far, im{"a.dll", "Func_1"}, im{"a.dll", "Q?@$"}),
		"near-the-end": eicar.WindowsProgramImporting(0, im{"a.dll", "A"}, im{"b.dll", "B"}, im{"c.dll", "C"}, im{"d.dll", "D"}, im{"e.dll", "E"}, im{"f.dll", "F"}),
		"dots-in-name": eicar.WindowsProgramImporting(far, im{"a.dll", "Some.Func"}),
	}
	dir := t.TempDir()
	theirHash := map[string]string{}
	imphash := regexp.MustCompile(`Imphash: ([0-9a-f]{32}):(\d+)`)
	for name, b := range programs {
		p := filepath.Join(dir, name+".exe")
		os.WriteFile(p, b, 0o644)
		out, _ := exec.Command(sigtool, "--imp", p).CombinedOutput()
		if m := imphash.FindSubmatch(out); m != nil {
			theirHash[name] = string(m[1]) + ":" + string(m[2])
		}
	}
	t.Logf("sigtool: %v", theirHash)
	if len(theirHash) < 4 {
		t.Fatalf("sigtool gave %d hashes", len(theirHash))
	}
	notGuessed := "named-number"
	if theirHash[notGuessed] == "" {
		t.Fatalf("clamav gave %s no hash: the difference is not shown", notGuessed)
	}
	for name, b := range programs {
		text, ok := peImportHash(b)
		ours := ""
		if ok {
			sum := md5.Sum([]byte(text))
			ours = fmt.Sprintf("%s:%d", hex.EncodeToString(sum[:]), len(text))
		}
		want := theirHash[name]
		if name == notGuessed {
			want = ""
		}
		if ours != want {
			t.Errorf("%s: ours %q (%q), want %q (clamav's %q)", name, ours, text, want, theirHash[name])
		}
	}
	// Signatures of clamav's hashes, and the programs judged by both.
	sigs := t.TempDir()
	var imp strings.Builder
	for name, h := range theirHash {
		fmt.Fprintf(&imp, "%s:Test.Imp.%s\n", h, name)
	}
	os.WriteFile(filepath.Join(sigs, "t.imp"), []byte(imp.String()), 0o644)
	objects := map[string][]byte{"zipped": eicar.Zip(map[string][]byte{"setup.exe": programs["three"]})}
	for name, b := range programs {
		if name != notGuessed {
			objects[name] = b
		}
	}
	sameAsClamscan(t, sigs, objects, 8)
}

// FuzzImportHash: no program, however its import table is written, makes
// the reader panic or read outside it.
func FuzzImportHash(f *testing.F) {
	f.Add(eicar.WindowsProgramImporting(0, [2]string{"a.dll", "A"}, [2]string{"b.dll", "#3"}))
	f.Add(eicar.WindowsProgramWith([]byte("code")))
	f.Fuzz(func(t *testing.T, data []byte) {
		peImportHash(data)
	})
}

// TestOrdinalsAsSigtoolNamesThem: a program importing by their numbers
// every function the engine names, from ws2_32, wsock32 and oleaut32,
// has the import hash sigtool gives it (each number was also held to
// sigtool alone); one importing a number it does not name has none (not
// a guess).
func TestOrdinalsAsSigtoolNamesThem(t *testing.T) {
	sigtool := testenv.Need(t, "sigtool", "clamav")
	imphash := regexp.MustCompile(`Imphash: ([0-9a-f]{32}):(\d+)`)
	dir := t.TempDir()
	for dll, names := range map[string]map[uint16]string{"WS2_32.dll": winsockOrdinals, "wsock32.dll": winsockOrdinals, "OLEAUT32.dll": oleaut32Ordinals} {
		var imports [][2]string
		for _, ord := range slices.Sorted(maps.Keys(names)) {
			imports = append(imports, [2]string{dll, fmt.Sprintf("#%d", ord)})
		}
		b := eicar.WindowsProgramImporting(400, imports...)
		p := filepath.Join(dir, "p.exe")
		os.WriteFile(p, b, 0o644)
		out, _ := exec.Command(sigtool, "--imp", p).CombinedOutput()
		m := imphash.FindSubmatch(out)
		if m == nil {
			t.Fatalf("%s: sigtool gave no hash: %s", dll, out)
		}
		text, ok := peImportHash(b)
		sum := md5.Sum([]byte(text))
		if ours := fmt.Sprintf("%s:%d", hex.EncodeToString(sum[:]), len(text)); !ok || ours != string(m[1])+":"+string(m[2]) {
			t.Errorf("%s, %d numbers: ours %s, sigtool's %s:%s", dll, len(imports), ours, m[1], m[2])
		}
	}
	for _, im := range [][2]string{{"ws2_32.dll", "#30"}, {"oleaut32.dll", "#320"}, {"oleaut32.dll", "#1"}} {
		if _, ok := peImportHash(eicar.WindowsProgramImporting(400, im)); ok {
			t.Errorf("%s %s, a number not named, was given a hash", im[0], im[1])
		}
	}
}
