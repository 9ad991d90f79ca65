// Package dbgen writes a signature database in ClamAV's formats at the
// scale asked (hash, body and logical signatures of the shapes ClamAV's
// documentation lists) and a corpus planted with some of them, bare and
// inside containers, beside clean objects and near misses: for tests
// that hold the bundled engine to clamscan, and for the benchmark that
// sets it beside clamd on the same database.
package dbgen

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// Scale is how many signatures of each kind, and how many of them are
// planted in the corpus (each kind's first Planted). Script signatures
// are of pages' scripts as ClamAV's JavaScript normaliser writes them.
type Scale struct {
	MD5, SHA256, Body, Logical int
	Script                     int
	Planted                    int
}

// Object is a file of the corpus and the signature that must name it (""
// for a clean one).
type Object struct {
	Name string
	Data []byte
	Want string
}

// Write writes gen.hdb, gen.hsb, gen.ndb and gen.ldb into dir, and
// returns the corpus. The same seed writes the same database and corpus.
func Write(dir string, sc Scale, seed uint64) ([]Object, error) {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	var hdb, hsb, ndb, ldb bytes.Buffer
	var objs []Object
	add := func(kind string, i int, data []byte, want string) {
		objs = append(objs, Object{Name: fmt.Sprintf("%s-%d", kind, i), Data: data, Want: want})
	}

	hashes := func(kind string, n int, out *bytes.Buffer, sum func([]byte) []byte) {
		for i := range n {
			name := fmt.Sprintf("Gen.Hash.%s-%d", kind, i)
			if i < sc.Planted {
				data := g.filler(200 + g.r.IntN(2000))
				fmt.Fprintf(out, "%x:%d:%s\n", sum(data), len(data), name)
				add(strings.ToLower(kind), i, data, name)
				continue
			}
			fmt.Fprintf(out, "%s:%d:%s\n", g.hex(len(sum(nil))), 100+g.r.IntN(1<<20), name)
		}
	}
	hashes("MD5", sc.MD5, &hdb, func(b []byte) []byte { s := md5.Sum(b); return s[:] })
	hashes("SHA256", sc.SHA256, &hsb, func(b []byte) []byte { s := sha256.Sum256(b); return s[:] })
	for i := range sc.Body {
		name := fmt.Sprintf("Gen.Body-%d", i)
		line, data := g.body(name, i)
		ndb.WriteString(line + "\n")
		if i < sc.Planted {
			add("body", i, data, name)
		}
	}
	for i := range sc.Logical {
		name := fmt.Sprintf("Gen.Logical-%d", i)
		line, data, miss := g.logical(name, i)
		ldb.WriteString(line + "\n")
		if i < sc.Planted {
			add("logical", i, data, name)
			add("logical-miss", i, miss, "")
		}
	}
	for i := range sc.Planted {
		add("clean", i, g.filler(100+g.r.IntN(4000)), "")
	}
	for i := range sc.Script {
		name := fmt.Sprintf("Gen.Script-%d", i)
		line, page, miss := g.script(name, i)
		ndb.WriteString(line + "\n")
		if i < sc.Planted {
			add("script", i, page, name)
			add("script-miss", i, miss, "")
		}
	}
	// Some planted objects again, inside a container each.
	var wrapped []Object
	for i, o := range objs {
		if o.Want == "" || i%4 != 0 {
			continue
		}
		kind := []string{"zip", "gzip", "tar", "mail"}[(i/4)%4]
		data, err := wrap(kind, o.Data)
		if err != nil {
			return nil, err
		}
		wrapped = append(wrapped, Object{Name: o.Name + "." + kind, Data: data, Want: o.Want})
	}
	objs = append(objs, wrapped...)

	for name, b := range map[string]*bytes.Buffer{"gen.hdb": &hdb, "gen.hsb": &hsb, "gen.ndb": &ndb, "gen.ldb": &ldb} {
		if b.Len() == 0 {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			return nil, err
		}
	}
	return objs, nil
}

type gen struct{ r *rand.Rand }

func (g *gen) hex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.Uint32())
	}
	return hex.EncodeToString(b)
}

// filler is text of lower-case words: no token (upper case and digits)
// can be found in it by chance.
func (g *gen) filler(n int) []byte {
	const letters = "abcdefghijklmnopqrstuvwxyz     \n"
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[g.r.IntN(len(letters))]
	}
	return b
}

// token is a word of upper-case letters and digits, found only where
// planted.
func (g *gen) token(n int) []byte {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[g.r.IntN(len(chars))]
	}
	return b
}

func hx(b []byte) string { return hex.EncodeToString(b) }

// plant puts piece into filler at about the middle (at, when >= 0).
func (g *gen) plant(piece []byte, at int) []byte {
	f := g.filler(300 + g.r.IntN(3000))
	if at < 0 {
		at = g.r.IntN(len(f))
	}
	return append(append(append([]byte{}, f[:at]...), piece...), f[at:]...)
}

// body is an .ndb signature of one of the documented shapes, and an
// object it names.
func (g *gen) body(name string, i int) (string, []byte) {
	t := g.token(14)
	switch i % 7 {
	case 0: // anywhere
		return name + ":0:*:" + hx(t), g.plant(t, -1)
	case 1: // one byte any
		obj := append(append(append([]byte{}, t[:6]...), 'x'), t[7:]...)
		return name + ":0:*:" + hx(t[:6]) + "??" + hx(t[7:]), g.plant(obj, -1)
	case 2: // a bounded gap
		obj := append(append(append([]byte{}, t[:6]...), "abc"...), t[6:]...)
		return name + ":0:*:" + hx(t[:6]) + "{2-5}" + hx(t[6:]), g.plant(obj, -1)
	case 3: // alternatives
		obj := append(append(append([]byte{}, t[:6]...), 'B'), t[6:]...)
		return name + ":0:*:" + hx(t[:6]) + "(41|42|43)" + hx(t[6:]), g.plant(obj, -1)
	case 4: // a nibble
		obj := append(append(append([]byte{}, t[:6]...), 0x4d), t[7:]...)
		return name + ":0:*:" + hx(t[:6]) + "4?" + hx(t[7:]), g.plant(obj, -1)
	case 5: // an absolute offset
		return name + ":0:16:" + hx(t), g.plant(t, 16)
	default: // from the end
		obj := append(g.filler(500), t...)
		obj = append(obj, "0123456789"...)
		return name + ":0:EOF-24:" + hx(t), obj
	}
}

// logical is an .ldb signature of one of the documented shapes, an
// object it names, and a near miss it must not.
func (g *gen) logical(name string, i int) (line string, hit, miss []byte) {
	a, b, c := g.token(10), g.token(10), g.token(10)
	join := func(parts ...[]byte) []byte {
		out := g.filler(100)
		for _, p := range parts {
			out = append(append(out, p...), g.filler(50+g.r.IntN(200))...)
		}
		return out
	}
	const tdb = ";Engine:81-255,Target:0;"
	switch i % 6 {
	case 0:
		return name + tdb + "(0&1);" + hx(a) + ";" + hx(b), join(a, b), join(a)
	case 1:
		return name + tdb + "((0|1)&2);" + hx(a) + ";" + hx(b) + ";" + hx(c), join(b, c), join(a, b)
	case 2:
		return name + tdb + "0>1;" + hx(a), join(a, a), join(a)
	case 3:
		return name + tdb + "(0&1);" + hx(a) + ";" + hx(bytes.ToLower(b)) + "::i", join(a, b), join(b)
	case 4:
		return name + tdb + "(0&1);" + hx(a) + ";0/" + strings.ToLower(string(b[:4])) + "-[0-9]{3}/", join(a, append(bytes.ToLower(b[:4]), "-123"...)), join(a, append(bytes.ToLower(b[:4]), "-12"...))
	default:
		return name + tdb + "(0&1)=2,2;" + hx(a) + ";" + hx(b), join(a, b), join(a, a, b)
	}
}

// script is an .ndb signature of target 3 (HTML) written against a
// script as ClamAV normalises it, a page whose script it names (strings
// joined, a declared name renamed, unescape and eval decoded: the
// signature's words are nowhere in the page as written), and a near
// miss: the same words as the page's text.
func (g *gen) script(name string, i int) (line string, page, miss []byte) {
	t := g.token(14)
	low := bytes.ToLower(t)
	var script, view string
	switch i % 4 {
	case 0:
		script = `document.write("<` + string(t[:7]) + `" + '` + string(t[7:]) + `>')`
		view = `document.write("<` + string(low) + `>")`
	case 1:
		script = "var Word = \"" + string(t) + "\";\nWord += 1"
		view = `var n000="` + string(low) + `";n000+=1`
	case 2:
		var esc strings.Builder
		for _, c := range t {
			fmt.Fprintf(&esc, "%%%02X", c)
		}
		script = `q9 = unescape("` + esc.String() + `")`
		view = `q9="` + string(low) + `"`
	default:
		script = `eval("var Obj = '` + string(t) + `'; Obj.go()")`
		view = `var n000="` + string(low) + `";n000.go()`
	}
	wrapPage := func(body string) []byte {
		return []byte("<html><body><p>" + string(g.filler(200)) + "</p>\n" + body + "\n</body></html>\n")
	}
	return name + ":3:*:" + hx([]byte(view)), wrapPage("<script>\n" + script + "\n</script>"), wrapPage("<p>" + script + "</p>")
}

// wrap puts data into a container of kind, as the one member.
func wrap(kind string, data []byte) ([]byte, error) {
	var b bytes.Buffer
	switch kind {
	case "zip":
		w := zip.NewWriter(&b)
		f, err := w.Create("member.txt")
		if err != nil {
			return nil, err
		}
		f.Write(data)
		if err := w.Close(); err != nil {
			return nil, err
		}
	case "gzip":
		w := gzip.NewWriter(&b)
		w.Write(data)
		if err := w.Close(); err != nil {
			return nil, err
		}
	case "tar":
		w := tar.NewWriter(&b)
		if err := w.WriteHeader(&tar.Header{Name: "member.txt", Mode: 0o644, Size: int64(len(data))}); err != nil {
			return nil, err
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			return nil, err
		}
	case "mail":
		fmt.Fprintf(&b, "From: a@example.com\r\nTo: b@example.com\r\nSubject: file\r\nMIME-Version: 1.0\r\n"+
			"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"+
			"--XX\r\nContent-Type: application/octet-stream; name=member.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		enc := base64.StdEncoding.EncodeToString(data)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n--XX--\r\n")
	default:
		return nil, fmt.Errorf("unknown container %q", kind)
	}
	return b.Bytes(), nil
}
