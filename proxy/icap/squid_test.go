package icap

import (
	"bytes"
	"crypto/rand"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// TestSquid: Squid 5 with fsigkd as its ICAP server, driven by curl:
// clean downloads byte for byte (small, and larger than what Squid sends
// before it waits for an answer), EICAR downloads and uploads blocked with
// the block page, EICAR at the end of a large download cut off (never a
// whole object), Squid's logs showing the ICAP status.
func TestSquid(t *testing.T) {
	curl := testenv.Need(t, "curl", "curl")
	e := newEnv(t, "")
	sq := servertest.Squid(t, e.addr)
	small := []byte("a small clean page\n")
	big := make([]byte, 5<<20)
	rand.Read(big)
	origin, _ := net.Listen("tcp", "127.0.0.1:0")
	defer origin.Close()
	go http.Serve(origin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/eicar.com":
			w.Write([]byte(eicar.String))
		case "/big":
			w.Write(big)
		case "/big-eicar":
			w.Write(big)
			w.Write([]byte(eicar.String))
		case "/eicar-big":
			w.Write([]byte(eicar.String))
			w.Write(big)
		default:
			w.Write(small)
		}
	}))
	base := "http://" + origin.Addr().String()
	get := func(args ...string) (string, []byte) {
		out, err := exec.Command(curl, append([]string{"-s", "--max-time", "60", "-x", "http://" + sq.Addr, "-w", "\n%{http_code}"}, args...)...).Output()
		if err != nil {
			t.Logf("curl %v: %v", args, err)
		}
		i := bytes.LastIndexByte(out, '\n')
		if i < 0 {
			return "", out
		}
		return string(out[i+1:]), out[:i]
	}
	if code, body := get(base + "/small"); code != "200" || !bytes.Equal(body, small) {
		t.Errorf("small clean: %s %q", code, body)
	}
	start := time.Now()
	if code, body := get(base + "/big"); code != "200" || !bytes.Equal(body, big) {
		t.Errorf("5 MiB clean: %s, %d bytes", code, len(body))
	}
	t.Logf("5 MiB through Squid and fsigkd's ICAP: %v", time.Since(start))
	if code, body := get(base + "/big-eicar"); code == "200" && len(body) == len(big)+len(eicar.String) || bytes.Contains(body, []byte(eicar.String)) {
		t.Errorf("EICAR at the end of 5 MiB came through whole: %s, %d bytes", code, len(body))
	}
	// Found in a prefix, before anything went back: the block page.
	if code, body := get(base + "/eicar-big"); code != "403" || !bytes.Contains(body, []byte("Eicar-Test-Signature")) {
		t.Errorf("EICAR at the start of 5 MiB: %s %.200s", code, body)
	}
	if code, body := get(base + "/eicar.com"); code != "403" || !bytes.Contains(body, []byte("Eicar-Test-Signature")) || bytes.Contains(body, []byte("EICAR-STANDARD")) {
		t.Errorf("EICAR download: %s %.300s", code, body)
	}
	if code, body := get("-X", "POST", "--data-binary", eicar.String, base+"/upload"); code != "403" || !bytes.Contains(body, []byte("Eicar-Test-Signature")) {
		t.Errorf("EICAR upload: %s %.300s", code, body)
	}
	if code, _ := get("-X", "POST", "--data-binary", "name=value", base+"/upload"); code != "200" {
		t.Errorf("clean upload: %s", code)
	}
	time.Sleep(200 * time.Millisecond) // Squid writes its logs after the reply
	if log := sq.ICAPLog(); !strings.Contains(log, "ICAP_MOD/200") || !strings.Contains(log, "ICAP_ECHO/204") {
		t.Errorf("Squid's icap.log does not show the ICAP statuses:\n%s", log)
	}
	e.waitLog("DETECT-STAT:INFECTED:Eicar-Test-Signature", "/eicar.com", "/upload")
}

// TestE2guardian: e2guardian's ICAP content scanner with fsigkd as its
// server: EICAR blocked with the threat's name, a clean file byte for
// byte.
func TestE2guardian(t *testing.T) {
	curl := testenv.Need(t, "curl", "curl")
	e := newEnv(t, "")
	clean := make([]byte, 100<<10)
	rand.Read(clean)
	origin, _ := net.Listen("tcp", "127.0.0.1:0")
	defer origin.Close()
	go http.Serve(origin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/eicar.txt" {
			w.Write([]byte(eicar.String))
			return
		}
		w.Write(clean)
	}))
	e2 := servertest.E2guardian(t, "icap://"+e.addr+"/avscan")
	get := func(path string) []byte {
		out, _ := exec.Command(curl, "-s", "--max-time", "30", "-x", "http://"+e2.Addr, "http://"+origin.Addr().String()+path).Output()
		return out
	}
	if got := get("/clean.txt"); !bytes.Equal(got, clean) {
		t.Errorf("clean: %d bytes back, want %d", len(got), len(clean))
	}
	if got := get("/eicar.txt"); !bytes.Contains(got, []byte("Eicar-Test-Signature")) || bytes.Contains(got, []byte("EICAR-STANDARD")) {
		t.Errorf("EICAR through e2guardian:\n%.400s", got)
	}
	e.waitLog("DETECT-STAT:INFECTED:Eicar-Test-Signature")
}
