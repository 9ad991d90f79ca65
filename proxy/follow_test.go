package proxy

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/spool"
)

// following is an engine that counts the follows asked of it.
type following struct {
	scanner.Scanner
	asked int
}

func (e *following) Follow(ctx context.Context, file *os.File) *scanner.Following {
	e.asked++
	return nil
}

// TestFollowStartsOnceForLargeUncodedBodies: the engine is asked to
// follow a body once, when it passes FollowFrom; never one that stays
// below, nor one with a content coding (what is scanned is what it
// decodes to), nor one the spool hashes as it comes for the verdict
// cache (which will likely answer it).
func TestFollowStartsOnceForLargeUncodedBodies(t *testing.T) {
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	for _, c := range []struct {
		name    string
		size    int
		codings []string
		ahead   bool
		want    int
	}{
		{"large", FollowFrom + 3<<20, nil, false, 1},
		{"identity coded", FollowFrom + 1<<20, []string{"identity"}, false, 1},
		{"small", FollowFrom - 1<<20, nil, false, 0},
		{"gzip coded", FollowFrom + 1<<20, []string{"gzip"}, false, 0},
		{"hashed ahead", FollowFrom + 1<<20, nil, true, 0},
	} {
		eng := &following{}
		dir := spool.Dir{Path: t.TempDir(), Hash: true}
		if c.ahead {
			dir.SumAhead = func([32]byte) bool { return true }
		}
		f, err := dir.Create("http")
		if err != nil {
			t.Fatal(err)
		}
		fl := follow{C: &Common{Scanner: eng}, Codings: c.codings}
		for f.Size() < int64(c.size) {
			f.Fill(bytes.NewReader(chunk), 0, func() { fl.Grew(f) })
		}
		fl.Close()
		f.Close()
		if eng.asked != c.want {
			t.Errorf("%s: followed %d times, want %d", c.name, eng.asked, c.want)
		}
	}
}
