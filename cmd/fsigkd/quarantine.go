package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/notify"
	smtpproxy "github.com/fsigkd/fsigkd/proxy/smtp"
	"github.com/fsigkd/fsigkd/quarantine"
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
			err = st.Delete(id)
		}
		if err != nil {
			return fail(exitBadUsage, "quarantine: %s: %v", id, err)
		}
		record(st, "delete", m, "")
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
	src, err := st.Open(m.ID)
	if err != nil {
		return fail(exitBadUsage, "quarantine: %s: %v", m.ID, err)
	}
	defer src.Close()
	var w io.Writer = os.Stdout
	if out != "-" {
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fail(exitBadUsage, "quarantine: %v", err)
		}
		defer f.Close()
		w = f
	}
	if _, err := io.Copy(w, src); err != nil {
		return fail(exitBadFile, "quarantine: %v", err)
	}
	record(st, "release", m, "to "+out)
	if out != "-" {
		fmt.Printf("released %s to %s (%d bytes)\n", m.ID, out, m.Size)
	}
	return 0
}

// record says an action in this gateway's log in the quarantine, with
// who did it (the user; under sudo, the user who ran sudo too) and the
// gateway that kept the entry; a failure to record is said, not fatal.
func record(st *quarantine.Store, action string, m quarantine.Meta, detail string) {
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	if su := os.Getenv("SUDO_USER"); su != "" {
		who += "(sudo:" + su + ")"
	}
	if m.Gateway != "" {
		detail = strings.TrimSpace(detail + " kept-by=" + m.Gateway)
	}
	if err := st.Record(action, m.ID, who, detail); err != nil {
		fmt.Fprintf(os.Stderr, "quarantine: recording the %s: %v\n", action, err)
	}
}

// releaseMail sends a blocked mail on to its recipients through the SMTP
// relay's next hop, marked as released.
func releaseMail(cfg *conf.Config, st *quarantine.Store, m quarantine.Meta) int {
	smtp := cfg.Services["smtp"]
	if smtp.ParentServerHost == "" || len(m.Recipients) == 0 {
		return fail(exitBadUsage, "quarantine: release %s: no next hop ([smtp] parent_server_host) or no recipients; give -o FILE", m.ID)
	}
	// The relay's own rule, as the settings say now: a mail kept from a
	// client outside relay_clients goes only to local_domains, as the
	// relay would have sent it.
	rule := smtpproxy.RelayRuleOf(smtp)
	for _, rcpt := range m.Recipients {
		if rule.Denied(net.ParseIP(m.Client), rcpt) {
			return fail(exitBadUsage, "quarantine: release %s: the relay does not send to %s for client %s (local_domains, relay_clients); give -o FILE", m.ID, rcpt, m.Client)
		}
	}
	src, err := st.Open(m.ID)
	if err != nil {
		return fail(exitBadUsage, "quarantine: %s: %v", m.ID, err)
	}
	data, err := io.ReadAll(src)
	src.Close()
	if err != nil {
		return fail(exitBadFile, "quarantine: %v", err)
	}
	host := smtp.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	mark := fmt.Sprintf("X-Fsigkd-Released: %s (%s), by the administrator\r\n", m.ID, m.Verdict)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sender := &notify.Sender{Host: smtp.ParentServerHost, Port: smtp.ParentServerPort, Helo: host}
	if err := sender.Send(ctx, notify.Mail{From: m.Sender, To: m.Recipients, Data: append([]byte(mark), data...)}); err != nil {
		return fail(exitBadFile, "quarantine: release %s: the next hop %s:%d: %v", m.ID, smtp.ParentServerHost, smtp.ParentServerPort, err)
	}
	record(st, "release", m, fmt.Sprintf("to %d recipient(s) through %s:%d", len(m.Recipients), smtp.ParentServerHost, smtp.ParentServerPort))
	fmt.Printf("released %s to %d recipient(s) through %s:%d\n", m.ID, len(m.Recipients), smtp.ParentServerHost, smtp.ParentServerPort)
	return 0
}
