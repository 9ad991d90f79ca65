package decrypt

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

func TestPasswordsFoundInText(t *testing.T) {
	for text, want := range map[string][]string{
		"Hi,\r\nthe invoice is attached. Password: 1234\r\n":    {"1234"},
		"The password is Secr3t!.":                              {"Secr3t!.", "Secr3t!"},
		"Passwort = \"a b\"":                                    {"a"},
		"pw: abc, pass=xyz":                                     {"abc,", "abc", "xyz"},
		"パスワード：himitsu":                                         {"himitsu"},
		"Your passport number and passwords are not asked for.": nil,
		"zip password\n\n  qwerty":                              {"qwerty"},
		"no phrase here":                                        nil,
	} {
		if got := Passwords([]byte(text), nil); !slices.Equal(got, want) {
			t.Errorf("%q: %q, want %q", text, got, want)
		}
	}
	var many []byte
	for i := 0; i < 100; i++ {
		many = append(many, []byte("password: p"+string(rune('a'+i%26))+string(rune('a'+i/26))+"\n")...)
	}
	if got := Passwords(many, nil); len(got) != MaxPasswords {
		t.Fatalf("%d candidates", len(got))
	}
}

// made runs a tool in a temp directory holding files and gives the
// archive it wrote.
func made(t *testing.T, files map[string][]byte, archive string, tool string, args ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		os.WriteFile(filepath.Join(dir, name), data, 0o644)
	}
	cmd := exec.Command(tool, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", tool, err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, archive))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOpenWhatTheToolsEncrypt: PKWARE (zip -P, stored and deflated),
// WinZip AES-256 (7-Zip's zip), and 7z AES, each opened with the right
// password among wrong ones and never with a wrong one alone.
func TestOpenWhatTheToolsEncrypt(t *testing.T) {
	zipTool := testenv.Need(t, "zip", "zip")
	sz := testenv.Need(t, "7zz", "7zip")
	files := map[string][]byte{"a.txt": []byte(strings.Repeat("text to compress ", 500)), "b.bin": {1, 2, 3, 4, 5}}
	for name, data := range map[string][]byte{
		"pkware":                    made(t, files, "x.zip", zipTool, "-q", "-P", "s3cret", "x.zip", "a.txt", "b.bin"),
		"pkware stored":             made(t, files, "x.zip", zipTool, "-q", "-0", "-P", "s3cret", "x.zip", "a.txt", "b.bin"),
		"winzip aes-256":            made(t, files, "x.zip", sz, "a", "-bd", "-tzip", "-ps3cret", "-mem=AES256", "x.zip", "a.txt", "b.bin"),
		"7z aes":                    made(t, files, "x.7z", sz, "a", "-bd", "-ps3cret", "x.7z", "a.txt", "b.bin"),
		"7z aes, encrypted headers": made(t, files, "x.7z", sz, "a", "-bd", "-ps3cret", "-mhe=on", "x.7z", "a.txt", "b.bin"),
	} {
		t.Run(name, func(t *testing.T) {
			ms, pw, err := Open(data, []string{"wrong", "S3cret", "s3cret"}, 1<<20, NewTries())
			if err != nil || pw != "s3cret" || len(ms) != 2 {
				t.Fatalf("%v %q %d members", err, pw, len(ms))
			}
			for _, m := range ms {
				if !bytes.Equal(m.Data, files[m.Name]) {
					t.Errorf("%s: %d bytes, want %d", m.Name, len(m.Data), len(files[m.Name]))
				}
			}
			for i := 0; i < 50; i++ { // wrong passwords never open it
				if _, _, err := Open(data, []string{fmt.Sprint("guess", i)}, 1<<20, NewTries()); err != ErrNoPassword {
					t.Fatalf("guess%d: %v", i, err)
				}
			}
			if _, _, err := Open(data, []string{"s3cret"}, 100, NewTries()); err != ErrTooLarge {
				t.Fatalf("over the limit: %v", err)
			}
		})
	}
}

func FuzzPasswords(f *testing.F) {
	for _, s := range []string{"password: 1234", "パスワード：x", "pw=", "the password is \"a b\"", strings.Repeat("password: ", 100)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		ps := Passwords(text, nil)
		if len(ps) > MaxPasswords {
			t.Fatalf("%d candidates", len(ps))
		}
		for _, p := range ps {
			if len(p) == 0 || len(p) > maxPasswordLen {
				t.Fatalf("candidate %q", p)
			}
		}
	})
}

// FuzzOpen: a crafted archive costs an error, never a panic or more than
// the limit.
func FuzzOpen(f *testing.F) {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, _ := zw.CreateRaw(&zip.FileHeader{Name: "a", Method: 99, Flags: 1, CompressedSize64: 40, Extra: []byte{0x01, 0x99, 7, 0, 2, 0, 'A', 'E', 3, 8, 0}})
	w.Write(make([]byte, 40))
	zw.Close()
	f.Add(b.Bytes())
	f.Add([]byte("Rar!\x1a\x07\x01\x00junk"))
	f.Add([]byte{'7', 'z', 0xbc, 0xaf, 0x27, 0x1c, 0, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, _, err := Open(data, []string{"a", "secret"}, 1<<16, NewTries())
		total := 0
		for _, m := range ms {
			total += len(m.Data)
		}
		if err == nil && total > 1<<16 {
			t.Fatalf("%d bytes past the limit", total)
		}
	})
}

// TestTriesAreBounded: a mail of many 7z archives and many wrong
// candidates costs at most MaxTries key derivations in all, not one per
// archive and candidate.
func TestTriesAreBounded(t *testing.T) {
	sz := testenv.Need(t, "7zz", "7zip")
	data := made(t, map[string][]byte{"a.txt": []byte("x")}, "x.7z", sz, "a", "-bd", "-psecret", "-mhe=on", "x.7z", "a.txt")
	var wrong []string
	for i := 0; i < MaxPasswords; i++ {
		wrong = append(wrong, fmt.Sprint("wrong", i))
	}
	tries := NewTries()
	start := time.Now()
	for i := 0; i < 20; i++ { // 320 tries unbounded
		if _, _, err := Open(data, wrong, 1<<20, tries); err != ErrNoPassword {
			t.Fatalf("archive %d: %v", i, err)
		}
	}
	bounded := time.Since(start)
	start = time.Now()
	Open(data, wrong[:4], 1<<20, NewTries())
	per := time.Since(start) / 4
	if bounded > per*MaxTries*3 {
		t.Fatalf("20 archives x %d candidates took %s; one try takes %s", MaxPasswords, bounded, per)
	}
	if _, _, err := Open(data, []string{"secret"}, 1<<20, tries); err != ErrNoPassword {
		t.Fatalf("past the budget, the right password was still tried: %v", err)
	}
}

// TestMemoryIsBounded: an archive larger than a mail may hold is not
// taken out of it, and one that unpacks past what a mail may hold is not
// opened: both stay encrypted, whatever max_scan_size allows.
func TestMemoryIsBounded(t *testing.T) {
	zipTool := testenv.Need(t, "zip", "zip")
	data := made(t, map[string][]byte{"a.bin": bytes.Repeat([]byte("x"), 64<<10)}, "x.zip", zipTool, "-q", "-P", "pw", "x.zip", "a.bin")
	defer func(a, m int64) { maxHeldArchives, maxHeldMembers = a, m }(maxHeldArchives, maxHeldMembers)
	maxHeldMembers = 32 << 10
	if _, _, err := Open(data, []string{"pw"}, 1<<30, NewTries()); err != ErrTooLarge {
		t.Fatalf("past the members' bound: %v", err)
	}
	mail := "From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\npassword: pw\r\n--b\r\nContent-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(data) + "\r\n--b--\r\n"
	f, err := os.CreateTemp(t.TempDir(), "mail")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(mail)
	if pw, archives := Find(f, int64(len(mail)), 1<<30); len(archives) != 1 || len(pw) == 0 {
		t.Fatalf("within the bound: %d archives, %q", len(archives), pw)
	}
	maxHeldArchives = int64(len(data)) - 1
	if _, archives := Find(f, int64(len(mail)), 1<<30); len(archives) != 0 {
		t.Fatalf("past the archives' bound: %d archives kept", len(archives))
	}
}
