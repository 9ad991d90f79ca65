package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/quarantine"
	"github.com/fsigkd/fsigkd/quarantine/release"
)

const quarantineUsage = `usage: fsigkd quarantine [-c FILE] list
       fsigkd quarantine [-c FILE] show ID
       fsigkd quarantine [-c FILE] release ID [-o FILE]
       fsigkd quarantine [-c FILE] delete ID
release: a mail the SMTP relay blocked is sent on to its recipients through
[smtp]'s next hop (unscanned: the release is the administrator's call);
anything else is written to -o FILE (- for standard output).`

// quarantineCmd is `fsigkd quarantine`: what the services with quarantine
// = yes kept, listed, shown, released or deleted.
func quarantineCmd(args []string) int {
	fs := flag.NewFlagSet("fsigkd quarantine", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	file := fs.String("c", DefaultConfig, "settings file")
	out := fs.String("o", "", "where release writes an object")
	// Flags may stand before or after the words.
	var words []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Println(quarantineUsage)
				return 0
			}
			return fail(exitBadUsage, "quarantine: %v", err)
		}
		if fs.NArg() == 0 {
			break
		}
		words = append(words, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(words) == 0 || len(words) > 2 || (words[0] == "list") != (len(words) == 1) {
		return fail(exitBadUsage, "quarantine: %s", strings.ReplaceAll(quarantineUsage, "\n", "\n  "))
	}
	cfg, _, err := conf.Load(*file)
	if err != nil {
		return fail(exitBadFile, "%v", err)
	}
	st := &quarantine.Store{Dir: cfg.Global.QuarantineDir, MaxSize: cfg.Global.QuarantineMax,
		MaxAge: time.Duration(cfg.Global.QuarantineDays) * 24 * time.Hour}
	id := ""
	if len(words) == 2 {
		id = words[1]
	}
	switch words[0] {
	case "list":
		st.Prune()
		list, err := st.List()
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fail(exitBadFile, "quarantine: %v", err)
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTIME (UTC)\tGATEWAY\tSERVICE\tSIZE\tVERDICT\tOBJECT")
		for _, m := range list {
			gw := m.Gateway
			if gw == "" {
				gw = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", m.ID, m.Time.Format("2006-01-02 15:04:05"), gw, m.Service, m.Size, m.Verdict, describe(m))
		}
		tw.Flush()
		return 0
	case "show":
		m, err := st.Get(id)
		if err != nil {
			return fail(exitBadUsage, "quarantine: %s: %v", id, err)
		}
		b, _ := json.MarshalIndent(m, "", "  ")
		fmt.Println(string(b))
		return 0
	case "delete":
		m, err := st.Get(id)
		if err == nil {
			err = release.Delete(st, m, operator())
		}
		if notDone(err) {
			return fail(exitBadUsage, "quarantine: %s: %v", id, err)
		}
		fmt.Printf("deleted %s\n", id)
		return 0
	case "release":
		m, err := st.Get(id)
		if err != nil {
			return fail(exitBadUsage, "quarantine: %s: %v", id, err)
		}
		if m.Service == "smtp" && *out == "" {
			return releaseMail(cfg, st, m)
		}
		if *out == "" {
			return fail(exitBadUsage, "quarantine: release %s: a %s object is written to a file: give -o FILE (- for standard output)", id, m.Service)
		}
		return releaseFile(st, m, *out)
	}
	return fail(exitBadUsage, "quarantine: unknown word %q", words[0])
}

// describe names an entry's object: its URL, or its mail's envelope.
func describe(m quarantine.Meta) string {
	if m.Sender != "" || len(m.Recipients) > 0 {
		return fmt.Sprintf("mail from <%s> to <%s>", m.Sender, strings.Join(m.Recipients, ">, <"))
	}
	return m.URL
}

// releaseFile writes an entry's object to out (a new file, or standard
// output).
func releaseFile(st *quarantine.Store, m quarantine.Meta, out string) int {
	var w io.Writer = os.Stdout
	if out != "-" {
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fail(exitBadUsage, "quarantine: %v", err)
		}
		defer f.Close()
		w = f
	}
	if err := release.File(st, m, w, out, operator()); notDone(err) {
		return fail(exitBadFile, "quarantine: %s: %v", m.ID, err)
	}
	if out != "-" {
		fmt.Printf("released %s to %s (%d bytes)\n", m.ID, out, m.Size)
	}
	return 0
}

// notDone tells whether err means the action was not done; an action
// done but not recorded is said, and counts as done.
func notDone(err error) bool {
	var nr *release.NotRecorded
	if errors.As(err, &nr) {
		fmt.Fprintf(os.Stderr, "quarantine: %v\n", err)
		return false
	}
	return err != nil
}

// operator is who acts: the user; under sudo, the user who ran sudo too.
func operator() string {
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	if su := os.Getenv("SUDO_USER"); su != "" {
		who += "(sudo:" + su + ")"
	}
	return who
}

// releaseMail sends a blocked mail on to its recipients through the SMTP
// relay's next hop, marked as released.
func releaseMail(cfg *conf.Config, st *quarantine.Store, m quarantine.Meta) int {
	done, err := release.Mail(context.Background(), cfg, st, m, operator())
	if notDone(err) {
		return fail(exitBadUsage, "quarantine: release %s: %v; give -o FILE", m.ID, err)
	}
	fmt.Printf("released %s %s\n", m.ID, done)
	return 0
}
