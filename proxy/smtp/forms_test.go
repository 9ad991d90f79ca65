package smtp

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/internal/forms"
)

// TestEveryFormOverSMTP: each form of internal/forms attached to a mail
// sent through the relay: with EICAR, refused with 554 and never
// delivered; clean, delivered, its body byte for byte.
func TestEveryFormOverSMTP(t *testing.T) {
	e := newEnv(t, "")
	e.start()
	for _, f := range forms.All(t) {
		if err := e.send("a@example.com", []string{"b@example.com"}, forms.Mail("a.bin", f.Infected)); code(err) != 554 || !strings.Contains(err.Error(), "Infected by Eicar-Test-Signature") {
			t.Errorf("%s with EICAR: %v", f.Name, err)
		}
		n := len(e.sink.Mails())
		clean := forms.Mail("a.bin", f.Clean)
		if err := e.send("a@example.com", []string{"b@example.com"}, clean); err != nil {
			t.Errorf("%s, clean: %v", f.Name, err)
			continue
		}
		mails := e.sink.Mails()
		body := clean[strings.Index(clean, "\r\n\r\n"):]
		if len(mails) != n+1 || !bytes.HasSuffix(mails[n].Data, []byte(body)) {
			t.Errorf("%s, clean: not delivered whole", f.Name)
		}
	}
	for _, m := range e.sink.Mails() {
		if strings.Contains(string(m.Data), "X-Virus-Status: infected") {
			t.Fatal("an infected mail was delivered")
		}
	}
}
