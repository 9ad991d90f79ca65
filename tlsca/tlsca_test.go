package tlsca

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func newCA(t testing.TB) *CA {
	t.Helper()
	dir := t.TempDir()
	cert, key := Paths("", "", dir)
	if made, err := Ensure(cert, key, "test CA"); err != nil || !made {
		t.Fatalf("made %v, %v", made, err)
	}
	ca, err := Load(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// TestEnsureMakesOneCA: the CA is made once, its key readable by its
// owner alone; processes making it at once end with the same one.
func TestEnsureMakesOneCA(t *testing.T) {
	dir := t.TempDir()
	cert, key := Paths("", "", dir)
	var wg sync.WaitGroup
	var madeCount int
	var mu sync.Mutex
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			made, err := Ensure(cert, key, "race")
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			if made {
				madeCount++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if madeCount != 1 {
		t.Fatalf("made %d times", madeCount)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key: %v %v", fi.Mode(), err)
	}
	if _, err := Load(cert, key); err != nil {
		t.Fatal(err)
	}
	if made, _ := Ensure(cert, key, "again"); made {
		t.Fatal("made over an existing CA")
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*.new"))
	if len(left) != 0 {
		t.Fatalf("left behind: %q", left)
	}
}

// TestLeafVerifiesForItsHost: a leaf chains to the CA for its name (or
// address) and no other, and is reused while valid.
func TestLeafVerifiesForItsHost(t *testing.T) {
	ca := newCA(t)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	for _, host := range []string{"www.example.com", "192.0.2.7", "2001:db8::1"} {
		c, err := ca.Leaf(host)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
		if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: "other.example.com", Roots: roots}); err == nil {
			t.Errorf("%s: verified for another name", host)
		}
		if again, _ := ca.Leaf(host); again != c {
			t.Errorf("%s: not reused", host)
		}
	}
}

// TestLoadRefusesWhatCannotSign: a leaf certificate given as the CA is
// refused with a reason.
func TestLoadRefusesWhatCannotSign(t *testing.T) {
	ca := newCA(t)
	c, _ := ca.Leaf("example.com")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(certFile, pemOf("CERTIFICATE", c.Certificate[0]), 0o644)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	os.WriteFile(keyFile, pemOf("PRIVATE KEY", keyDER), 0o600)
	if _, err := Load(certFile, keyFile); err == nil {
		t.Fatal("a leaf was taken for a CA")
	}
}

// BenchmarkLeaf is the cost of a new host's certificate (no cache).
func BenchmarkLeaf(b *testing.B) {
	ca := newCA(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ca.leaves = map[string]*tls.Certificate{}
		if _, err := ca.Leaf("www.example.com"); err != nil {
			b.Fatal(err)
		}
	}
}

func pemOf(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}
