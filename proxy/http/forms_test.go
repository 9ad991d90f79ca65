package http

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/internal/forms"
)

// TestEveryFormOverHTTP: each form of internal/forms through the proxy,
// downloaded and uploaded: with EICAR, the block page (an upload never
// reaches the server); clean, byte for byte both ways.
func TestEveryFormOverHTTP(t *testing.T) {
	e := newEnv(t, "")
	for i, f := range forms.All(t) {
		bad, good, up := fmt.Sprintf("/bad%d", i), fmt.Sprintf("/good%d", i), fmt.Sprintf("/up%d", i)
		e.serve(bad, f.Infected)
		e.serve(good, f.Clean)
		e.serve(up, nil)
		if code, body := e.get(bad); code != 403 || !strings.Contains(string(body), "Eicar-Test-Signature") {
			t.Errorf("%s with EICAR: %d", f.Name, code)
		}
		if code, body := e.get(good); code != 200 || !bytes.Equal(body, f.Clean) {
			t.Errorf("%s, clean: %d, %d bytes of %d", f.Name, code, len(body), len(f.Clean))
		}
		for _, body := range [][]byte{f.Infected, f.Clean} {
			resp, err := e.client().Post(e.url(up), "application/octet-stream", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			e.mu.Lock()
			got, reached := e.got[up]
			e.mu.Unlock()
			infected := bytes.Equal(body, f.Infected)
			switch {
			case infected && (resp.StatusCode != 403 || reached):
				t.Errorf("%s with EICAR, uploaded: %d, reached the server: %v", f.Name, resp.StatusCode, reached)
			case !infected && (resp.StatusCode != 200 || !bytes.Equal(got, f.Clean)):
				t.Errorf("%s, clean, uploaded: %d, the server got %d bytes of %d", f.Name, resp.StatusCode, len(got), len(f.Clean))
			}
		}
	}
}
