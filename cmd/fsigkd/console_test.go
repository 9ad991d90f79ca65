package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	gosmtp "github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// artifacts is where the console's screenshots are kept
// (FSIGKD_ARTIFACTS, else a directory under the system's temp dir).
func artifacts(t *testing.T) string {
	dir := os.Getenv("FSIGKD_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "fsigkd-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestConsoleInABrowser: the console's pages in headless Chromium, with
// JavaScript on and off, after known traffic: the dashboard shows the
// workers `fsigkd status` shows, their slots, the detection in its count
// and in the chart; the detections page the access log's detection; the
// settings page the settings with the licence masked; the error log
// page the log's lines. A phone-sized screenshot of each page is kept.
func TestConsoleInABrowser(t *testing.T) {
	chromium := testenv.Need(t, "chromium", "chromium")
	port := testenv.FreePort(t)
	g := gateway(t, 4, map[string]string{"global": fmt.Sprintf("console_port = %d\nlicense = EVAL-20991231-c0ns0lesecret", port)})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	for i := 0; i < 3; i++ {
		g.fetch(t, fmt.Sprintf("/p%d", i))
	}
	mail := "From: mallory@example.com\r\nSubject: invoice\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream; name=e.com\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte(eicar.String)) + "\r\n"
	sc, err := gosmtp.Dial(g.addr("smtp"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.SendMail("mallory@example.com", []string{"alice@example.com"}, strings.NewReader(mail)); err == nil {
		t.Fatal("the infected mail was taken")
	}
	sc.Close()
	// The workers write their counts every second.
	waitFor(t, func() bool {
		fams := scrape(t, base[len("http://"):])
		return value(fams, "fsigkd_verdicts_total", "service", "smtp", "verdict", "infected") == 1 &&
			value(fams, "fsigkd_objects_total", "service", "http") == 3
	})
	statusOut, _ := exec.Command(binary(t), "status", "-c", g.conf).Output()
	pids := map[string]string{}
	for _, l := range strings.Split(string(statusOut), "\n") {
		if f := strings.Fields(l); len(f) > 2 && (f[0] == "http" || f[0] == "smtp" || f[0] == "ftp") {
			pids[f[0]] = f[1]
		}
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(390, 844)) // a phone's screen
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	dir := artifacts(t)
	for _, js := range []bool{true, false} {
		mode := map[bool]string{true: "js", false: "nojs"}[js]
		ctx, cancel := chromedp.NewContext(actx)
		// The first call starts the browser: no timeout on it.
		if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: !js}); err != nil {
			t.Fatal(err)
		}
		open := func(url string) {
			t.Helper()
			tctx, tcancel := context.WithTimeout(ctx, 30*time.Second)
			defer tcancel()
			if err := chromedp.Do(tctx, chromedp.Navigate(base+url)); err != nil {
				t.Fatalf("%s (%s): %v", url, mode, err)
			}
			shot, err := chromedp.Run(tctx, chromedp.FullScreenshot(100)) // 100: PNG
			if err != nil {
				t.Fatalf("screenshot of %s (%s): %v", url, mode, err)
			}
			name := strings.Trim(strings.NewReplacer("/", "-", "?", "-", "=", "-").Replace(url), "-")
			if name == "" {
				name = "dashboard"
			}
			os.WriteFile(filepath.Join(dir, "console-"+name+"-"+mode+".png"), shot, 0o644)
		}
		text := func(sel string) string {
			t.Helper()
			tctx, tcancel := context.WithTimeout(ctx, 10*time.Second)
			defer tcancel()
			s, err := chromedp.Run(tctx, chromedp.TextContent(chromedp.CSS(sel)))
			if err != nil {
				t.Fatalf("%s (%s): %v", sel, mode, err)
			}
			return strings.TrimSpace(s)
		}
		count := func(sel string) int {
			t.Helper()
			tctx, tcancel := context.WithTimeout(ctx, 10*time.Second)
			defer tcancel()
			nodes, err := chromedp.Run(tctx, chromedp.Nodes(chromedp.CSSAll(sel), chromedp.AtLeast(0)))
			if err != nil {
				t.Fatalf("%s (%s): %v", sel, mode, err)
			}
			return len(nodes)
		}

		open("/")
		for svc, pid := range pids {
			if got := text("#svc-" + svc + " .pid"); got != pid {
				t.Errorf("%s: %s's worker pid %q, status says %q", mode, svc, got, pid)
			}
		}
		if got := text("#svc-http .slots"); got != "0 of 4" {
			t.Errorf("%s: http's slots %q", mode, got)
		}
		if got := text("#svc-smtp .detections"); got != "1" {
			t.Errorf("%s: smtp's detections %q", mode, got)
		}
		if charts, bars := count("svg.chart"), count("svg.chart rect.det"); charts != 2 || bars != 2 {
			t.Errorf("%s: %d charts, %d detection bars (want the detection in the hour's and in the day's)", mode, charts, bars)
		}
		if got := text("#engines"); !strings.Contains(got, "fsavd") || !strings.Contains(got, "up") {
			t.Errorf("%s: engines %q", mode, got)
		}
		// The day's figures: uptime, totals, the cache, temp_dir's room,
		// the quarantine (the mail kept).
		if got := text("#uptime"); got == "" {
			t.Errorf("%s: no uptime", mode)
		}
		if got := text("#objects"); !strings.HasPrefix(got, "4 (") {
			t.Errorf("%s: objects %q (three pages and the mail)", mode, got)
		}
		if got := text("#detections-total"); got != "1" {
			t.Errorf("%s: detections %q", mode, got)
		}
		if got := text("#temp-free"); !strings.Contains(got, "%) in ") {
			t.Errorf("%s: temp_dir's room %q", mode, got)
		}
		if got := text("#quarantine-size"); !strings.HasPrefix(got, "1 entry, ") {
			t.Errorf("%s: quarantine %q", mode, got)
		}
		if got := text("#hit-rate"); !strings.Contains(got, "%") {
			t.Errorf("%s: verdict cache %q", mode, got)
		}
		if n := count(`meta[http-equiv="refresh"]`); n != 1 {
			t.Errorf("%s: the dashboard does not refresh itself", mode)
		}

		open("/detections")
		det := text("#detections")
		for _, want := range []string{"smtp", "Eicar-Test-Signature", "DENY", "mail:<alice@example.com>", "127.0.0.1"} {
			if !strings.Contains(det, want) {
				t.Errorf("%s: the detections page lacks %q:\n%s", mode, want, det)
			}
		}
		if n := strings.Count(det, "Eicar-Test-Signature"); n != 1 {
			t.Errorf("%s: the detection is listed %d times", mode, n)
		}
		// A mail row: its sender, its subject (from the kept mail), the
		// part; the quarantine id links to the entry.
		if got := text("tr.detection .object"); !strings.Contains(got, "from <mallory@example.com>") || !strings.Contains(got, "Subject: invoice") {
			t.Errorf("%s: the mail's row %q", mode, got)
		}
		if got := text("tr.detection .part"); got != "e.com" {
			t.Errorf("%s: the part %q", mode, got)
		}
		tctx, tcancel := context.WithTimeout(ctx, 10*time.Second)
		attr, err := chromedp.Run(tctx, chromedp.AttributeValue(chromedp.CSS("tr.detection .quarantine a"), "href"))
		tcancel()
		href := attr.Value
		if err != nil || !attr.Exists || !strings.HasPrefix(href, "/quarantine/") {
			t.Fatalf("%s: the quarantine link: %q %v", mode, href, err)
		}
		open(href)
		for sel, want := range map[string]string{"#entry-sender": "mallory@example.com", "#entry-recipients": "alice@example.com",
			"#entry-subject": "invoice", "#entry-verdict": "Eicar-Test-Signature", "#entry-member": "e.com"} {
			if got := text(sel); got != want {
				t.Errorf("%s: the entry's %s: %q, want %q", mode, sel, got, want)
			}
		}
		// Without console_password nobody may act here.
		if count("#release")+count("#delete") != 0 || count("#no-actions") != 1 {
			t.Errorf("%s: release or delete offered without a password", mode)
		}
		open("/detections?service=http")
		if n := count("tr.detection"); n != 0 {
			t.Errorf("%s: the filter for http lists %d detections", mode, n)
		}

		open("/settings")
		if set := text("#text"); !strings.Contains(set, fmt.Sprintf("console_port = %d", port)) || strings.Contains(set, "c0ns0lesecret") || !strings.Contains(set, "license = ***") {
			t.Errorf("%s: settings page:\n%.400s", mode, set)
		}
		open("/log")
		if log := text("#text"); !strings.Contains(log, "### START ###") || !strings.Contains(log, "Starting to accept connection") {
			t.Errorf("%s: error log page:\n%.400s", mode, log)
		}
		cancel()
	}
	t.Logf("screenshots in %s", dir)
}

// TestConsoleReleasesAndDeletes: with console_password, an entry's page
// offers release and delete: a kept mail released reaches its recipient
// through the relay's next hop, marked; another deleted is gone; each is
// recorded in the quarantine's log with who did it. A post without the
// page's token, or without the password, does nothing.
func TestConsoleReleasesAndDeletes(t *testing.T) {
	port := testenv.FreePort(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	qdir := filepath.Join(testenv.ShortDir(t), "q")
	g := gateway(t, 4, map[string]string{"global": fmt.Sprintf("console_port = %d\nconsole_password = %s\nquarantine_dir = %s", port, hash, qdir)})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	mail := "From: mallory@example.com\r\nSubject: invoice %d\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream; name=e.com\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte(eicar.String)) + "\r\n"
	for i := 1; i <= 2; i++ {
		sc, err := gosmtp.Dial(g.addr("smtp"))
		if err != nil {
			t.Fatal(err)
		}
		if err := sc.SendMail("mallory@example.com", []string{"alice@example.com"}, strings.NewReader(fmt.Sprintf(mail, i))); err == nil {
			t.Fatal("the infected mail was taken")
		}
		sc.Close()
	}
	var ids []string
	waitFor(t, func() bool {
		ids, _ = filepath.Glob(filepath.Join(qdir, "*.json"))
		return len(ids) == 2
	})
	for i := range ids {
		ids[i] = strings.TrimSuffix(filepath.Base(ids[i]), ".json")
	}
	do := func(method, path, pass string, form url.Values) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if pass != "" {
			req.SetBasicAuth("admin", pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tokenRE := regexp.MustCompile(`action="/quarantine/[^/]+/(release|delete)"><input type="hidden" name="token" value="([0-9a-f]+)">`)
	tokens := func(id string) map[string]string {
		code, page := do("GET", "/quarantine/"+id, "s3cret", nil)
		if code != 200 {
			t.Fatalf("entry page %s: %d", id, code)
		}
		out := map[string]string{}
		for _, m := range tokenRE.FindAllStringSubmatch(page, -1) {
			out[m[1]] = m[2]
		}
		if len(out) != 2 {
			t.Fatalf("the entry's page offers %v:\n%s", out, page)
		}
		return out
	}
	tk := tokens(ids[0])
	if code, _ := do("POST", "/quarantine/"+ids[0]+"/release", "", url.Values{"token": {tk["release"]}}); code != 401 {
		t.Errorf("a release without the password: %d", code)
	}
	if code, _ := do("POST", "/quarantine/"+ids[0]+"/release", "s3cret", url.Values{"token": {tk["delete"]}}); code != 403 {
		t.Errorf("a release with another action's token: %d", code)
	}
	if code, _ := do("POST", "/quarantine/"+ids[0]+"/release", "s3cret", nil); code != 403 {
		t.Errorf("a release without a token: %d", code)
	}
	if n := len(g.hop.Mails()); n != 0 {
		t.Fatalf("%d mails released by refused posts", n)
	}
	if code, page := do("POST", "/quarantine/"+ids[0]+"/release", "s3cret", url.Values{"token": {tk["release"]}}); code != 200 || !strings.Contains(page, "Released to 1 recipient(s)") {
		t.Fatalf("release: %d\n%s", code, page)
	}
	got := g.hop.Mails()
	if len(got) != 1 || got[0].To[0] != "alice@example.com" || !strings.Contains(string(got[0].Data), "X-Fsigkd-Released: "+ids[0]) {
		t.Fatalf("released: %+v", got)
	}
	tk = tokens(ids[1])
	if code, page := do("POST", "/quarantine/"+ids[1]+"/delete", "s3cret", url.Values{"token": {tk["delete"]}}); code != 200 || !strings.Contains(page, "Deleted "+ids[1]) {
		t.Fatalf("delete: %d\n%s", code, page)
	}
	if code, _ := do("GET", "/quarantine/"+ids[1], "s3cret", nil); code != 404 {
		t.Errorf("the deleted entry: %d", code)
	}
	logs, _ := filepath.Glob(filepath.Join(qdir, "log", "*.log"))
	var rec string
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		rec += string(b)
	}
	for _, want := range []string{"release " + ids[0], "delete " + ids[1], "admin@console(127.0.0.1)"} {
		if !strings.Contains(rec, want) {
			t.Errorf("the quarantine's log lacks %q:\n%s", want, rec)
		}
	}
}
