package console

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/quarantine"
)

// Quarantine is the quarantine as the console reads it and acts on it
// (the master's, on its quarantine_dir: a shared one shows every
// gateway's entries).
type Quarantine interface {
	Get(id string) (quarantine.Meta, error)
	// Head is the first bytes of an entry's object (a mail's header).
	Head(id string, n int) ([]byte, error)
	// Usage is the entries kept and their bytes.
	Usage() (entries int, bytes int64)
	// Release releases an entry for who (a mail: on to its recipients),
	// saying what was done; Delete deletes it. Both are recorded.
	Release(ctx context.Context, id, who string) (string, error)
	Delete(id, who string) error
}

// entryPage shows a quarantine entry: what is known of it, a mail's
// subject, and, for the administrator with the password, release and
// delete.
func (p *Pages) entryPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	pg := page{Title: "Quarantine entry " + id, Active: "detections"}
	m, err := p.entry(id)
	if err != nil {
		w.WriteHeader(http.StatusNotFound)
		pg.Error = "No such entry in the quarantine (released, deleted, or pruned by quarantine_days and quarantine_max_size)."
		p.render(w, "entry.html", pg)
		return
	}
	e := &entryView{Meta: m, Subject: p.subjectOf(m), CanAct: p.canAct(), Mail: m.Service == "smtp" || m.Service == "pop" || m.Service == "milter",
		ReleaseToken: p.token("release", id), DeleteToken: p.token("delete", id)}
	e.Releasable = m.Service == "smtp"
	switch r.URL.Query().Get("done") {
	case "released":
		pg.Warning = "Released " + r.URL.Query().Get("how") + "."
	}
	pg.Entry = e
	p.render(w, "entry.html", pg)
}

// entryView is an entry as its page shows it.
type entryView struct {
	quarantine.Meta
	Subject                   string
	Mail                      bool
	CanAct                    bool // the console has a password: release and delete are offered
	Releasable                bool // a mail the relay kept: it can be sent on
	ReleaseToken, DeleteToken string
}

func (p *Pages) entry(id string) (quarantine.Meta, error) {
	if p.src.Quarantine == nil || !quarantine.ValidID(id) {
		return quarantine.Meta{}, errors.New("no such entry")
	}
	return p.src.Quarantine.Get(id)
}

// subjectOf is the Subject of a kept mail ("" for anything else, or a
// mail without one).
func (p *Pages) subjectOf(m quarantine.Meta) string {
	if m.Service != "smtp" && m.Service != "pop" && m.Service != "milter" {
		return ""
	}
	head, err := p.src.Quarantine.Head(m.ID, 16<<10)
	if err != nil {
		return ""
	}
	if i := bytes.Index(head, []byte("\r\n\r\n")); i >= 0 {
		head = head[:i+2]
	} else if i := bytes.Index(head, []byte("\n\n")); i >= 0 {
		head = head[:i+1]
	}
	msg, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(append(head, "\r\n"...))))
	if err != nil {
		return ""
	}
	s := msg.Header.Get("Subject")
	if d, err := new(mime.WordDecoder).DecodeHeader(s); err == nil {
		s = d
	}
	return s
}

// act is a release or a delete, posted from the entry's page: only with
// the console's password (every page is then behind it), and only with
// the page's token for that action and entry, so that another site
// cannot have the administrator's browser post it.
func (p *Pages) act(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	if !p.canAct() || p.src.Quarantine == nil {
		http.Error(w, "Releasing and deleting from the console need console_password.", http.StatusForbidden)
		return
	}
	if (action != "release" && action != "delete") || !hmac.Equal([]byte(r.PostFormValue("token")), []byte(p.token(action, id))) {
		http.Error(w, "This form is stale or not the console's own: open the entry again.", http.StatusForbidden)
		return
	}
	m, err := p.entry(id)
	if err != nil {
		http.Error(w, "No such entry in the quarantine.", http.StatusNotFound)
		return
	}
	who := User + "@console"
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		who += "(" + host + ")"
	}
	if action == "delete" {
		if err := p.src.Quarantine.Delete(m.ID, who); err != nil {
			http.Error(w, "The entry could not be deleted: "+err.Error(), http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, "/detections?deleted="+url.QueryEscape(m.ID), http.StatusSeeOther)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	how, err := p.src.Quarantine.Release(ctx, m.ID, who)
	if err != nil {
		http.Error(w, "The entry could not be released: "+err.Error(), http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, "/quarantine/"+m.ID+"?done=released&how="+url.QueryEscape(how), http.StatusSeeOther)
}

// canAct tells whether release and delete are offered.
func (p *Pages) canAct() bool { return p.src.CanAct != nil && p.src.CanAct() }

// token is the form token of action on entry id: keyed by this
// console's own secret, so only its pages carry it.
func (p *Pages) token(action, id string) string {
	h := hmac.New(sha256.New, p.secret)
	h.Write([]byte(action + "\x00" + id))
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// detectionRow is a detection as the detections page lists it.
type detectionRow struct {
	logs.Access
	Kept    bool   // its quarantine entry is still there
	Subject string // a kept mail's
}

// detectionsPerPage is how many detections a page lists.
const detectionsPerPage = 50

// filter is the detections page's filter: a service, and words found in
// the name, client, object, user or file.
type filter struct {
	Service, Words string
	Page           int
}

func filterOf(r *http.Request) filter {
	f := filter{Service: r.URL.Query().Get("service"), Words: strings.TrimSpace(r.URL.Query().Get("q"))}
	f.Page, _ = strconv.Atoi(r.URL.Query().Get("page"))
	f.Page = max(f.Page, 1)
	return f
}

func (f filter) match(a logs.Access) bool {
	if f.Service != "" && a.Service != f.Service {
		return false
	}
	if f.Words == "" {
		return true
	}
	hay := strings.ToLower(strings.Join([]string{a.Name, a.Client, a.URL, a.User, a.File, a.Quarantine}, " "))
	for _, w := range strings.Fields(strings.ToLower(f.Words)) {
		if !strings.Contains(hay, w) {
			return false
		}
	}
	return true
}

// link is the page's address for another page of the same filter.
func (f filter) link(page int) string {
	v := url.Values{}
	if f.Service != "" {
		v.Set("service", f.Service)
	}
	if f.Words != "" {
		v.Set("q", f.Words)
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	if len(v) == 0 {
		return "/detections"
	}
	return "/detections?" + v.Encode()
}
