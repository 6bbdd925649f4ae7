package query_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"turf/internal/turftest"
	"turf/query"
)

// Engagement beacons sent through the real collector are no events: cases
// transcribed from Plausible's query_test.exs ("aggregation with filters"),
// whose fixtures are a page view and an engagement of one user, asked
// through the Stats API. Engaged time (e) and scroll depth (sd) still reach
// time_on_page and scroll_depth.
func TestEngagementIsNoEventThroughCollector(t *testing.T) {
	srv := turftest.Start(t, "example.com")
	ctx := context.Background()
	key, _, err := query.CreateKey(ctx, srv.Conn, srv.DB, []string{"example.com"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	post := func(path, body, at string, hdr map[string]string) string {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
		req.Header.Set("X-Turf-Test-Peer", "198.51.100.7")
		if at != "" {
			req.Header.Set("X-Turf-Test-Time", at)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	at := func(s int) string { return day.Add(time.Duration(s) * time.Second).Format(time.RFC3339) }
	post("/api/event", `{"n":"pageview","u":"https://example.com/blog","d":"example.com"}`, at(0), nil)
	post("/api/event", `{"n":"engagement","u":"https://example.com/blog","d":"example.com","sd":64,"e":42000}`, at(3), nil)
	srv.Flush(t)

	auth := map[string]string{"Authorization": "Bearer " + key, "Content-Type": "application/json"}
	for _, c := range []struct{ plausible, query, want string }{
		{`query_test.exs: does not count engagement events towards the events metric in a simple aggregate query`,
			`"metrics":["events"]`, `[{"metrics":[1],"dimensions":[]}]`},
		{`query_test.exs: engagement events do not affect bounce rate and visit duration`,
			`"metrics":["bounce_rate","visit_duration"]`, `[{"metrics":[100,0],"dimensions":[]}]`},
		{`turf: nor page views or visits, and they feed the engagement metrics`,
			`"metrics":["pageviews","visits","scroll_depth","time_on_page"],"filters":[["is","event:page",["/blog"]]]`,
			`[{"metrics":[1,1,64,42],"dimensions":[]}]`},
	} {
		body := post("/api/v2/query", `{"site_id":"example.com","date_range":"7d",`+c.query+`}`, "", auth)
		var r struct{ Results json.RawMessage }
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		var got, want any
		_ = json.Unmarshal(r.Results, &got)
		_ = json.Unmarshal([]byte(c.want), &want)
		if g, w := mustJSON(got), mustJSON(want); g != w {
			t.Errorf("%s: got %s, want %s", c.plausible, g, w)
		}
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }
