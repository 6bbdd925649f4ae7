package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/valyala/fasthttp"

	"turf/internal/turftest"
	"turf/query"
	"turf/query/dashboard"
)

// The newsletter pages in a real browser: make a tracking link and an open
// pixel on /links (in English, then Dutch), follow them as a person and as
// machines, and read the Newsletters panel and the To social media tab,
// whose figures must be the API's.

const (
	nlCampaign = "nieuwsbrief-2026-12"
	nlChrome   = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)

func TestDashboardNewsletters(t *testing.T) {
	tab := newTab(t)
	turf := turftest.StartWith(t, turftest.Options{Query: query.Config{Sites: map[string]query.SiteConfig{dashboardSite: {Timezone: "Europe/Amsterdam"}}}}, dashboardSite)
	ctx := context.Background()
	if err := dashboard.AddUser(ctx, turf.Conn, turf.DB, dashboardUser, dashboardPassword, nil); err != nil {
		t.Fatal(err)
	}
	key, _, err := query.CreateKey(ctx, turf.Conn, turf.DB, []string{dashboardSite}, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	e := &dashboardEnv{t: t, url: turf.URL, key: key, tab: tab, api: &fasthttp.Client{}}
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
	do(t, tab, chromedp.EmulateViewport(1280, 900))

	// The link page asks for a log-in first, then comes back.
	do(t, tab, chromedp.Navigate(turf.URL+"/links?lang=en"))
	waitJS(t, tab, `document.querySelector('input[name=password]')`)
	eval[any](t, tab, fmt.Sprintf(`(() => { document.querySelector('input[name=username]').value = %q; document.querySelector('input[name=password]').value = %q; document.querySelector('form').requestSubmit(); })()`, dashboardUser, dashboardPassword))
	waitJS(t, tab, `document.querySelector('form.linkform') && document.querySelector('h1').textContent === 'Newsletter links'`)

	// make fills in the form as a person would and returns the URL made.
	make := func(kind, dest string) string {
		t.Helper()
		eval[any](t, tab, fmt.Sprintf(`(() => {
			const f = document.querySelector('form.linkform');
			f.querySelector('input[name=kind][value=%s]').click();
			f.querySelector('input[name=campaign]').value = %q;
			f.querySelector('input[name=url]').value = %q;
			f.requestSubmit(); })()`, kind, nlCampaign, dest))
		waitJS(t, tab, `document.getElementById('made')`)
		return eval[string](t, tab, `document.getElementById('made').value`)
	}
	link := make("link", "https://example.com/huren?wijk=noord&email=jan%40example.nl")
	if !strings.HasPrefix(link, turf.URL+"/l/") {
		t.Fatalf("link made: %q", link)
	}
	if w := eval[string](t, tab, `document.querySelector('.linkform .warn').textContent`); !strings.Contains(w, "email") {
		t.Errorf("no warning about the recipient parameter: %q", w)
	}
	// The copy button copies, or (clipboard refused) selects the text and says so.
	do(t, tab, chromedp.Click(`button.copy[data-copy=made]`))
	waitJS(t, tab, `['Copied', 'Select the text and copy it by hand.'].includes(document.querySelector('.made .status').textContent)`)
	e.screenshot("links-en.png")

	// In Dutch, the pixel.
	do(t, tab, chromedp.Navigate(turf.URL+"/links?lang=nl"))
	waitJS(t, tab, `document.querySelector('h1') && document.querySelector('h1').textContent === 'Nieuwsbrieflinks'`)
	pixel := make("pixel", "")
	if !strings.HasPrefix(pixel, turf.URL+"/o/") || !strings.HasSuffix(pixel, ".gif") {
		t.Fatalf("pixel made: %q", pixel)
	}
	if c := eval[string](t, tab, `document.querySelector('button.copy[data-copy=made]').textContent + '|' + document.getElementById('pixel').value`); !strings.HasPrefix(c, "Kopiëren|<img src=\""+pixel+"\"") {
		t.Errorf("Dutch pixel result: %q", c)
	}
	e.screenshot("links-nl.png")

	// Follow them: a person opens and clicks; Apple's and Gmail's proxies
	// open, Proofpoint follows the link.
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u, ua, peer string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("User-Agent", ua)
		req.Header.Set("X-Turf-Test-Peer", peer)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	want := "https://example.com/huren?wijk=noord&utm_source=newsletter&utm_medium=email&utm_campaign=" + nlCampaign
	for _, ua := range []string{nlChrome, "Mozilla/5.0 (compatible; Proofpoint URL Defense)"} {
		if r := get(link, ua, "198.51.100.77"); r.StatusCode != 302 || r.Header.Get("Location") != want {
			t.Errorf("following the link as %q: %d %q, want 302 %q", ua, r.StatusCode, r.Header.Get("Location"), want)
		}
	}
	for _, ua := range []string{"Mozilla/5.0", "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", nlChrome} {
		if r := get(pixel, ua, "198.51.100.77"); r.StatusCode != 200 || r.Header.Get("Content-Type") != "image/gif" {
			t.Errorf("pixel as %q: %d %s", ua, r.StatusCode, r.Header.Get("Content-Type"))
		}
	}
	// On the site, someone shares a page on Facebook and follows the
	// organisation on LinkedIn.
	for _, dest := range []string{"https://www.facebook.com/sharer/sharer.php?u=https%3A%2F%2Fexample.com%2Fhuren", "https://www.linkedin.com/company/woningcorporatie"} {
		body := `{"name":"Outbound Link: Click","url":"https://example.com/huren","domain":"example.com","props":{"url":"` + dest + `"}}`
		req, _ := http.NewRequest("POST", turf.URL+"/api/event", strings.NewReader(body))
		req.Header.Set("User-Agent", nlChrome)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Turf-Test-Peer", "203.0.113.9")
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 202 {
			t.Fatalf("outbound click: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	turf.Flush(t)

	// The Newsletters panel, in English.
	do(t, tab, chromedp.Navigate(turf.URL+"/?period=today&lang=en"))
	e.waitRendered("")
	row := func() map[string]string {
		return eval[map[string]string](t, tab, fmt.Sprintf(`Object.fromEntries([...document.querySelectorAll('[data-panel=newsletters] tr[data-campaign=%q] td')].map(td => [td.dataset.k, td.textContent]))`, nlCampaign))
	}
	got := row()
	wantRow := map[string]string{"opens": "1", "mopens": "2", "clicks": "1", "mclicks": "1", "ctor": "100%", "visits": "1"}
	for k, w := range wantRow {
		if got[k] != w {
			t.Errorf("Newsletters panel %s = %q, want %q (row %v)", k, got[k], w, got)
		}
	}
	// The same figures from the API.
	api := func(body map[string]any) []query.Row {
		body["site_id"], body["date_range"] = dashboardSite, "day"
		return e.apiQuery(body).Results
	}
	opens := api(map[string]any{"metrics": []string{"events"}, "dimensions": []string{"event:props:machine"}, "filters": [][]any{{"is", "event:name", []string{"Newsletter Open"}}}})
	clicks := api(map[string]any{"metrics": []string{"events"}, "dimensions": []string{"event:props:machine"}, "filters": [][]any{{"is", "event:name", []string{"Newsletter Click"}}}})
	visits := api(map[string]any{"metrics": []string{"visits"}, "filters": [][]any{{"is", "visit:channel", []string{"Email"}}, {"is", "visit:utm_campaign", []string{nlCampaign}}}})
	visitors := api(map[string]any{"metrics": []string{"visitors"}})
	t.Logf("API: opens by machine %v, clicks by machine %v, Email visits of the campaign %v, visitors %v", opens, clicks, visits[0].Metrics, visitors[0].Metrics)
	count := func(rows []query.Row, machine string) string {
		for _, r := range rows {
			if r.Dimensions[0] == machine {
				return fmt.Sprint(r.Metrics[0])
			}
		}
		return "0"
	}
	if count(opens, "(none)") != got["opens"] || count(opens, "apple-mpp") != "1" || count(opens, "gmail-proxy") != "1" ||
		count(clicks, "(none)") != got["clicks"] || count(clicks, "proofpoint") != got["mclicks"] || fmt.Sprint(visits[0].Metrics[0]) != got["visits"] {
		t.Errorf("the panel %v is not the API's figures: opens %v clicks %v visits %v", got, opens, clicks, visits)
	}
	// Machines are no visitors: the person and the sharer only.
	if v := fmt.Sprint(visitors[0].Metrics[0]); v != "2" {
		t.Errorf("visitors today: %s, want 2 (machines counted as people?)", v)
	}
	waitJS(t, tab, `document.querySelector('[data-panel=newsletters] .nl-links .row')`)
	if u := eval[string](t, tab, `document.querySelector('[data-panel=newsletters] .nl-links .row').dataset.value`); u != "https://example.com/huren?wijk=noord" {
		t.Errorf("top link %q", u)
	}

	// To social media: clicks per network and the shares among them.
	do(t, tab, chromedp.Click(`[data-panel=outbound] [data-tab=tosocial]`))
	waitJS(t, tab, `document.querySelector('[data-panel=outbound] .row[data-value="Facebook"]')`)
	social := eval[map[string]string](t, tab, `Object.fromEntries([...document.querySelectorAll('[data-panel=outbound] .row')].map(r => [r.dataset.value, [...r.querySelectorAll('.num')].map(n => n.textContent).join('/')]))`)
	if social["Facebook"] != "1/1/1" || social["LinkedIn"] != "1/1/0" || len(social) != 2 {
		t.Errorf("To social media (visitors/clicks/shares): %v", social)
	}
	e.screenshot("newsletters-en.png")

	// In Dutch.
	do(t, tab, chromedp.Click(`button[data-lang=nl]`))
	waitJS(t, tab, `document.documentElement.lang === 'nl' && document.querySelector('#h-newsletters')`)
	e.waitRendered("")
	heads := eval[string](t, tab, `document.querySelector('#h-newsletters').textContent + '|' + [...document.querySelectorAll('[data-panel=newsletters] thead th')].map(x => x.textContent).join('|') + '|' + document.querySelector('[data-panel=outbound] [data-tab=tosocial]').textContent`)
	if heads != "Nieuwsbrieven|Campagne|Geopend|Machine-openingen|Kliks|Machinekliks|Klik-per-open|Bezoeken|Naar sociale media" {
		t.Errorf("Dutch panel: %q", heads)
	}
	if got := row(); got["ctor"] != "100%" || got["mopens"] != "2" {
		t.Errorf("Dutch Newsletters row: %v", got)
	}
	e.screenshot("newsletters-nl.png")
	// From the panel to the link page, still in Dutch.
	do(t, tab, chromedp.Click(`[data-panel=newsletters] [data-links-page]`))
	waitJS(t, tab, `document.querySelector('h1') && document.querySelector('h1').textContent === 'Nieuwsbrieflinks'`)

	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range e.console {
		t.Errorf("console: %s", m)
	}
}
