package scanner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/internal/enginetest"
)

func global(t *testing.T, keys string) conf.Global {
	t.Helper()
	cfg, _, err := conf.Parse(filepath.Join(t.TempDir(), "fsigk.ini"), []byte("base_dir = "+t.TempDir()+"\n"+keys), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Global
}

// TestEICAROnlyIsSaid: the bundled fsavd with no signature files (the
// sample's settings) knows EICAR alone, and says so as a problem; with
// files, their signatures are counted by kind and dated, and none is a
// problem while they are fresh.
func TestEICAROnlyIsSaid(t *testing.T) {
	now := time.Now()
	k := Know(context.Background(), global(t, ""))
	if !k.EICAROnly || k.Err != nil {
		t.Fatalf("no signature files: %+v", k)
	}
	p := k.Problems(7*24*time.Hour, now)
	if len(p) != 1 || !strings.Contains(p[0], "detects the EICAR test file and nothing else") {
		t.Fatalf("problems: %q", p)
	}
	sigs := t.TempDir()
	os.WriteFile(filepath.Join(sigs, "a.ndb"), []byte(enginetest.NDB()+"# a comment\n\n"), 0o644)
	os.WriteFile(filepath.Join(sigs, "b.hdb"), []byte("44d88612fea8a8f36de82e1278abb02f:68:Eicar-Hash\n"), 0o644)
	k = Know(context.Background(), global(t, "fsavd_signatures = "+sigs))
	body := len(strings.Fields(enginetest.NDB())) // a signature a line, no spaces in them
	if k.EICAROnly || k.Kinds["body"] != body || k.Kinds["hash"] != 1 || k.Kinds["built-in"] != 1 || now.Sub(k.Newest) > time.Minute {
		t.Fatalf("with files: %+v", k)
	}
	if p := k.Problems(7*24*time.Hour, now); len(p) != 0 {
		t.Fatalf("fresh files: %q", p)
	}
	if s := k.String(); !strings.Contains(s, fmt.Sprintf("%d signatures (body %d, built-in 1, hash 1)", body+2, body)) {
		t.Errorf("%s", s)
	}
}

// TestOldSignaturesAreSaid: signatures whose newest part is older than
// signatures_max_age (an update that stopped) are a problem.
func TestOldSignaturesAreSaid(t *testing.T) {
	sigs := t.TempDir()
	f := filepath.Join(sigs, "a.ndb")
	os.WriteFile(f, []byte(enginetest.NDB()), 0o644)
	old := time.Now().Add(-10 * 24 * time.Hour)
	os.Chtimes(f, old, old)
	k := Know(context.Background(), global(t, "fsavd_signatures = "+sigs))
	p := k.Problems(7*24*time.Hour, time.Now())
	if len(p) != 1 || !strings.Contains(p[0], "signatures are 10 days old (signatures_max_age 7d)") {
		t.Fatalf("problems: %q", p)
	}
}

// TestClamdDatabaseDate: clamd's VERSION names its database and the date
// it was built; the date is what ages.
func TestClamdDatabaseDate(t *testing.T) {
	v, at := clamdDatabase("ClamAV 1.4.3/27481/Fri Dec  5 09:20:00 2025")
	if v != "ClamAV 1.4.3/27481" || at.Format(time.RFC3339) != "2025-12-05T09:20:00Z" {
		t.Fatalf("%q %v", v, at)
	}
	if v, at := clamdDatabase("ClamAV 1.4.3"); v != "ClamAV 1.4.3" || !at.IsZero() {
		t.Fatalf("no date: %q %v", v, at)
	}
}

// TestKnowAsksClamd: the real clamd is asked its version.
func TestKnowAsksClamd(t *testing.T) {
	p := enginetest.Clamd(t, "")
	k := Know(context.Background(), global(t, "av_engine = clamd\nav_servers = "+p.Sock))
	if k.Err != nil || !strings.HasPrefix(k.Version, "ClamAV ") || k.EICAROnly {
		t.Fatalf("%+v", k)
	}
	t.Logf("%s", k)
}
