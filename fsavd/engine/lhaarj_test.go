package engine

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
)

// lhaPayload is a member that compresses: EICAR, then text, so that the
// archive's raw bytes never hold the string and only decoding finds it.
func lhaPayload(head string) []byte {
	return []byte(head + strings.Repeat(" and then some harmless words", 200))
}

// lhaLevel rewrites the first member of a level-2 LHA archive (jlha
// writes level 2) with a level 0 or level 1 header around the same packed
// data; level 1 carries a directory in an extended header.
func lhaLevel(t *testing.T, a []byte, level int) []byte {
	t.Helper()
	if a[20] != 2 {
		t.Fatalf("jlha wrote level %d", a[20])
	}
	hlen := int(binary.LittleEndian.Uint16(a))
	packed := binary.LittleEndian.Uint32(a[7:])
	var name string
	for at, size := 26, int(binary.LittleEndian.Uint16(a[24:])); size != 0; at, size = at+size, int(binary.LittleEndian.Uint16(a[at+size-2:])) {
		if a[at] == 1 {
			name = string(a[at+1 : at+size-2])
		}
	}
	body := a[hlen : hlen+int(packed)]
	var h bytes.Buffer
	h.Write([]byte{0, 0})
	h.Write(a[2:7]) // method
	ext := []byte{}
	if level == 1 {
		ext = append([]byte{7, 0, 2}, "dir\xff"...)
		ext = append(ext, 0, 0)
		ext[0] = byte(len(ext))
	}
	binary.Write(&h, binary.LittleEndian, packed+uint32(len(ext)))
	h.Write(a[11:15])                 // size
	h.Write([]byte{0, 0, 0x21, 0x5a}) // an MS-DOS time
	h.Write([]byte{0x20, byte(level), byte(len(name))})
	h.WriteString(name)
	h.Write(a[21:23]) // the CRC-16
	if level == 1 {
		h.WriteByte('U')
		binary.Write(&h, binary.LittleEndian, uint16(len(ext)))
	}
	hd := h.Bytes()
	hd[0] = byte(len(hd) - 2)
	var sum byte
	for _, c := range hd[2:] {
		sum += c
	}
	hd[1] = sum
	return append(append(append(hd, ext...), body...), 0)
}

// lhaChecked asks lhasa whether it reads an archive made here whole.
func lhaChecked(t *testing.T, lhasa string, a []byte) {
	t.Helper()
	made(t, map[string][]byte{"x.lzh": a}, "x.lzh", lhasa, "t", "x.lzh")
}

// TestLHAAndARJ: LHA (-lh5- as jlha writes it, with headers of level 0,
// 1 and 2, checked by lhasa) and ARJ (methods 0 to 4, as arj writes them),
// each also behind a self-extractor's stub, holding EICAR compressed: no
// member of either was opened before. The same archives of a clean file
// are clean. ARJ's methods 1 to 3 use the coding of LHA's -lh6- and
// -lh7- with their position code, so all three code sizes are read.
func TestLHAAndARJ(t *testing.T) {
	e := builtin(t)
	jlha := tool(t, "jlha", "jlha-utils")
	lhasa := tool(t, "lhasa", "lhasa")
	arj := tool(t, "arj", "arj")
	build := func(content []byte) map[string][]byte {
		files := map[string][]byte{"a.com": content}
		out := map[string][]byte{}
		lzh := made(t, files, "a.lzh", jlha, "a", "a.lzh", "a.com")
		out["lh5 level 2"] = lzh
		for _, level := range []int{0, 1} {
			l := lhaLevel(t, lzh, level)
			lhaChecked(t, lhasa, l)
			out["lh5 level "+string(rune('0'+level))] = l
		}
		out["lh5 behind a stub"] = append(bytes.Repeat([]byte("MZ stub "), 9000), lzh...)
		for _, m := range []string{"0", "1", "2", "3", "4"} {
			out["arj -m"+m] = made(t, files, "a.arj", arj, "a", "-m"+m, "-y", "a.arj", "a.com")
		}
		out["arj -m1 behind a stub"] = append(bytes.Repeat([]byte("MZ stub "), 9000), out["arj -m1"]...)
		return out
	}
	for name, data := range build(lhaPayload(eicar.String)) {
		if name != "arj -m0" && bytes.Contains(data, []byte(eicar.String)) {
			t.Fatalf("%s: EICAR is not compressed", name)
		}
		if d := e.ScanBytes(data, all); len(d) == 0 || d[0].Name != "Eicar-Test-Signature" || d[0].Kind != Infected {
			t.Errorf("%s: EICAR inside: %s", name, names(d))
		}
	}
	for name, data := range build(lhaPayload("a harmless program's bytes")) {
		if d := e.ScanBytes(data, all); len(d) != 0 {
			t.Errorf("%s: a clean archive: %s", name, names(d))
		}
	}
}

// TestLHAAndARJThatCannotBeOpened: a password (ARJ's garbling), a method
// not read here, a member cut short, a CRC that does not match what came
// out: never clean.
func TestLHAAndARJThatCannotBeOpened(t *testing.T) {
	e := builtin(t)
	jlha := tool(t, "jlha", "jlha-utils")
	arj := tool(t, "arj", "arj")
	clean := map[string][]byte{"a.com": lhaPayload("a harmless program's bytes")}
	lzh := made(t, clean, "a.lzh", jlha, "a", "a.lzh", "a.com")
	arjM1 := made(t, clean, "a.arj", arj, "a", "-m1", "-y", "a.arj", "a.com")
	lh1 := bytes.Replace(lzh, []byte("-lh5-"), []byte("-lh1-"), 1)
	badCRC := bytes.Clone(lzh)
	badCRC[21] ^= 0xff
	cases := map[string]struct {
		data []byte
		want string
	}{
		"arj garbled":    {made(t, clean, "a.arj", arj, "a", "-gsecret", "-y", "a.arj", "a.com"), "Heuristics.Encrypted.ARJ"},
		"lh1 method":     {lh1, "Heuristics.Unsupported.LHA"},
		"lzh cut short":  {lzh[:len(lzh)-40], "Heuristics.Broken.Archive"},
		"arj cut short":  {arjM1[:len(arjM1)/2], "Heuristics.Broken.Archive"},
		"lzh CRC wrong":  {badCRC, "Heuristics.Broken.Archive"},
		"lzh as it came": {lzh, ""},
		"arj as it came": {arjM1, ""},
	}
	for name, c := range cases {
		d := e.ScanBytes(c.data, all)
		switch {
		case c.want == "" && len(d) != 0:
			t.Errorf("%s: %s", name, names(d))
		case c.want != "" && (len(d) == 0 || d[0].Name != c.want || d[0].Kind != Suspected):
			t.Errorf("%s: %s, want %s", name, names(d), c.want)
		}
	}
}

// TestLHAAndARJBombsStopAtTheLimits: 8 MiB of zeros packed by each tool
// stops at a 1 MiB member limit, decoded no further than it.
func TestLHAAndARJBombsStopAtTheLimits(t *testing.T) {
	e := builtin(t)
	e.Limits = Limits{MaxFileSize: 1 << 20}
	jlha := tool(t, "jlha", "jlha-utils")
	arj := tool(t, "arj", "arj")
	zeros := map[string][]byte{"z.bin": make([]byte, 8<<20)}
	for name, bomb := range map[string][]byte{
		"lzh":     made(t, zeros, "a.lzh", jlha, "a", "a.lzh", "z.bin"),
		"arj -m1": made(t, zeros, "a.arj", arj, "a", "-m1", "-y", "a.arj", "z.bin"),
		"arj -m4": made(t, zeros, "a.arj", arj, "a", "-m4", "-y", "a.arj", "z.bin"),
	} {
		if d := e.ScanBytes(bomb, all); len(d) == 0 || !strings.HasPrefix(d[0].Name, "Heuristics.Limits.Exceeded.") {
			t.Errorf("%s bomb: %s", name, names(d))
		}
	}
}
