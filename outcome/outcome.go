// Package outcome is what the scan pipeline found of an object, as a typed
// Result whose Kind is one of a closed set, and the one pure function,
// Decide, that turns a Result and a service's settings into what the
// service does with the object: a Decision (deliver, refuse, replace, drop
// or try later; keep it in the quarantine; tell the administrator; the
// access log's words; the X-Virus-Status value of a delivered mail).
//
// Every service (HTTP, FTP, SMTP, POP3, ICAP) acts on the same Decision;
// only the words on its wire differ. Nothing here touches a socket, a file
// or a log: Decide is tested over every combination of the settings that
// bear on it (action, scan_failure, oversize_action, encrypted_action,
// block_riskware) and every Kind, in every service.
//
// One fact comes after the decision and is not Decide's: whether the
// quarantine could keep the object. A detection to be dropped or replaced
// that could not be kept is turned into TryLater by the pipeline
// (proxy.Object.Judge), so that its only copy stays with the sender or the
// server.
package outcome

import "fmt"

// Kind is what became of an object in the pipeline.
type Kind uint8

const (
	// Clean: scanned whole, nothing found.
	Clean Kind = iota
	// Infected: the engine found a virus or other malware.
	Infected
	// Riskware: the engine found a potentially unwanted program
	// (block_riskware decides).
	Riskware
	// Suspected: the engine could not look into the object fully (a
	// limit, a damaged archive) or a heuristic fired; refused as a
	// detection, never passed as clean.
	Suspected
	// Encrypted: only encrypted archives, which no engine can look into
	// (encrypted_action decides).
	Encrypted
	// Blocked: a type or name rule refused the object, whatever the
	// engine said and whatever action says.
	Blocked
	// Skipped: a skip list let the object pass unscanned.
	Skipped
	// NotScanned: the object could not be scanned whole (Result.Err
	// says why: the engine down or timed out, the spool failed, a
	// content coding that cannot be undone); scan_failure decides.
	NotScanned
	// Oversize: larger than max_scan_size, not scanned (oversize_action
	// decides).
	Oversize

	kinds // the number of kinds, for tests that cover them all
)

// Kinds lists every Kind, in order.
func Kinds() []Kind {
	out := make([]Kind, kinds)
	for i := range out {
		out[i] = Kind(i)
	}
	return out
}

var kindWords = [...]string{"clean", "infected", "riskware", "suspected", "encrypted", "blocked", "skipped", "not scanned", "oversize"}

func (k Kind) String() string {
	if int(k) < len(kindWords) {
		return kindWords[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Detection tells whether the engine named a threat (or a rule refused
// the object): the kinds an action applies to.
func (k Kind) Detection() bool {
	switch k {
	case Infected, Riskware, Suspected, Encrypted, Blocked:
		return true
	case Clean, Skipped, NotScanned, Oversize:
		return false
	}
	panic("outcome: unknown kind " + k.String())
}

// Result is what the pipeline found of one object.
type Result struct {
	Kind Kind
	// Name is the detection's name (names joined by ", "), the rule
	// that refused the object (Blocked: "block_types=exe"), or the skip
	// list that let it pass (Skipped: "skip_hosts").
	Name string
	// Member is where in the object the detection or the rule was found
	// ("" the object itself).
	Member string
	// Err says why the object was not scanned (NotScanned).
	Err error
	// Detail says more, for the access log: the skip list's entry that
	// matched (Skipped), what was over the limit (Oversize: "upload",
	// "decoded body").
	Detail string
}

// Delivery is what becomes of the object.
type Delivery uint8

const (
	// Deliver: the object goes on, perhaps marked (Decision.Status).
	Deliver Delivery = iota
	// Refuse: not delivered, and the client is told why (403 with the
	// block page, 550, 554, -ERR).
	Refuse
	// Replace: a notice goes in its place (POP3: the mail's header and a
	// text saying what was removed, so that the reader sees a message).
	Replace
	// Drop: taken and dropped, the client told it was delivered (SMTP
	// blackhole, delete and sendback).
	Drop
	// TryLater: not delivered, and the client told to try again (SMTP
	// 451, POP3 -ERR [SYS/TEMP]): it keeps the object.
	TryLater
	// Hold: taken, and held by the mail server for the administrator (a
	// milter's quarantine: Postfix's hold queue, released with postsuper
	// -H or deleted with postsuper -d). Any other service refuses it.
	Hold
)

var deliveryWords = [...]string{"deliver", "refuse", "replace", "drop", "try later", "hold"}

func (d Delivery) String() string {
	if int(d) < len(deliveryWords) {
		return deliveryWords[d]
	}
	return fmt.Sprintf("delivery(%d)", uint8(d))
}

// Notice is who is sent a notice in the object's place (SMTP's delete and
// sendback).
type Notice uint8

const (
	NoNotice Notice = iota
	// ToRecipients: the recipient.txt notice, to every recipient.
	ToRecipients
	// ToSender: the sender.txt notice, to the envelope sender.
	ToSender
)

// Decision is what a service does with an object.
type Decision struct {
	Delivery Delivery
	// Applied is the action taken, in the settings' own words ("block",
	// "deny", "delete", "pass"...): what the admin notice says.
	Applied string
	// Action is the access log's ACTION (PASS, DENY, DELETE, BLACKHOLE,
	// SENDBACK, NONE; "" for a clean object).
	Action string
	// Detect is the access log's DETECT-STAT (CLEAN, INFECTED,
	// ENCRYPTED, BLOCKED, SKIPPED; "" when the object was not scanned).
	Detect string
	// Status is the X-Virus-Status value of a delivered mail (or one held
	// by the MTA).
	Status string
	// Quarantine: the object is kept in the quarantine (when the service
	// keeps one): what a detection or a rule blocked, never what could
	// not be scanned.
	Quarantine bool
	// NotifyAdmin: the administrator is told (when notify_admin is on).
	NotifyAdmin bool
	// Notice: who else is told, in the object's place.
	Notice Notice
}

// Decide turns what the pipeline found into what the service does, per
// its settings. It is the only place where action, scan_failure,
// oversize_action, encrypted_action and block_riskware are read.
func Decide(r Result, s Settings) Decision {
	switch r.Kind {
	case Clean:
		return Decision{Delivery: Deliver, Detect: "CLEAN", Status: "clean(fsigkd)"}
	case Skipped:
		return Decision{Delivery: Deliver, Applied: "pass", Action: "PASS", Detect: "SKIPPED", Status: "unscanned(skipped)"}
	case Oversize:
		if s.OversizeAction == OversizeBlock {
			return Decision{Delivery: Refuse, Applied: "block", Action: "DENY"}
		}
		return Decision{Delivery: Deliver, Applied: "pass", Action: "PASS", Status: "unscanned(fsigkd)"}
	case NotScanned:
		switch s.ScanFailure {
		case FailPass:
			return Decision{Delivery: Deliver, Applied: "pass", Action: "PASS", Status: "unscanned(fsigkd)"}
		case FailTempfail:
			return Decision{Delivery: TryLater, Applied: "tempfail", Action: "NONE"}
		case FailBlock:
			if s.Service == POP3 {
				// Never replaced, never refused for good: the mail stays
				// on the server and the client tries again.
				return Decision{Delivery: TryLater, Applied: "block", Action: "DENY"}
			}
			return Decision{Delivery: Refuse, Applied: "block", Action: "DENY"}
		}
		panic("outcome: unknown scan_failure")
	case Encrypted:
		switch s.EncryptedAction {
		case EncryptedPass, EncryptedNotify:
			return Decision{Delivery: Deliver, Applied: "pass", Action: "PASS", Detect: "ENCRYPTED",
				Status: "unscanned(encrypted)", NotifyAdmin: s.EncryptedAction == EncryptedNotify}
		case EncryptedBlock:
			d := detection(r, s, s.Action)
			d.Detect = "ENCRYPTED"
			return d
		}
		panic("outcome: unknown encrypted_action")
	case Riskware:
		if !s.BlockRiskware {
			// Let through, and said: the mail carries the name.
			return Decision{Delivery: Deliver, Applied: "pass", Action: "PASS", Detect: "INFECTED", Status: infected(r)}
		}
		return detection(r, s, s.Action)
	case Infected, Suspected:
		return detection(r, s, s.Action)
	case Blocked:
		// A rule refuses whatever action says: pass becomes the
		// service's refusal.
		a := s.Action
		if a == ActPass {
			a = refusal(s.Service)
		}
		d := detection(r, s, a)
		d.Detect = "BLOCKED"
		return d
	}
	panic("outcome: unknown kind " + r.Kind.String())
}

// Partly is what r, found by a scan of only part of the object, means
// for the whole (a content coding that broke off: what came after it was
// not scanned, and a client that keeps the body as sent keeps it too,
// err says why): what the settings would refuse even without action =
// pass is a detection, and stays one whatever action then does with it;
// anything else (nothing found, riskware or an encrypted archive let
// through) is not scanned.
func Partly(r Result, err error, s Settings) Result {
	strict := s
	strict.Action = refusal(s.Service)
	if r.Kind == NotScanned || Decide(r, strict).Delivery != Deliver {
		return r
	}
	return Result{Kind: NotScanned, Err: err}
}

// detection applies action a to a detection.
func detection(r Result, s Settings, a Action) Decision {
	d := Decision{Detect: "INFECTED", Applied: a.String(), Action: a.Log(), NotifyAdmin: true, Quarantine: true}
	switch a {
	case ActPass:
		d.Delivery, d.Status, d.Quarantine = Deliver, infected(r), false
	case ActBlock, ActDeny:
		d.Delivery = Refuse
	case ActDelete:
		if s.Service == POP3 {
			d.Delivery = Replace
		} else {
			d.Delivery, d.Notice = Drop, ToRecipients
		}
	case ActSendback:
		d.Delivery, d.Notice = Drop, ToSender
	case ActBlackhole:
		d.Delivery = Drop
	case ActHold:
		// Held by the MTA, marked with what was found.
		d.Delivery, d.Status = Hold, infected(r)
	default:
		panic("outcome: unknown action " + a.String())
	}
	return d
}

// refusal is the action a rule takes where action says pass: the
// service's own refusal (a POP3 mail is replaced, so that the reader
// sees why).
func refusal(svc Service) Action {
	switch svc {
	case SMTP:
		return ActDeny
	case POP3:
		return ActDelete
	}
	return ActBlock
}

func infected(r Result) string { return "infected(" + r.Name + ")" }
