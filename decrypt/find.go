package decrypt

import (
	"archive/zip"
	"bytes"
	"os"

	"github.com/fsigkd/fsigkd/unpack"
)

// Archive is an archive found in a mail that may need a password.
type Archive struct {
	Where string // its path in the mail, as the walk names it
	Data  []byte
}

// maxText bounds a text part searched for passwords.
const maxText = 1 << 20

// MaxArchives bounds the archives of one mail that are tried.
const MaxArchives = 8

// The memory one mail may hold: the archives taken out of it (Find), and
// the members of the one being opened (Open). Over them, an archive stays
// encrypted (encrypted_action decides), so that mails scanned side by side
// cannot exhaust a worker's memory. Variables for the tests.
var (
	maxHeldArchives int64 = 32 << 20
	maxHeldMembers  int64 = 64 << 20
)

// Find walks the mail in the first size bytes of f as the bundled engine
// reads mail (every part, every reading of it, every archive in it) and
// gives the candidate passwords its text parts name and the archives that
// may be encrypted: zips with an encrypted member, and every 7z and RAR
// archive. At most limit bytes of archives are kept (and at most
// maxHeldArchives).
func Find(f *os.File, size, limit int64) (passwords []string, archives []Archive) {
	limit = min(limit, maxHeldArchives)
	kept := int64(0)
	unpack.WalkFile(f, size, unpack.Options{Archives: true, MIME: true}, unpack.Limits{}, func(data []byte, where string) bool {
		switch {
		case data == nil:
		case encryptedZip(data) || bytes.HasPrefix(data, []byte{'7', 'z', 0xbc, 0xaf, 0x27, 0x1c}) || bytes.HasPrefix(data, []byte("Rar!\x1a\x07")):
			if kept+int64(len(data)) <= limit && len(archives) < MaxArchives {
				kept += int64(len(data))
				archives = append(archives, Archive{Where: where, Data: bytes.Clone(data)})
			}
		case len(data) <= maxText && !bytes.ContainsRune(data[:min(len(data), 1024)], 0):
			passwords = Passwords(data, passwords)
		}
		return false
	})
	return passwords, archives
}

// encryptedZip tells a zip (at the start of data) with an encrypted
// member.
func encryptedZip(data []byte) bool {
	if !bytes.HasPrefix(data, []byte("PK\x03\x04")) {
		return false
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return false
	}
	for _, f := range zr.File {
		if f.Flags&1 != 0 {
			return true
		}
	}
	return false
}
