// Package tlsca is the gateway's own certificate authority, for HTTPS
// interception: the CA is made once (an ECDSA P-256 key, mode 0600, and a
// self-signed certificate valid ten years) or is the administrator's; for
// each host a client reaches through the gateway it signs a leaf
// certificate naming that host, kept and reused while it is valid. All
// leaves share one key made at load: issuing one is a signature, well
// under a millisecond, and no key is written anywhere.
package tlsca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// The files of a CA made by the gateway, under base_dir.
const (
	CertFile = "fsigkd-ca.pem"
	KeyFile  = "fsigkd-ca.key"
)

const (
	caLifetime   = 10 * 365 * 24 * time.Hour
	leafLifetime = 30 * 24 * time.Hour
	leafRenew    = 24 * time.Hour // a cached leaf this close to its end is made again
	maxLeaves    = 10000          // kept at once; past it the cache starts again
)

// CA signs leaf certificates for intercepted hosts.
type CA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	leafKey *ecdsa.PrivateKey

	mu     sync.Mutex
	leaves map[string]*tls.Certificate
}

// Paths gives the CA's files: the administrator's when set, else the
// gateway's own under baseDir.
func Paths(certFile, keyFile, baseDir string) (string, string) {
	if certFile != "" {
		return certFile, keyFile
	}
	return filepath.Join(baseDir, CertFile), filepath.Join(baseDir, KeyFile)
}

// Ensure makes the gateway's own CA at certFile and keyFile unless it is
// there (or another process just made it); made says it was made now.
func Ensure(certFile, keyFile, name string) (made bool, err error) {
	if _, err := os.Stat(certFile); err == nil {
		return false, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return false, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"fsigkd HTTPS inspection"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return false, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return false, err
	}
	// The key first, exclusively: a second process making one at the
	// same moment loses here and uses the first's.
	if err := writeNew(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		if errors.Is(err, os.ErrExist) {
			return false, waitFor(certFile)
		}
		return false, err
	}
	if err := writeNew(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		os.Remove(keyFile)
		return false, err
	}
	return true, nil
}

// writeNew writes a file that must not exist yet, whole or not at all.
func writeNew(name string, data []byte, mode os.FileMode) error {
	tmp := name + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return os.ErrExist // another process is writing it
		}
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp, name) // fails if it exists: never replaced
	}
	os.Remove(tmp)
	return err
}

// waitFor waits a moment for another process to finish writing name.
func waitFor(name string) error {
	for range 50 {
		if _, err := os.Stat(name); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s: made by another process that did not finish", name)
}

// Load reads a CA certificate and its key (PEM; the key PKCS#8, PKCS#1 or
// SEC 1), checks that they belong together and that the certificate may
// sign others, and makes the key the leaves share.
func Load(certFile, keyFile string) (*CA, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	if !cert.IsCA || cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%s is not a CA certificate (basic constraints CA:TRUE and keyCertSign wanted)", certFile)
	}
	if time.Now().After(cert.NotAfter) {
		return nil, fmt.Errorf("%s expired on %s", certFile, cert.NotAfter.UTC().Format(time.DateOnly))
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: a key that cannot sign", keyFile)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, key: signer, leafKey: leafKey, leaves: map[string]*tls.Certificate{}}, nil
}

// Certificate is the CA's certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// PEM is the CA's certificate in PEM, as clients import it.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

// Fingerprint is the SHA-256 of the CA's certificate, as browsers show
// it (hex pairs).
func (ca *CA) Fingerprint() string { return Fingerprint(ca.cert) }

// ReadCertificate reads a CA's certificate alone (PEM), for showing it
// to those who must trust it.
func ReadCertificate(certFile string) (*x509.Certificate, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", certFile)
	}
	return x509.ParseCertificate(block.Bytes)
}

// Fingerprint is the SHA-256 of a certificate, as browsers show it.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// Leaf gives a certificate for host (a name or an address) signed by the
// CA, with the CA's certificate after it: the one kept for host while it
// has more than a day left, else a new one.
func (ca *CA) Leaf(host string) (*tls.Certificate, error) { return ca.LeafFor(host, nil) }

// maxMirroredNames bounds the names a leaf copies from a server's
// certificate.
const maxMirroredNames = 100

// LeafFor is Leaf mirroring what origin (the server's certificate, when
// known) says where a client shows it: its subject's organization and
// common name, its names and addresses (host always among them), and its
// end when that comes before the leaf's own. Issued by the CA, as every
// leaf: a client sees who intercepted. Kept per host and origin.
func (ca *CA) LeafFor(host string, origin *x509.Certificate) (*tls.Certificate, error) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	key := host
	if origin != nil {
		key += " " + Fingerprint(origin)
	}
	now := time.Now()
	ca.mu.Lock()
	c := ca.leaves[key]
	ca.mu.Unlock()
	if c != nil && now.Add(leafRenew).Before(c.Leaf.NotAfter) {
		return c, nil
	}
	end := now.Add(leafLifetime)
	if ca.cert.NotAfter.Before(end) {
		end = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     end,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	if origin != nil {
		tmpl.Subject.Organization = origin.Subject.Organization
		if origin.Subject.CommonName != "" {
			tmpl.Subject.CommonName = origin.Subject.CommonName
		}
		for _, n := range origin.DNSNames {
			if len(tmpl.DNSNames) < maxMirroredNames && !slices.Contains(tmpl.DNSNames, strings.ToLower(n)) {
				tmpl.DNSNames = append(tmpl.DNSNames, strings.ToLower(n))
			}
		}
		for _, ip := range origin.IPAddresses {
			if len(tmpl.IPAddresses) < maxMirroredNames && !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		}
		if origin.NotAfter.After(now) && origin.NotAfter.Before(tmpl.NotAfter) {
			tmpl.NotAfter = origin.NotAfter
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &ca.leafKey.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	c = &tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: ca.leafKey, Leaf: leaf}
	ca.mu.Lock()
	if len(ca.leaves) >= maxLeaves {
		ca.leaves = map[string]*tls.Certificate{}
	}
	ca.leaves[key] = c
	ca.mu.Unlock()
	return c, nil
}

// serial is a random 128-bit serial number, as RFC 5280 allows.
func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n.Add(n, big.NewInt(1))
}

// ModernSuites are the TLS 1.2 cipher suites a client is offered by the
// gateway: forward secret and authenticated encryption only (TLS 1.3's
// are all such, and not configurable).
var ModernSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}
