// Package screnc reads (and, for tests, writes) scripts encoded by
// Microsoft's Script Encoder (JScript.Encode, VBScript.Encode: .jse and
// .vbe files, and script blocks of pages and .wsf files), which Windows
// Script Host and Internet Explorer run as they are: each block is
// "#@~^", its length (six base64 characters of a little-endian number,
// "=="), its characters each substituted by one of three tables, chosen
// by the character's place in a cycle of 64, then a checksum (the sum of
// the characters, written as the length is) and "^#~@".
package screnc

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
)

// Mark starts a block.
var Mark = []byte("#@~^")

// tables: for each table, what each of the characters the encoder
// writes (a tab, then 0x20 to 0x7F but '@') stands for. (Read from
// clamscan's decoding of blocks made of each character at each place of
// the cycle, as the format's own decoders do it; "MsgBox" comes back as
// the encoder's best-known sample writes it.)
var tables = [3]string{
	"W.GzVBj/&IA42[vrC89pEhqO\x09bD#u<~>^wJa]\x22KoN;LPg*}tT+-,0nkf5%!dMRc?{x)(sY3\x7fmUS|:_eFX1ilZH'\x5c=$y7`Q 6",
	"n-uR`q^I\x5cb})6 |z\x7fkc3+hQfv1dTC<:>~E,*t'7DyY/o&rj9{?8wgSG4x]0#Z[lHUpi.L!$NP\x09Vs5aKX;W\x22mM%(FJ2A=_OBe",
	"{20!)[83=X:5e9\x5cVsfNEkbYx^}Jmq<`>SB'Hru17MR\x22TjGd- \x7f.L]~loytC&v%$+(#A4\x09*D?w;UiacPgQIOFh|6pnz/_KZ,W",
}

// order is the table each place of the cycle of 64 uses.
const order = "0120121221210212021200122102122100212120200120210212001220012021"

// decoding is the decoding of each table: for each byte below 0x80,
// what it stands for; 0 for '@', which escapes the next.
var decoding = func() (d [3][128]byte) {
	for t := range d {
		for c := range d[t] {
			d[t][c] = byte(c) // the control characters stand for themselves
		}
		k := 0
		for c := 0x09; c < 0x80; c++ {
			if c != 0x09 && c < 0x20 || c == '@' {
				continue
			}
			d[t][c] = tables[t][k]
			k++
		}
		d[t]['@'] = 0
	}
	return d
}()

// escapes: what "@" followed by each stands for.
var escapes = map[byte]byte{'&': '\n', '#': '\r', '*': '>', '!': '<', '$': '@'}

// maxBlocks bounds the blocks decoded in one text.
const maxBlocks = 1000

// Blocks decodes the blocks of d from from (the first mark's
// place), at most limit bytes together.
func Blocks(d []byte, from int, limit int64) [][]byte {
	var out [][]byte
	var total int64
	for i := from; i >= 0 && i < len(d) && len(out) < maxBlocks && total < limit; {
		k := bytes.Index(d[i:], Mark)
		if k < 0 {
			break
		}
		i += k + len(Mark)
		if len(d)-i < 8 || string(d[i+6:i+8]) != "==" {
			continue
		}
		var n [6]byte
		if _, err := base64.StdEncoding.Decode(n[:], append(d[i:i+6:i+6], "=="...)); err != nil {
			continue
		}
		length := int64(binary.LittleEndian.Uint32(n[:4]))
		i += 8
		b, used := decodeBlock(d[i:], min(length, limit-total))
		i += used
		total += int64(len(b))
		out = append(out, b)
	}
	return out
}

// decodeBlock decodes at most length characters of an encoded
// block from d: line breaks among them are skipped, a byte from 0x80
// (the first of a double-byte character) kept with the next, as they
// are. It says how many bytes of d it read.
func decodeBlock(d []byte, length int64) ([]byte, int) {
	out := make([]byte, 0, min(int64(len(d)), length))
	place, i := 0, 0
	for ; i < len(d) && length > 0; i++ {
		c := d[i]
		switch {
		case c == '\n' || c == '\r':
			continue
		case c >= 0x80:
			out = append(out, c)
			if i+1 < len(d) {
				i++
				out = append(out, d[i])
			}
		default:
			v := decoding[order[place%64]-'0'][c]
			if c == '@' && i+1 < len(d) {
				i++
				length--
				if e, ok := escapes[d[i]]; ok {
					v = e
				} else {
					v = d[i]
				}
			}
			out = append(out, v)
			place++
		}
		length--
	}
	return out, i
}

// Encode writes script as one encoded block, as the encoder does:
// line breaks, '<', '>' and '@' escaped, a byte from 0x80 kept as it is
// with the next, the control characters as they are.
func Encode(script []byte) []byte {
	var body []byte
	var sum uint32
	var inverse [3][256]byte
	for t := range decoding {
		for c := 0x09; c < 0x80; c++ {
			if c == 0x09 || c >= 0x20 && c != '@' {
				inverse[t][decoding[t][c]] = byte(c)
			}
		}
	}
	place, chars := 0, 0
	for i := 0; i < len(script); i++ {
		c := script[i]
		chars++
		if c >= 0x80 { // kept with the next, out of the sum and the cycle
			body = append(body, c)
			if i+1 < len(script) {
				i++
				body = append(body, script[i])
			}
			continue
		}
		sum += uint32(c)
		switch {
		case c == '\n' || c == '\r' || c == '<' || c == '>' || c == '@':
			for e, v := range escapes {
				if v == c {
					body = append(body, '@', e)
				}
			}
			chars++
		case c == 0x09 || c >= 0x20:
			body = append(body, inverse[order[place%64]-'0'][c])
		default:
			body = append(body, c)
		}
		place++
	}
	number := func(n uint32) []byte {
		return []byte(base64.StdEncoding.EncodeToString(binary.LittleEndian.AppendUint32(nil, n))[:6] + "==")
	}
	out := append(bytes.Clone(Mark), number(uint32(chars))...)
	out = append(out, body...)
	out = append(out, number(sum)...)
	return append(out, "^#~@"...)
}
