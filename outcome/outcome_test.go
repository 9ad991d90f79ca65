package outcome

import (
	"encoding"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The values each service allows (conf holds the settings file to them).
var (
	actionsOf = map[Service][]Action{
		HTTP: {ActBlock, ActPass}, FTP: {ActBlock, ActPass}, ICAP: {ActBlock, ActPass},
		SMTP: {ActPass, ActDeny, ActBlackhole, ActDelete, ActSendback},
		POP3: {ActPass, ActDeny, ActDelete},
	}
	failuresOf = map[Service][]Failure{
		HTTP: {FailPass, FailBlock}, FTP: {FailPass, FailBlock}, ICAP: {FailPass, FailBlock}, POP3: {FailPass, FailBlock},
		SMTP: {FailPass, FailBlock, FailTempfail},
	}
	services = []Service{HTTP, SMTP, FTP, POP3, ICAP}
)

// every calls f with every combination of the settings Decide reads, in
// every service.
func every(f func(Settings)) {
	for _, svc := range services {
		for _, a := range actionsOf[svc] {
			for _, sf := range failuresOf[svc] {
				for _, o := range []Oversized{OversizePass, OversizeBlock} {
					for _, e := range []EncryptedAct{EncryptedBlock, EncryptedPass, EncryptedNotify} {
						for _, rw := range []bool{false, true} {
							f(Settings{Service: svc, Action: a, ScanFailure: sf, OversizeAction: o, EncryptedAction: e, BlockRiskware: rw})
						}
					}
				}
			}
		}
	}
}

func resultOf(k Kind) Result {
	r := Result{Kind: k}
	switch k {
	case Infected, Suspected, Riskware, Encrypted:
		r.Name = "Eicar-Test-Signature"
	case Blocked:
		r.Name = "block_types=exe"
	case Skipped:
		r.Name = "skip_hosts"
	case NotScanned:
		r.Err = errors.New("engine down")
	}
	return r
}

// expected is the decision the README's words give, written out case by
// case rather than computed the way Decide computes it.
func expected(k Kind, s Settings) Decision {
	name := resultOf(k).Name
	refuseAs := func(a Action) Decision {
		d := Decision{Detect: "INFECTED", Applied: a.String(), NotifyAdmin: true, Quarantine: true}
		switch {
		case a == ActPass:
			return Decision{Delivery: Deliver, Detect: "INFECTED", Applied: "pass", Action: "PASS", Status: "infected(" + name + ")", NotifyAdmin: true}
		case a == ActBlock:
			d.Delivery, d.Action = Refuse, "DENY"
		case a == ActDeny:
			d.Delivery, d.Action = Refuse, "DENY"
		case a == ActDelete && s.Service == POP3:
			d.Delivery, d.Action = Replace, "DELETE"
		case a == ActDelete:
			d.Delivery, d.Action, d.Notice = Drop, "DELETE", ToRecipients
		case a == ActSendback:
			d.Delivery, d.Action, d.Notice = Drop, "SENDBACK", ToSender
		case a == ActBlackhole:
			d.Delivery, d.Action = Drop, "BLACKHOLE"
		}
		return d
	}
	switch k {
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
		switch {
		case s.ScanFailure == FailPass:
			return Decision{Delivery: Deliver, Applied: "pass", Action: "PASS", Status: "unscanned(fsigkd)"}
		case s.ScanFailure == FailTempfail:
			return Decision{Delivery: TryLater, Applied: "tempfail", Action: "NONE"}
		case s.Service == POP3:
			return Decision{Delivery: TryLater, Applied: "block", Action: "DENY"}
		}
		return Decision{Delivery: Refuse, Applied: "block", Action: "DENY"}
	case Encrypted:
		switch s.EncryptedAction {
		case EncryptedPass:
			return Decision{Delivery: Deliver, Applied: "pass", Action: "PASS", Detect: "ENCRYPTED", Status: "unscanned(encrypted)"}
		case EncryptedNotify:
			return Decision{Delivery: Deliver, Applied: "pass", Action: "PASS", Detect: "ENCRYPTED", Status: "unscanned(encrypted)", NotifyAdmin: true}
		}
		d := refuseAs(s.Action)
		d.Detect = "ENCRYPTED"
		return d
	case Riskware:
		if !s.BlockRiskware {
			return Decision{Delivery: Deliver, Applied: "pass", Action: "PASS", Detect: "INFECTED", Status: "infected(" + name + ")"}
		}
		return refuseAs(s.Action)
	case Infected, Suspected:
		return refuseAs(s.Action)
	case Blocked:
		a := s.Action
		if a == ActPass {
			a = map[Service]Action{HTTP: ActBlock, FTP: ActBlock, ICAP: ActBlock, SMTP: ActDeny, POP3: ActDelete}[s.Service]
		}
		d := refuseAs(a)
		d.Detect = "BLOCKED"
		return d
	}
	panic(k)
}

// TestDecideEveryCombination holds Decide to the README over every kind
// and every combination of the five settings, in every service.
func TestDecideEveryCombination(t *testing.T) {
	n := 0
	every(func(s Settings) {
		for _, k := range Kinds() {
			n++
			got, want := Decide(resultOf(k), s), expected(k, s)
			if got != want {
				t.Errorf("%s with %+v:\n got %+v\nwant %+v", k, s, got, want)
			}
		}
	})
	// 3 services of 2x2 actions and failures, SMTP 5x3, POP3 3x2; each
	// with 2 oversize, 3 encrypted, 2 riskware settings; 9 kinds.
	if want := (3*2*2 + 5*3 + 3*2) * 2 * 3 * 2 * 9; n != want {
		t.Fatalf("covered %d combinations, want %d", n, want)
	}
}

// TestNothingUnscannedIsClean: whatever the settings, an object that was
// not scanned whole is never logged or marked clean, and what is
// refused or replaced is never what goes on.
func TestNothingUnscannedIsClean(t *testing.T) {
	every(func(s Settings) {
		for _, k := range Kinds() {
			d := Decide(resultOf(k), s)
			where := fmt.Sprintf("%s with %+v", k, s)
			if k != Clean && (d.Detect == "CLEAN" || d.Status == "clean(fsigkd)") {
				t.Errorf("%s: judged clean: %+v", where, d)
			}
			if k == Blocked && d.Delivery == Deliver {
				t.Errorf("%s: a rule's refusal delivered", where)
			}
			if (k == NotScanned || k == Oversize) && (d.Quarantine || d.Delivery == Replace || d.Delivery == Drop) {
				// The client would delete, or never see, the only copy of
				// what nobody judged.
				t.Errorf("%s: an unscanned object dropped or replaced: %+v", where, d)
			}
			if d.Delivery == Deliver && d.Status == "" {
				t.Errorf("%s: delivered without an X-Virus-Status", where)
			}
			if d.Delivery != Deliver && d.Status != "" {
				t.Errorf("%s: not delivered, yet a status %q", where, d.Status)
			}
			if k != Clean && d.Action == "" {
				t.Errorf("%s: no ACTION logged", where)
			}
		}
	})
}

// TestSettingsWords: every value of the settings Decide reads is written
// as its word and read back from it; a word none of them has is refused
// with the words there are; each service's name reads as the service
// that decides (the milter as the relay).
func TestSettingsWords(t *testing.T) {
	type text interface {
		encoding.TextMarshaler
		encoding.TextUnmarshaler
	}
	roundTrip := func(v text, fresh text) {
		b, _ := v.MarshalText()
		if err := fresh.UnmarshalText(b); err != nil {
			t.Errorf("%q does not read back: %v", b, err)
		}
		if c, _ := fresh.MarshalText(); string(c) != string(b) {
			t.Errorf("%q read back as %q", b, c)
		}
		if err := fresh.UnmarshalText([]byte("gopher")); err == nil || !strings.Contains(err.Error(), "is not one of") {
			t.Errorf("a word none has was taken for %q: %v", b, err)
		}
	}
	for a := range Action(len(actionWords)) {
		roundTrip(&a, new(Action))
	}
	for f := range Failure(len(failureWords)) {
		roundTrip(&f, new(Failure))
	}
	for o := range Oversized(len(oversizeWords)) {
		roundTrip(&o, new(Oversized))
	}
	for e := range EncryptedAct(len(encryptedWords)) {
		roundTrip(&e, new(EncryptedAct))
	}
	for name, want := range map[string]Service{"http": HTTP, "smtp": SMTP, "ftp": FTP, "pop": POP3, "icap": ICAP, "milter": SMTP} {
		if got, err := ParseService(name); err != nil || got != want {
			t.Errorf("service %q: %v, %v", name, got, err)
		}
	}
	if _, err := ParseService("gopher"); err == nil {
		t.Error("an unknown service was taken")
	}
}

// TestPartly: a result found on part of an object (the rest not scanned)
// stays a detection when the settings refuse it, action = pass aside;
// clean, riskware let through and an encrypted archive let through are
// not scanned, whatever action says.
func TestPartly(t *testing.T) {
	cut := errors.New("damaged content coding")
	every(func(s Settings) {
		for _, k := range []Kind{Clean, Infected, Riskware, Suspected, Encrypted, Blocked, NotScanned} {
			r := resultOf(k)
			got := Partly(r, cut, s)
			unscanned := k == Clean || k == Riskware && !s.BlockRiskware || k == Encrypted && s.EncryptedAction != EncryptedBlock
			switch {
			case unscanned && (got.Kind != NotScanned || got.Err != cut):
				t.Errorf("%s with %+v: %+v, want not scanned", k, s, got)
			case !unscanned && got != r:
				t.Errorf("%s with %+v: %+v, want it kept", k, s, got)
			}
		}
	})
}

// TestWords: every kind and delivery has its own word.
func TestWords(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Kinds() {
		if w := k.String(); seen[w] || strings.HasPrefix(w, "kind(") {
			t.Errorf("kind %d: %q", k, w)
		} else {
			seen[w] = true
		}
	}
	for d := Deliver; d <= TryLater; d++ {
		if w := d.String(); strings.HasPrefix(w, "delivery(") {
			t.Errorf("delivery %d: %q", d, w)
		}
	}
}
