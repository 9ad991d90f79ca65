package notify

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// fakeServer answers each step of a dialogue as replies say, as an
// ordinary server otherwise.
func fakeServer(t *testing.T, replies map[string]string) (string, int) {
	addr := servertest.ScriptedSMTP(t, func(stage, _ string) string {
		if r, ok := replies[stage]; ok {
			return r
		}
		return servertest.SMTPDefault(stage)
	})
	host, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return host, n
}

func send(t *testing.T, s *Sender) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Send(ctx, Mail{From: "gw@example.com", To: []string{"admin@example.com"}, Data: []byte("Subject: x\r\n\r\n.dot\r\n")})
}

func TestAdminFailuresAreDocumentedMessages(t *testing.T) {
	host, port := fakeServer(t, nil)
	if err := send(t, &Sender{Host: host, Port: port}); err != nil {
		t.Fatalf("a good server: %v", err)
	}

	err := send(t, &Sender{Host: "admin-mx.invalid", Port: 25, Resolver: servertest.NXDomain(t)})
	if m := AdminFailure("admin-mx.invalid", 25, err).Msg.Text; m != "getaddrinfo failed. admin_mx_host=[admin-mx.invalid] admin_mx_port=[25] gai_strerror=[Name or service not known]" {
		t.Errorf("M03: %q (%v)", m, err)
	}

	dead := testenv.FreePort(t)
	err = send(t, &Sender{Host: "127.0.0.1", Port: dead})
	if m := AdminFailure("127.0.0.1", dead, err).Msg.Text; m != "connect=Connection refused(111) cannot connect to admin mail server[127.0.0.1:"+strconv.Itoa(dead)+"]" {
		t.Errorf("M04: %q", m)
	}

	for _, stage := range []string{"GREETING", "HELO", "MAIL FROM", "DATA", "DATA END", "QUIT"} {
		h, p := fakeServer(t, map[string]string{stage: "554 5.0.0 refused at " + stage})
		err := send(t, &Sender{Host: h, Port: p})
		want := map[string]int{"GREETING": 220, "DATA": 354, "QUIT": 221}[stage]
		if want == 0 {
			want = 250
		}
		if m := AdminFailure(h, p, err).Msg.Text; m != fmt.Sprintf("smtp error: %s line: buf=[554 5.0.0 refused at %s] (expected %d)", stage, stage, want) {
			t.Errorf("M05 at %s: %q", stage, m)
		}
	}
	host, port = fakeServer(t, map[string]string{"RCPT TO": "550 5.1.1 no such user"})
	err = send(t, &Sender{Host: host, Port: port})
	if m := AdminFailure(host, port, err).Msg.Text; m != "smtp error: RCPT TO line: buf=[550 5.1.1 no such user] (expected 250)" {
		t.Errorf("M05: %q", m)
	}
	if m := NoticeFailure("delete", err).Msg.Text; m != "[delete]:smtp error:[RCPT TO]: buf=[550 5.1.1 no such user]" {
		t.Errorf("M11: %q", m)
	}
}

func TestStormBecomesADigest(t *testing.T) {
	admin := servertest.NewMailSink(t, nil, nil)
	_, p, _ := net.SplitHostPort(admin.Addr)
	port, _ := strconv.Atoi(p)
	a := &Admin{Sender: &Sender{Host: "127.0.0.1", Port: port}, From: "gw@x", To: "admin@x", ID: "id", Interval: time.Hour, DigestAfter: 3}
	for i := 0; i < 50; i++ {
		a.Notify(Notice{Subject: "virus " + strconv.Itoa(i), Body: "b"})
	}
	a.Close()
	var subjects []string
	for _, m := range admin.Mails() {
		_, rest, _ := strings.Cut(string(m.Data), "\r\nSubject: ")
		subject, _, _ := strings.Cut(rest, "\r\n")
		subjects = append(subjects, subject)
	}
	// At most DigestAfter one by one, the rest in one digest: every
	// notice accounted for, never 50 mails.
	covered, digests := 0, 0
	for _, s := range subjects {
		var n int
		if _, err := fmt.Sscanf(s, "[fsigkd] %d detections (digest)", &n); err == nil {
			covered += n
			digests++
		} else {
			covered++
		}
	}
	if covered != 50 || digests != 1 || len(subjects) > 4 {
		t.Fatalf("50 notices sent as %d mails: %q", len(subjects), subjects)
	}
}

func TestTemplates(t *testing.T) {
	ts, err := LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	n, err := ts.Render("sender", Fields{Name: "Eicar-Test-Signature", Recipients: []string{"a@x", "b@x"}})
	if err != nil || n.Subject != "Your mail was not delivered: virus found" || !strings.Contains(n.Body, "<a@x>, <b@x> carried Eicar-Test-Signature") {
		t.Fatalf("%+v %v", n, err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "admin.txt"), []byte("Subject: VIRUS {{.Name}}\n\nat {{.Object}}\n"), 0o644)
	ts, err = LoadTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	n, _ = ts.Render("admin", Fields{Name: "X", Object: "http://e/"})
	if n.Subject != "VIRUS X" || n.Body != "at http://e/\r\n" {
		t.Fatalf("%+v", n)
	}
	os.WriteFile(filepath.Join(dir, "recipient.txt"), []byte("no subject line {{.Nope}}\n"), 0o644)
	if _, err := LoadTemplates(dir); err == nil {
		t.Fatal("a bad template loaded")
	}
}
