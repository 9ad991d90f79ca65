package decrypt

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/aes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/bodgit/sevenzip"
	"github.com/nwaples/rardecode/v2"
)

// Member is one file taken out of an archive.
type Member struct {
	Name string
	Data []byte
}

// ErrNoPassword is Open's error when no candidate opens the archive.
var ErrNoPassword = errors.New("no candidate password opens the archive")

// ErrTooLarge is Open's error when the members pass the limit.
var ErrTooLarge = errors.New("the archive unpacks past the limit")

// MaxTries bounds the passwords tried on one mail's archives in all: a
// wrong one costs a 7z archive's key derivation (2^19 rounds of SHA-256,
// about 35 ms here), and a mail of many archives and many phrases must not
// cost minutes.
const MaxTries = 64

// Tries counts what is left of a mail's MaxTries.
type Tries struct{ left int }

// NewTries is a mail's budget of MaxTries.
func NewTries() *Tries { return &Tries{left: MaxTries} }

// Open tries each password on the encrypted archive data (zip, 7z or
// RAR, told by its magic), within what is left of tries, and gives its
// members and the password that opened it. limit bounds the bytes
// unpacked in all (and maxHeldMembers does).
func Open(data []byte, passwords []string, limit int64, tries *Tries) ([]Member, string, error) {
	limit = min(limit, maxHeldMembers)
	open := openZip
	switch {
	case bytes.HasPrefix(data, []byte{'7', 'z', 0xbc, 0xaf, 0x27, 0x1c}):
		open = open7z
	case bytes.HasPrefix(data, []byte("Rar!\x1a\x07")):
		open = openRAR
	}
	for _, pw := range passwords {
		if tries.left <= 0 {
			return nil, "", ErrNoPassword
		}
		tries.left--
		ms, err := open(data, pw, limit)
		if err == nil {
			return ms, pw, nil
		}
		if errors.Is(err, ErrTooLarge) {
			return nil, "", err
		}
	}
	return nil, "", ErrNoPassword
}

// budget reads a member within what is left of the limit.
type budget struct{ left int64 }

func (b *budget) read(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, b.left+1))
	if int64(len(data)) > b.left {
		return nil, ErrTooLarge
	}
	b.left -= int64(len(data))
	return data, err
}

// member opens a member and reads it within the budget.
func (b *budget) member(open func() (io.ReadCloser, error)) ([]byte, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return b.read(rc)
}

// openZip opens every member of a zip, the encrypted ones with pw; a
// wrong password fails the check byte (1 in 256 passes it) or the CRC.
func openZip(data []byte, pw string, limit int64) ([]Member, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	b := &budget{left: limit}
	var out []Member
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		raw, err := f.OpenRaw()
		if err != nil {
			return nil, err
		}
		var plain io.Reader
		method := f.Method
		switch {
		case f.Flags&1 == 0:
			d, err := b.member(f.Open)
			if err != nil {
				return nil, err
			}
			out = append(out, Member{Name: f.Name, Data: d})
			continue
		case method == 99:
			var ok bool
			if plain, method, ok = winzipAES(raw, f, pw); !ok {
				return nil, ErrNoPassword
			}
		default:
			var ok bool
			if plain, ok = pkwareReader(raw, f, pw); !ok {
				return nil, ErrNoPassword
			}
		}
		d, err := inflate(plain, method, b)
		if err != nil {
			return nil, err
		}
		if aesVersion(f) != 2 && crc32.ChecksumIEEE(d) != f.CRC32 {
			return nil, ErrNoPassword
		}
		out = append(out, Member{Name: f.Name, Data: d})
	}
	return out, nil
}

// inflate undoes a member's compression (stored or deflated).
func inflate(r io.Reader, method uint16, b *budget) ([]byte, error) {
	switch method {
	case zip.Store:
		return b.read(r)
	case zip.Deflate:
		fr := flate.NewReader(r)
		defer fr.Close()
		return b.read(fr)
	}
	return nil, fmt.Errorf("compression method %d", method)
}

// pkwareKeys is the traditional PKWARE encryption's state.
type pkwareKeys [3]uint32

func crcByte(crc uint32, c byte) uint32 { return crc32.IEEETable[byte(crc)^c] ^ crc>>8 }

func (k *pkwareKeys) update(c byte) {
	k[0] = crcByte(k[0], c)
	k[1] = (k[1]+k[0]&0xff)*134775813 + 1
	k[2] = crcByte(k[2], byte(k[1]>>24))
}

func (k *pkwareKeys) decrypt(c byte) byte {
	t := uint16(k[2] | 2)
	p := c ^ byte((uint32(t)*uint32(t^1))>>8)
	k.update(p)
	return p
}

// pkwareReader checks pw against the 12-byte encryption header (its last
// byte is the CRC's high byte, or the time's with a data descriptor) and
// gives the member decrypted.
func pkwareReader(raw io.Reader, f *zip.File, pw string) (io.Reader, bool) {
	k := pkwareKeys{0x12345678, 0x23456789, 0x34567890}
	for i := 0; i < len(pw); i++ {
		k.update(pw[i])
	}
	var head [12]byte
	if _, err := io.ReadFull(raw, head[:]); err != nil {
		return nil, false
	}
	for i := range head {
		head[i] = k.decrypt(head[i])
	}
	want := byte(f.CRC32 >> 24)
	if f.Flags&0x8 != 0 {
		want = byte(f.ModifiedTime >> 8)
	}
	if head[11] != want {
		return nil, false
	}
	return &pkwareStream{r: raw, k: &k}, true
}

type pkwareStream struct {
	r io.Reader
	k *pkwareKeys
}

func (s *pkwareStream) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	for i := 0; i < n; i++ {
		p[i] = s.k.decrypt(p[i])
	}
	return n, err
}

// aesVersion is the member's WinZip AES version (1 or 2; 0: none), from
// its 0x9901 extra field.
func aesVersion(f *zip.File) int {
	if e := aesExtra(f); e != nil {
		return int(binary.LittleEndian.Uint16(e))
	}
	return 0
}

// aesExtra is the data of the member's 0x9901 extra field: version (2),
// "AE", strength (1), the real method (2).
func aesExtra(f *zip.File) []byte {
	for ex := f.Extra; len(ex) >= 4; {
		id, size := binary.LittleEndian.Uint16(ex), int(binary.LittleEndian.Uint16(ex[2:]))
		if 4+size > len(ex) {
			return nil
		}
		if id == 0x9901 && size >= 7 {
			return ex[4 : 4+size]
		}
		ex = ex[4+size:]
	}
	return nil
}

// winzipAES checks pw (the salt, PBKDF2-SHA1 with 1000 rounds, the
// 2-byte verifier, the HMAC-SHA1 of the data) and gives the member
// decrypted (AES in WinZip's little-endian counter mode) and its real
// compression method.
func winzipAES(raw io.Reader, f *zip.File, pw string) (io.Reader, uint16, bool) {
	e := aesExtra(f)
	if e == nil || e[2] != 'A' || e[3] != 'E' || e[4] < 1 || e[4] > 3 {
		return nil, 0, false
	}
	keyLen := 8 + 8*int(e[4]) // 16, 24, 32
	saltLen := keyLen / 2
	method := binary.LittleEndian.Uint16(e[5:])
	body, err := io.ReadAll(io.LimitReader(raw, int64(f.CompressedSize64)))
	if err != nil || len(body) < saltLen+2+10 {
		return nil, 0, false
	}
	salt, verifier := body[:saltLen], body[saltLen:saltLen+2]
	cipherText, mac := body[saltLen+2:len(body)-10], body[len(body)-10:]
	keys, err := pbkdf2.Key(sha1.New, pw, salt, 1000, 2*keyLen+2)
	if err != nil || !bytes.Equal(keys[2*keyLen:], verifier) {
		return nil, 0, false
	}
	h := hmac.New(sha1.New, keys[keyLen:2*keyLen])
	h.Write(cipherText)
	if !hmac.Equal(h.Sum(nil)[:10], mac) {
		return nil, 0, false
	}
	block, err := aes.NewCipher(keys[:keyLen])
	if err != nil {
		return nil, 0, false
	}
	plain := make([]byte, len(cipherText))
	var ctr, stream [16]byte
	for off := 0; off < len(cipherText); off += 16 {
		binary.LittleEndian.PutUint64(ctr[:], uint64(off/16+1))
		block.Encrypt(stream[:], ctr[:])
		for i := off; i < min(off+16, len(cipherText)); i++ {
			plain[i] = cipherText[i] ^ stream[i-off]
		}
	}
	return bytes.NewReader(plain), method, true
}

// open7z opens a 7z archive with pw; a wrong one fails the CRCs (of the
// encrypted header, or of the members).
func open7z(data []byte, pw string, limit int64) ([]Member, error) {
	zr, err := sevenzip.NewReaderWithPassword(bytes.NewReader(data), int64(len(data)), pw)
	if err != nil {
		return nil, err
	}
	b := &budget{left: limit}
	var out []Member
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		d, err := b.member(f.Open)
		if err != nil {
			return nil, err
		}
		out = append(out, Member{Name: f.Name, Data: d})
	}
	return out, nil
}

// openRAR opens a RAR archive with pw; a wrong one fails its checks.
func openRAR(data []byte, pw string, limit int64) ([]Member, error) {
	rr, err := rardecode.NewReader(bytes.NewReader(data), rardecode.Password(pw))
	if err != nil {
		return nil, err
	}
	b := &budget{left: limit}
	var out []Member
	for {
		h, err := rr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if h.IsDir {
			continue
		}
		d, err := b.read(rr)
		if err != nil {
			return nil, err
		}
		out = append(out, Member{Name: h.Name, Data: d})
	}
}
