package notify

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestKeyIsMadeOncePrivate(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st.Mode(), err)
	}
	k2, _ := LoadKey(dir)
	if len(k1) != 32 || !bytes.Equal(k1, k2) {
		t.Fatalf("key changed or short: %x %x", k1, k2)
	}
	os.WriteFile(filepath.Join(dir, KeyFile), []byte("zz\n"), 0o600)
	if _, err := LoadKey(dir); err == nil {
		t.Fatal("a damaged key was accepted")
	}
}

func TestMarkVerifies(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	msg := []byte("From: <a@gw>\r\nTo: <b@gw>\r\nSubject: s\r\nDate: d\r\nMessage-ID: <1@gw>\r\n\r\nbody\r\n")
	m := Mark(key, "id", msg)
	if v := Verify(key, "id", bytes.NewReader(m), int64(len(m))); v != Verified {
		t.Fatalf("own mark: %v", v)
	}
	if v := Verify([]byte("another key......"), "id", bytes.NewReader(m), int64(len(m))); v != Forged {
		t.Fatalf("another key: %v", v)
	}
	for _, changed := range [][]byte{
		bytes.Replace(m, []byte("Subject: s"), []byte("Subject: t"), 1),
		bytes.Replace(m, []byte("body"), []byte("bodY"), 1),
		bytes.Replace(m, []byte("Date: d"), []byte("Date: d\r\nDate: e"), 1),
	} {
		if v := Verify(key, "id", bytes.NewReader(changed), int64(len(changed))); v != Forged {
			t.Errorf("changed mail verified: %q", changed)
		}
	}
	if v := Verify(key, "id", bytes.NewReader(msg), int64(len(msg))); v != Unmarked {
		t.Fatalf("unmarked: %v", v)
	}
}
