package icap

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/internal/forms"
)

// TestEveryFormOverICAP: each form of internal/forms as a response body
// (RESPMOD) and an upload (REQMOD): with EICAR, the threat named; clean,
// 204 (the client delivers its own copy, unchanged).
func TestEveryFormOverICAP(t *testing.T) {
	e := newEnv(t, "")
	res := "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
	req := "POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
	for _, f := range forms.All(t) {
		if resp := respmod(t, e.addr, "/avscan", fmt.Sprintf(res, len(f.Infected)), f.Infected, -1); !strings.Contains(resp, "Threat=Eicar-Test-Signature") {
			t.Errorf("%s with EICAR, RESPMOD:\n%.300s", f.Name, resp)
		}
		if resp := respmod(t, e.addr, "/avscan", fmt.Sprintf(res, len(f.Clean)), f.Clean, -1); !strings.HasPrefix(resp, "ICAP/1.0 204") {
			t.Errorf("%s, clean, RESPMOD:\n%.300s", f.Name, resp)
		}
		if resp := reqmod(t, e.addr, fmt.Sprintf(req, len(f.Infected)), f.Infected); !strings.Contains(resp, "Threat=Eicar-Test-Signature") {
			t.Errorf("%s with EICAR, REQMOD:\n%.300s", f.Name, resp)
		}
		if resp := reqmod(t, e.addr, fmt.Sprintf(req, len(f.Clean)), f.Clean); !strings.HasPrefix(resp, "ICAP/1.0 204") {
			t.Errorf("%s, clean, REQMOD:\n%.300s", f.Name, resp)
		}
	}
}
