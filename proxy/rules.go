package proxy

import (
	"github.com/fsigkd/fsigkd/policy"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/unpack"
)

// rulesIn walks obj (its bytes when held in memory, else the first Size
// bytes of its open file) as the bundled engine opens objects (archives,
// compressed streams, and with mail set MIME parts; within its limits)
// and gives the first of r's type and name rules that refuses the object
// or something in it, and where ("" for the object itself, else the
// member's path). name is the object's own name ("" when it has none). A
// file that cannot be read is not judged here: the scan meets it. The
// walk lives here, not in policy, so that the settings (conf, which
// checks the rules) do not pull in the archive readers.
func rulesIn(r *policy.Rules, obj *scanner.Object, name string, mail bool) (rule, where string) {
	if r.Empty() {
		return "", ""
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
	opt := unpack.Options{Archives: true, MIME: mail}
	switch {
	case obj.InMemory():
		unpack.Walk(obj.Data, opt, unpack.Limits{}, check)
	case obj.File == nil:
		return "", ""
	default:
		if err := unpack.WalkFile(obj.File, obj.Size, opt, unpack.Limits{}, check); err != nil {
			return "", ""
		}
	}
	return rule, where
}
