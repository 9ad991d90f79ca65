package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	gosmtp "github.com/emersion/go-smtp"

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
			name := strings.Trim(strings.ReplaceAll(url, "/", "-"), "-")
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
