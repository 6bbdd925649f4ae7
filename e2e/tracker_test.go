package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"turf/internal/turftest"
	"turf/script"
)

type row = map[string]string

// env is one test's world: a turf with its own database, the test site
// embedding turf's tracker, and a browser tab with empty storage.
type env struct {
	t    *testing.T
	turf *turftest.Server
	site *site
	tab  context.Context
}

func setup(t *testing.T) *env {
	t.Helper()
	tab := newTab(t)
	turf := turftest.Start(t, siteDomain)
	// Fail fast and clearly, rather than by timing out in every test.
	resp, err := http.Get(turf.URL + script.Path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("turf answers %s for %s: is script.Serve mounted?", resp.Status, script.Path)
	}
	return &env{t: t, turf: turf, site: startSite(t, turf.URL+script.Path), tab: tab}
}

// open loads a page of the test site and waits until the tracker has loaded.
func (e *env) open(path string) {
	e.t.Helper()
	do(e.t, e.tab, chromedp.Navigate(e.site.URL+path))
	waitJS(e.t, e.tab, "window.turf && window.turf.loaded")
}

// sentinel is the name of the event that marks the end of a test's actions.
const sentinel = "e2e: done"

// events waits until the rows that landed satisfy done and returns them.
// Before a test asserts that something was not sent it passes send=true: the
// tracker then sends a sentinel event, and events waits for that too.
// Requests go out in order, so once the sentinel has landed an event that
// should not have been sent would have had every chance to land as well.
func (e *env) events(send bool, done func([]row) bool) []row {
	e.t.Helper()
	if send {
		eval[any](e.t, e.tab, fmt.Sprintf("turf(%q)", sentinel))
	}
	var rows []row
	deadline := time.Now().Add(waitFor)
	for {
		rows = rows[:0]
		sawSentinel := false
		for _, r := range e.turf.Events(e.t, "") {
			if r["name"] == sentinel {
				sawSentinel = true
				continue
			}
			rows = append(rows, r)
		}
		if (sawSentinel || !send) && done(rows) {
			return rows
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for events; have %d rows:\n%s", len(rows), dump(rows))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func dump(rows []row) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "  %s %s%s props=%v\n", r["name"], r["hostname"], r["pathname"], props(r))
	}
	return b.String()
}

// named returns the rows with the given event name.
func named(rows []row, name string) []row {
	var out []row
	for _, r := range rows {
		if r["name"] == name {
			out = append(out, r)
		}
	}
	return out
}

func count(name string, n int) func([]row) bool {
	return func(rows []row) bool { return len(named(rows, name)) >= n }
}

// props pairs a row's props_keys and props_values.
func props(r row) map[string]string {
	keys, vals := stringArray(r["props_keys"]), stringArray(r["props_values"])
	m := map[string]string{}
	for i := range min(len(keys), len(vals)) {
		m[keys[i]] = vals[i]
	}
	return m
}

// stringArray parses an Array(String) as ClickHouse renders it: ['a','b\'c'].
func stringArray(s string) []string {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	var out []string
	for len(s) > 0 {
		s = strings.TrimPrefix(strings.TrimPrefix(s, ","), "'")
		var v strings.Builder
		for len(s) > 0 && s[0] != '\'' {
			if s[0] == '\\' && len(s) > 1 {
				s = s[1:]
			}
			v.WriteByte(s[0])
			s = s[1:]
		}
		s = strings.TrimPrefix(s, "'")
		out = append(out, v.String())
	}
	return out
}

// check compares the named columns of a row.
func check(t *testing.T, r row, want map[string]string) {
	t.Helper()
	for col, v := range want {
		if r[col] != v {
			t.Errorf("%s: %s = %q, want %q", r["name"], col, r[col], v)
		}
	}
}

func checkProps(t *testing.T, r row, want map[string]string) {
	t.Helper()
	got := props(r)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: props = %v, want %v", r["name"], got, want)
	}
}

// pathnames counts page views by pathname.
func pathnames(rows []row) map[string]int {
	m := map[string]int{}
	for _, r := range named(rows, "pageview") {
		m[r["pathname"]]++
	}
	return m
}

func TestFirstPageview(t *testing.T) {
	e := setup(t)
	// A visitor arrives from a search engine on a campaign link.
	landing := e.site.URL + "/landing?utm_source=newsletter&utm_medium=email&utm_campaign=spring&utm_content=hero&utm_term=rent"
	do(t, e.tab, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		res, err := cdp.Call(ctx, tg, page.Navigate, page.NavigateParams{
			URL:            landing,
			Referrer:       "https://duckduckgo.com/",
			ReferrerPolicy: page.ReferrerPolicyUnsafeURL,
		})
		if err == nil && res.ErrorText != "" {
			err = fmt.Errorf("navigation failed: %s", res.ErrorText)
		}
		return err
	}))
	waitJS(t, e.tab, "window.turf && window.turf.loaded")
	rows := e.events(true, count("pageview", 1))
	if len(rows) != 1 {
		t.Fatalf("want one page view, got:\n%s", dump(rows))
	}
	check(t, rows[0], map[string]string{
		"site":          siteDomain,
		"hostname":      "127.0.0.1",
		"pathname":      "/landing",
		"referrer_host": "duckduckgo.com",
		"utm_source":    "newsletter",
		"utm_medium":    "email",
		"utm_campaign":  "spring",
		"utm_content":   "hero",
		"utm_term":      "rent",
	})
	assertNothingStored(t, e.tab)
}

func TestPushState(t *testing.T) {
	e := setup(t)
	e.open("/app")
	for _, js := range []string{
		`history.pushState({}, '', '/app/settings')`,
		`history.pushState({}, '', '/app/settings')`,      // same URL again: no new view
		`history.pushState({}, '', '/app/settings#part')`, // only the hash: no new view
		`history.replaceState({}, '', '/app/replaced')`,   // a redirect, not a view
		`history.back()`, // to /app/settings: the same route
	} {
		eval[any](t, e.tab, js)
	}
	waitJS(t, e.tab, `location.pathname == '/app/settings' && location.hash == ''`)
	eval[any](t, e.tab, `history.go(-2)`)
	waitJS(t, e.tab, `location.pathname == '/app'`)

	rows := e.events(true, func(rows []row) bool { return pathnames(rows)["/app"] == 2 })
	want := map[string]int{"/app": 2, "/app/settings": 1}
	if got := pathnames(rows); fmt.Sprint(got) != fmt.Sprint(want) || len(rows) != 3 {
		t.Errorf("page views by path = %v, want %v; rows:\n%s", got, want, dump(rows))
	}
	assertNothingStored(t, e.tab)
}

func TestHashRouting(t *testing.T) {
	e := setup(t)
	e.open("/hash/")
	do(t, e.tab, chromedp.Click(chromedp.ID("hash-about")))
	waitJS(t, e.tab, `location.hash == '#/about'`)
	eval[any](t, e.tab, `location.hash = '#/about'`) // the same route again
	eval[any](t, e.tab, `location.hash = '#/contact'`)
	waitJS(t, e.tab, `location.hash == '#/contact'`)

	rows := e.events(true, count("pageview", 3))
	// With data-hash-routing the route after # is part of the path.
	want := map[string]int{"/hash/": 1, "/hash/#/about": 1, "/hash/#/contact": 1}
	if got := pathnames(rows); fmt.Sprint(got) != fmt.Sprint(want) || len(rows) != 3 {
		t.Errorf("page views by path = %v, want %v; rows:\n%s", got, want, dump(rows))
	}
	assertNothingStored(t, e.tab)
}

func TestOutboundClickNavigatesAway(t *testing.T) {
	e := setup(t)
	e.open("/")
	do(t, e.tab, chromedp.Click(chromedp.ID("outbound")))
	// The navigation happens, and the event still lands after the page is gone.
	do(t, e.tab, chromedp.WaitVisible(chromedp.ID("elsewhere")))
	rows := e.events(false, count("Outbound Link: Click", 1))
	out := named(rows, "Outbound Link: Click")
	if len(out) != 1 {
		t.Fatalf("want one outbound click, got:\n%s", dump(rows))
	}
	checkProps(t, out[0], map[string]string{"url": e.site.Elsewhere + "/elsewhere"})
	check(t, out[0], map[string]string{"pathname": "/"})
	assertNothingStored(t, e.tab)
}

func TestMiddleAndModifierClicks(t *testing.T) {
	e := setup(t)
	e.open("/")
	node := func(id string) *chromedp.Node {
		nodes, err := chromedp.Run(e.tab, chromedp.Nodes(chromedp.ID(id)))
		if err != nil || len(nodes) == 0 {
			t.Fatalf("no #%s: %v", id, err)
		}
		return nodes[0]
	}
	// A middle click opens the link in a new tab; ctrl-click too; a right
	// click opens a menu and counts nothing.
	do(t, e.tab,
		chromedp.MouseClickNode(node("outbound"), chromedp.ButtonMiddle),
		chromedp.MouseClickNode(node("download"), chromedp.ButtonModifiers(chromedp.ModifierCtrl)),
		chromedp.MouseClickNode(node("outbound"), chromedp.ButtonRight),
	)
	rows := e.events(true, func(rows []row) bool {
		return len(named(rows, "Outbound Link: Click")) >= 1 && len(named(rows, "File Download")) >= 1
	})
	if len(rows) != 3 || len(named(rows, "Outbound Link: Click")) != 1 || len(named(rows, "File Download")) != 1 {
		t.Errorf("want a page view, one outbound click and one download, got:\n%s", dump(rows))
	}
	checkProps(t, named(rows, "Outbound Link: Click")[0], map[string]string{"url": e.site.Elsewhere + "/elsewhere"})
	assertNothingStored(t, e.tab)
}

func TestFileDownload(t *testing.T) {
	e := setup(t)
	e.open("/docs")
	do(t, e.tab, chromedp.Click(chromedp.ID("download")))
	rows := e.events(true, count("File Download", 1))
	dl := named(rows, "File Download")
	if len(dl) != 1 || len(rows) != 2 {
		t.Fatalf("want a page view and one download, got:\n%s", dump(rows))
	}
	// The query string (a token here) is not sent.
	checkProps(t, dl[0], map[string]string{"url": e.site.URL + "/files/report.pdf"})
	check(t, dl[0], map[string]string{"pathname": "/docs"})
	assertNothingStored(t, e.tab)
}

func TestCustomEvent(t *testing.T) {
	e := setup(t)
	e.open("/pricing")
	eval[any](t, e.tab, `turf('Signup', {
		props: {plan: 'social'},
		revenue: {currency: 'EUR', amount: 10},
		callback: function () { window.signupSent = true },
	})`)
	waitJS(t, e.tab, `window.signupSent`)
	rows := e.events(false, count("Signup", 1))
	signup := named(rows, "Signup")
	if len(signup) != 1 {
		t.Fatalf("want one Signup, got:\n%s", dump(rows))
	}
	check(t, signup[0], map[string]string{
		"pathname":         "/pricing",
		"revenue_micros":   "10000000",
		"revenue_currency": "EUR",
	})
	checkProps(t, signup[0], map[string]string{"plan": "social"})
	assertNothingStored(t, e.tab)
}

func TestQueuedCalls(t *testing.T) {
	e := setup(t)
	e.open("/queued/")
	waitJS(t, e.tab, `window.queuedCallback`)
	rows := e.events(true, count("Queued", 1))
	if len(named(rows, "Queued")) != 1 || len(named(rows, "pageview")) != 1 || len(rows) != 2 {
		t.Fatalf("want a page view and the queued event, got:\n%s", dump(rows))
	}
	checkProps(t, named(rows, "Queued")[0], map[string]string{"when": "before load"})
	assertNothingStored(t, e.tab)
}

func TestTaggedElements(t *testing.T) {
	e := setup(t)
	e.open("/brochures")
	do(t, e.tab,
		chromedp.Click(chromedp.ID("tagged")),
		chromedp.Click(chromedp.ID("tagged-inner")), // a click inside the tagged element
	)
	rows := e.events(true, count("Download Brochure", 2))
	if n := len(named(rows, "Download Brochure")); n != 2 {
		t.Fatalf("want two Download Brochure events, got:\n%s", dump(rows))
	}
	checkProps(t, named(rows, "Download Brochure")[0], map[string]string{"format": "pdf"})

	// A tagged form counts once when submitted, not also for the click on its button.
	do(t, e.tab, chromedp.Click(chromedp.ID("contact-submit")))
	waitJS(t, e.tab, `location.pathname == '/thanks' && window.turf && window.turf.loaded`)
	rows = e.events(true, count("Contact", 1))
	if n := len(named(rows, "Contact")); n != 1 {
		t.Errorf("want one Contact event, got:\n%s", dump(rows))
	}
	assertNothingStored(t, e.tab)
}

func TestNotFound(t *testing.T) {
	e := setup(t)
	e.open("/missing/page")
	rows := e.events(true, count("404", 1))
	nf := named(rows, "404")
	if len(nf) != 1 {
		t.Fatalf("want one 404 event, got:\n%s", dump(rows))
	}
	checkProps(t, nf[0], map[string]string{"path": "/missing/page"})
	assertNothingStored(t, e.tab)
}

func TestOptOut(t *testing.T) {
	e := setup(t)
	e.open("/settings/")
	e.events(false, count("pageview", 1))
	// The visitor flips the site's opt-out switch; from then on nothing is sent.
	do(t, e.tab, chromedp.Click(chromedp.ID("turf-opt-out")))
	waitJS(t, e.tab, `localStorage.turf_ignore == 'true'`)
	e.open("/settings/again")
	eval[any](t, e.tab, `history.pushState({}, '', '/settings/spa')`)
	eval[any](t, e.tab, `new Promise(done => turf('Signup', {callback: done}))`)
	do(t, e.tab, chromedp.Click(chromedp.ID("tagged")), chromedp.Click(chromedp.ID("download")))
	// And back: the switch removes the flag, so the sentinel is sent again.
	do(t, e.tab, chromedp.Click(chromedp.ID("turf-opt-out")))
	waitJS(t, e.tab, `localStorage.length == 0`)
	rows := e.events(true, func([]row) bool { return true })
	if len(rows) != 1 || rows[0]["pathname"] != "/settings/" {
		t.Errorf("want only the page view before opting out, got:\n%s", dump(rows))
	}
	assertNothingStored(t, e.tab)
}

// TestNeverThrows breaks what the tracker relies on, as a page might, and
// checks that no error reaches the page.
func TestNeverThrows(t *testing.T) {
	e := setup(t)
	e.open("/hostile")
	errs := eval[string](t, e.tab, `(async () => {
		const errors = [];
		addEventListener('error', ev => errors.push('error: ' + ev.message));
		addEventListener('unhandledrejection', ev => errors.push('rejection: ' + ev.reason));
		const cyclic = {}; cyclic.self = cyclic;
		try {
			turf('Cyclic', {props: cyclic});
			turf();
			turf(null, 42);
			window.fetch = function () { throw new Error('fetch is broken') };
			turf('No fetch');
			history.pushState({}, '', '/hostile/next');
			document.getElementById('outbound').addEventListener('click', ev => ev.preventDefault());
			document.getElementById('outbound').click();
		} catch (err) {
			errors.push('thrown: ' + err);
		}
		await new Promise(r => setTimeout(r, 100));
		localStorage.clear();
		return errors.join('; ');
	})()`)
	if errs != "" {
		t.Errorf("the page saw errors: %s", errs)
	}
	// history.pushState still works for the page.
	if p := eval[string](t, e.tab, `location.pathname`); p != "/hostile/next" {
		t.Errorf("pathname = %q after pushState", p)
	}
}
