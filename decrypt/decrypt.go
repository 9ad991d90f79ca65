// Package decrypt opens encrypted archives with passwords a mail gives
// beside them ("the password is 1234"): the usual way an attachment is
// sent encrypted, and the usual way malware is sent past scanners. It
// finds the candidate passwords in a mail's text, and opens zip
// (traditional PKWARE encryption and WinZip AES), 7z and RAR archives
// with them, giving the members' bytes to be scanned.
//
// Everything is bounded: the number of candidates (MaxPasswords), their
// length, the archives tried, and the bytes unpacked (the caller's limit).
// A password is taken only when the archive's own checks hold (the
// PKWARE check byte and the member's CRC; AES's verifier and HMAC; 7z's
// and RAR's CRCs), so a wrong one is never "opened" into garbage judged
// clean.
package decrypt

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// MaxPasswords bounds the candidates taken from one mail.
const MaxPasswords = 16

// maxPasswordLen bounds one candidate.
const maxPasswordLen = 64

// passwordPhrase finds "password: x", "Passwort = x", "the password is
// x", "PW: x", "パスワード：x" and the like, in the languages a gateway
// meets most; the candidate is the next word, quoted or not.
var passwordPhrase = regexp.MustCompile(`(?i)(?:` +
	// The words, then "is" (or its kin), a colon or an equals sign, or a space.
	`(?:password|passwort|kennwort|passwd|passcode|mot de passe|contrase(?:ñ|n)a|senha|parola|wachtwoord|hasło|пароль|パスワード|暗証番号|密码|密碼|비밀번호)` +
	`(?:\s+(?:is|ist|est|es|är|er)\s*[:：=]?|\s*[:：=]|\s+)` +
	// The short forms only with "is", a colon or an equals sign.
	`|\b(?:pwd|pw|pass)(?:\s+(?:is|ist)\s*[:：=]?|\s*[:：=])` +
	`)\s*["'“‘「『(\[]?([^\s"'”’」』)\]<>]{1,64})`)

// Passwords gives the candidate passwords a text names, in order, each
// once, at most MaxPasswords, after those seen already; a candidate
// ending in a sentence's punctuation is also tried without it.
func Passwords(text []byte, seen []string) []string {
	out := seen
	add := func(p string) {
		if p == "" || len(p) > maxPasswordLen || !utf8.ValidString(p) || len(out) >= MaxPasswords {
			return
		}
		for _, s := range out {
			if s == p {
				return
			}
		}
		out = append(out, p)
	}
	for _, m := range passwordPhrase.FindAllSubmatch(text, 4*MaxPasswords) {
		p := string(m[1])
		add(p)
		if r, n := utf8.DecodeLastRuneInString(p); strings.ContainsRune(".,;:。、", r) {
			add(p[:len(p)-n])
		}
	}
	return out
}
