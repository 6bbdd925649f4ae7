package e2e

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/valyala/fasthttp"

	"turf/internal/turftest"
	"turf/query"
	"turf/query/dashboard"
	"turf/query/synth"
)

// The dashboard in a real browser: log in, compare the tiles with the API,
// change the range, filter by clicking a row, reload the URL, export CSV,
// switch to Dutch, and check that hostile values stay text.

const (
	dashboardSite     = "example.com"
	dashboardUser     = "comms"
	dashboardPassword = "correct horse battery"
	// Values a visitor controls, crafted to run if put into the page as HTML.
	dashboardXSSPath = `/<script>window.__xss=1</script>`
	dashboardXSSRef  = `/"><img src=x onerror=window.__xss=2>`
)

type dashboardEnv struct {
	t   *testing.T
	url string // the dashboard (and API) server
	key string // a Stats API key, to ask the API what the tiles should show
	tab context.Context
	api *fasthttp.Client

	mu      sync.Mutex
	console []string
}

// dashboardStart runs turf's query API and dashboard over a fresh database
// filled by the synthetic traffic generator, plus two rows with hostile
// values, and opens a tab.
func dashboardStart(t *testing.T) *dashboardEnv {
	t.Helper()
	tab := newTab(t)
	sites := map[string]query.SiteConfig{dashboardSite: {Timezone: "Europe/Amsterdam"}}
	// The real turf: collector, API and dashboard behind the app's router.
	turf := turftest.StartWith(t, turftest.Options{Query: query.Config{Sites: sites}}, dashboardSite)
	ctx := context.Background()
	now := time.Now().UTC()
	vs := synth.Generate(synth.Config{Seed: 5, Sites: []string{dashboardSite}, Start: now.AddDate(0, 0, -70), Days: 71, Persons: 400, VisitsPerDay: 120})
	evs := synth.Events(vs)
	// Now-ish events with hostile values; they also make realtime non-zero.
	hostile := evs[len(evs)-1]
	hostile.TS, hostile.VisitorID, hostile.Name = now.Add(-time.Minute), 42, "pageview"
	hostile.Pathname, hostile.ReferrerHost, hostile.ReferrerPath = dashboardXSSPath, "evil.example", dashboardXSSRef
	hostile.Source, hostile.Channel, hostile.UTMCampaign = "evil.example", "Referral", `=HYPERLINK("http://evil.example")`
	hostile.PropsKeys, hostile.PropsValues = nil, nil
	// And the same yesterday: "Last 30 days" ends yesterday, as Plausible's.
	earlier := hostile
	earlier.TS, earlier.VisitorID = now.AddDate(0, 0, -1), 43
	evs = append(evs, hostile, earlier)
	if err := synth.Insert(ctx, turf.Conn, turf.DB, evs); err != nil {
		t.Fatal(err)
	}
	if err := synth.InsertEngagements(ctx, turf.Conn, turf.DB, synth.Engagements(vs)); err != nil {
		t.Fatal(err)
	}
	if err := dashboard.AddUser(ctx, turf.Conn, turf.DB, dashboardUser, dashboardPassword, nil); err != nil {
		t.Fatal(err)
	}
	key, _, err := query.CreateKey(ctx, turf.Conn, turf.DB, []string{dashboardSite}, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	url := turf.URL
	e := &dashboardEnv{t: t, url: url, key: key, tab: tab, api: &fasthttp.Client{}}
	t.Cleanup(func() {
		if t.Failed() {
			e.screenshot("failed.png")
			// CI keeps no artifacts: say in the log where the page was.
			ctx, cancel := context.WithTimeout(e.tab, 5*time.Second)
			where, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText.slice(0, 600)`))
			cancel()
			t.Logf("page at failure: %s (err %v)", where, err)
			e.mu.Lock()
			t.Logf("console: %q", e.console)
			e.mu.Unlock()
		}
	})
	msgs := chromedp.Console(tab)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				e.mu.Lock()
				e.console = append(e.console, m.String())
				e.mu.Unlock()
			}
		}
	}()
	return e
}

// apiQuery asks the public API with the Bearer key.
func (e *dashboardEnv) apiQuery(body map[string]any) query.Response {
	e.t.Helper()
	b, _ := json.Marshal(body)
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(e.url + "/api/v2/query")
	req.Header.SetMethod("POST")
	req.Header.Set("Authorization", "Bearer "+e.key)
	req.SetBody(b)
	if err := e.api.DoTimeout(req, resp, time.Minute); err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode() != 200 {
		e.t.Fatalf("API %s: %d %s", b, resp.StatusCode(), resp.Body())
	}
	var r query.Response
	dec := json.NewDecoder(strings.NewReader(string(resp.Body())))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *dashboardEnv) apiRealtime() string {
	e.t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(e.url + "/api/v1/stats/realtime/visitors?site_id=" + dashboardSite)
	req.Header.Set("Authorization", "Bearer "+e.key)
	if err := e.api.DoTimeout(req, resp, time.Minute); err != nil || resp.StatusCode() != 200 {
		e.t.Fatalf("realtime API: %v %d %s", err, resp.StatusCode(), resp.Body())
	}
	return string(resp.Body())
}

// waitRendered waits until the dashboard has drawn every figure of a state
// newer than after.
func (e *dashboardEnv) waitRendered(after string) string {
	e.t.Helper()
	waitJS(e.t, e.tab, fmt.Sprintf("document.documentElement.dataset.rendered && document.documentElement.dataset.rendered !== %q", after))
	return eval[string](e.t, e.tab, "document.documentElement.dataset.rendered")
}

var dashboardTiles = []string{"visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration"}

// checkTiles compares every tile with what the API answers for the range
// and filters.
func (e *dashboardEnv) checkTiles(dateRange string, filters [][]any) {
	e.t.Helper()
	body := map[string]any{"site_id": dashboardSite, "metrics": dashboardTiles, "date_range": dateRange}
	if filters != nil {
		body["filters"] = filters
	}
	want := e.apiQuery(body).Results[0].Metrics
	got := eval[map[string]string](e.t, e.tab, `Object.fromEntries([...document.querySelectorAll('.tile')].map(t => [t.dataset.metric, t.dataset.value]))`)
	for i, m := range dashboardTiles {
		w, _ := strconv.ParseFloat(fmt.Sprint(want[i]), 64)
		g, err := strconv.ParseFloat(got[m], 64)
		if err != nil || g != w {
			e.t.Errorf("tile %s shows %q, the API says %v", m, got[m], want[i])
		}
	}
}

// panelRows reads a panel's rows: raw dimension value and the first figure
// as shown.
func (e *dashboardEnv) panelRows(panel string) [][2]string {
	e.t.Helper()
	return eval[[][2]string](e.t, e.tab, fmt.Sprintf(`[...document.querySelectorAll('[data-panel=%s] .row')].map(r => [r.dataset.value, r.querySelector('.num').textContent])`, panel))
}

// checkPanel compares a panel's rows (values and order, first figure) with
// the API's answer to the same question.
func (e *dashboardEnv) checkPanel(panel, dim string, dateRange string, filters [][]any) {
	e.t.Helper()
	body := map[string]any{"site_id": dashboardSite, "metrics": []string{"visitors"}, "date_range": dateRange, "dimensions": []string{dim}, "pagination": map[string]int{"limit": 10}}
	if filters != nil {
		body["filters"] = filters
	}
	want := e.apiQuery(body).Results
	got := e.panelRows(panel)
	if len(got) != len(want) {
		e.t.Errorf("panel %s: %d rows, the API has %d", panel, len(got), len(want))
		return
	}
	for i, r := range want {
		n, _ := strconv.ParseFloat(fmt.Sprint(r.Metrics[0]), 64)
		shown, _ := strconv.ParseFloat(strings.NewReplacer(",", "", ".", "").Replace(got[i][1]), 64)
		if got[i][0] != r.Dimensions[0] || shown != n {
			e.t.Errorf("panel %s row %d: %q %s, the API says %q %v", panel, i, got[i][0], got[i][1], r.Dimensions[0], n)
		}
	}
}

func (e *dashboardEnv) screenshot(name string) {
	e.t.Helper()
	png := must(e.t, e.tab, chromedp.FullScreenshot(100))
	for _, dir := range []string{e.t.ArtifactDir(), os.Getenv("TURF_E2E_SCREENSHOTS")} {
		if dir == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	e.t.Logf("screenshot %s in %s", name, e.t.ArtifactDir())
}

func must[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDashboard(t *testing.T) {
	e := dashboardStart(t)
	do(t, e.tab, chromedp.EmulateViewport(1280, 900))

	// Not logged in: the log-in page, then the dashboard.
	do(t, e.tab, chromedp.Navigate(e.url+"/?period=30d"))
	if loc := must(t, e.tab, chromedp.Location()); !strings.Contains(loc, "/login") {
		t.Fatalf("not logged in, yet at %s", loc)
	}
	do(t, e.tab,
		chromedp.SendKeys("input[name=username]", dashboardUser),
		// Enter submits the form as a user would; a click at the button's
		// coordinates can miss it if the page is still laying out.
		chromedp.SendKeys("input[name=password]", "wrong password"+kb.Enter))
	// The form came back as a new page with the error; fill it in from the
	// page itself, as chromedp's node ids may still point into the old one.
	// Polled as one step: under load the check for the error and a separate
	// fill-in were seen to straddle the page change (input not found).
	waitJS(t, e.tab, fmt.Sprintf(`(() => { const p = document.querySelector('input[name=password]'); if (!p || !document.querySelector('.login .error')) return false; p.value = %q; document.querySelector('form').requestSubmit(); return true; })()`, dashboardPassword))
	gen := e.waitRendered("")
	if loc := must(t, e.tab, chromedp.Location()); !strings.Contains(loc, "period=30d") {
		t.Errorf("after log-in at %s, want the page asked for", loc)
	}

	// The tiles show what the API says for the same range.
	e.checkTiles("30d", nil)
	e.checkPanel("pages", "event:page", "30d", [][]any{{"is", "event:name", []string{"pageview"}}})
	e.checkEngagementColumns("30d")
	e.checkLocationTabs("30d")

	// Hostile values are text: the path and the referrer appear literally,
	// nothing ran and no element was injected.
	do(t, e.tab, chromedp.Click(`[data-more=pages]`))
	rows := e.panelRows("pages")
	found := false
	for _, r := range rows {
		found = found || r[0] == dashboardXSSPath
	}
	if !found {
		t.Errorf("the hostile path is not among the pages: %q", rows)
	}
	text := eval[string](t, e.tab, fmt.Sprintf(`document.querySelector('[data-panel=pages] .row[data-value=%q] .text').textContent`, dashboardXSSPath))
	if text != dashboardXSSPath {
		t.Errorf("hostile path shown as %q", text)
	}
	do(t, e.tab, chromedp.Click(`[data-panel=sources] [data-tab=referrers]`))
	waitJS(t, e.tab, `document.querySelector('[data-more=sources]')`)
	do(t, e.tab, chromedp.Click(`[data-more=sources]`))
	waitJS(t, e.tab, `[...document.querySelectorAll('[data-panel=sources] .row .text')].some(x => x.textContent === 'evil.example/"><img src=x onerror=window.__xss=2>')`)
	do(t, e.tab, chromedp.Click(`[data-panel=campaigns] [data-tab=campaign]`))
	// A value a spreadsheet would run as a formula is exported as text.
	found = false
	for _, r := range e.download(`[data-csv=campaigns]`) {
		if strings.Contains(r[0], "HYPERLINK") {
			found = true
			if r[0] != `'=HYPERLINK("http://evil.example")` {
				t.Errorf("CSV cell %q is not neutralised", r[0])
			}
		}
	}
	if !found {
		t.Error("the hostile campaign is not in the CSV")
	}
	if n := eval[int](t, e.tab, `document.querySelectorAll('img, [onerror], main script').length`); n != 0 {
		t.Errorf("%d injected elements", n)
	}
	if v := eval[string](t, e.tab, `String(window.__xss)`); v != "undefined" {
		t.Errorf("a visitor's value ran as code: window.__xss = %s", v)
	}
	// Realtime: the hostile visitor a minute ago is among them.
	if rt, want := eval[string](t, e.tab, `document.querySelector('#realtime b').textContent`), e.apiRealtime(); rt != want || want == "0" {
		t.Errorf("realtime shows %q, the API says %s", rt, want)
	}

	// Another range: every figure is redrawn and the URL says so.
	eval[any](t, e.tab, `(() => { const s = document.getElementById('period'); s.value = '7d'; s.dispatchEvent(new Event('change')); })()`)
	gen = e.waitRendered(gen)
	e.checkTiles("7d", nil)

	// A click on a source filters every panel and goes into the URL.
	do(t, e.tab, chromedp.Click(`[data-panel=sources] [data-tab=sources]`))
	waitJS(t, e.tab, `document.querySelector('[data-panel=sources] .row[data-value="Facebook"]')`)
	do(t, e.tab, chromedp.Click(`[data-panel=sources] .row[data-value="Facebook"]`))
	gen = e.waitRendered(gen)
	loc := must(t, e.tab, chromedp.Location())
	u, _ := url.Parse(loc)
	if u.Query().Get("period") != "7d" || u.Query().Get("f") != "is,visit:source,Facebook" {
		t.Errorf("URL after filtering: %s", loc)
	}
	fb := [][]any{{"is", "visit:source", []string{"Facebook"}}}
	check := func() {
		e.checkTiles("7d", fb)
		e.checkPanel("pages", "event:page", "7d", append([][]any{{"is", "event:name", []string{"pageview"}}}, fb...))
		e.checkPanel("locations", "visit:country", "7d", fb)
		e.checkPanel("devices", "visit:device", "7d", fb)
		if chip := eval[string](t, e.tab, `document.querySelector('.chip b').textContent`); chip != "Facebook" {
			t.Errorf("filter chip shows %q", chip)
		}
		if src := e.panelRows("sources"); len(src) != 1 || src[0][0] != "Facebook" {
			t.Errorf("sources panel under the filter: %q", src)
		}
	}
	check()

	// The URL alone restores the state.
	do(t, e.tab, chromedp.Reload())
	gen = e.waitRendered("")
	if p := eval[string](t, e.tab, `document.getElementById('period').value`); p != "7d" {
		t.Errorf("period after reload: %s", p)
	}
	check()

	// CSV export downloads the panel's rows.
	csvRows := e.download(`[data-csv=pages]`)
	want := e.apiQuery(map[string]any{"site_id": dashboardSite, "metrics": []string{"visitors", "pageviews"}, "date_range": "7d",
		"dimensions": []string{"event:page"}, "filters": append([][]any{{"is", "event:name", []string{"pageview"}}}, fb...)}).Results
	if len(csvRows) != len(want)+1 || csvRows[0][0] != "Page" {
		t.Fatalf("CSV has %d rows (header %q), the API %d", len(csvRows), csvRows[0], len(want))
	}
	for i, r := range want {
		if got := csvRows[i+1]; got[0] != r.Dimensions[0] || got[1] != fmt.Sprint(r.Metrics[0]) || got[2] != fmt.Sprint(r.Metrics[1]) {
			t.Errorf("CSV row %d: %q, the API says %v %v", i+1, got, r.Dimensions, r.Metrics)
		}
	}

	// Clear the filter for the screenshots, then switch the language.
	do(t, e.tab, chromedp.Click(`.chip-x`))
	gen = e.waitRendered(gen)
	eval[any](t, e.tab, `(() => { const s = document.getElementById('period'); s.value = '30d'; s.dispatchEvent(new Event('change')); })()`)
	gen = e.waitRendered(gen)
	e.screenshot("dashboard-en.png")
	if l := eval[string](t, e.tab, `document.querySelector('[data-metric=visitors] .tile-label').textContent`); l != "Unique visitors" {
		t.Errorf("English label %q", l)
	}
	do(t, e.tab, chromedp.Click(`button[data-lang=nl]`))
	waitJS(t, e.tab, `document.documentElement.lang === 'nl'`)
	if l := eval[string](t, e.tab, `document.querySelector('[data-metric=visitors] .tile-label').textContent`); l != "Unieke bezoekers" {
		t.Errorf("Dutch label %q", l)
	}
	if l := eval[string](t, e.tab, `document.querySelector('#period option[value="30d"]').textContent`); l != "Laatste 30 dagen" {
		t.Errorf("Dutch period %q", l)
	}
	e.screenshot("dashboard-nl.png")

	// On a phone, and in dark mode.
	do(t, e.tab, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	do(t, e.tab, chromedp.Reload())
	e.waitRendered("")
	if w := eval[int](t, e.tab, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the page is %dpx wide on a 390px phone", w)
	}
	e.screenshot("dashboard-phone-nl.png")
	do(t, e.tab, chromedp.EmulateViewport(1280, 900), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		return err
	}))
	do(t, e.tab, chromedp.Click(`button[data-lang=en]`))
	waitJS(t, e.tab, `document.documentElement.lang === 'en'`)
	e.screenshot("dashboard-dark-en.png")

	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range e.console {
		t.Errorf("console: %s", m)
	}
	_ = gen
}

// download clicks a CSV button and returns the parsed file.
func (e *dashboardEnv) download(sel string) [][]string {
	e.t.Helper()
	dir := e.t.TempDir()
	do(e.t, e.tab, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, chromedp.FromContext(ctx).Browser, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir,
			BrowserContextID: chromedp.FromContext(ctx).BrowserContextID,
		})
		return err
	}))
	do(e.t, e.tab, chromedp.Click(sel))
	return dashboardWaitCSV(e.t, dir)
}

// dashboardWaitCSV waits for the one downloaded CSV file and parses it.
func dashboardWaitCSV(t *testing.T, dir string) [][]string {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		m, _ := filepath.Glob(filepath.Join(dir, "*.csv"))
		if len(m) == 1 {
			b, err := os.ReadFile(m[0])
			if err == nil && len(b) > 0 {
				r := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(b), "\ufeff")))
				rows, err := r.ReadAll()
				if err != nil {
					t.Fatalf("%s: %v", m[0], err)
				}
				return rows
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CSV downloaded into %s", dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
