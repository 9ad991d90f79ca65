package outcome

import (
	"fmt"
	"strings"
)

// Service is which service decides: the words of action differ between
// them (a POP3 "delete" replaces the mail, an SMTP one drops it).
type Service uint8

const (
	HTTP Service = iota
	SMTP
	FTP
	POP3
	ICAP
)

// Action is the action setting: what a detection does.
type Action uint8

const (
	ActBlock     Action = iota // http, ftp, icap: refused
	ActPass                    // delivered, marked and logged
	ActDeny                    // smtp, pop: refused
	ActDelete                  // smtp: dropped, the recipients told; pop: replaced by a notice
	ActBlackhole               // smtp: dropped
	ActSendback                // smtp: dropped, the sender told
	ActHold                    // milter: held by the mail server (Postfix's hold queue)
)

var actionWords = [...]string{"block", "pass", "deny", "delete", "blackhole", "sendback", "hold"}

func (a Action) String() string { return word(actionWords[:], a) }

// actionLogs are the access log's ACTION of each action (block and deny
// both refuse).
var actionLogs = [...]string{"DENY", "PASS", "DENY", "DELETE", "BLACKHOLE", "SENDBACK", "HOLD"}

// Log is the access log's ACTION for a detection the action applies to.
func (a Action) Log() string {
	if int(a) < len(actionLogs) {
		return actionLogs[a]
	}
	return a.String()
}

// Failure is scan_failure: what an object that could not be scanned does.
type Failure uint8

const (
	FailBlock    Failure = iota // refused (POP3: the client tries later)
	FailPass                    // delivered, marked unscanned
	FailTempfail                // smtp: 451, the sender tries later
)

// Oversized is oversize_action.
type Oversized uint8

const (
	OversizePass Oversized = iota
	OversizeBlock
)

// EncryptedAct is encrypted_action.
type EncryptedAct uint8

const (
	EncryptedBlock  EncryptedAct = iota // as a detection, per action
	EncryptedPass                       // delivered, logged ENCRYPTED
	EncryptedNotify                     // as pass, and the admin told
)

// Settings are the settings Decide reads, parsed.
type Settings struct {
	Service         Service
	Action          Action
	ScanFailure     Failure
	OversizeAction  Oversized
	EncryptedAction EncryptedAct
	BlockRiskware   bool
}

// ParseService reads a service's name.
func ParseService(s string) (Service, error) {
	// The milter decides as the relay does: the MTA says it in SMTP.
	return parseWord(s, map[string]Service{"http": HTTP, "smtp": SMTP, "ftp": FTP, "pop": POP3, "icap": ICAP, "milter": SMTP})
}

// The settings' words of each value: the settings file reads them
// (UnmarshalText), and writes them back (MarshalText: check's dump, the
// settings handed to the workers).
var (
	failureWords   = [...]string{"block", "pass", "tempfail"}
	oversizeWords  = [...]string{"pass", "block"}
	encryptedWords = [...]string{"block", "pass", "notify"}
)

func (f Failure) String() string      { return word(failureWords[:], f) }
func (o Oversized) String() string    { return word(oversizeWords[:], o) }
func (e EncryptedAct) String() string { return word(encryptedWords[:], e) }

func (a Action) MarshalText() ([]byte, error)       { return []byte(a.String()), nil }
func (f Failure) MarshalText() ([]byte, error)      { return []byte(f.String()), nil }
func (o Oversized) MarshalText() ([]byte, error)    { return []byte(o.String()), nil }
func (e EncryptedAct) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

func (a *Action) UnmarshalText(b []byte) error       { return parseInto(a, actionWords[:], b) }
func (f *Failure) UnmarshalText(b []byte) error      { return parseInto(f, failureWords[:], b) }
func (o *Oversized) UnmarshalText(b []byte) error    { return parseInto(o, oversizeWords[:], b) }
func (e *EncryptedAct) UnmarshalText(b []byte) error { return parseInto(e, encryptedWords[:], b) }

// word is v's word, or its number for a value no word names.
func word[T ~uint8](words []string, v T) string {
	if int(v) < len(words) {
		return words[v]
	}
	return fmt.Sprintf("%d", uint8(v))
}

// parseInto sets *v to the value whose word is b, or says which words
// there are.
func parseInto[T ~uint8](v *T, words []string, b []byte) error {
	for i, w := range words {
		if w == string(b) {
			*v = T(i)
			return nil
		}
	}
	return fmt.Errorf("%q is not one of %s", b, strings.Join(words, ", "))
}

func parseWord[T any](s string, words map[string]T) (T, error) {
	v, ok := words[s]
	if !ok {
		var zero T
		return zero, fmt.Errorf("%q is not a known value", s)
	}
	return v, nil
}
