package proxy

import (
	"os"

	"github.com/fsigkd/fsigkd/policy"
	"github.com/fsigkd/fsigkd/unpack"
)

// rulesIn walks the first size bytes of the open file f as the bundled
// engine opens objects (archives, compressed streams, and with mail set
// MIME parts; within its limits) and gives the first of r's type and name
// rules that refuses the object or something in it, and where ("" for the
// object itself, else the member's path). name is the object's own name
// ("" when it has none). A file that cannot be read is not judged here:
// the scan meets it. The walk lives here, not in policy, so that the
// settings (conf, which checks the rules) do not pull in the archive
// readers.
func rulesIn(r *policy.Rules, f *os.File, size int64, name string, mail bool) (rule, where string) {
	if r.Empty() || f == nil {
		return "", "" // no rules, or nothing to read (an object that could not be written to its file)
	}
	check := func(data []byte, at string) bool {
		n := at
		if at == "" {
			n = name
		}
		if rule = r.Check(data, n); rule != "" {
			where = at
			return true
		}
		return false
	}
	if err := unpack.WalkFile(f, size, unpack.Options{Archives: true, MIME: mail}, unpack.Limits{}, check); err == nil && rule == "" {
		return "", ""
	}
	return rule, where
}
