package engine

import (
	"bytes"

	"github.com/fsigkd/fsigkd/unpack"
)

// Target types (ClamAV's signature documentation): an .ndb signature's
// second field, an .ldb signature's Target. ClamAV matches a signature
// of a target other than 0 only in an object it types as that target;
// this engine types objects as ClamAV 1.4 does (checked against
// clamscan: TestTargetTypesAsClamscanReadsThem) for the targets typed by
// their first bytes alone:
//
//	1  Windows programs: "MZ" first
//	5  pictures: BMP, GIF, PNG, JPEG, TIFF, JPEG 2000
//	6  ELF programs
//	9  Mach-O programs, and universal (fat) binaries
//	10 PDF: "%PDF-" first, or "%PDF-" and a version (also "%pdf-") in
//	   the first 1,024 bytes of an object no other format claims
//	11 Flash (SWF), compressed or not: the file as it is (ClamAV also
//	   looks inside a compressed one, which this engine does not open)
//	12 Java class files
//
// and, by more than their first bytes:
//
//	2  compound files (OLE2: Office 97-2003 documents, MSI, a macro
//	   project's vbaProject.bin) as they are, and each VBA macro's
//	   source, decompressed (unpack.Layer.Macro), which ClamAV types
//	   as the file it came from
//	4  mail: what begins with one of the fields ClamAV's file types
//	   name (mailMagics), or an ASCII text with two fields of a mail's
//	   header near its start (unpack.MailFieldsNear); not a mail's parts
//
// A signature of target 7 (text) is looked for in texts normalised
// alone, and one of target 3 (HTML) in HTML pages and their views, as
// ClamAV does (textview.go, htmlview.go); one of a target ClamAV added
// later (13, 14) in every object as it is.
var typedTargets = [maxTarget + 1]bool{1: true, 2: true, 4: true, 5: true, 6: true, 9: true, 10: true, 11: true, 12: true}

// magic is a format's first bytes.
type magic struct {
	at     int
	prefix string
	target int8
}

// magics are the formats typed by their first bytes: the targets above,
// and, target 0, other formats ClamAV types so, which keep an object
// from being retyped as a PDF by what follows (the archives and
// documents unpack opens, and common media; each checked with
// clamscan: zstd, ar, RPM, Matroska and a bare "MSCF" are not among
// them, and are retyped). A POSIX tar ("ustar" in its header) is not
// retyped either; an old tar without it may be, where ClamAV reads its
// header's checksum.
var magics = []magic{
	{0, "MZ", 1},
	{0, "\x7fELF", 6},
	{0, "\xce\xfa\xed\xfe", 9}, {0, "\xcf\xfa\xed\xfe", 9}, {0, "\xfe\xed\xfa\xce", 9}, {0, "\xfe\xed\xfa\xcf", 9},
	{0, "%PDF-", 10},
	{0, "FWS", 11}, {0, "CWS", 11}, {0, "ZWS", 11},
	{0, "BM", 5}, {0, "GIF", 5}, {0, "\x89PNG", 5}, {0, "\xff\xd8\xff", 5},
	{0, "II*\x00", 5}, {0, "MM", 5}, {0, "\x00\x00\x00\x0cjP  \r\n\x87\n", 5},
	{0, "PK\x03\x04", 0}, {0, "PK00PK\x03\x04", 0}, {0, "Rar!", 0}, {0, "7z\xbc\xaf\x27\x1c", 0},
	{0, "\x1f\x8b", 0}, {0, "BZh", 0}, {0, "\xfd7zXZ\x00", 0}, {0, "MSCF\x00\x00\x00\x00", 0},
	{0, "\x60\xea", 0}, {0, "070701", 0}, {0, "070702", 0}, {0, "070707", 0}, {0, "\xc7\x71", 0},
	{0, "\x71\xc7", 0}, {0, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 2}, {0, "{\\rtf", 0}, {0, "ITSF", 0},
	{0, "\x78\x9f\x3e\x22", 0}, {0, "\xe4\x52\x5c\x7b\x8c\xd8\xa7\x4d\xae\xb1\x53\x78\xd0\x29\x96\xd3", 0}, {0, "OggS", 0}, {0, "ID3", 0}, {0, "RIFF", 0}, {257, "ustar", 0},
}

// mailMagics are the first bytes ClamAV's file types (its own list,
// which freshclam's daily.ftm keeps) take for a mail's (target 4).
var mailMagics = []string{">From ", "Date: ", "Delivered-To: ", "Delivery-date: ", "Envelope-to: ", "For: ",
	"From ", "From: ", "Hi. This is the qmail-send", "Message-ID: ", "Message-Id: ", "Received: ", "Return-Path: ",
	"Return-path: ", "Subject: ", "To: ", "X-Apparently-To: ", "X-EVS", "X-Envelope-From: ", "X-Original-To: ",
	"X-Real-To: ", "X-Sieve: ", "X-Symantec-", "X-UIDL: ", "v:\nReceived: ", "v:\r\nReceived: ", "Received-SPF: "}

func init() {
	for _, m := range mailMagics {
		magics = append(magics, magic{0, m, 4})
	}
}

// typeHead is how much of an object ClamAV reads to type it.
const typeHead = 1024

// targetOf is the target type ClamAV gives data (see typedTargets): 0
// for any other.
func targetOf(data []byte) int8 {
	t, _ := typeOf(data)
	return t
}

// typeOf is targetOf, and whether a format claims data (by its first
// bytes, as a PDF by its version, or as a Java class or universal
// binary): such an object is no text.
func typeOf(data []byte) (target int8, claimed bool) {
	for _, m := range magics {
		if len(data) >= m.at+len(m.prefix) && string(data[m.at:m.at+len(m.prefix)]) == m.prefix {
			return m.target, true
		}
	}
	head := data[:min(len(data), typeHead)]
	if len(head) >= 8 && string(head[:7]) == "\xca\xfe\xba\xbe\x00\x00\x00" {
		// A universal binary counts its architectures (a few); a Java
		// class gives its version (45 and up) in the same place.
		switch head[7] >> 4 {
		case 0, 1:
			return 9, true
		case 2, 3:
			return 12, true
		}
	}
	for _, pdf := range []string{"%PDF-", "%pdf-"} {
		for rest := head; ; {
			i := bytes.Index(rest, []byte(pdf))
			if i < 0 {
				break
			}
			if i+6 < len(rest) && rest[i+6] == '.' {
				return 10, true
			}
			rest = rest[i+1:]
		}
	}
	if asciiText(head) && unpack.MailFieldsNear(data) {
		return 4, false // a text still: normalised as one too
	}
	return 0, false
}
