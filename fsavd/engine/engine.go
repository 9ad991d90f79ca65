// Package engine is the scanning engine of the bundled fsavd: the EICAR
// test file plus signature files in ClamAV's formats (.hdb, .hsb: hashes
// of a file; .mdb, .msb: of a Windows program's sections, pe.go; .ndb
// body patterns with ??, a?, *, {n-m} and (a|b) wildcards, at any offset
// form, a Windows program's entry point and sections included, exe.go;
// .ldb logical signatures, logical.go, with PCRE parts, pcre.go), matched
// in one pass over the data whatever the number of signatures, on the
// object and on everything package unpack opens in it (archives,
// compressed streams, mail parts; nested, within limits: an object over
// a limit is reported as Heuristics.Limits.Exceeded.<which>, never as
// clean).
//
// What it does not do: target types (a signature is looked for in every
// object as it is, but executable offsets, in Windows programs only),
// ELF and Mach-O structure, the version-information offset (VI), whole
// words (::f), byte-compare and macro parts, the PE and container
// conditions of a logical signature, and bytecode signatures.
// Signatures with such features are counted as skipped when a file is
// loaded, never loaded in part.
package engine

import (
	"os"
	"sync/atomic"

	"github.com/fsigkd/fsigkd/unpack"
)

// What a scan looks into, its limits and its findings are package
// unpack's.
type (
	Options   = unpack.Options
	Limits    = unpack.Limits
	Kind      = unpack.Kind
	Detection = unpack.Detection
)

// The kinds of a detection.
const (
	Infected  = unpack.Infected
	Suspected = unpack.Suspected
	Riskware  = unpack.Riskware
)

// Engine scans with the current signature set; Swap replaces it.
type Engine struct {
	db     atomic.Pointer[DB]
	Limits Limits
}

// New makes an engine with db.
func New(db *DB) *Engine {
	e := &Engine{}
	e.db.Store(db)
	return e
}

// DB is the signature set in use.
func (e *Engine) DB() *DB { return e.db.Load() }

// Swap puts a new signature set in use; scans under way finish with the old.
func (e *Engine) Swap(db *DB) { e.db.Store(db) }

// ScanFile scans the file at path (mapped into memory, not read into it;
// a small one is read into a pooled buffer). visit, if set, sees every
// object the scan opens (the type and name rules, in the same pass).
func (e *Engine) ScanFile(name string, opt Options, visit unpack.Visit) ([]Detection, error) {
	db := e.DB()
	return unpack.ScanFile(name, db.options(opt), e.Limits, db.match, visit)
}

// ScanOpen is ScanFile for an open file (a descriptor the client passed).
func (e *Engine) ScanOpen(f *os.File, opt Options, visit unpack.Visit) ([]Detection, error) {
	db := e.DB()
	return unpack.ScanOpen(f, db.options(opt), e.Limits, db.match, visit)
}

// ScanData scans data, an object in memory, as ScanOpen scans a file.
func (e *Engine) ScanData(data []byte, opt Options, visit unpack.Visit) []Detection {
	db := e.DB()
	return unpack.ScanData(data, db.options(opt), e.Limits, db.match, visit)
}

// ScanBytes scans data (ScanData with nothing visited).
func (e *Engine) ScanBytes(data []byte, opt Options) []Detection {
	return e.ScanData(data, opt, nil)
}

// match finds the signatures in one object's bytes: none in a file
// known clean, none the ignore lists name.
func (db *DB) match(data []byte, found func(name string) (stop bool)) {
	db.matchIn(data, unpack.Layer{}, found)
}

// matchIn is match for an object where at says it lies
// (unpack.Options.MatchIn): inside the containers the logical
// signatures with a Container or Intermediates condition judge, or a
// macro's source, which is matched as it is, typed as the compound file
// it came from (target 2), and given no text view, as ClamAV does.
func (db *DB) matchIn(data []byte, at unpack.Layer, found func(name string) (stop bool)) {
	found, done := db.byHash(data, found)
	if done {
		return
	}
	stopped := false
	found = stopWith(found, &stopped)
	view := byte(viewRaw)
	if at.Macro {
		view = viewMacro
	}
	db.passOver(data, &db.index, view, at.Within, found)
	if !stopped && !at.Macro {
		db.matchViews(data, at.Within, found)
	}
}

// stopWith is found, which also sets *stopped once it says to stop.
func stopWith(found func(name string) bool, stopped *bool) func(name string) bool {
	return func(name string) bool {
		*stopped = found(name)
		return *stopped
	}
}

// byHash begins a match: nothing in a file known clean (.fp), then the
// hash signatures, each object hashed once a kind for both; found comes
// back without the names the ignore lists withdraw. done: nothing more
// to look for.
func (db *DB) byHash(data []byte, found func(name string) bool) (_ func(name string) bool, done bool) {
	var sums digests
	if db.allowedFile(data, &sums) {
		return nil, true
	}
	found = db.unignored(found)
	for _, name := range append(append(db.matchHash(data, &sums), db.matchSections(data)...), db.matchImports(data)...) {
		if found(name) {
			return nil, true
		}
	}
	return found, false
}
