package preflight

import (
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/catalog"
)

func TestLicense(t *testing.T) {
	day := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		key     string
		expired bool
	}{
		{"", false},
		{"PERMANENT-KEY-123", false},
		{"EVAL-20260331-x", false}, // valid to the end of its day
		{"EVAL-20260330-x", true},
		{"eval-20250101", true},
	}
	for _, c := range cases {
		err := License(c.key, day)
		if (err != nil) != c.expired {
			t.Errorf("%q: %v", c.key, err)
		}
		if err != nil {
			if m, ok := catalog.Of(err); !ok || m.Text != "LICENSE_ERROR#ret=-1#msg=License Expired" {
				t.Errorf("%q: message %q", c.key, m.Text)
			}
		}
	}
}

func TestProbeReadsBackInAnOrdinaryDirectory(t *testing.T) {
	ProbeSettle = 0
	if err := OnAccessScanner(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := TempSpace(t.TempDir(), 1); err != nil {
		t.Fatal(err)
	}
	if m, _ := catalog.Of(TempSpace(t.TempDir(), 1<<62)); m.ID != "M09" {
		t.Fatalf("no M09 for an impossible minimum: %+v", m)
	}
}
