package scanner

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/internal/sigfiles"
)

// Knowledge is what the anti-virus engine knows, as far as the gateway
// can learn it: its signature set's version, its signatures by kind, and
// when its newest part was written. An engine that knows only EICAR, or
// whose signatures stopped being updated, protects nobody, and an
// administrator who is not told so believes it does: Problems says it,
// for check, the start, status, the console and /metrics.
type Knowledge struct {
	Engine  string         // "the bundled fsavd", "clamd", ...
	Version string         // as the engine names its set ("" unknown)
	Kinds   map[string]int // signatures by kind (nil: not known)
	Newest  time.Time      // when the newest part was written (zero: not known)
	// EICAROnly: the engine is known to detect nothing but the EICAR
	// test file (the bundled fsavd without signature files, or with
	// none of a kind it reads).
	EICAROnly bool
	// NotRead is how many signatures its files hold of kinds the engine
	// does not read (the bundled fsavd and ClamAV's .cdb, .imp, bytecode...).
	NotRead int
	Err     error // why the engine could not be asked
}

// Problems are the warnings the knowledge calls for: an engine that
// knows only EICAR; signatures older than maxAge at now.
func (k Knowledge) Problems(maxAge time.Duration, now time.Time) []string {
	var p []string
	if k.EICAROnly {
		p = append(p, k.Engine+" has no signatures: it detects the EICAR test file and nothing else. "+
			"Point fsavd_signatures at signature files, or use ClamAV's clamd (the package recommends clamav-daemon): av_engine = clamd, av_servers = /run/clamav/clamd.ctl")
	}
	if k.NotRead > 0 {
		p = append(p, fmt.Sprintf("%s does not read %d of its signature files' signatures (kinds it lacks: PE section, container, bytecode... signatures): they detect nothing here. "+
			"For all of ClamAV's database use clamd: av_engine = clamd, av_servers = /run/clamav/clamd.ctl", k.Engine, k.NotRead))
	}
	if !k.Newest.IsZero() && now.Sub(k.Newest) > maxAge {
		p = append(p, fmt.Sprintf("%s's signatures are %d days old (signatures_max_age %s): their updates have stopped (is freshclam running?)",
			k.Engine, int(now.Sub(k.Newest).Hours()/24), conf.FormatDuration(maxAge)))
	}
	return p
}

// String says what the engine knows, in a line.
func (k Knowledge) String() string {
	var b strings.Builder
	b.WriteString(k.Engine)
	if k.Err != nil {
		fmt.Fprintf(&b, ": not known (%v)", k.Err)
		return b.String()
	}
	if k.Version != "" {
		b.WriteString(", version " + k.Version)
	}
	if k.EICAROnly {
		b.WriteString(", no signature files: the built-in EICAR test signature only")
		return b.String()
	}
	if k.Kinds != nil {
		var kinds []string
		total := 0
		for kind, n := range k.Kinds {
			kinds = append(kinds, fmt.Sprintf("%s %d", kind, n))
			total += n
		}
		sort.Strings(kinds)
		if total == 1 {
			fmt.Fprintf(&b, ", 1 signature (%s)", strings.Join(kinds, ", "))
		} else {
			fmt.Fprintf(&b, ", %d signatures (%s)", total, strings.Join(kinds, ", "))
		}
	}
	if k.NotRead > 0 {
		fmt.Fprintf(&b, ", and %d of kinds it does not read", k.NotRead)
	}
	if !k.Newest.IsZero() {
		b.WriteString(", newest part of " + k.Newest.UTC().Format("2006-01-02 15:04 UTC"))
	}
	return b.String()
}

// Know learns what the engine of g knows: the bundled fsavd's from its
// signature files (as it will load them), clamd's from its VERSION answer
// (its database's version and date), another engine's version where its
// protocol gives one.
func Know(ctx context.Context, g conf.Global) Knowledge {
	if g.AVEngine == "fsavd" && g.FsavdStart {
		k := Knowledge{Engine: "the bundled fsavd"}
		set, err := sigfiles.Describe(g.FsavdSigs)
		if err != nil {
			k.Err = err
			return k
		}
		k.NotRead = set.Kinds["unsupported"]
		delete(set.Kinds, "unsupported")
		delete(set.Kinds, "types") // file types (.ftm): no signatures
		k.EICAROnly = set.Kinds["hash"]+set.Kinds["body"]+set.Kinds["logical"]+set.Kinds["container"] == 0
		set.Kinds["built-in"] = 1 // EICAR
		k.Kinds, k.Newest = set.Kinds, set.Newest
		return k
	}
	k := Knowledge{Engine: g.AVEngine + " at " + g.AVServers}
	s, err := EngineFromConfig(g, zap.NewNop())
	if err != nil {
		k.Err = err
		return k
	}
	v, ok := s.(Versioner)
	if !ok {
		return k // an ICAP server does not say
	}
	if err := v.RefreshVersion(ctx); err != nil {
		k.Err = err
		return k
	}
	k.Version = v.Version()
	if g.AVEngine == "clamd" {
		k.Version, k.Newest = clamdDatabase(k.Version)
	}
	return k
}

// clamdDatabase reads clamd's VERSION answer, "ClamAV 1.4.3/27481/Fri
// Dec  5 09:20:00 2026": the version without the date, and the date its
// newest database part was built (zero when the answer has none).
func clamdDatabase(v string) (string, time.Time) {
	parts := strings.SplitN(v, "/", 3)
	if len(parts) < 3 {
		return v, time.Time{}
	}
	t, err := time.Parse("Mon Jan _2 15:04:05 2006", strings.TrimSpace(parts[2]))
	if err != nil {
		return v, time.Time{}
	}
	return parts[0] + "/" + parts[1], t
}
