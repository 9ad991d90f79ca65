package ftp

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/proxytest"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// tlsVSFTPD is vsftpd that takes anonymous logins over TLS only, control
// and data (force_anon_*_ssl), and requires the data connections to
// resume the control connection's TLS session (require_ssl_reuse, its
// default): a session gets through only if the gateway does FTPS right.
func tlsVSFTPD(t *testing.T) *servertest.FTPServer {
	cert, key := servertest.WriteKeyPair(t, servertest.SelfSigned(t), t.TempDir())
	return servertest.VSFTPD(t, "ssl_enable=YES", "rsa_cert_file="+cert, "rsa_private_key_file="+key,
		"allow_anon_ssl=YES", "force_anon_logins_ssl=YES", "force_anon_data_ssl=YES", "require_ssl_reuse=YES")
}

// TestFTPSTowardsTheServer: with parent_tls = may (as shipped) a client
// in the clear downloads, uploads and lists through the gateway from a
// vsftpd that takes TLS only, EICAR refused both ways; verify refuses
// its self-signed certificate, the client told it cannot connect; none
// cannot log in there.
func TestFTPSTowardsTheServer(t *testing.T) {
	e := newEnv(t, "")
	e.srv = tlsVSFTPD(t)
	e.start()
	big := make([]byte, 3<<20+7)
	rand.Read(big)
	put(t, e, "big.bin", big)
	put(t, e, "eicar.com", []byte(eicar.String))
	for _, mode := range [][]string{{}, {"-P", "-"}} {
		out, err := e.curl(append(mode, e.url("big.bin"))...)
		if err != nil || !bytes.Equal(out, big) {
			t.Fatalf("%v: clean download over the server's TLS: %v, %d bytes: %.300s", mode, err, len(out), out)
		}
		out, err = e.curl(append(mode, e.url("eicar.com"))...)
		if err == nil || bytes.Contains(out, []byte("EICAR")) {
			t.Fatalf("%v: EICAR came through: %q", mode, out)
		}
	}
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "g.bin"), filepath.Join(dir, "e.com")
	os.WriteFile(good, big[:100000], 0o644)
	os.WriteFile(bad, []byte(eicar.String), 0o644)
	if out, err := e.curl("-T", good, e.url("pub/g.bin")); err != nil {
		t.Fatalf("clean upload: %v %s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(e.srv.Root, "pub", "g.bin")); !bytes.Equal(got, big[:100000]) {
		t.Fatalf("the server got %d bytes of the clean upload", len(got))
	}
	if _, err := e.curl("-T", bad, e.url("pub/e.com")); err == nil {
		t.Fatal("EICAR upload accepted")
	}
	if out, err := e.curl(e.url("")); err != nil || !strings.Contains(string(out), "big.bin") {
		t.Fatalf("listing: %v %s", err, out)
	}

	for mode, want := range map[string]string{
		"verify": "500 Can't Connect to (127.0.0.1: ",
		"none":   "530 ",
	} {
		e := newEnv(t, "parent_tls = "+mode)
		e.srv = tlsVSFTPD(t)
		e.start()
		c := dialControl(t, e.addr)
		r := c.cmd("USER anonymous@" + e.srv.Addr)
		if mode == "none" && r.Code == 331 {
			r = c.cmd("PASS x")
		}
		if !strings.HasPrefix(r.Raw(), want) {
			t.Errorf("%s against vsftpd with TLS only: %q", mode, r.Raw())
		}
	}
}

// TestFTPSFromClients: with tls_cert, curl --ssl-reqd and lftp with
// ftp:ssl-force and ssl-protect-data (each checking the gateway's
// certificate) download, list and upload with control and data
// encrypted; EICAR is refused; the server behind is plain vsftpd.
func TestFTPSFromClients(t *testing.T) {
	keys, caFile := servertest.SignedLeaf(t)
	e := newEnv(t, keys).withServer()
	put(t, e, "ok.txt", []byte("fine"))
	put(t, e, "eicar.com", []byte(eicar.String))
	// Passive only: curl's active mode (-P) fails over FTPS on its own
	// side, against vsftpd directly too ("sa_addr inet_ntop() failed");
	// lftp's is tested below.
	args := []string{"--ssl-reqd", "--cacert", caFile}
	if out, err := e.curl(append(args, e.url("ok.txt"))...); err != nil || string(out) != "fine" {
		t.Fatalf("curl over FTPS: %v %q", err, out)
	}
	if out, err := e.curl(append(args, e.url("eicar.com"))...); err == nil || bytes.Contains(out, []byte("EICAR")) {
		t.Fatalf("EICAR over FTPS: %q", out)
	}

	lftp := testenv.Need(t, "lftp", "lftp")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "up.txt"), []byte("uploaded"), 0o644)
	host, port, _ := net.SplitHostPort(e.addr)
	script := fmt.Sprintf("set net:max-retries 1; set net:timeout 10; set ftp:ssl-force true; set ftp:ssl-protect-data true; "+
		"set ftp:ssl-protect-list true; set ssl:ca-file %s; set ssl:check-hostname false; "+
		"open -u anonymous@%s,x -p %s %s; lcd %s; get ok.txt; get eicar.com; cls -1; put up.txt -o pub/up.txt; bye",
		caFile, e.srv.Addr, port, host, dir)
	out, _ := exec.Command(lftp, "-d", "-c", script).CombinedOutput()
	if got, _ := os.ReadFile(filepath.Join(dir, "ok.txt")); string(got) != "fine" {
		t.Fatalf("lftp over FTPS, clean: %s", out)
	}
	active := filepath.Join(t.TempDir(), "active.txt")
	b, _ := exec.Command(lftp, "-c", fmt.Sprintf("set net:max-retries 1; set net:timeout 10; set ftp:passive-mode false; set ftp:ssl-force true; "+
		"set ftp:ssl-protect-data true; set ssl:ca-file %s; set ssl:check-hostname false; open -u anonymous@%s,x -p %s %s; get ok.txt -o %s; bye",
		caFile, e.srv.Addr, port, host, active)).CombinedOutput()
	if got, _ := os.ReadFile(active); string(got) != "fine" {
		t.Errorf("lftp over FTPS, active mode: %s", b)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "eicar.com")); err == nil && len(got) > 0 {
		t.Fatalf("lftp over FTPS got EICAR: %s", out)
	}
	if got, _ := os.ReadFile(filepath.Join(e.srv.Root, "pub", "up.txt")); string(got) != "uploaded" {
		t.Errorf("lftp's upload over FTPS: %q\n%s", got, out)
	}
	for _, want := range []string{"AUTH TLS", "234 AUTH TLS successful.", "PROT P", "200 PROT now Private.", "virus found (Eicar-Test-Signature)", "ok.txt"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("lftp's session lacks %q:\n%s", want, out)
		}
	}
}

// TestFTPSCommandsInTheWrongPlace: AUTH with a command behind it in the
// same packet (read in the clear) ends the session; PROT and PBSZ
// without TLS, AUTH after USER, CCC and unknown mechanisms are refused;
// without tls_cert AUTH is refused and FEAT offers no TLS.
func TestFTPSCommandsInTheWrongPlace(t *testing.T) {
	keys, _ := servertest.SignedLeaf(t)
	e := newEnv(t, keys).withServer()
	c := dialControl(t, e.addr)
	for cmd, want := range map[string]string{"PROT P": "503 ", "PBSZ 0": "503 ", "AUTH GSSAPI": "504 "} {
		if r := c.cmd(cmd); !strings.HasPrefix(r.Raw(), want) {
			t.Errorf("%s before TLS: %q", cmd, r.Raw())
		}
	}
	if r := c.cmd("FEAT"); !strings.Contains(r.Raw(), " AUTH TLS") {
		t.Errorf("FEAT with tls_cert: %q", r.Raw())
	}
	c.c.Write([]byte("AUTH TLS\r\nUSER anonymous\r\n"))
	if r := c.read(); r.Code != 503 {
		t.Errorf("AUTH TLS with a command behind it: %q", r.Raw())
	}

	c = e.loggedIn()
	for cmd, want := range map[string]string{"AUTH TLS": "503 ", "CCC": "534 "} {
		if r := c.cmd(cmd); !strings.HasPrefix(r.Raw(), want) {
			t.Errorf("%s after USER: %q", cmd, r.Raw())
		}
	}
	if r := c.cmd("FEAT"); !strings.Contains(r.Raw(), " AUTH TLS") || r.Code != 211 {
		t.Errorf("FEAT after login: %q", r.Raw())
	}

	e2 := newEnv(t, "").withServer()
	c = dialControl(t, e2.addr)
	if r := c.cmd("AUTH TLS"); r.Code != 502 {
		t.Errorf("AUTH TLS without tls_cert: %q", r.Raw())
	}
	if r := c.cmd("FEAT"); strings.Contains(r.Raw(), "AUTH") {
		t.Errorf("FEAT without tls_cert: %q", r.Raw())
	}
}

// TestImplicitFTPS: on tls_port (990) curl's ftps:// (TLS from the first
// byte, its data protected) downloads through the gateway, EICAR refused;
// in transparent mode the client goes on to a vsftpd that speaks implicit
// TLS itself and takes TLS only, which the gateway reaches over TLS too.
func TestImplicitFTPS(t *testing.T) {
	keys, caFile := servertest.SignedLeaf(t)
	e := newEnv(t, keys).withServer()
	tlsAddr := proxytest.ServeTLS(t, e.p)
	put(t, e, "ok.txt", []byte("fine"))
	put(t, e, "eicar.com", []byte(eicar.String))
	user := strings.NewReplacer("@", "%40", ":", "%3A").Replace("anonymous@" + e.srv.Addr)
	url := func(name string) string { return "ftps://" + user + ":x@" + tlsAddr + "/" + name }
	if out, err := e.curl("--cacert", caFile, url("ok.txt")); err != nil || string(out) != "fine" {
		t.Fatalf("curl ftps://: %v %q", err, out)
	}
	if out, err := e.curl("--cacert", caFile, url("eicar.com")); err == nil || bytes.Contains(out, []byte("EICAR")) {
		t.Fatalf("EICAR over implicit FTPS: %q", out)
	}

	cert, key := servertest.WriteKeyPair(t, servertest.SelfSigned(t), t.TempDir())
	srv := servertest.VSFTPD(t, "ssl_enable=YES", "implicit_ssl=YES", "rsa_cert_file="+cert, "rsa_private_key_file="+key,
		"allow_anon_ssl=YES", "force_anon_logins_ssl=YES", "force_anon_data_ssl=YES")
	os.WriteFile(filepath.Join(srv.Root, "ok.txt"), []byte("fine over TLS"), 0o644)
	tr := newEnv(t, keys+"transparent = yes\n")
	tr.srv = srv
	dst, err := net.ResolveTCPAddr("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	tr.p.OriginalDst = func(net.Conn) (net.Addr, error) { return dst, nil }
	tr.start()
	trTLS := proxytest.ServeTLS(t, tr.p)
	out, err := tr.curl("--cacert", caFile, "ftps://anonymous:x@"+trTLS+"/ok.txt")
	if err != nil || string(out) != "fine over TLS" {
		t.Fatalf("transparent implicit FTPS to an implicit-TLS vsftpd: %v %q", err, out)
	}
}
