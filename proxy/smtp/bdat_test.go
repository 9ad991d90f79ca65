package smtp

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
)

// bdat sends a mail in BDAT chunks over a raw connection and gives the
// reply to the last one.
func (e *env) bdat(t *testing.T, chunks ...string) string {
	t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	reply := func() string {
		var last string
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reply: %v", err)
			}
			if len(l) < 4 || l[3] != '-' {
				return last + l
			}
			last += l
		}
	}
	reply()
	io.WriteString(c, "EHLO client.test\r\n")
	if ehlo := reply(); !strings.Contains(ehlo, "CHUNKING") {
		t.Fatalf("EHLO: %s", ehlo)
	}
	io.WriteString(c, "MAIL FROM:<a@example.com>\r\n")
	reply()
	io.WriteString(c, "RCPT TO:<b@example.com>\r\n")
	reply()
	var last string
	for i, ch := range chunks {
		tail := ""
		if i == len(chunks)-1 {
			tail = " LAST"
		}
		fmt.Fprintf(c, "BDAT %d%s\r\n%s", len(ch), tail, ch)
		last = reply()
	}
	return last
}

// TestBDATChunksAreOneMail: a mail sent in BDAT chunks (CHUNKING, RFC
// 3030) is scanned whole, whatever the cuts: EICAR cut across two chunks
// is refused; a clean mail whose chunk holds a line with a lone dot
// reaches the next hop (over DATA, dot-stuffed) with that line as
// content, not as its end.
func TestBDATChunksAreOneMail(t *testing.T) {
	e := newEnv(t, "")
	e.start()
	head := "From: a@example.com\r\nSubject: chunks\r\n\r\n"
	if r := e.bdat(t, head+eicar.String[:30], eicar.String[30:]+"\r\n"); !strings.HasPrefix(r, "554 ") {
		t.Fatalf("EICAR in two chunks: %s", r)
	}
	if r := e.bdat(t, head+"one\r\n.\r\nMAIL FROM:<evil@example.com>\r\n", "two\r\n"); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("clean: %s", r)
	}
	got := e.sink.Mails()
	if len(got) != 1 || !strings.HasSuffix(string(got[0].Data), head+"one\r\n.\r\nMAIL FROM:<evil@example.com>\r\ntwo\r\n") {
		t.Fatalf("next hop got %d mails: %+v", len(got), got)
	}
}
