// Package browsertest starts Chromium for tests (driven by chromedp): the
// real browser, for what a page does in one.
package browsertest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// Start starts Chromium headless with the options given besides the
// usual ones (no sandbox, as root in a container; no GPU), and gives the
// context of its first tab, once the browser runs. It skips, or fails
// under CI, where Chromium is not installed; the browser ends with the
// test.
func Start(t testing.TB, opts ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	chromium := testenv.Need(t, "chromium", "chromium")
	all := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(all, opts...)...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil { // starts the browser
		t.Fatal(err)
	}
	return ctx
}

// ServePages serves pages (by name, as text/html) on a port of
// 127.0.0.1 until the test ends, and gives its base URL.
func ServePages(t testing.TB, pages map[string][]byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write(pages[strings.TrimPrefix(r.URL.Path, "/")])
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
