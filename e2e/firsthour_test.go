package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"

	"turf/internal/turftest"
	"turf/query/settings"
)

// The first hour of a new user, all in the browser, on the real app over an
// empty database (no site, no user): the setup link makes the first admin;
// the admin adds a site, copies its snippet, and a page with that snippet
// sends a page view that the installation check and the dashboard show;
// a page goal converts; a viewer invited for one site logs in and sees that
// site only; a share link and an API key are made and revoked.
//
// Screenshots in English and Dutch are kept under $TURF_E2E_ARTIFACTS (or a
// temporary directory whose path is logged).

const firstPassword = "a first good password"

func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TURF_E2E_ARTIFACTS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "turf-e2e-artifacts-"); err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

func TestFirstHourInTheBrowser(t *testing.T) {
	admin := newTab(t)
	turf := turftest.StartWith(t, turftest.Options{})
	setup := turf.App.SetupPath()
	if setup == "" {
		t.Fatal("no setup link on an empty database")
	}
	dir := artifactDir(t)
	shot := func(tab context.Context, name string) {
		t.Helper()
		png := must(t, tab, chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			shot(admin, "failed-admin.png")
		}
	})
	setLang := func(tab context.Context, l string) {
		t.Helper()
		do(t, tab, chromedp.Click(`[data-lang=`+l+`]`))
		waitJS(t, tab, `document.documentElement.lang === '`+l+`'`)
	}
	do(t, admin, chromedp.EmulateViewport(1280, 900))

	// 1. The setup link, the first admin.
	do(t, admin, chromedp.Navigate(turf.URL+setup+"?lang=nl"))
	waitJS(t, admin, `document.querySelector('#password-form h2').textContent === 'Maak het eerste account'`)
	shot(admin, "01-setup-nl.png")
	do(t, admin, chromedp.Navigate(turf.URL+setup+"?lang=en"))
	waitJS(t, admin, `document.querySelector('#password-form h2').textContent === 'Make the first account'`)
	shot(admin, "01-setup-en.png")
	fill := func(tab context.Context, form string, values map[string]string) {
		t.Helper()
		js := `(() => { const f = document.querySelector('` + form + `'); if (!f) return false;`
		for k, v := range values {
			js += fmt.Sprintf(`f.elements[%q].value = %q;`, k, v)
		}
		waitJS(t, tab, js+` f.requestSubmit(); return true; })()`)
	}
	fill(admin, "#password-form", map[string]string{"username": "root", "password": firstPassword, "repeat": firstPassword})
	waitJS(t, admin, `location.pathname === '/settings' && document.querySelector('#site-form')`)
	if c := httpGet(t, turf.URL+setup, ""); c != 404 {
		t.Errorf("the setup link after use: %d, want 404", c)
	}
	// The page asks before removing or revoking; the test says yes.
	eval[bool](t, admin, `(window.confirm = () => true, true)`)
	shot(admin, "02-settings-empty-en.png")

	// 2. Add a site; copy its snippet; a page with it sends a page view.
	const site = "first.example"
	addSite := func(name string) {
		t.Helper()
		fill(admin, "#site-form", map[string]string{"site": name, "timezone": "Europe/Amsterdam"})
		waitJS(t, admin, fmt.Sprintf(`document.querySelector('tr[data-site=%q]') && document.querySelector('#snippet-box h3').textContent.endsWith(%q)`, name, name))
	}
	addSite(site)
	waitJS(t, admin, `document.querySelector('#verify-status') && !document.querySelector('#verify-status').dataset.verified`)
	do(t, admin, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for _, name := range []string{"clipboard-read", "clipboard-write"} {
			if _, err := cdp.Call(ctx, chromedp.FromContext(ctx).Browser, browser.SetPermission, browser.SetPermissionParams{
				Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted,
				Origin: turf.URL, BrowserContextID: chromedp.FromContext(ctx).BrowserContextID,
			}); err != nil {
				return err
			}
		}
		return nil
	}))
	do(t, admin, chromedp.Click(`#snippet-copy`))
	waitJS(t, admin, `document.querySelector('#snippet-copy').dataset.copied === '1'`)
	snippet := eval[string](t, admin, `navigator.clipboard.readText()`)
	want := `<script defer data-domain="` + site + `" src="` + turf.URL + `/js/script.js"></script>`
	if snippet != want {
		t.Fatalf("copied snippet %q, want %q", snippet, want)
	}
	shot(admin, "03-snippet-waiting-en.png")
	// The tracker leaves out localhost and automated browsers unless told
	// otherwise; the test's page is both, so it adds the two switches.
	page := strings.Replace(snippet, "<script defer", "<script defer data-include-local data-include-webdriver", 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/favicon.ico" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><html><head><title>%s</title>%s</head><body><h1 id=page>%s</h1></body></html>", r.URL.Path, page, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	visitor := newTab(t)
	do(t, visitor, chromedp.Navigate(srv.URL+"/"))
	waitJS(t, visitor, `document.querySelector('#page')`)
	waitJS(t, admin, `document.querySelector('#verify-status').dataset.verified === '1'`)
	// The verified box leads to today, where the first visit is.
	todayLink := eval[string](t, admin, `document.querySelector('#verify-dashboard').getAttribute('href')`)
	if want := "/?site=" + site + "&period=today"; todayLink != want {
		t.Errorf("the verified box links to %q, want %q", todayLink, want)
	}
	shot(admin, "03-snippet-verified-en.png")
	setLang(admin, "nl")
	shot(admin, "03-snippet-verified-nl.png")
	setLang(admin, "en")

	// 3. A page goal, and a visit that converts.
	do(t, admin, chromedp.SetValue(`#goal-kind`, "page"))
	fill(admin, "#goal-form", map[string]string{"site": site, "kind": "page", "value": "/thanks", "currency": ""})
	waitJS(t, admin, `document.querySelector('tr[data-goal="Visit /thanks"]')`)
	do(t, visitor, chromedp.Navigate(srv.URL+"/thanks"))
	waitJS(t, visitor, `document.querySelector('#page').textContent === '/thanks'`)
	deadline := time.Now().Add(waitFor)
	for len(turf.Events(t, "site = ? AND pathname = '/thanks'", site)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the page view of /thanks did not arrive")
		}
		time.Sleep(100 * time.Millisecond)
	}
	do(t, admin, chromedp.Navigate(turf.URL+todayLink))
	waitJS(t, admin, `document.querySelector('[data-panel=goals] .row[data-value="Visit /thanks"]')`)
	conv := eval[string](t, admin, `document.querySelector('[data-panel=goals] .row[data-value="Visit /thanks"] .num').textContent`)
	// The chart runs to the site's current hour (Europe/Amsterdam), not the
	// browser's (UTC here), and that bucket holds the visitor.
	ams, _ := time.LoadLocation("Europe/Amsterdam")
	waitJS(t, admin, `document.querySelector('svg.plot[data-last]')`)
	lastBucket := eval[string](t, admin, `document.querySelector('svg.plot').dataset.last`)
	if want := time.Now().In(ams).Format("2006-01-02 15") + ":00:00=1"; lastBucket != want {
		t.Errorf("the chart's newest bucket is %q, want %q (the site's hour now, 1 visitor)", lastBucket, want)
	}
	if conv != "1" {
		t.Errorf("the goal shows %q visitors, want 1", conv)
	}
	pages := eval[[]string](t, admin, `[...document.querySelectorAll('[data-panel=pages] .row')].map(r => r.dataset.value)`)
	if !slices.Contains(pages, "/") || !slices.Contains(pages, "/thanks") {
		t.Errorf("pages panel %q, want / and /thanks", pages)
	}
	waitJS(t, admin, `document.documentElement.dataset.rendered`)
	shot(admin, "04-dashboard-first-visit-en.png")
	setLang(admin, "nl")
	waitJS(t, admin, `document.documentElement.dataset.rendered && document.querySelector('[data-panel=goals] .row[data-value="Visit /thanks"]')`)
	shot(admin, "04-dashboard-first-visit-nl.png")
	setLang(admin, "en")

	// 4. A viewer of one site.
	do(t, admin, chromedp.Click(`#to-settings`))
	waitJS(t, admin, `location.pathname === '/settings' && document.querySelector('#invite-form')`)
	eval[bool](t, admin, `(window.confirm = () => true, true)`)
	const other = "second.example"
	addSite(other)
	do(t, admin, chromedp.SetValue(`#invite-role`, "viewer"))
	waitJS(t, admin, `(() => { const f = document.querySelector('#invite-form'); f.elements.name.value = 'vera';
		f.querySelector('input[name=invite-sites][value="`+other+`"]').checked = true; f.requestSubmit(); return true; })()`)
	waitJS(t, admin, `document.querySelector('#invite-link')`)
	link := eval[string](t, admin, `document.querySelector('#invite-link').textContent`)
	if !strings.HasPrefix(link, turf.URL+"/invite/") {
		t.Fatalf("invitation link %q", link)
	}
	shot(admin, "05-invited-en.png")
	viewer := newTab(t)
	do(t, viewer, chromedp.EmulateViewport(1280, 900))
	do(t, viewer, chromedp.Navigate(link+"?lang=nl"))
	waitJS(t, viewer, `document.querySelector('#password-form input[name=username]').value === 'vera'`)
	shot(viewer, "05-invitation-nl.png")
	const viewerPassword = "the viewer's password"
	fill(viewer, "#password-form", map[string]string{"password": viewerPassword, "repeat": viewerPassword})
	waitJS(t, viewer, `location.pathname === '/login' && document.querySelector('.login .info')`)
	fill(viewer, "form.card", map[string]string{"username": "vera", "password": viewerPassword})
	waitJS(t, viewer, `location.pathname === '/' && document.documentElement.dataset.rendered`)
	sites := eval[[]string](t, viewer, `JSON.parse(document.getElementById('boot').textContent).sites`)
	if !slices.Equal(sites, []string{other}) {
		t.Errorf("the viewer sees sites %q, want only %s", sites, other)
	}
	if shown := eval[string](t, viewer, `document.querySelector('#site').textContent`); shown != other {
		t.Errorf("the viewer's site is shown as %q", shown)
	}
	if n := eval[int](t, viewer, `document.querySelectorAll('#to-settings').length`); n != 0 {
		t.Error("the viewer is offered the settings")
	}
	status := eval[int](t, viewer, `fetch('/api/v2/query', {method: 'POST', headers: {'Content-Type': 'application/json',
		'X-Turf-CSRF': JSON.parse(document.getElementById('boot').textContent).csrf},
		body: JSON.stringify({site_id: '`+site+`', metrics: ['visitors'], date_range: 'day'})}).then(r => r.status)`)
	if status != 403 {
		t.Errorf("the viewer asking about %s: %d, want 403", site, status)
	}
	shot(viewer, "05-viewer-dashboard-en.png")
	do(t, viewer, chromedp.Navigate(turf.URL+"/settings"))
	if code := eval[string](t, viewer, `document.body.textContent`); !strings.Contains(code, "Only admins") {
		t.Errorf("the viewer's settings page: %q", code)
	}

	// 5. A share link and an API key, made and revoked.
	fill(admin, "#share-form", map[string]string{"site": site, "label": "board"})
	waitJS(t, admin, `document.querySelector('#share-url')`)
	shareURL := eval[string](t, admin, `document.querySelector('#share-url').textContent`)
	if c := httpGet(t, shareURL, ""); c != 200 {
		t.Errorf("share link: %d", c)
	}
	waitJS(t, admin, `(() => { const f = document.querySelector('#key-form'); f.elements.label.value = 'etl';
		f.querySelector('input[name=key-sites][value="`+site+`"]').checked = true; f.requestSubmit(); return true; })()`)
	waitJS(t, admin, `document.querySelector('#key-secret')`)
	key := eval[string](t, admin, `document.querySelector('#key-secret').textContent`)
	if c := apiStatus(t, turf.URL, key, site); c != 200 {
		t.Errorf("the new key: %d", c)
	}
	shot(admin, "06-links-en.png")
	setLang(admin, "nl")
	shot(admin, "06-links-nl.png")
	do(t, admin, chromedp.Click(`tr[data-share] .danger`))
	waitJS(t, admin, `!document.querySelector('tr[data-share]')`)
	do(t, admin, chromedp.Click(`tr[data-key] .danger`))
	waitJS(t, admin, `!document.querySelector('tr[data-key]')`)
	if c := httpGet(t, shareURL, ""); c != 404 {
		t.Errorf("the revoked share link: %d, want 404", c)
	}
	// The API trusts a checked key for its cache time (10s).
	deadline = time.Now().Add(15 * time.Second)
	for apiStatus(t, turf.URL, key, site) != 401 {
		if time.Now().After(deadline) {
			t.Fatal("the revoked key still works after 15s")
		}
		time.Sleep(250 * time.Millisecond)
	}
	do(t, admin, chromedp.Reload())
	waitJS(t, admin, `document.querySelectorAll('#activity tbody tr').length >= 6`)
	shot(admin, "07-activity-nl.png")

	// Every change was logged with who made it.
	log, err := settings.RecentAudit(context.Background(), turf.Conn, turf.DB, 100)
	if err != nil {
		t.Fatal(err)
	}
	var byRoot []string
	for _, e := range log {
		if e.Actor == "root" {
			byRoot = append(byRoot, e.Action)
		}
	}
	for _, a := range []string{"user.add", "site.add", "goal.add", "user.invite", "share.create", "share.revoke", "key.create", "key.revoke"} {
		if !slices.Contains(byRoot, a) {
			t.Errorf("no %s by root in the audit log %q", a, byRoot)
		}
	}
}

func httpGet(t *testing.T, u, cookie string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func apiStatus(t *testing.T, base, key, site string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/v2/query", strings.NewReader(`{"site_id":"`+site+`","metrics":["visitors"],"date_range":"day"}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
