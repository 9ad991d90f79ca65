package release

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/quarantine"
)

// TestMailReleasedToAnLMTPNextHop: with parent_protocol = lmtp the
// relay's next hop is a mailbox server (Dovecot's LMTP here), and a kept
// mail is released to it as the relay speaks to it: LHLO, a reply per
// recipient; each mailbox gets the mail, marked as released, and the
// release is recorded.
func TestMailReleasedToAnLMTPNextHop(t *testing.T) {
	lmtp := servertest.DovecotLMTP(t)
	host, port, _ := strings.Cut(lmtp.Addr, ":")
	cfg, _, err := conf.Parse("fsigk.ini", []byte(fmt.Sprintf("[smtp]\nenable = yes\nparent_server_host = %s\nparent_server_port = %s\nparent_protocol = lmtp\nhostname = gw.example\n", host, port)), nil)
	if err != nil {
		t.Fatal(err)
	}
	st := &quarantine.Store{Dir: t.TempDir()}
	mail := "From: a@example.org\r\nTo: alice@example.org, bob@example.org\r\nSubject: kept\r\n\r\nthe kept mail\r\n"
	id, err := st.Put(strings.NewReader(mail), int64(len(mail)), quarantine.Meta{Service: "smtp", Client: "127.0.0.1", Sender: "a@example.org",
		Recipients: []string{"alice@example.org", "bob@example.org"}, Verdict: "Test.Kept"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Mail(context.Background(), cfg, st, m, "tester"); err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"alice", "bob"} {
		got := lmtp.Mails(user)
		if len(got) != 1 || !strings.Contains(string(got[0]), "X-Fsigkd-Released: "+id) || !strings.Contains(string(got[0]), "the kept mail") {
			t.Fatalf("%s's mailbox: %q", user, got)
		}
	}
}
