// Package e2e runs turf's tracker in a real browser: Debian's headless
// Chromium, driven by chromedp, loads pages of a small test site that embed
// the script from a running turf (internal/turftest, with a real ClickHouse),
// and the tests assert on the rows that land.
//
// Without Chromium the tests skip on a developer's machine and fail when
// CI=true (apt-get install chromium).
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"

	"turf/internal/chtest"
)

// userAgent replaces HeadlessChrome's own, which the collector rightly drops
// as a bot.
const userAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36"

// waitFor bounds every wait on the browser or the collector; a passing run
// waits far less, polling instead of sleeping.
const waitFor = 15 * time.Second

var (
	browserOnce sync.Once
	browserCtx  context.Context
	browserErr  error
	stopBrowser = func() {}
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopBrowser()
	chtest.Shutdown()
	os.Exit(code)
}

// startBrowser starts the one Chromium that all tests of the package share.
func startBrowser() {
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		browserErr = fmt.Errorf("no chromium in PATH (apt-get install chromium)")
		return
	}
	dir, err := os.MkdirTemp("", "turf-e2e-chromium-")
	if err != nil {
		browserErr = fmt.Errorf("cannot create a profile directory: %w", err)
		return
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dir),
		chromedp.NoSandbox, // tests and CI run as root
		chromedp.UserAgent(userAgent),
		chromedp.Flag("disable-gpu", true),
		// Without these Chromium phones home at start-up, and on a machine
		// without a network those connection attempts get in the way.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	stopBrowser = func() {
		cancel()
		cancelAlloc()
		os.RemoveAll(dir)
	}
	if err := chromedp.Do(ctx); err != nil {
		browserErr = fmt.Errorf("cannot start %s: %w", path, err)
		return
	}
	browserCtx = ctx
}

// newTab opens a tab in a browser context of its own, so that each test
// starts with no cookies or storage, and no test sees another's opt-out.
func newTab(t *testing.T) context.Context {
	t.Helper()
	browserOnce.Do(startBrowser)
	if browserErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("browser tests must run in CI: %v", browserErr)
		}
		t.Skipf("skipping browser test: %v", browserErr)
	}
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("cannot open a tab: %v", err)
	}
	return ctx
}

// do runs browser actions with a time limit, failing the test on error.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression in the tab, awaiting a promise.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitJS waits until a JavaScript expression is truthy in the tab. It polls
// from Go rather than in the page, so that it survives navigations.
func waitJS(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		ok, err := chromedp.Run(cctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (last error: %v)", expr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assertNothingStored checks the tracker's promise to store nothing: no
// cookie anywhere in the test's browser context, and no storage in the page.
func assertNothingStored(t *testing.T, ctx context.Context) {
	t.Helper()
	stored := eval[string](t, ctx, `(async () => {
		const found = [];
		if (document.cookie) found.push('document.cookie=' + document.cookie);
		if (localStorage.length) found.push('localStorage: ' + Object.keys(localStorage));
		if (sessionStorage.length) found.push('sessionStorage: ' + Object.keys(sessionStorage));
		const dbs = await indexedDB.databases();
		if (dbs.length) found.push('indexedDB: ' + dbs.map(d => d.name));
		return found.join('; ');
	})()`)
	if stored != "" {
		t.Errorf("page storage is not empty: %s", stored)
	}
	cookies, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, chromedp.FromContext(ctx).Browser, storage.GetCookies, storage.GetCookiesParams{
			BrowserContextID: chromedp.FromContext(ctx).BrowserContextID,
		})
		return res.Cookies, err
	})
	if err != nil {
		t.Fatalf("cannot list cookies: %v", err)
	}
	for _, c := range cookies {
		t.Errorf("cookie set: %s=%s for %s", c.Name, c.Value, c.Domain)
	}
}
