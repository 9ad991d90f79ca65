package outcome

import "fmt"

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

func (a Action) String() string {
	if int(a) < len(actionWords) {
		return actionWords[a]
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

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

// ParseAction reads action.
func ParseAction(s string) (Action, error) {
	m := map[string]Action{}
	for i, w := range actionWords {
		m[w] = Action(i)
	}
	return parseWord(s, m)
}

// ParseFailure reads scan_failure.
func ParseFailure(s string) (Failure, error) {
	return parseWord(s, map[string]Failure{"block": FailBlock, "pass": FailPass, "tempfail": FailTempfail})
}

// ParseOversized reads oversize_action.
func ParseOversized(s string) (Oversized, error) {
	return parseWord(s, map[string]Oversized{"pass": OversizePass, "block": OversizeBlock})
}

// ParseEncrypted reads encrypted_action.
func ParseEncrypted(s string) (EncryptedAct, error) {
	return parseWord(s, map[string]EncryptedAct{"block": EncryptedBlock, "pass": EncryptedPass, "notify": EncryptedNotify})
}

func parseWord[T any](s string, words map[string]T) (T, error) {
	v, ok := words[s]
	if !ok {
		var zero T
		return zero, fmt.Errorf("%q is not a known value", s)
	}
	return v, nil
}

// Parse reads the settings Decide needs from their words, as the
// settings file gives them (the settings check has held each to its
// service's values already).
func Parse(service, action, scanFailure, oversizeAction, encryptedAction string, blockRiskware bool) (Settings, error) {
	var s Settings
	var err error
	if s.Service, err = ParseService(service); err != nil {
		return s, fmt.Errorf("service: %v", err)
	}
	if s.Action, err = ParseAction(action); err != nil {
		return s, fmt.Errorf("action: %v", err)
	}
	if s.ScanFailure, err = ParseFailure(scanFailure); err != nil {
		return s, fmt.Errorf("scan_failure: %v", err)
	}
	if s.OversizeAction, err = ParseOversized(oversizeAction); err != nil {
		return s, fmt.Errorf("oversize_action: %v", err)
	}
	if s.EncryptedAction, err = ParseEncrypted(encryptedAction); err != nil {
		return s, fmt.Errorf("encrypted_action: %v", err)
	}
	s.BlockRiskware = blockRiskware
	return s, nil
}
