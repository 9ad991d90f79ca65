package pop3

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/internal/forms"
)

// TestEveryFormOverPOP3: each form of internal/forms attached to a mail
// in Dovecot, retrieved through the proxy: with EICAR, replaced by the
// notice; clean, as Dovecot gives it directly, byte for byte.
func TestEveryFormOverPOP3(t *testing.T) {
	e := newEnv(t, "").withDovecot("")
	all := forms.All(t)
	for _, f := range all {
		e.srv.Put(t, []byte(forms.Mail("a.bin", f.Infected)))
		e.srv.Put(t, []byte(forms.Mail("a.bin", f.Clean)))
	}
	direct, via := e.direct(), e.login()
	for i, f := range all {
		got := string(via.multi(fmt.Sprintf("RETR %d", 2*i+1)))
		if !strings.Contains(got, "X-Virus-Status: infected(") || strings.Contains(got, "--B\r\n") {
			t.Errorf("%s with EICAR: not replaced:\n%.400s", f.Name, got)
		}
		retr := fmt.Sprintf("RETR %d", 2*i+2)
		if d, v := direct.multi(retr), via.multi(retr); !bytes.Equal(d, v) {
			t.Errorf("%s, clean: %d bytes through the proxy, %d direct", f.Name, len(v), len(d))
		}
	}
	via.ok("QUIT")
}
