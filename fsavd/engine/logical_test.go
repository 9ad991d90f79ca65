package engine

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// logicalShapes are .ldb signatures of the shapes ClamAV's documentation
// lists, each with objects that must and must not be found.
func logicalShapes() (ldb string, objects map[string]string) {
	hx := func(s string) string { return hex.EncodeToString([]byte(s)) }
	sigs := []string{
		"L.And;Engine:51-255,Target:0;(0&1);" + hx("AND-ONE") + ";" + hx("AND-TWO"),
		"L.Or;Engine:51-255,Target:0;(0|1);" + hx("OR-ONE") + ";" + hx("OR-TWO"),
		"L.Chain;Engine:51-255,Target:0;0&1&2;" + hx("CH-A") + ";" + hx("CH-B") + ";" + hx("CH-C"),
		"L.Nested;Engine:51-255,Target:0;((0|1)&2);" + hx("NE-A") + ";" + hx("NE-B") + ";" + hx("NE-C"),
		"L.Eq;Engine:51-255,Target:0;0=2;" + hx("TWICE-EXACTLY"),
		"L.Gt;Engine:51-255,Target:0;0>2;" + hx("MORE-THAN-TWO"),
		"L.Lt;Engine:51-255,Target:0;(0&1<2);" + hx("LT-BASE") + ";" + hx("LT-RARE"),
		"L.GroupXY;Engine:51-255,Target:0;(0|1|2)>1,2;" + hx("XY-A") + ";" + hx("XY-B") + ";" + hx("XY-C"),
		"L.Offsets;Engine:51-255,Target:0;(0&1);0:" + hx("START-HERE") + ";EOF-9:" + hx("END-THERE"),
		"L.Float;Engine:51-255,Target:0;0;5,10:" + hx("FLOATING"),
		"L.Size;Engine:51-255,Target:0,FileSize:10-60;0;" + hx("SIZED-SIG"),
		"L.Wild;Engine:51-255,Target:0;0;" + hx("WI-") + "??" + hx("-LD") + "{2-4}" + hx("-END"),
		"L.NoCase;Engine:51-255,Target:0;0;" + hx("case-blind-text") + "::i",
		"L.Wide;Engine:51-255,Target:0;0;" + hx("WIDE-TEXT") + "::w",
		"L.WideAscii;Engine:51-255,Target:0;(0&1);" + hx("BOTH-FORMS") + "::wa;" + hx("ANCHOR-WA"),
		"L.WideNoCase;Engine:51-255,Target:0;0;" + hx("wide-") + "??" + hx("-blind") + "::iw",
		"L.NoCaseGap;Engine:51-255,Target:0;0;" + hx("gap-") + "{1-3}" + hx("-fold") + "::i",
		"L.Pcre;Engine:81-255,Target:0;0&1;" + hx("PCRE-TRIGGER") + ";0/id=[0-9]{3}-[a-z]+/",
		"L.PcreFlags;Engine:81-255,Target:0;0&1;" + hx("PCRE-CASE") + ";0/token\\s+[a-f0-9]{4}/i",
		"L.PcreGlobal;Engine:81-255,Target:0;0&1>2;" + hx("PCRE-MANY") + ";0/hit[0-9]/g",
		"L.PcreOffset;Engine:81-255,Target:0;0&1;" + hx("PCRE-AT") + ";4:0/ok[0-9]/A",
	}
	objects = map[string]string{
		"and-both":         "xx AND-ONE yy AND-TWO zz",
		"and-one":          "xx AND-ONE yy only",
		"or-second":        "xx OR-TWO yy",
		"chain-all":        "CH-C CH-A CH-B",
		"chain-two":        "CH-A CH-B",
		"nested-b-c":       "NE-B then NE-C",
		"nested-a":         "NE-A alone",
		"eq-two":           "TWICE-EXACTLY and TWICE-EXACTLY",
		"eq-three":         "TWICE-EXACTLY TWICE-EXACTLY TWICE-EXACTLY",
		"eq-one":           "TWICE-EXACTLY once",
		"gt-three":         "MORE-THAN-TWO MORE-THAN-TWO MORE-THAN-TWO",
		"gt-two":           "MORE-THAN-TWO MORE-THAN-TWO",
		"lt-once":          "LT-BASE and LT-RARE once",
		"lt-twice":         "LT-BASE and LT-RARE, LT-RARE twice",
		"xy-two-kinds":     "XY-A and XY-C",
		"xy-one-kind":      "XY-A XY-A XY-A",
		"offsets":          "START-HERE in the middle END-THERE",
		"offsets-moved":    " START-HERE in the middle END-THERE",
		"float-in":         "0123456FLOATING",
		"float-out":        "0123456789abcdefFLOATING",
		"size-small":       "a SIZED-SIG here",
		"size-large":       "a SIZED-SIG here" + strings.Repeat(".", 100),
		"wild":             "WI-x-LD...-END",
		"wild-too-far":     "WI-x-LD.....-END",
		"nocase-upper":     "xx CASE-BLIND-TEXT yy",
		"nocase-mixed":     "xx cAsE-bLiNd-TeXt yy",
		"nocase-other":     "xx case-blind-texx yy",
		"wide":             utf16("xx WIDE-TEXT yy"),
		"wide-as-ascii":    "xx WIDE-TEXT yy",
		"wa-wide":          utf16("BOTH-FORMS") + " ANCHOR-WA",
		"wa-ascii":         "BOTH-FORMS ANCHOR-WA",
		"wide-nocase":      utf16("WIDE-x-BLIND"),
		"wide-nocase-2":    utf16("wide-xy-blind"),
		"nocasegap":        "GAP-..-FOLD",
		"nocasegap-far":    "GAP-....-FOLD",
		"pcre":             "PCRE-TRIGGER and id=123-abc",
		"pcre-no-match":    "PCRE-TRIGGER and id=12-abc",
		"pcre-untriggered": "no trigger, id=123-abc",
		"pcre-flags":       "PCRE-CASE TOKEN   BEEF",
		"pcre-flags-no":    "PCRE-CASE TOKENBEEF",
		"pcre-global":      "PCRE-MANY hit1 hit2 hit3",
		"pcre-global-2":    "PCRE-MANY hit1 hit2",
		"pcre-at":          "....ok1 PCRE-AT",
		"pcre-not-at":      ".....ok1 PCRE-AT",
	}
	return strings.Join(sigs, "\n") + "\n", objects
}

// TestLogicalSignaturesAsClamscanReadsThem: every shape of logical
// signature (and, or, chains, nesting, exact and bounded counts, counts
// over groups with distinct parts, offsets, floating offsets, FileSize,
// wildcards, parts in either case, as UTF-16LE text, both) finds, in the
// bundled engine, exactly the objects clamscan finds, with the same
// names.
func TestLogicalSignaturesAsClamscanReadsThem(t *testing.T) {
	testenv.Need(t, "clamscan", "clamav")
	ldb, objects := logicalShapes()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "shapes.ldb"), []byte(ldb), 0o644)
	corpus := t.TempDir()
	for name, b := range objects {
		os.WriteFile(filepath.Join(corpus, name), []byte(b), 0o644)
	}
	theirs := clamscanFinds(t, dir, corpus)
	if len(theirs) < 10 {
		t.Fatalf("clamscan found only %v", theirs)
	}
	db, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if db.Skipped != 0 || db.Kinds()["logical"] != strings.Count(ldb, "\n") {
		t.Fatalf("skipped %d, kinds %v", db.Skipped, db.Kinds())
	}
	e := New(db)
	var names []string
	for name := range objects {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ours := named(e, []byte(objects[name]), Options{})
		if ours != theirs[name] {
			t.Errorf("%s: the engine says %q, clamscan %q", name, ours, theirs[name])
		}
	}
	t.Logf("clamscan found %d of %d objects", len(theirs), len(objects))
}

// TestLogicalSignaturesNotRead: a signature with a feature the engine
// does not have is counted and skipped whole, never loaded in part; a
// malformed one fails the load with its file and line.
func TestLogicalSignaturesNotRead(t *testing.T) {
	hx := hex.EncodeToString([]byte("SOME-PART"))
	for _, line := range []string{
		"S.PcreLookahead;Engine:81-255,Target:0;0&1;" + hx + ";0/some(?=thing)/",
		"S.PcreExtended;Engine:81-255,Target:0;0&1;" + hx + ";0/some thing/x",
		"S.EP;Target:6;0;EP+0:" + hx,
		"S.Section;Target:0;(0&1);" + hx + ";S2+4:" + hx,
		"S.Container;Target:0,Container:CL_TYPE_OOXML_WORD;0;" + hx,
		"S.PE;Target:1,HandlerType:CL_TYPE_ZIP;0;" + hx,
		"S.ByteCompare3;Engine:51-255,Target:0;0&1;" + hx + ";0(>>5#ib3#=123)",
		"S.Macro;Engine:51-255,Target:0;0&1;" + hx + ";${6-7}12$",
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "x.ldb"), []byte(line+"\n"), 0o644)
		db, err := Load(dir)
		if err != nil {
			t.Errorf("%s: %v", line, err)
			continue
		}
		if db.Skipped != 1 || db.Kinds()["logical"] != 0 || db.Kinds()["body"] != 1 {
			t.Errorf("%s: skipped %d, kinds %v", line, db.Skipped, db.Kinds())
		}
		if d := New(db).ScanBytes([]byte("x SOME-PART x"), Options{}); len(d) != 0 {
			t.Errorf("%s: a part loaded alone found %v", line, d)
		}
	}
	for _, line := range []string{
		"Bad.NoParts;Engine:51-255,Target:0;0",
		"Bad.Expr;Engine:51-255,Target:0;(0&1;" + hx + ";" + hx,
		"Bad.Index;Engine:51-255,Target:0;0&3;" + hx + ";" + hx,
		"Bad.Mixed;Engine:51-255,Target:0;0&1|2;" + hx + ";" + hx + ";" + hx,
		"Bad.Hex;Engine:51-255,Target:0;0;zz",
		"Bad.Size;Engine:51-255,Target:0,FileSize:9-3;0;" + hx,
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "x.ldb"), []byte("# comment\n"+line+"\n"), 0o644)
		_, err := Load(dir)
		var le *LoadError
		if err == nil || !errors.As(err, &le) || le.Line != 2 {
			t.Errorf("%s: %v", line, err)
		}
	}
}

// FuzzLogicalExpression: any expression parses or is refused, and one
// that parses is judged without a panic whatever the counts.
func FuzzLogicalExpression(f *testing.F) {
	for _, s := range []string{"0", "(0&1)", "0&1&2", "((0|1)&2)", "0=2", "(0|1|2)>1,2", "(0&1<2)", "((0>1)=1)", "(((((0)))))"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseLogical(s, 4)
		if err != nil {
			return
		}
		for c := range 4 {
			e.eval(func(p int) int { return (p + c) % 3 })
		}
	})
}

// FuzzLogicalLine: any .ldb line is loaded, skipped or refused, and a set
// loaded from it scans any object without a panic.
func FuzzLogicalLine(f *testing.F) {
	hx := hex.EncodeToString([]byte("PART"))
	for _, s := range []string{
		"A;Engine:51-255,Target:0;(0&1)>1,2;" + hx + ";2:" + hx,
		"B;Target:0,FileSize:1-99;0=2;EOF-4,2:" + hx,
		"C;Target:0;((0|1)&2);" + hx + ";" + hx + "??{1-3}" + hx + ";*:" + hx,
		"D;Target:0;0;" + hx + "::i",
		"E;Target:0;0&1>1;" + hx + ";3:0/P[A-Z]+T/gie",
	} {
		f.Add(s, []byte("xx PARTPART yy PART"))
	}
	f.Fuzz(func(t *testing.T, line string, data []byte) {
		db := newDB()
		if err := db.addLogical(line); err != nil {
			return
		}
		db.build()
		New(db).ScanBytes(data, Options{})
	})
}

// utf16 is s as UTF-16LE text (ASCII s).
func utf16(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		b.WriteByte(c)
		b.WriteByte(0)
	}
	return b.String()
}

// TestWholeWordsAsClamscanReadsThem: a part marked ::f (a whole word:
// neither preceded nor followed by a letter or digit), alone, caseless
// (::fi) and as UTF-16LE text (::wf), in logical and body signatures,
// finds the same objects under the same names as clamscan, at the
// object's edges and beside punctuation, and not inside a longer word.
func TestWholeWordsAsClamscanReadsThem(t *testing.T) {
	hx := func(s string) string { return hex.EncodeToString([]byte(s)) }
	utf16 := func(s string) []byte {
		var b []byte
		for _, c := range []byte(s) {
			b = append(b, c, 0)
		}
		return b
	}
	dir := t.TempDir()
	ldb := "Test.Word;Engine:51-255,Target:0;0;" + hx("SOME-WORD") + "::f\n" +
		"Test.WordCaseless;Engine:51-255,Target:0;0;" + hx("evilword") + "::fi\n" +
		"Test.WordWide;Engine:51-255,Target:0;0;" + hx("WIDEWORD") + "::wf\n"
	os.WriteFile(filepath.Join(dir, "words.ldb"), []byte(ldb), 0o644)
	objects := map[string][]byte{
		"spaces":       []byte("x SOME-WORD y"),
		"alone":        []byte("SOME-WORD"),
		"letter-left":  []byte("aSOME-WORD "),
		"digit-right":  []byte(" SOME-WORD9"),
		"underscore":   []byte("_SOME-WORD_"),
		"punctuation":  []byte("(SOME-WORD)."),
		"newlines":     []byte("line\nSOME-WORD\n"),
		"caseless":     []byte("this is EvilWord!"),
		"inside":       []byte("devilwords"),
		"wide":         utf16(" WIDEWORD "),
		"wide-letter":  utf16("xWIDEWORD"),
		"wide-edges":   utf16("WIDEWORD"),
		"narrow-wide":  []byte("WIDEWORD"),
		"second-place": []byte("aSOME-WORD and SOME-WORD"),
	}
	sameAsClamscan(t, dir, objects, 9)
}

// TestByteComparesAsClamscanReadsThem: byte-compare parts (raw bytes in
// either byte order, hex, decimal and automatic text, exact or not, one
// or two comparisons, before and after the trigger's start) find the
// same objects under the same names as clamscan, including its readings
// at the edges: nothing read at the object's first byte or past its end,
// blanks before a number skipped only when not exact, a sign read, a
// number that is not there read as 0, "010" as ten.
func TestByteComparesAsClamscanReadsThem(t *testing.T) {
	type sig struct{ trigger, compare string }
	sigs := []sig{
		{"RAW-BIG", "0(>>7#ib2#=258)"},
		{"RAW-LITTLE", "0(>>10#il2#=513)"},
		{"RAW-FOUR", "0(>>8#ib4#=16908288)"},
		{"RAW-EIGHT", "0(>>9#il8#=513)"},
		{"BEFORE-IT", "0(<<1#ib1#=88)"},
		{"AT-ZERO", "0(<<2#ib2#=22616)"},
		{"HEX-EXACT", "0(>>9#hbe2#=171)"},
		{"HEX-LOOSE", "0(>>9#hb4#=1)"},
		{"DEC-LOOSE", "0(>>9#db3#=7)"},
		{"DEC-NONE", "0(>>8#db2#=0)"},
		{"DEC-EXACT", "0(>>9#dbe3#=12)"},
		{"AUTO-TEN", "0(>>8#abe3#=10)"},
		{"AUTO-HEX", "0(>>8#abe4#=31)"},
		{"HEX-LITTLE", "0(>>10#hle4#=513)"},
		{"TWO-CMPS", "0(>>8#ib2#>257,<259)"},
		{"PAST-END", "0(>>8#ib2#=258)"},
		{"SECOND-ONE", "0(>>10#ib1#=2)"},
	}
	hx := func(s string) string { return hex.EncodeToString([]byte(s)) }
	var ldb strings.Builder
	for _, s := range sigs {
		fmt.Fprintf(&ldb, "Test.%s;Engine:81-255,Target:0;0&1;%s;%s\n", s.trigger, hx(s.trigger), s.compare)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bytes.ldb"), []byte(ldb.String()), 0o644)
	objects := map[string]string{
		"raw-big":         "xRAW-BIG\x01\x02",
		"raw-big-other":   "xRAW-BIG\x01\x03",
		"raw-little":      "xRAW-LITTLE\x01\x02",
		"raw-four":        "xRAW-FOUR\x01\x02\x00\x00",
		"raw-eight":       "xRAW-EIGHT\x01\x02\x00\x00\x00\x00\x00\x00",
		"before-it":       "YXBEFORE-IT",
		"before-at-zero":  "XBEFORE-IT",
		"at-zero":         "XXAT-ZERO",
		"hex-exact":       "xHEX-EXACTAB",
		"hex-exact-bad":   "xHEX-EXACTAG",
		"hex-loose":       "xHEX-LOOSE01zz",
		"dec-loose":       "xDEC-LOOSE  7",
		"dec-none":        "xDEC-NONEB-",
		"dec-negative":    "xDEC-NONE-5",
		"dec-exact":       "xDEC-EXACT012",
		"dec-exact-blank": "xDEC-EXACT 12",
		"auto-ten":        "xAUTO-TEN010",
		"auto-hex":        "xAUTO-HEX0x1F",
		"hex-little":      "xHEX-LITTLE0102",
		"two-cmps":        "xTWO-CMPS\x01\x02",
		"two-cmps-out":    "xTWO-CMPS\x01\x03",
		"past-end":        "xPAST-END\x01",
		"second-one":      "xSECOND-ONE\x01 then SECOND-ONE\x02",
		"second-neither":  "xSECOND-ONE\x01 then SECOND-ONE\x03",
	}
	bs := map[string][]byte{}
	for name, b := range objects {
		bs[name] = []byte(b)
	}
	sameAsClamscan(t, dir, bs, 15)
}

// sameAsClamscan has clamscan (finding exactly found of them, as the
// corpus was made: no empty comparison) and the engine, both with the
// signatures in dir, judge objects, and holds the engine to clamscan's
// names, every signature read, none skipped; it gives the engine's
// database for more checks.
func sameAsClamscan(t *testing.T, dir string, objects map[string][]byte, found int) *DB {
	t.Helper()
	corpus := t.TempDir()
	for name, b := range objects {
		os.WriteFile(filepath.Join(corpus, name), b, 0o644)
	}
	theirs := clamscanFinds(t, dir, corpus)
	t.Logf("clamscan: %v", theirs)
	if len(theirs) != found {
		t.Fatalf("clamscan found %d of %d: %v", len(theirs), found, theirs)
	}
	db, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if db.Skipped != 0 || len(db.Unsupported) != 0 {
		t.Fatalf("skipped %d, not read %v", db.Skipped, db.Unsupported)
	}
	e := New(db)
	for name, b := range objects {
		if ours := named(e, b, all); ours != theirs[name] {
			t.Errorf("%s: the engine says %q, clamscan %q", name, ours, theirs[name])
		}
	}
	return db
}

// FuzzByteCompare: no byte compare, however written, reads outside the
// object or panics, wherever its trigger matched.
func FuzzByteCompare(f *testing.F) {
	f.Add("0(>>7#ib2#=258)", []byte("xRAW-BIG\x01\x02"), 1)
	f.Add("0(<<2#hle4#>1,<9)", []byte("0102"), 3)
	f.Add("0(>>0x1F#dbe8#=0)", []byte(" -12"), 0)
	f.Fuzz(func(t *testing.T, sig string, data []byte, start int) {
		b, err := parseByteCompare(sig, 2)
		if err != nil {
			return
		}
		b.at(data, start%(len(data)+1))
	})
}
