package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"turf/query"
	"turf/query/rollup"
	"turf/query/synth"
)

// The dashboard, over the real engine and real events, answers a custom
// range ending at the far edge of 18.16's dates as one ending in 2040: for
// a staff session and for a share link, from the raw events and from the
// rollup tables. Before the fix (query/sql.HintDay) a range ending
// 2105-12-30 showed 0 visitors.
func TestDashboardFarEndRange(t *testing.T) {
	for _, built := range []bool{false, true} {
		e := newEnv(t, Config{Sites: []string{"a.example"}})
		ctx := context.Background()
		now := time.Date(2024, 4, 2, 12, 0, 0, 0, time.UTC)
		evs := synth.Events(synth.Generate(synth.Config{Seed: 14, Sites: []string{"a.example"}, Start: now.AddDate(0, 0, -5), Days: 5, Persons: 200, VisitsPerDay: 60}))
		if err := synth.Insert(ctx, e.db.Conn, e.db.Name, evs); err != nil {
			t.Fatal(err)
		}
		if built {
			if n, err := rollup.New(e.db.Conn, e.db.Name, func() time.Time { return now }, t.Logf).Pass(ctx, time.Unix(0, 0)); err != nil || n == 0 {
				t.Fatalf("rollups: built %d site-days, %v", n, err)
			}
		}
		api, err := query.New(query.Config{Now: func() time.Time { return now }, RollupCheckTTL: -1}, e.db.Conn, e.db.Name)
		if err != nil {
			t.Fatal(err)
		}
		d, err := New(Config{Sites: []string{"a.example"}, Now: time.Now, Logf: t.Logf, Gate: api.Gate()}, e.db.Conn, e.db.Name, api.Engine())
		if err != nil {
			t.Fatal(err)
		}
		e.d = d
		e.addUser("comms", "a.example")
		cookie, csrf := e.login("comms")
		share, _, err := CreateShare(ctx, e.db.Conn, e.db.Name, "a.example", "press")
		if err != nil {
			t.Fatal(err)
		}
		callers := map[string]req{
			"staff": {cookie: cookie, hdr: map[string]string{csrfHeader: csrf}},
			"share": {hdr: map[string]string{shareHeader: share}},
		}
		for who, r := range callers {
			ask := func(end string) string {
				r.method, r.uri = "POST", queryPath
				r.body = fmt.Sprintf(`{"site_id":"a.example","metrics":["visitors","pageviews"],"date_range":["2024-03-20",%q],"dimensions":["visit:source"]}`, end)
				c, _ := e.do(r)
				if c.Response.StatusCode() != 200 {
					t.Fatalf("built %v, %s, ..%s: %d %s", built, who, end, c.Response.StatusCode(), c.Response.Body())
				}
				var resp query.Response
				if err := json.Unmarshal(c.Response.Body(), &resp); err != nil {
					t.Fatal(err)
				}
				return fmt.Sprint(resp.Results)
			}
			want := ask("2040-12-31")
			if want == "[]" {
				t.Fatalf("built %v, %s: no visitors up to 2040 to compare with", built, who)
			}
			for _, end := range []string{"2105-12-30", "2105-12-31"} {
				if got := ask(end); got != want {
					t.Errorf("built %v, %s, ..%s: %s, want %s (as ..2040-12-31)", built, who, end, got, want)
				}
			}
		}
		if routes := api.Engine().Routes(); built == (routes["raw"] > 0) {
			t.Errorf("built %v: routes %v", built, routes)
		}
	}
}
