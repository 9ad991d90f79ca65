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
	if !Verify(key, "id", bytes.NewReader(m), int64(len(m))) {
		t.Fatal("own mark not verified")
	}
	if Verify([]byte("another key......"), "id", bytes.NewReader(m), int64(len(m))) {
		t.Fatal("verified under another key")
	}
	for _, changed := range [][]byte{
		bytes.Replace(m, []byte("Subject: s"), []byte("Subject: t"), 1),
		bytes.Replace(m, []byte("body"), []byte("bodY"), 1),
		bytes.Replace(m, []byte("Date: d"), []byte("Date: d\r\nDate: e"), 1),
	} {
		if Verify(key, "id", bytes.NewReader(changed), int64(len(changed))) {
			t.Errorf("changed mail verified: %q", changed)
		}
	}
	if Verify(key, "id", bytes.NewReader(msg), int64(len(msg))) {
		t.Fatal("a mail without a mark verified")
	}
}
