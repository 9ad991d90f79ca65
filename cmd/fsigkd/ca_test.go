package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// TestCACommand: fsigkd ca makes the gateway's own CA once and prints
// it (PEM, DER, its facts); --new makes another; with the
// administrator's CA set, --new is refused; diag never carries the key.
func TestCACommand(t *testing.T) {
	dir := testenv.ShortDir(t)
	conf := filepath.Join(dir, "fsigk.ini")
	os.WriteFile(conf, []byte("base_dir = "+dir+"\n"), 0o644)
	run := func(args ...string) (string, error) {
		out, err := exec.Command(binary(t), append([]string{"ca", "-c", conf}, args...)...).Output()
		return string(out), err
	}
	first, err := run()
	block, _ := pem.Decode([]byte(first))
	if err != nil || block == nil {
		t.Fatalf("ca: %v %q", err, first)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !cert.IsCA {
		t.Fatalf("not a CA: %v", err)
	}
	if again, _ := run(); again != first {
		t.Error("a second run made another CA")
	}
	if der, _ := run("--der"); der != string(block.Bytes) {
		t.Error("--der is not the certificate's DER")
	}
	if info, _ := run("--info"); !strings.Contains(info, "SHA-256:") || !strings.Contains(info, "fsigkd CA") {
		t.Errorf("--info: %q", info)
	}
	if renewed, err := run("--new"); err != nil || renewed == first {
		t.Errorf("--new: %v, same: %v", err, renewed == first)
	}
	out := filepath.Join(t.TempDir(), "diag.tar.gz")
	exec.Command(binary(t), "diag", "-c", conf, "-o", out).Run()
	for name, body := range readDiag(t, out) {
		if strings.Contains(body, "PRIVATE KEY") {
			t.Errorf("diag's %s carries a private key", name)
		}
	}
	os.WriteFile(conf, []byte("base_dir = "+dir+"\n[http]\ntls_ca_cert = "+dir+"/fsigkd-ca.pem\ntls_ca_key = "+dir+"/fsigkd-ca.key\n"), 0o644)
	if _, err := run("--new"); err == nil {
		t.Error("--new replaced the administrator's CA")
	}
	if pemOut, err := run(); err != nil || !strings.HasPrefix(pemOut, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("the administrator's CA: %v", err)
	}
}
