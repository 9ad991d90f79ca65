package engine

import (
	"testing"

	"github.com/fsigkd/fsigkd/internal/forms"
)

// TestEveryFormThroughTheEngine: each form of internal/forms holding
// EICAR is found, and its clean twin is clean, by the shared walk; each
// service's tests run the same forms through that service.
func TestEveryFormThroughTheEngine(t *testing.T) {
	e := builtin(t)
	for _, f := range forms.All(t) {
		if d := e.ScanBytes(f.Infected, all); len(d) == 0 || d[0].Name != "Eicar-Test-Signature" {
			t.Errorf("%s with EICAR: %s", f.Name, names(d))
		}
		if d := e.ScanBytes(f.Clean, all); len(d) != 0 {
			t.Errorf("%s, clean: %s", f.Name, names(d))
		}
	}
}
