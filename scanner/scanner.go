// Package scanner is the one contract between the proxies and the engines:
// a spooled object in, a verdict (or an error that says what went wrong)
// out. The proxies depend on this package only; which engine answers, over
// which socket, with what failover, is the scanner's business.
//
// Anti-virus clients: F-Secure's fsavd protocol (the default, and what the
// bundled fsavd speaks), ClamAV's clamd (zFILDES passing the descriptor over
// a Unix socket, zINSTREAM over TCP or when asked, zPING), and ICAP (RFC
// 3507 RESPMOD with Preview and Allow: 204, as c-icap and commercial engines
// serve it). Anti-spam clients: SpamAssassin's spamd (SPAMC/1.5) and
// rspamd's HTTP /checkv2.
//
// Every engine can have several endpoints (Unix sockets or TCP, for a farm
// of scanning hosts). Connections are pooled where the protocol allows,
// every read and write has a deadline, a failed endpoint is skipped for a
// doubling interval (a circuit breaker: a dead engine costs a fast
// failure, not a timeout per request) and probed in the background, so that
// it is used again as soon as it answers.
package scanner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fsigkd/fsigkd/catalog"
)

// Meta is what is known about an object, for engines that use it and for
// the logs.
type Meta struct {
	Service     string // http, smtp, ftp
	URL         string // the URL, or ftp://host/path
	Client      string // the client's IP
	Sender      string // mail: envelope sender
	Recipients  []string
	FileName    string
	ContentType string
	Helo        string
}

// Object is one spooled object to scan.
type Object struct {
	File *os.File // open and readable (read with ReadAt; its offset is not used)
	Path string   // its absolute name, for engines that open it themselves
	Size int64
	Meta Meta
	// Partial: the object is a prefix of one still arriving, checked so
	// that its bytes may be trickled. Only its bytes are matched (the
	// bundled engine opens no container: a cut archive would read as
	// damaged); the whole object is scanned in full at its end.
	Partial bool
	// Sum is the object's hash (BLAKE3-256, see spool.File.Sum) when the
	// spool computed it as the object was written (nil: not known), for
	// the verdict cache.
	Sum *[32]byte
	// ReadSum, when set, gives the hash Sum does not hold at the cost of
	// reading the object again (a large one: spool.File.SumReadsBack);
	// the cache asks for it only for an object it may have seen: one
	// with the same Head.
	ReadSum func() ([32]byte, bool)
	// Head is the hash of an object's first 64 KiB (spool.File.HeadSum),
	// which a repeat of it shares; nil for an object no longer. Never a
	// key.
	Head *[32]byte
	// Follow, when set, is the engine's follow of the object as it was
	// spooled (Follower): its scan is made on it.
	Follow *Following
	// Data, when set, is the whole object held in memory (a small one
	// the spool did not write to disk), and File and Path are not set
	// until Files is called: an engine that takes bytes (the bundled
	// fsavd's SCANBYTES) scans Data, every other calls Files first.
	Data []byte
	// Spill, with Data, writes the object to its file and gives File and
	// Path (Files).
	Spill func() (*os.File, string, error)
	// InPlace, when set, says whether Path still names File (an error
	// when another program removed or replaced it), for an engine that
	// opens the object by its name: one given the descriptor needs no
	// name, and is not asked.
	InPlace func() error
}

// InMemory tells whether the object is held in memory alone (Data; no
// file written for it yet).
func (o *Object) InMemory() bool { return o.File == nil && o.Data != nil }

// ReaderAt reads the object where it is: Data when it is held in
// memory, File otherwise (engines that read it as a stream need no file).
func (o *Object) ReaderAt() io.ReaderAt {
	if o.InMemory() {
		return bytes.NewReader(o.Data)
	}
	return o.File
}

// Files makes sure File and Path are set: an object held in memory
// (Data) is written to its file. Every engine that reads a file, or
// opens one by name, calls it first.
func (o *Object) Files() error {
	if o.File != nil || o.Spill == nil {
		return nil
	}
	f, path, err := o.Spill()
	if err != nil {
		return err
	}
	o.File, o.Path = f, path
	return nil
}

// Status is the kind of a verdict.
type Status int

const (
	// Clean: nothing found.
	Clean Status = iota
	// Infected: a virus or other malware was found.
	Infected
	// Riskware: a potentially unwanted program; blocked with block_riskware.
	Riskware
	// Suspected: the engine could not look into the object fully (over a
	// limit, encrypted, damaged) or a heuristic fired. The proxies block it
	// like an infection: never passed as clean.
	Suspected
)

func (s Status) String() string {
	return [...]string{"CLEAN", "INFECTED", "RISKWARE", "SUSPECTED"}[s]
}

// Verdict is an engine's answer for one object.
type Verdict struct {
	Status Status
	Names  []string // detection names, when not clean
	Engine string   // which engine and endpoint answered
	// Cached: given by the verdict cache (see Cache), not by an engine
	// call.
	Cached bool
	// RulesChecked: the engine applied the gateway's type and name rules
	// (see RuleSetter) in its pass; Rule is the one that refuses the
	// object ("": none), RuleAt where in it ("" the object itself).
	RulesChecked bool
	Rule, RuleAt string
	// At is where in the object the first detection is ("": the object
	// itself, or the engine does not say: clamd never does), as the
	// bundled fsavd names it: a mail's part by its file name, an
	// archive's member by its path ("e.zip/eicar.com").
	At string
}

// RuleSetter is a scanner whose engine can apply the gateway's type and
// name rules in its own pass (the bundled fsavd), sparing the gateway its
// own walk of the object.
type RuleSetter interface {
	SetRules(types, names string)
}

// Name is the detection names joined, for logs and notices.
func (v Verdict) Name() string { return strings.Join(v.Names, ", ") }

// Scanner is an anti-virus engine.
type Scanner interface {
	Scan(ctx context.Context, obj *Object) (Verdict, error)
}

// Versioner is a scanner that knows its engine's signature version (an
// ICAP server's ISTag and the verdict cache change with it).
type Versioner interface {
	// Version is the version last learnt ("" before any), at no cost.
	Version() string
	// RefreshVersion asks the engine for its current version now: a
	// pooled connection can outlive a signature reload.
	RefreshVersion(ctx context.Context) error
}

// Pinger is a scanner that can say whether it is alive.
type Pinger interface {
	Ping(ctx context.Context) error
}

// SpamVerdict is an anti-spam engine's answer for a mail.
type SpamVerdict struct {
	Spam      bool
	Score     float64
	Threshold float64
	Symbols   []string
	Action    string // rspamd's advice: "no action", "add header", "reject"...
	Engine    string
	// Subject is the Subject rspamd rewrote (action "rewrite subject";
	// "": none given).
	Subject string
	// AddHeaders and RemoveHeaders are the header changes rspamd asks a
	// mail server to make (its reply's "milter" block), in its order.
	AddHeaders    []HeaderField
	RemoveHeaders []string
}

// HeaderField is a mail header field: its name and value.
type HeaderField struct{ Name, Value string }

// SpamChecker is an anti-spam engine.
type SpamChecker interface {
	Check(ctx context.Context, obj *Object) (SpamVerdict, error)
}

// Kind says what went wrong with a scan.
type Kind int

const (
	// Down: no endpoint of the engine could be reached.
	Down Kind = iota + 1
	// Timeout: the engine took longer than allowed.
	Timeout
	// Refused: the engine would not scan this object (too large for it,
	// unreadable); another object may fare better.
	Refused
	// Broken: the engine answers but cannot scan at all (no signatures,
	// failed to initialise).
	Broken
	// Protocol: the engine's reply made no sense.
	Protocol
	// Local: the gateway itself had no descriptor left to reach the
	// engine (EMFILE, ENFILE): the engine is not down.
	Local
)

func (k Kind) String() string {
	switch k {
	case Down:
		return "down"
	case Timeout:
		return "timeout"
	case Refused:
		return "refused"
	case Broken:
		return "broken"
	case Protocol:
		return "protocol"
	case Local:
		return "local"
	}
	return "unknown"
}

// Error is a failed scan.
type Error struct {
	Kind     Kind
	Engine   string // fsavd, clamd, icap, spamd, rspamd
	Endpoint string // as configured
	Err      error
	// Msg is the documented message for this fault, when there is one.
	Msg *catalog.Message
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s (%s): %v", e.Engine, e.Kind, e.Endpoint, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// CatalogMessage is the documented message, when the fault has one.
func (e *Error) CatalogMessage() catalog.Message {
	if e.Msg != nil {
		return *e.Msg
	}
	return catalog.Message{Level: catalog.Warning, Text: e.Error()}
}

// KindOf is the Kind of a scan error, 0 when err is not one.
func KindOf(err error) Kind {
	var se *Error
	if errors.As(err, &se) {
		return se.Kind
	}
	return 0
}

// Policy is what a proxy does with an object it could not have scanned.
type Policy string

// The policies: pass the object unscanned (logged), block it, or (mail
// only) answer 451 so that the sender tries again later.
const (
	Pass     Policy = "pass"
	Block    Policy = "block"
	TempFail Policy = "tempfail"
)
