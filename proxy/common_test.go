package proxy

import (
	"testing"

	"github.com/fsigkd/fsigkd/outcome"
	"github.com/fsigkd/fsigkd/scanner"
)

// TestResultOf: what an engine's verdict makes of an object, before the
// settings say what is done with it (outcome.Decide, tested there).
func TestResultOf(t *testing.T) {
	for _, c := range []struct {
		status scanner.Status
		names  []string
		want   outcome.Kind
	}{
		{scanner.Clean, nil, outcome.Clean},
		{scanner.Infected, []string{"Eicar-Test-Signature"}, outcome.Infected},
		{scanner.Riskware, []string{"Adware.X"}, outcome.Riskware},
		{scanner.Suspected, []string{"Heuristics.Limits.Exceeded.Depth"}, outcome.Suspected},
		{scanner.Suspected, []string{"Heuristics.Encrypted.Zip"}, outcome.Encrypted},
		{scanner.Suspected, []string{"Heuristics.Encrypted.Zip", "Heuristics.Encrypted.RAR"}, outcome.Encrypted},
		// An encrypted archive beside a detection is a detection.
		{scanner.Infected, []string{"Heuristics.Encrypted.Zip", "Eicar-Test-Signature"}, outcome.Infected},
		// A suspected verdict without a name is still not clean.
		{scanner.Suspected, nil, outcome.Suspected},
	} {
		r := resultOf(scanner.Verdict{Status: c.status, Names: c.names})
		if r.Kind != c.want {
			t.Errorf("%v %v: %v, want %v", c.status, c.names, r.Kind, c.want)
		}
	}
}
