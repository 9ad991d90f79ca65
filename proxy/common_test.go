package proxy

import (
	"testing"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/scanner"
)

// TestBlocks: what the settings refuse, which is also what stops bytes
// going early (Prefix): a detection, unless riskware is let through or
// action is pass.
func TestBlocks(t *testing.T) {
	for _, c := range []struct {
		status    scanner.Status
		riskware  bool // block_riskware
		action    string
		encrypted string // encrypted_action, for a Heuristics.Encrypted verdict
		want      bool
	}{
		{scanner.Suspected, false, "block", "block", true},
		{scanner.Suspected, false, "block", "pass", false},
		{scanner.Suspected, false, "block", "notify", false},
		{scanner.Clean, false, "block", "", false},
		{scanner.Infected, false, "block", "", true},
		{scanner.Suspected, false, "block", "", true},
		{scanner.Riskware, false, "block", "", false},
		{scanner.Riskware, true, "block", "", true},
		{scanner.Infected, false, "pass", "", false},
		{scanner.Infected, false, "delete", "", true},
	} {
		cm := &Common{Svc: &conf.Service{BlockRiskware: c.riskware, Action: c.action, EncryptedAction: c.encrypted}}
		v := scanner.Verdict{Status: c.status, Names: []string{"Some.Name"}}
		if c.encrypted != "" {
			v.Names = []string{"Heuristics.Encrypted.Zip"}
		}
		if got := cm.blocks(v); got != c.want {
			t.Errorf("%+v: %v", c, got)
		}
	}
}
