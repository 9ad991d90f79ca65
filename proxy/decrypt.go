package proxy

import (
	"context"
	"path"

	"github.com/fsigkd/fsigkd/decrypt"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/outcome"
	"github.com/fsigkd/fsigkd/scanner"
)

// openEncrypted is archive_passwords: a mail whose verdict is encrypted
// archives is searched for the passwords its text gives, and the archives
// those open are unpacked and their members scanned and typed like any
// attachment. A detection or a rule in them decides; all of them opened
// and clean, the mail is clean; else the encrypted result enc stands.
func (c *Common) openEncrypted(obj *scanner.Object, meta scanner.Meta, rec *logs.Access, enc outcome.Result) outcome.Result {
	if obj.Files() != nil {
		return enc // unread, nothing is found in it
	}
	passwords, archives := decrypt.Find(obj.File, obj.Size, c.Svc.MaxScanSize)
	if len(passwords) == 0 || len(archives) == 0 {
		return enc
	}
	var found scanner.Verdict
	where := "" // the first member found
	opened, shut := 0, 0
	tries := decrypt.NewTries()
	for _, a := range archives {
		members, _, err := decrypt.Open(a.Data, passwords, c.Svc.MaxScanSize, tries)
		if err != nil {
			shut++
			continue
		}
		if opened++; opened == 1 {
			rec.AddDetail("encrypted archive opened with a password the mail gives")
		}
		for _, m := range members {
			at := a.Where + "/" + m.Name
			v, rule, err := c.scanMember(m, at, meta, rec)
			switch {
			case err != nil:
				return notScanned(err)
			case rule != "":
				return outcome.Result{Kind: outcome.Blocked, Name: rule, Member: at}
			case v.Status != scanner.Clean:
				found.Names = append(found.Names, v.Names...)
				found.Status = max(found.Status, v.Status)
				found.Engine = v.Engine
				if where == "" {
					where = at
				}
			}
		}
	}
	if opened == 0 {
		return enc
	}
	if found.Status == scanner.Clean && shut > 0 {
		return enc // clean as far as opened; the rest no one could look into
	}
	r := resultOf(found)
	r.Member = where
	return r
}

// scanMember spools one member taken out of an encrypted archive, checks
// it against the type and name rules, and has it scanned.
func (c *Common) scanMember(m decrypt.Member, at string, meta scanner.Meta, rec *logs.Access) (scanner.Verdict, string, error) {
	f, err := c.Spool.Create(c.Svc.Name)
	if err != nil {
		return scanner.Verdict{}, "", err
	}
	defer f.Close()
	if _, err := f.Write(m.Data); err != nil {
		return scanner.Verdict{}, "", err
	}
	meta.FileName = path.Base(m.Name)
	obj := objectOf(f, meta)
	if rule, _ := rulesIn(c.Rules, obj, meta.FileName, true); rule != "" {
		return scanner.Verdict{}, rule, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Global.AVTimeout)
	defer cancel()
	rec.Files, rec.Checks = rec.Files+1, rec.Checks+1
	v, err := c.Scanner.Scan(ctx, obj)
	return v, "", err
}
