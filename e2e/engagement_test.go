package e2e

import (
	"context"

	"fmt"
	"github.com/chromedp/chromedp"
	"strings"
	"testing"
	"time"
)

// TestEngagement: leaving a page (here by a single-page app's pushState)
// sends one engagement beacon for it, which lands in the engagements
// table with a scroll depth, never among the events.
func TestEngagement(t *testing.T) {
	e := setup(t)
	e.open("/app")
	time.Sleep(300 * time.Millisecond) // some engaged time on /app
	eval[any](t, e.tab, `history.pushState({}, '', '/app/settings')`)
	rows := e.events(true, count("pageview", 2))
	if n := len(named(rows, "engagement")); n != 0 {
		t.Errorf("%d engagement rows among the events", n)
	}
	var path string
	var sd uint8
	var ms uint32
	deadline := time.Now().Add(waitFor)
	for {
		e.turf.Flush(t)
		err := e.turf.Conn.QueryRow(context.Background(), "SELECT pathname, scroll_depth, engagement_ms FROM "+e.turf.DB+".engagements").Scan(&path, &sd, &ms)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no engagement landed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The test page fits the window: all of it was seen.
	if path != "/app" || sd != 100 || ms < 200 || ms > 60000 {
		t.Errorf("engagement %s sd=%d e=%dms, want /app sd=100 and the time the page was shown", path, sd, ms)
	}
}

// engagements flushes and returns the engagement beacons stored, in order.
func (e *env) engagements() [][3]string {
	e.t.Helper()
	e.turf.Flush(e.t)
	rows, err := e.turf.Conn.Query(context.Background(), "SELECT pathname, toString(scroll_depth), toString(engagement_ms) FROM "+e.turf.DB+".engagements ORDER BY ts, engagement_ms")
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out [][3]string
	for rows.Next() {
		var r [3]string
		if err := rows.Scan(&r[0], &r[1], &r[2]); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// TestEngagementScrollAndBlur: the deepest scroll of a long page, reported
// when the window loses focus; a second loss of focus with nothing new to
// tell sends nothing.
func TestEngagementScrollAndBlur(t *testing.T) {
	e := setup(t)
	e.open("/app")
	want := eval[int](t, e.tab, `(() => {
		document.body.style.height = '5000px';
		window.scrollTo(0, 2500);
		return Math.round((2500 + innerHeight) / document.documentElement.scrollHeight * 100);
	})()`)
	waitJS(t, e.tab, `window.scrollY >= 2500`)
	eval[any](t, e.tab, `new Promise(r => setTimeout(r, 100))`) // the scroll event
	eval[any](t, e.tab, `window.dispatchEvent(new Event('blur'))`)
	eval[any](t, e.tab, `window.dispatchEvent(new Event('blur'))`)
	e.events(true, count("pageview", 1)) // the sentinel: both blurs' requests are out
	got := e.engagements()
	if len(got) != 1 || got[0][0] != "/app" || got[0][1] != fmt.Sprint(want) {
		t.Errorf("engagements %q, want one for /app with scroll depth %d", got, want)
	}
}

// checkEngagementColumns compares the Pages panel's scroll depth and time
// on page with the API's answer for the same pages.
func (e *dashboardEnv) checkEngagementColumns(dateRange string) {
	e.t.Helper()
	head := eval[string](e.t, e.tab, `document.querySelector('[data-panel=pages] .cols').textContent`)
	if !strings.Contains(head, "Scroll depth") || !strings.Contains(head, "Time on page") {
		e.t.Errorf("the Pages panel's columns are %q", head)
	}
	want := e.apiQuery(map[string]any{"site_id": dashboardSite, "metrics": []string{"scroll_depth", "time_on_page"}, "date_range": dateRange,
		"dimensions": []string{"event:page"}, "pagination": map[string]int{"limit": 10000}}).Results
	byPage := map[string][]any{}
	for _, r := range want {
		byPage[r.Dimensions[0]] = r.Metrics
	}
	got := eval[[][]string](e.t, e.tab, `[...document.querySelectorAll('[data-panel=pages] .row')].map(r => [r.dataset.value, ...[...r.querySelectorAll('.num')].map(n => n.textContent)])`)
	shown := 0
	for _, r := range got {
		m, ok := byPage[r[0]]
		if len(r) != 5 {
			e.t.Errorf("page row %q has %d cells, want the page and 4 figures", r, len(r))
			continue
		}
		if !ok || m[0] == nil {
			if r[3] != "–" {
				e.t.Errorf("page %s: scroll depth %q, the API has none", r[0], r[3])
			}
			continue
		}
		shown++
		if w := fmt.Sprintf("%v%%", m[0]); r[3] != w {
			e.t.Errorf("page %s: scroll depth %q, the API says %s", r[0], r[3], w)
		}
		if r[4] == "–" || !strings.HasSuffix(r[4], "s") {
			e.t.Errorf("page %s: time on page %q, the API says %v s", r[0], r[4], m[1])
		}
	}
	if shown == 0 {
		e.t.Error("no page shows a scroll depth")
	}
}

// checkLocationTabs walks the Locations panel's Regions and Cities tabs,
// comparing them with the API, and goes back to Countries.
func (e *dashboardEnv) checkLocationTabs(dateRange string) {
	e.t.Helper()
	for _, c := range []struct{ tab, dim, value string }{{"regions", "visit:region", "North Holland"}, {"cities", "visit:city", "Amsterdam"}} {
		do(e.t, e.tab, chromedp.Click(`[data-panel=locations] [data-tab=`+c.tab+`]`))
		waitJS(e.t, e.tab, fmt.Sprintf(`document.querySelector('[data-panel=locations] .row[data-value=%q]')`, c.value))
		e.checkPanel("locations", c.dim, dateRange, nil)
		// Visitors without a place read "Unknown", not Plausible's raw label.
		if got := eval[string](e.t, e.tab, `(document.querySelector('[data-panel=locations] .row[data-value="(not set)"] .text') || {}).textContent || ''`); got != "Unknown" {
			e.t.Errorf("%s: the (not set) row reads %q", c.tab, got)
		}
	}
	do(e.t, e.tab, chromedp.Click(`[data-panel=locations] [data-tab=countries]`))
	waitJS(e.t, e.tab, `document.querySelector('[data-panel=locations] .row[data-value="NL"]')`)
}
