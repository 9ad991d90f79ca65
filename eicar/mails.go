package eicar

import (
	"encoding/base64"
	"strings"
)

// Mails are messages that hide EICAR where a mail reader still finds it,
// by the name of the trick: the engine must find it in each. Lines end in
// CRLF, as in an SMTP DATA.
func Mails() map[string]string { return MailsWith(String) }

// MailsWith are the same messages carrying payload instead.
func MailsWith(payload string) map[string]string {
	b64 := base64.StdEncoding.EncodeToString([]byte(payload))
	uu := UUEncode("eicar.com", []byte(payload))
	attach := func(head string) string {
		return head + "\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/octet-stream; name=e.com\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64 + "\r\n--b--\r\n"
	}
	return map[string]string{
		"x-uuencode part":                      "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/octet-stream; name=e.com\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n" + uu + "--b--\r\n",
		"x-uuencode content type":              "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: application/x-uuencode; name=e.com\r\n\r\n" + uu,
		"uuencode block in a text body":        "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nSee the file below.\r\n\r\n" + uu + "\r\nBye.\r\n",
		"uuencode block in a plain mail":       "From: a@example.com\r\nTo: b@example.com\r\nSubject: file\r\n\r\n" + uu,
		"uuencode block in a base64 text part": "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString([]byte("text\r\n"+uu)) + "\r\n",
		"begin-base64 block in a text body":    "From: a@example.com\r\nSubject: file\r\n\r\nbegin-base64 644 eicar.com\r\n" + b64 + "\r\n====\r\n",
		"two boundary parameters, first used":  attach("From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b; boundary=z\r\n"),
		"two boundary parameters, last used":   attach("From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=z; boundary=b\r\n"),
		"header line without a colon":          attach("From: a@example.com\r\nMIME-Version: 1.0\r\nthis line is no field\r\nContent-Type: multipart/mixed; boundary=b\r\n"),
		"header block over 8 KiB":              attach("From: a@example.com\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 70)+"\r\n", 130) + "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"),
		"two Content-Type fields, last used":   attach("From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Type: multipart/mixed; boundary=b\r\n"),
		"two transfer codings, last used":      "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: 7bit\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64 + "\r\n",
		"part header line without a colon":     "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\nno colon here\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64 + "\r\n--b--\r\n",
		"delimiter line with trailing text":    "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b trailing\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64 + "\r\n--b--\r\n",
		"base64 without its padding":           "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + strings.TrimRight(b64, "=") + "\r\n",
		"base64 in padded pieces": "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
			base64.StdEncoding.EncodeToString([]byte(payload[:len(payload)/2])) + "\r\n" + base64.StdEncoding.EncodeToString([]byte(payload[len(payload)/2:])) + "\r\n",
		"transfer coding named loosely":          "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-base64\r\n\r\n" + b64 + "\r\n",
		"BinHex part":                            "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/mac-binhex40; name=e.hqx\r\n\r\n" + BinHex("e.com", []byte(payload)) + "--b--\r\n",
		"BinHex inline in a text body":           "From: a@example.com\r\nSubject: file\r\n\r\nThe file, from my Mac:\r\n\r\n" + BinHex("e.com", []byte(payload)) + "\r\nBye.\r\n",
		"yEnc in a text body":                    "From: a@example.com\r\nNewsgroups: alt.binaries.test\r\nSubject: e.com (1/1)\r\n\r\n" + YEnc("e.com", []byte(payload)),
		"base64 with soft line breaks in it":     "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + softBreaks(b64, 76) + "\r\n",
		"base64 with soft breaks inside quanta":  "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + softBreaks(b64, 7) + "\r\n",
		"base64 part in the epilogue of a reply": "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n" + uu,
	}
}

// softBreaks puts quoted-printable soft line breaks ("=" and CRLF) into s
// every n characters, as a mail passed through a quoted-printable encoder
// after its base64 has them: at a quantum's end (n a multiple of 4)
// Python's email package decodes through them; inside a quantum a reader
// that passes over every character outside the alphabet still does.
func softBreaks(s string, n int) string {
	var b strings.Builder
	for i := 0; i < len(s); i += n {
		b.WriteString(s[i:min(i+n, len(s))])
		if i+n < len(s) {
			b.WriteString("=\r\n")
		}
	}
	return b.String()
}

// UUEncode encodes data as a uuencoded block ("begin 644 name" ... "end"),
// CRLF lines.
func UUEncode(name string, data []byte) string {
	enc := func(c byte) byte {
		if c == 0 {
			return '`'
		}
		return c + ' '
	}
	var b strings.Builder
	b.WriteString("begin 644 " + name + "\r\n")
	for i := 0; i < len(data); i += 45 {
		line := data[i:min(i+45, len(data))]
		b.WriteByte(enc(byte(len(line))))
		for j := 0; j < len(line); j += 3 {
			var g [3]byte
			copy(g[:], line[j:min(j+3, len(line))])
			b.WriteByte(enc(g[0] >> 2))
			b.WriteByte(enc((g[0]<<4 | g[1]>>4) & 0x3f))
			b.WriteByte(enc((g[1]<<2 | g[2]>>6) & 0x3f))
			b.WriteByte(enc(g[2] & 0x3f))
		}
		b.WriteString("\r\n")
	}
	b.WriteString("`\r\nend\r\n")
	return b.String()
}
