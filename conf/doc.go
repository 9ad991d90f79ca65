package conf

import (
	"fmt"
	"strings"
)

// The description of each key is its declaration's doc tag, or, where a
// service's section means something of its own by it, doc_<service>. The
// sample's comments (RewriteSample) and `fsigkd check` (Dump) print it;
// the README describes services and refers to keys by name, and a test
// holds those names to the declared keys.

// doc is what the key means in service's section ("" for a global key).
func (f field) doc(service string) string {
	if d := f.tag.Get("doc_" + service); d != "" {
		return d
	}
	return f.tag.Get("doc")
}

// commentWidth is where a comment line is broken.
const commentWidth = 76

// comment renders text as "# " lines, broken between words.
func comment(text string) string {
	if text == "" {
		return ""
	}
	var b, line strings.Builder
	for _, w := range strings.Fields(text) {
		if line.Len() > 0 && line.Len()+1+len(w) > commentWidth-2 {
			b.WriteString("# " + line.String() + "\n")
			line.Reset()
		}
		if line.Len() > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(w)
	}
	b.WriteString("# " + line.String() + "\n")
	return b.String()
}

// RewriteSample gives a settings file with the comment block right above
// each key made from the key's declaration (none when it has no doc: the
// comment of a key before it speaks for both). Comments not right above a
// key, blank lines and values are kept as they are. The test of deploy/fsigk.ini holds it to its rewrite; `go test
// ./conf -update` writes it.
func RewriteSample(text string) (string, error) {
	global := fieldsByKey(&Global{})
	service := fieldsByKey(&Service{})
	lines := strings.Split(text, "\n")
	var out []string
	var pending []string // comment lines not yet known to be a key's
	section := ""
	for i, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(t, "#") || strings.HasPrefix(t, ";"):
			pending = append(pending, l)
			continue
		case strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]"):
			section = strings.TrimSpace(t[1 : len(t)-1])
			if section == "global" {
				section = ""
			}
		case t != "":
			k, _, ok := strings.Cut(t, "=")
			if !ok {
				return "", fmt.Errorf("line %d: no key = value", i+1)
			}
			k = strings.TrimSpace(k)
			f, known := global[k]
			if section != "" {
				f, known = service[k]
			}
			if !known {
				return "", fmt.Errorf("line %d: unknown key %s", i+1, k)
			}
			// A comment right above a key is the key's own, from its
			// declaration; a blank line between keeps a comment free.
			pending = nil
			if d := f.doc(section); d != "" {
				pending = strings.Split(strings.TrimSuffix(comment(d), "\n"), "\n")
			}
		}
		out = append(out, pending...)
		pending = nil
		out = append(out, l)
	}
	out = append(out, pending...)
	return strings.Join(out, "\n"), nil
}

func fieldsByKey(ptr any) map[string]field {
	m := map[string]field{}
	for _, f := range fieldsOf(ptr) {
		m[f.key] = f
	}
	return m
}
