// Package cvd reads ClamAV's signature containers, the files freshclam
// keeps in its database directory: .cvd (as published), .cld (a .cvd
// brought up to date by freshclam's differential updates) and .cud (an
// unsigned container, as sigtool --unsigned builds one).
//
// A container is a 512-byte header, "ClamAV-VDB:" and colon-separated
// fields (build time, version, signature count, functionality level, the
// MD5 of what follows, the digital signature, the builder, the build time
// in seconds) padded with spaces, and then a tar archive of the signature
// files, gzip-compressed (.cvd, .cud) or not (.cld). Its .info member
// lists each other member's size and SHA-256.
//
// What is checked: the header's form; for a compressed container the MD5
// of the archive against the header; each member against .info. Members
// are read as a stream, never unpacked to disk. The digital signature of
// a .cvd (RSA, with ClamAV's key) is not checked: the directory is
// freshclam's, which checks it as it downloads.
package cvd

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// HeaderSize is the header's length.
const HeaderSize = 512

// Exts are the containers' extensions.
var Exts = []string{".cvd", ".cld", ".cud"}

// Header is what a container's header says.
type Header struct {
	Version    int
	Signatures int
	FLevel     int
	MD5        string
	Builder    string
	Built      time.Time
}

// Limits of what one container may hold.
const (
	maxMembers    = 10000
	maxMemberSize = 2 << 30
)

// ParseHeader reads the header b (HeaderSize bytes).
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderSize || !bytes.HasPrefix(b, []byte("ClamAV-VDB:")) {
		return h, errors.New("not a ClamAV container (no ClamAV-VDB header)")
	}
	f := strings.Split(strings.TrimRight(string(b[:HeaderSize]), " \x00"), ":")
	if len(f) < 9 {
		return h, fmt.Errorf("a header of %d fields, not 9", len(f))
	}
	var err error
	if h.Version, err = strconv.Atoi(f[2]); err != nil {
		return h, fmt.Errorf("bad version %q", f[2])
	}
	if h.Signatures, err = strconv.Atoi(f[3]); err != nil {
		return h, fmt.Errorf("bad signature count %q", f[3])
	}
	if h.FLevel, err = strconv.Atoi(f[4]); err != nil {
		return h, fmt.Errorf("bad functionality level %q", f[4])
	}
	h.MD5, h.Builder = f[5], f[7]
	if secs, err := strconv.ParseInt(f[8], 10, 64); err == nil {
		h.Built = time.Unix(secs, 0).UTC()
	}
	return h, nil
}

// Open reads the header of the container at p.
func Open(p string) (Header, error) {
	f, err := os.Open(p)
	if err != nil {
		return Header{}, err
	}
	defer f.Close()
	b := make([]byte, HeaderSize)
	if _, err := io.ReadFull(f, b); err != nil {
		return Header{}, fmt.Errorf("%s: %v", p, err)
	}
	h, err := ParseHeader(b)
	if err != nil {
		return h, fmt.Errorf("%s: %v", p, err)
	}
	return h, nil
}

// Each reads the container at p and calls fn with each member but .info
// (its name and a reader of its content; fn need not read it all). The
// container is checked as it goes (see the package doc); an error of
// fn's or of the check ends it.
func Each(p string, fn func(name string, r io.Reader) error) (Header, error) {
	f, err := os.Open(p)
	if err != nil {
		return Header{}, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	head := make([]byte, HeaderSize)
	if _, err := io.ReadFull(br, head); err != nil {
		return Header{}, fmt.Errorf("%s: %v", p, err)
	}
	h, err := ParseHeader(head)
	if err != nil {
		return h, fmt.Errorf("%s: %v", p, err)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s", p, fmt.Sprintf(format, args...))
	}
	var body io.Reader = br
	var sum hash.Hash
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		// Compressed: the header's MD5 is the archive's as it is stored.
		sum = md5.New()
		zr, err := gzip.NewReader(io.TeeReader(br, sum))
		if err != nil {
			return h, fail("%v", err)
		}
		zr.Multistream(false)
		body = zr
	}
	tr := tar.NewReader(body)
	sums := map[string]string{} // member -> its SHA-256
	var info []byte
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return h, fail("%v", err)
		}
		if n == maxMembers {
			return h, fail("more than %d members", maxMembers)
		}
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
			continue
		}
		if hdr.Size > maxMemberSize {
			return h, fail("%s: %d bytes", hdr.Name, hdr.Size)
		}
		name := path.Base(hdr.Name)
		if strings.HasSuffix(name, ".info") {
			if info, err = io.ReadAll(io.LimitReader(tr, 16<<20)); err != nil {
				return h, fail("%s: %v", name, err)
			}
			continue
		}
		hs := sha256.New()
		r := io.TeeReader(tr, hs)
		if err := fn(name, r); err != nil {
			return h, err
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return h, fail("%s: %v", name, err)
		}
		sums[name] = hex.EncodeToString(hs.Sum(nil))
	}
	if sum != nil {
		io.Copy(io.Discard, br) // the gzip trailer's end, and nothing after
		if got := hex.EncodeToString(sum.Sum(nil)); !strings.EqualFold(got, h.MD5) {
			return h, fail("MD5 %s, the header says %s: the container is damaged", got, h.MD5)
		}
	}
	if info != nil {
		if err := checkInfo(info, sums); err != nil {
			return h, fail("%v", err)
		}
	}
	return h, nil
}

// checkInfo compares the members read with .info's list (its first line
// is a copy of the header; then name:size:sha256 a line).
func checkInfo(info []byte, sums map[string]string) error {
	for i, line := range strings.Split(string(info), "\n") {
		line = strings.TrimSpace(line)
		if i == 0 || line == "" || strings.HasPrefix(line, "DSIG:") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 3 {
			continue
		}
		got, ok := sums[f[0]]
		if !ok {
			return fmt.Errorf(".info lists %s, which the container lacks", f[0])
		}
		if !strings.EqualFold(got, f[2]) {
			return fmt.Errorf("%s: SHA-256 %s, .info says %s", f[0], got, f[2])
		}
	}
	return nil
}
