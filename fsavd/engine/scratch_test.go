package engine

import (
	"os"
	"strings"
	"testing"
)

func TestScratchScan(t *testing.T) {
	files := os.Getenv("SCRATCH")
	if files == "" {
		t.Skip()
	}
	e := builtin(t)
	for _, f := range strings.Fields(files) {
		b, _ := os.ReadFile(f)
		res := e.ScanData(b, all, nil)
		t.Logf("%s: %+v", f, res)
	}
}
