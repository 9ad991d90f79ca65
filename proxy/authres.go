package proxy

import (
	"context"
	"io"
	"net"
	"time"

	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"

	"github.com/fsigkd/fsigkd/spool"
)

// dkimLookupTimeout bounds the signers' key lookups of a mail: it waits
// for its DKIM check no longer than this, whatever DNS does.
const dkimLookupTimeout = 5 * time.Second

// maxSignatures is how many DKIM signatures of one mail are checked (a
// mail carrying thousands costs no more than this).
const maxSignatures = 8

// AuthResults checks the DKIM signatures of the spooled mail f, whose
// header block (ReadHead's) is head, as a receiving mail server does
// (dkim_verify), and gives the value of the Authentication-Results field
// that says what it found, under this gateway's name: "" for an unsigned
// mail, or when the check is off.
func (c *Common) AuthResults(f *spool.File, head []byte) string {
	// Unsigned: nothing to check. A header past maxHead (ReadHead gave
	// maxHead bytes of a larger mail without its end) is not read whole
	// here, as nowhere else: the check would read it all.
	if !c.Svc.DKIMVerify || !signed(head) || len(head) >= maxHead && f.Size() > maxHead {
		return ""
	}
	lookup := c.LookupTXT
	if lookup == nil {
		lookup = net.DefaultResolver.LookupTXT
	}
	// One bound for every key of the mail: a mail of many signatures
	// waits no longer than one.
	ctx, cancel := context.WithTimeout(context.Background(), dkimLookupTimeout)
	defer cancel()
	opts := &dkim.VerifyOptions{MaxVerifications: maxSignatures, LookupTXT: func(name string) ([]string, error) {
		return lookup(ctx, name)
	}}
	// (An error with no verification: a header it cannot read, nothing
	// to say; with some, those checked are said.)
	vs, _ := dkim.VerifyWithOptions(io.NewSectionReader(f, 0, f.Size()), opts)
	if len(vs) == 0 {
		return ""
	}
	results := make([]authres.Result, 0, len(vs))
	for _, v := range vs {
		results = append(results, &authres.DKIMResult{Value: dkimValue(v.Err), Domain: v.Domain, Identifier: v.Identifier})
	}
	return authres.Format(c.Hostname(), results)
}

// dkimValue is a signature's result as RFC 8601 names it.
func dkimValue(err error) authres.ResultValue {
	switch {
	case err == nil:
		return authres.ResultPass
	case dkim.IsTempFail(err):
		return authres.ResultTempError
	case dkim.IsPermFail(err):
		return authres.ResultPermError
	}
	return authres.ResultFail
}
