package engine

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/fsigkd/fsigkd/unpack"
)

// Logical signatures (.ldb, ClamAV's signature documentation):
//
//	Name;TargetDescriptionBlock;LogicalExpression;Subsig0;Subsig1;...
//
// Each sub-signature is a body pattern (an .ndb one, with an offset
// before it or not) found by the same one pass as the .ndb signatures;
// at the end of the pass, the expression of every logical signature one
// of whose parts was found is judged. What this engine reads:
//
//   - the target description's Engine (ignored: this engine reads what
//     it can), Target (as for .ndb: targets.go) and FileSize;
//   - the expressions in full: (A&B), (A|B), and A=X, A=X,Y, A>X, A>X,Y,
//     A<X, A<X,Y, counting every place a part matches (counted again
//     over the object only for signatures that ask how many);
//   - parts with the offsets .ndb takes (*, n, n,m, EOF-n, EOF-n,m) and
//     the modifiers i (letters in either case), w (UTF-16LE text) and a
//     (with w: as written too);
//   - PCRE parts, on Go's regexp (pcre.go).
//
//   - with Target:1 (Windows programs), parts at executable offsets (EP+n,
//     Sx+n, SL+n, SEx: exe.go).
//
//   - whole words (the modifier f), and byte-compare parts (bytecmp.go).
//
// A signature with anything else (executable offsets in another target;
// macro parts, byte compares of a form bytecmp.go does not read; a regular
// expression RE2 cannot run; the PE and container conditions of the
// target description) is counted
// (DB.Skipped) and said at load, never loaded half: it detects nothing
// here rather than other objects than it should.

// logicalSig is one .ldb signature.
type logicalSig struct {
	name   string
	expr   *lexpr
	parts  [][]int32            // the body signatures of each part (two for ::wa; none for a PCRE)
	pcre   map[int]*pcrePart    // the PCRE parts, by number
	bcomp  map[int]*byteCompare // the byte-compare parts, by number (bytecmp.go)
	counts bool                 // the expression asks how many times a part matched
	pe     bool                 // Target:1, Windows programs: its parts may take executable offsets (exe.go)
	target int8                 // its target type: the objects, and their views, it judges (targets.go, textview.go)
	// size, ep and nos, when set, are the ranges the object's size
	// (FileSize), the program's entry point (its file offset:
	// EntryPoint) and its number of sections (NumberOfSections) must lie
	// in.
	size, ep, nos *[2]int64
	// container, when set, is the type of the container the object
	// must lie in (Container); intermediates, the types of the
	// containers it must lie in, outermost first, CL_TYPE_ANY for any
	// (Intermediates).
	container     string
	intermediates []string
}

// withinTypes are the container types unpack names in
// Options.MatchWithin that a Container or Intermediates condition is
// judged on: each held to clamscan (RAR, which unpack names too, is not:
// Debian's clamscan reads no RAR without libclamunrar, from non-free).
var withinTypes = map[string]bool{unpack.TypeZip: true, unpack.TypeTar: true, unpack.TypeOldTar: true,
	unpack.TypeGzip: true, unpack.TypeBzip2: true, unpack.TypeXz: true, unpack.TypeSevenZip: true,
	unpack.TypeCab: true, unpack.TypeARJ: true, unpack.TypeCpioOld: true,
	unpack.TypeCpioODC: true, unpack.TypeCpioNewc: true, unpack.TypeCpioCRC: true, unpack.TypeISO: true,
	unpack.TypeMail: true, unpack.TypePDF: true, unpack.TypeOLE2: true, unpack.TypeOneNote: true,
	unpack.TypeCHM: true, unpack.TypeXar: true}

// tdbRange reads a target description's range, lo-hi.
func tdbRange(v string) (*[2]int64, bool) {
	lo, hi, ok := strings.Cut(v, "-")
	a, err1 := strconv.ParseUint(lo, 10, 32)
	b, err2 := strconv.ParseUint(hi, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return nil, false
	}
	return &[2]int64{int64(a), int64(b)}, true
}

// inRange tells whether v lies in r (nil: any).
func inRange(r *[2]int64, v int64) bool { return r == nil || r[0] <= v && v <= r[1] }

// judgesWithin tells whether an object inside the containers within
// (outermost first) is one the signature looks at: its container of
// the Container type, and the containers nearest it of the
// Intermediates types, as ClamAV judges them.
func (ls *logicalSig) judgesWithin(within []string) bool {
	if ls.container != "" && (len(within) == 0 || within[len(within)-1] != ls.container) {
		return false
	}
	if n := len(ls.intermediates); n > 0 {
		if len(within) < n {
			return false
		}
		for i, t := range ls.intermediates {
			if t != "CL_TYPE_ANY" && within[len(within)-n+i] != t {
				return false
			}
		}
	}
	return true
}

// judgesProgram tells whether the signature judges an object of target
// type typ (targets.go), in the view given (textview.go), and of
// Windows program layout l (nil: none): a target type looks at its
// objects alone (Target:1 at Windows programs, what ClamAV types so: "MZ"
// first), and EntryPoint and NumberOfSections at the programs whose
// headers read, within range.
func (ls *logicalSig) judgesProgram(typ int8, view byte, l *exeLayout) bool {
	if !looks(ls.target, typ, view) {
		return false
	}
	if ls.ep == nil && ls.nos == nil {
		return true
	}
	if !ls.pe || l == nil {
		return false
	}
	return (ls.ep == nil || l.entry >= 0 && inRange(ls.ep, l.entry)) && inRange(ls.nos, int64(l.count))
}

// lexpr is a node of a logical expression: a part (op 0) or an & or |
// of operands, with a count condition (mod '=', '>' or '<': count mod
// x, and with y >= 0, at least y distinct parts matched).
type lexpr struct {
	op   byte
	part int
	args []*lexpr
	mod  byte
	x, y int
}

// errUnsupported marks a logical signature with a feature this engine
// does not have: counted, not an error of the file.
var errUnsupported = errors.New("not supported")

// maxParts is ClamAV's bound on a logical signature's parts.
const maxParts = 64

// addLogical reads one .ldb line.
func (db *DB) addLogical(line string) error {
	f := strings.Split(line, ";")
	if len(f) < 4 {
		return fmt.Errorf("want Name;TargetDescriptionBlock;LogicalExpression;Subsig0[;Subsig1...]")
	}
	if f[0] == "" {
		return fmt.Errorf("no name")
	}
	if len(f)-3 > maxParts {
		return fmt.Errorf("more than %d sub-signatures", maxParts)
	}
	ls := &logicalSig{name: f[0]}
	err := ls.readTDB(f[1])
	var expr *lexpr
	if err == nil {
		expr, err = parseLogical(f[2], len(f)-3)
	}
	type part struct {
		offset, hex, mods string
		pcre              *pcrePart
		bcomp             *byteCompare
	}
	var parts []part
	n := len(f) - 3
	for i := 3; err == nil && i < len(f); i++ {
		var p part
		if isPCRE(f[i]) {
			p.pcre, err = parsePCRE(f[i], n)
		} else if isByteCompare(f[i]) {
			p.bcomp, err = parseByteCompare(f[i], n)
		} else {
			p.offset, p.hex, p.mods, err = subsig(f[i])
			if err == nil && isExecOffset(p.offset) && !ls.pe {
				err = errUnsupported // an executable offset in another target than PE
			}
		}
		parts = append(parts, p)
	}
	for i := 0; err == nil && i < len(parts); i++ {
		// A byte compare's trigger is one of the signature's patterns.
		if b := parts[i].bcomp; b != nil && (parts[b.trigger].pcre != nil || parts[b.trigger].bcomp != nil) {
			err = errUnsupported
		}
	}
	for i := 0; err == nil && i < len(parts); i++ {
		// A trigger names the signature's patterns, not another PCRE.
		if parts[i].pcre == nil {
			continue
		}
		for _, t := range parts[i].pcre.trigger.triggers(nil) {
			if parts[t].pcre != nil || parts[t].bcomp != nil || t == i {
				err = fmt.Errorf("sub-signature %d: its trigger names a PCRE part", i)
			}
		}
	}
	if errors.Is(err, errUnsupported) {
		db.Skipped++
		return nil
	}
	if err != nil {
		return err
	}
	ls.expr, ls.counts = expr, expr.hasCount()
	for _, p := range parts {
		if p.pcre != nil && p.pcre.trigger.hasCount() {
			ls.counts = true
		}
	}
	// The parts are checked whole before any is added: a signature is
	// loaded entire or not at all.
	bodies := make([][]*bodySig, len(parts))
	for i, p := range parts {
		if p.bcomp != nil {
			if ls.bcomp == nil {
				ls.bcomp = map[int]*byteCompare{}
			}
			ls.bcomp[i] = p.bcomp
			continue
		}
		if p.pcre != nil {
			if ls.pcre == nil {
				ls.pcre = map[int]*pcrePart{}
			}
			ls.pcre[i] = p.pcre
			continue
		}
		// ::wa: as UTF-16LE text and as written, either one.
		forms := []string{p.mods}
		if strings.Contains(p.mods, "w") && strings.Contains(p.mods, "a") {
			forms = append(forms, strings.ReplaceAll(p.mods, "w", ""))
		}
		for _, mods := range forms {
			s, err := newBodySig(ls.name, p.hex, p.offset, mods)
			if errors.Is(err, errUnsupported) {
				db.Skipped++
				return nil
			}
			if err != nil {
				return fmt.Errorf("sub-signature %d: %v", i, err)
			}
			bodies[i] = append(bodies[i], s)
		}
	}
	db.logical = append(db.logical, ls)
	for _, forms := range bodies {
		var ids []int32
		for _, s := range forms {
			s.lsig = int32(len(db.logical))
			ids = append(ids, int32(len(db.body)))
			db.body = append(db.body, s)
		}
		ls.parts = append(ls.parts, ids)
	}
	return nil
}

// readTDB reads the target description block.
func (ls *logicalSig) readTDB(tdb string) error {
	target := "0"
	for _, kv := range strings.Split(tdb, ",") {
		k, v, _ := strings.Cut(kv, ":")
		switch k {
		case "Engine":
			// The functionality levels: this engine takes what it can
			// read.
		case "Target":
			// As for .ndb: the objects of that type alone (targets.go);
			// executable offsets only with Target:1.
			ls.pe, target = v == "1", v
			t, err := strconv.Atoi(v)
			if err != nil || t < 0 || t > maxTarget {
				return fmt.Errorf("bad target type %q", v)
			}
			ls.target = int8(t)
		case "EntryPoint", "NumberOfSections":
			r, ok := tdbRange(v)
			if !ok {
				return fmt.Errorf("bad %s %q", k, v)
			}
			if k == "EntryPoint" {
				ls.ep = r
			} else {
				ls.nos = r
			}
		case "Container", "Intermediates":
			types := []string{v}
			if k == "Intermediates" {
				types = strings.Split(v, ">")
			}
			for _, t := range types {
				if !withinTypes[t] && !(k == "Intermediates" && t == "CL_TYPE_ANY") {
					// A container this engine does not type as ClamAV
					// does, or not a type at all (which ClamAV skips
					// too).
					return errUnsupported
				}
			}
			if k == "Container" {
				ls.container = v
			} else {
				ls.intermediates = types
			}
		case "FileSize":
			r, ok := tdbRange(v)
			if !ok || r[1] < r[0] {
				return fmt.Errorf("bad FileSize %q", v)
			}
			ls.size = r
		default:
			// IconGroup1/2, HandlerType: conditions this engine cannot
			// judge.
			return errUnsupported
		}
	}
	if ls.ep != nil || ls.nos != nil {
		switch target {
		case "1":
		case "6", "9":
			return errUnsupported // ELF's and Mach-O's headers are not read
		default:
			// As ClamAV: a program's condition outside a program's
			// signature is a malformed line.
			return fmt.Errorf("EntryPoint and NumberOfSections are for PE, ELF and Mach-O signatures (Target 1, 6, 9)")
		}
	}
	return nil
}

// subsig splits a part into its offset ("*" when none), pattern and
// modifiers.
func subsig(s string) (offset, hex, mods string, err error) {
	switch {
	case strings.HasPrefix(s, "${"):
		return "", "", "", errUnsupported // a macro
	case strings.IndexByte(s, '#') >= 0:
		return "", "", "", errUnsupported // a byte compare
	}
	if i := strings.Index(s, "::"); i >= 0 {
		s, mods = s[:i], s[i+2:]
		for _, m := range mods {
			switch m {
			case 'i', 'w', 'a', 'f':
			default:
				return "", "", "", fmt.Errorf("unknown modifier %q", m)
			}
		}
	}
	if o, h, ok := strings.Cut(s, ":"); ok {
		return o, h, mods, nil
	}
	return "*", s, mods, nil
}

// parseLogical reads a logical expression over parts 0..n-1.
func parseLogical(s string, n int) (*lexpr, error) {
	p := &lparser{s: s, n: n}
	e, err := p.expr()
	if err == nil && p.i < len(s) {
		err = fmt.Errorf("unexpected %q at %d", s[p.i:], p.i)
	}
	if err != nil {
		return nil, fmt.Errorf("logical expression %q: %v", s, err)
	}
	return e, nil
}

type lparser struct {
	s     string
	i, n  int
	depth int
}

// maxDepth bounds the nesting of parentheses (ClamAV's database nests a
// handful deep).
const maxDepth = 64

// expr is operands joined by & or |; a chain of one operator is one node.
// ClamAV writes each binary operation in parentheses; a chain that mixes
// the two without them is refused rather than read one way or another.
func (p *lparser) expr() (*lexpr, error) {
	first, err := p.operand()
	if err != nil {
		return nil, err
	}
	if p.i >= len(p.s) || (p.s[p.i] != '&' && p.s[p.i] != '|') {
		return first, nil
	}
	e := &lexpr{op: p.s[p.i], args: []*lexpr{first}}
	for p.i < len(p.s) && (p.s[p.i] == '&' || p.s[p.i] == '|') {
		if p.s[p.i] != e.op {
			return nil, fmt.Errorf("& and | mixed without parentheses at %d", p.i)
		}
		p.i++
		a, err := p.operand()
		if err != nil {
			return nil, err
		}
		e.args = append(e.args, a)
	}
	return e, nil
}

// operand is a part's number or a parenthesised expression, with a count
// condition after it or not.
func (p *lparser) operand() (*lexpr, error) {
	var e *lexpr
	switch {
	case p.i < len(p.s) && p.s[p.i] == '(':
		if p.depth++; p.depth > maxDepth {
			return nil, fmt.Errorf("nested deeper than %d", maxDepth)
		}
		p.i++
		in, err := p.expr()
		p.depth--
		if err != nil {
			return nil, err
		}
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, fmt.Errorf("no ) at %d", p.i)
		}
		p.i++
		// A condition on a parenthesised group applies to the group: a
		// group of one operand already holding one gets a node of its own.
		e = in
		if e.mod != 0 {
			e = &lexpr{op: '|', args: []*lexpr{in}}
		}
	default:
		k, ok := p.number()
		if !ok {
			return nil, fmt.Errorf("want a sub-signature number or ( at %d", p.i)
		}
		if k >= p.n {
			return nil, fmt.Errorf("sub-signature %d of %d", k, p.n)
		}
		e = &lexpr{part: k}
	}
	if p.i < len(p.s) && strings.IndexByte("=><", p.s[p.i]) >= 0 {
		e.mod = p.s[p.i]
		p.i++
		x, ok := p.number()
		if !ok {
			return nil, fmt.Errorf("want a count at %d", p.i)
		}
		e.x, e.y = x, -1
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			if e.y, ok = p.number(); !ok {
				return nil, fmt.Errorf("want a count at %d", p.i)
			}
		}
	}
	return e, nil
}

func (p *lparser) number() (int, bool) {
	j := p.i
	for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' && j-p.i < 6 {
		j++
	}
	if j == p.i {
		return 0, false
	}
	n, _ := strconv.Atoi(p.s[p.i:j])
	p.i = j
	return n, true
}

// hasCount tells whether e asks how many times a part matched (beyond
// whether it did).
func (e *lexpr) hasCount() bool {
	if e.mod != 0 {
		return true
	}
	for _, a := range e.args {
		if a.hasCount() {
			return true
		}
	}
	return false
}

// eval judges e with count giving how many times each part matched:
// whether it holds, the matches in it, and the distinct parts matched.
func (e *lexpr) eval(count func(part int) int) (ok bool, matches, distinct int) {
	if e.op == 0 {
		matches = count(e.part)
		if matches > 0 {
			distinct = 1
		}
		ok = matches > 0
	} else {
		ok = e.op == '&'
		for _, a := range e.args {
			aok, m, d := a.eval(count)
			matches += m
			distinct += d
			if e.op == '&' {
				ok = ok && aok
			} else {
				ok = ok || aok
			}
		}
	}
	switch e.mod {
	case '=':
		ok = matches == e.x
	case '>':
		ok = matches > e.x
	case '<':
		ok = matches < e.x
	}
	if e.mod != 0 && e.y >= 0 {
		ok = ok && distinct >= e.y
	}
	return ok, matches, distinct
}

// maxCount bounds the matches of a part counted in one object.
const maxCount = 1000

// matchLogical judges, after a pass over data (an object, or one of
// its views), the logical signatures one of whose parts hit
// found; true: stop (found said so).
func (db *DB) matchLogical(data []byte, view byte, hit map[int32]bool, within []string, found func(name string) bool) bool {
	if len(db.logical) == 0 || len(hit) == 0 {
		return false // most objects: no allocation
	}
	judged := map[int32]bool{}
	var layout *exeLayout
	layoutRead := false
	var v verifier // the object's type, read once
	v.init(data, db.types)
	v.view = view
	for si := range hit {
		li := db.body[si].lsig
		if li == 0 || judged[li] {
			continue
		}
		judged[li] = true
		ls := db.logical[li-1]
		if !inRange(ls.size, int64(len(data))) {
			continue
		}
		if ls.ep != nil || ls.nos != nil {
			if !layoutRead {
				layout, layoutRead = peLayout(data), true
			}
		}
		if !ls.judgesProgram(v.target(), view, layout) || !ls.judgesWithin(within) {
			continue
		}
		var count func(part int) int
		count = func(part int) int {
			if b := ls.bcomp[part]; b != nil {
				return db.byteCompares(b, ls, data, hit)
			}
			if p := ls.pcre[part]; p != nil {
				// Its trigger names patterns only (addLogical): no loop.
				if ok, _, _ := p.trigger.eval(count); !ok {
					return 0
				}
				return p.count(data)
			}
			n := 0
			for _, si := range ls.parts[part] {
				switch {
				case !hit[si]:
				case !ls.counts:
					n = max(n, 1)
				default:
					n += db.body[si].countIn(data)
				}
			}
			return n
		}
		if ok, _, _ := ls.expr.eval(count); ok && found(ls.name) {
			return true
		}
	}
	return false
}

// byteCompares counts the places b's trigger part matches in data where
// b's comparisons hold.
func (db *DB) byteCompares(b *byteCompare, ls *logicalSig, data []byte, hit map[int32]bool) int {
	n := 0
	for _, si := range ls.parts[b.trigger] {
		if !hit[si] {
			continue
		}
		var v verifier
		v.init(data, nil)
		db.body[si].starts(&v, func() bool {
			v.steps = verifyBudget
			return v.work > 0
		}, func(start int) bool {
			if b.at(data, start) {
				n++
			}
			return n < maxCount
		})
	}
	return n
}

// countIn counts the places s matches in data, at most maxCount: where a
// match may start, each start that leads to one counts once.
func (s *bodySig) countIn(data []byte) int {
	var v verifier
	v.init(data, nil)
	n := 0
	s.starts(&v, func() bool {
		v.steps = verifyBudget
		return v.work > 0
	}, func(int) bool {
		n++
		return n < maxCount
	})
	return n
}
