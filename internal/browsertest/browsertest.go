// Package browsertest starts Chromium for tests (driven by chromedp): the
// real browser, for what a page does in one.
package browsertest

import (
	"context"
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
