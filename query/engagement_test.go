package query

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"turf/internal/chtest"
	"turf/query/synth"
)

// Cases transcribed from Plausible's API tests of scroll_depth and
// time_on_page (test/plausible_web/controllers/api/...), each named after
// the Plausible test. Their fixtures build page views and engagement
// events; here the page views go to the events table and the engagements
// to the engagements table, as turf's collector stores them. Plausible's
// user_id is the visitor id; imported data has no counterpart in turf and
// its rows are left out (the expected values are then those of the native
// rows, worked out in the comments).

type plPage struct {
	user int
	path string
	at   string // "2021-01-01 00:00:00", UTC
}

type plEng struct {
	user   int
	path   string
	at     string
	scroll int // -1: none (the tracker's beacon carried no sd)
	ms     int
}

type engCase struct {
	plausible string // the Plausible test, file: name
	pages     []plPage
	engs      []plEng
	query     string // the request body without site_id
	want      string // the results, as JSON
	anyOrder  bool   // compare the rows as a set (turf's tie order differs)
	goals     []string
}

func plTime(t *testing.T, s string) time.Time {
	ts, err := time.Parse(time.DateTime, s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func (c engCase) load(t *testing.T, db *chtest.DB) {
	ctx := context.Background()
	var evs []synth.Event
	for _, p := range c.pages {
		evs = append(evs, synth.Event{Site: "example.com", Name: "pageview", TS: plTime(t, p.at), VisitorID: uint64(p.user),
			Hostname: "example.com", Pathname: p.path, Interactive: 1})
	}
	if err := synth.Insert(ctx, db.Conn, db.Name, evs); err != nil {
		t.Fatal(err)
	}
	var es []synth.Engagement
	for _, e := range c.engs {
		sd := uint8(255)
		if e.scroll >= 0 {
			sd = uint8(e.scroll)
		}
		es = append(es, synth.Engagement{Site: "example.com", TS: plTime(t, e.at), VisitorID: uint64(e.user),
			Hostname: "example.com", Pathname: e.path, ScrollDepth: sd, EngagementMS: uint32(e.ms)})
	}
	if err := synth.InsertEngagements(ctx, db.Conn, db.Name, es); err != nil {
		t.Fatal(err)
	}
}

// runJSON runs one request body on engine e and returns its results as
// JSON, or the error.
func runJSON(t *testing.T, e *Engine, body string) (string, error) {
	q, err := ParseRequest([]byte(body))
	if err != nil {
		return "", err
	}
	resp, err := e.Run(context.Background(), q)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(resp.Results)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), nil
}

func canonRows(t *testing.T, s string, anyOrder bool) string {
	var rows []json.RawMessage
	if err := json.Unmarshal([]byte(s), &rows); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		var v any
		if err := json.Unmarshal(r, &v); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(v)
		out[i] = string(b)
	}
	if anyOrder {
		slices.Sort(out)
	}
	return "[" + strings.Join(out, ",") + "]"
}

func TestEngagementMetricsPlausible(t *testing.T) {
	now := time.Date(2021, 2, 1, 12, 0, 0, 0, time.UTC)
	// time_on_page: query_time_on_page_test.exs; scroll_depth:
	// query_special_metrics_test.exs and main_graph_test.exs (the
	// dashboard's "scroll_depth plot").
	cases := []engCase{{
		plausible: `query_time_on_page_test.exs: aggregated time_on_page metric based on engagement data`,
		pages:     []plPage{{12, "/blog", "2021-01-01 00:00:00"}, {13, "/blog", "2021-01-01 00:10:00"}},
		engs: []plEng{{12, "/blog", "2021-01-01 00:10:00", -1, 120000}, {12, "/blog", "2021-01-01 00:11:00", -1, 20000},
			{13, "/blog", "2021-01-01 00:10:00", -1, 60000}},
		query: `"metrics":["time_on_page"],"date_range":"all","dimensions":["event:page"]`,
		want:  `[{"dimensions":["/blog"],"metrics":[100]}]`,
	}, {
		// Without the imported /blog row of 2021-01-01 (20 s).
		plausible: `query_time_on_page_test.exs: time_on_page time series`,
		pages: []plPage{{12, "/", "2021-01-01 00:00:00"}, {12, "/", "2021-01-02 00:00:00"}, {13, "/", "2021-01-02 00:00:00"},
			{12, "/", "2021-01-03 00:00:00"}, {12, "/", "2021-01-04 00:00:00"}},
		engs: []plEng{{12, "/", "2021-01-01 00:03:00", -1, 100000}, {12, "/", "2021-01-02 00:03:00", -1, 100000},
			{13, "/", "2021-01-02 00:10:00", -1, 300000}, {12, "/", "2021-01-03 00:03:00", -1, 100000}, {12, "/", "2021-01-04 00:03:00", -1, 100000}},
		query: `"metrics":["time_on_page"],"date_range":["2021-01-01","2021-01-04"],"dimensions":["time:day","event:page"]`,
		want: `[{"dimensions":["2021-01-01","/"],"metrics":[100]},{"dimensions":["2021-01-02","/"],"metrics":[200]},` +
			`{"dimensions":["2021-01-03","/"],"metrics":[100]},{"dimensions":["2021-01-04","/"],"metrics":[100]}]`,
	}, {
		// Without imports /blog is user 12's 2 x 100 s in one visit: 200
		// (Plausible's 38 adds 9 imported visits of 20 s).
		plausible: `query_time_on_page_test.exs: breakdown with cutoff being before data (new time-on-page query used)`,
		pages: []plPage{{12, "/", "2021-01-01 00:00:00"}, {12, "/blog", "2021-01-01 00:02:00"}, {12, "/", "2021-01-01 00:05:00"},
			{12, "/blog", "2021-01-01 00:10:00"}, {13, "/pricing", "2021-01-02 01:00:00"}, {14, "/", "2021-01-02 01:00:00"}},
		engs: []plEng{{12, "/", "2021-01-01 00:02:00", -1, 100000}, {12, "/blog", "2021-01-01 00:05:00", -1, 100000},
			{12, "/", "2021-01-01 00:10:00", -1, 100000}, {12, "/blog", "2021-01-01 00:15:00", -1, 100000},
			{13, "/pricing", "2021-01-02 01:02:00", -1, 30000}, {14, "/", "2021-01-02 01:02:00", -1, 30000}},
		query: `"metrics":["time_on_page"],"date_range":"all","dimensions":["event:page"]`,
		want:  `[{"dimensions":["/blog"],"metrics":[200]},{"dimensions":["/"],"metrics":[115]},{"dimensions":["/pricing"],"metrics":[30]}]`,
	}, {
		plausible: `query_time_on_page_test.exs: timeseries: reports average new time-on-page per day`,
		pages: []plPage{{12, "/", "2021-01-01 00:00:00"}, {12, "/", "2021-01-02 00:00:00"}, {12, "/", "2021-01-03 00:00:00"},
			{12, "/", "2021-01-04 00:00:00"}, {13, "/", "2021-01-04 00:00:00"}},
		engs: []plEng{{12, "/", "2021-01-01 00:05:00", -1, 100000}, {12, "/", "2021-01-02 00:05:00", -1, 200000},
			{12, "/", "2021-01-03 00:05:00", -1, 250000}, {12, "/", "2021-01-04 00:05:00", -1, 200000}, {13, "/", "2021-01-04 00:05:00", -1, 100000}},
		query: `"metrics":["time_on_page"],"date_range":["2021-01-01","2021-01-04"],"filters":[["is","event:page",["/"]]],"dimensions":["time:day"]`,
		want: `[{"dimensions":["2021-01-01"],"metrics":[100]},{"dimensions":["2021-01-02"],"metrics":[200]},` +
			`{"dimensions":["2021-01-03"],"metrics":[250]},{"dimensions":["2021-01-04"],"metrics":[150]}]`,
	}, {
		// The legacy metric's "/C" row: a page without engagement data
		// has a null time on page.
		plausible: `query_time_on_page_test.exs: legacy time_on_page metric: breakdown (page without engagement is null)`,
		pages:     []plPage{{111, "/A", "2021-01-01 00:00:00"}, {111, "/C", "2021-01-01 00:01:00"}},
		engs:      []plEng{{111, "/A", "2021-01-01 00:01:00", -1, 63000}},
		query:     `"metrics":["visitors","time_on_page"],"date_range":"all","dimensions":["event:page"]`,
		want:      `[{"dimensions":["/A"],"metrics":[1,63]},{"dimensions":["/C"],"metrics":[1,null]}]`,
	}, {
		plausible: `main_graph_test.exs: scroll_depth plot: returns scroll depth per day`,
		pages: []plPage{{12, "/", "2020-01-01 00:00:00"}, {34, "/", "2020-01-01 00:00:00"}, {34, "/", "2020-01-01 00:02:00"},
			{56, "/", "2020-01-02 00:00:00"}},
		engs: []plEng{{12, "/", "2020-01-01 00:01:00", 20, 0}, {34, "/", "2020-01-01 00:01:00", 17, 0},
			{34, "/", "2020-01-01 00:03:00", 60, 0}, {56, "/", "2020-01-02 00:01:00", 20, 0}},
		query: `"metrics":["scroll_depth"],"date_range":["2020-01-01","2020-01-07"],"dimensions":["time:day"],"filters":[["is","event:page",["/"]]]`,
		want:  `[{"dimensions":["2020-01-01"],"metrics":[40]},{"dimensions":["2020-01-02"],"metrics":[20]}]`,
	}, {
		plausible: `query_special_metrics_test.exs: scroll_depth metric in a time:day breakdown`,
		pages: []plPage{{12, "/", "2020-01-01 00:00:00"}, {34, "/", "2020-01-01 00:00:00"}, {34, "/", "2020-01-01 00:02:00"},
			{56, "/", "2020-01-02 00:00:00"}},
		engs: []plEng{{12, "/", "2020-01-01 00:01:00", 20, 0}, {34, "/", "2020-01-01 00:01:00", 17, 0},
			{34, "/", "2020-01-01 00:03:00", 60, 0}, {56, "/", "2020-01-02 00:01:00", 20, 0}},
		query: `"metrics":["scroll_depth"],"date_range":"all","dimensions":["time:day"],"filters":[["is","event:page",["/"]]]`,
		want:  `[{"dimensions":["2020-01-01"],"metrics":[40]},{"dimensions":["2020-01-02"],"metrics":[20]}]`,
	}, {
		plausible: `query_special_metrics_test.exs: breakdown by event:page with scroll_depth metric`,
		pages: []plPage{{12, "/blog", "2020-01-01 00:00:00"}, {12, "/another", "2020-01-01 00:01:00"}, {34, "/blog", "2020-01-01 00:00:00"},
			{34, "/another", "2020-01-01 00:01:00"}, {34, "/blog", "2020-01-01 00:02:00"}, {56, "/blog", "2020-01-01 00:00:00"}},
		engs: []plEng{{12, "/blog", "2020-01-01 00:01:00", 20, 0}, {12, "/another", "2020-01-01 00:02:00", 24, 0},
			{34, "/blog", "2020-01-01 00:01:00", 17, 0}, {34, "/another", "2020-01-01 00:02:00", 26, 0},
			{34, "/blog", "2020-01-01 00:03:00", 60, 0}, {56, "/blog", "2020-01-01 00:01:00", 100, 0}},
		query: `"metrics":["scroll_depth"],"date_range":"all","dimensions":["event:page"]`,
		want:  `[{"dimensions":["/blog"],"metrics":[60]},{"dimensions":["/another"],"metrics":[25]}]`,
	}, {
		plausible: `query_special_metrics_test.exs: breakdown by event:page + time:day with scroll_depth metric`,
		pages: []plPage{{12, "/blog", "2020-01-01 00:00:00"}, {12, "/another", "2020-01-01 00:01:00"}, {34, "/blog", "2020-01-01 00:00:00"},
			{34, "/another", "2020-01-01 00:01:00"}, {34, "/blog", "2020-01-01 00:02:00"}, {56, "/blog", "2020-01-02 00:00:00"},
			{56, "/another", "2020-01-02 00:01:00"}},
		engs: []plEng{{12, "/blog", "2020-01-01 00:01:00", 20, 0}, {12, "/another", "2020-01-01 00:02:00", 24, 0},
			{34, "/blog", "2020-01-01 00:01:00", 17, 0}, {34, "/another", "2020-01-01 00:02:00", 26, 0},
			{34, "/blog", "2020-01-01 00:03:00", 60, 0}, {56, "/blog", "2020-01-02 00:01:00", 20, 0}, {56, "/another", "2020-01-02 00:02:00", 24, 0}},
		query: `"metrics":["scroll_depth"],"date_range":"all","dimensions":["event:page","time:day"]`,
		want: `[{"dimensions":["/blog","2020-01-01"],"metrics":[40]},{"dimensions":["/another","2020-01-01"],"metrics":[25]},` +
			`{"dimensions":["/another","2020-01-02"],"metrics":[24]},{"dimensions":["/blog","2020-01-02"],"metrics":[20]}]`,
		anyOrder: true,
	}, {
		plausible: `query_special_metrics_test.exs: scroll_depth metric (aggregate with event:page filter)`,
		pages:     []plPage{{123, "/", "2021-01-01 00:00:00"}, {456, "/", "2021-01-01 00:00:00"}},
		engs:      []plEng{{123, "/", "2021-01-01 00:00:10", 40, 0}, {123, "/", "2021-01-01 00:00:20", 60, 0}, {456, "/", "2021-01-01 00:00:10", 80, 0}},
		query:     `"filters":[["is","event:page",["/"]]],"date_range":"all","metrics":["scroll_depth"]`,
		want:      `[{"dimensions":[],"metrics":[70]}]`,
	}, {
		// Plausible's engagement-era answer is null (it was 0 in the
		// pageleave era this case comes from).
		plausible: `query_special_metrics_test.exs: scroll depth is 0 when no pageleave data in range`,
		pages:     []plPage{{1, "/", "2021-01-01 00:00:00"}},
		query:     `"filters":[["is","event:page",["/"]]],"date_range":"all","metrics":["visitors","scroll_depth"]`,
		want:      `[{"dimensions":[],"metrics":[1,null]}]`,
	}}
	runEngCases(t, now, cases)
}

func runEngCases(t *testing.T, now time.Time, cases []engCase) {
	db := chtest.New(t)
	for _, c := range cases {
		t.Run(c.plausible, func(t *testing.T) {
			for _, tbl := range []string{"events", "engagements"} {
				if err := db.Conn.Exec(context.Background(), "TRUNCATE TABLE "+db.Name+"."+tbl); err != nil {
					t.Fatal(err)
				}
			}
			c.load(t, db)
			e, err := NewEngine(db.Conn, db.Name, map[string]SiteConfig{"example.com": {Goals: c.goals}}, func() time.Time { return now })
			if err != nil {
				t.Fatal(err)
			}
			got, err := runJSON(t, e, `{"site_id":"example.com",`+c.query+`}`)
			if want, ok := strings.CutPrefix(c.want, "error: "); ok {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error %v, want one saying %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g, w := canonRows(t, got, c.anyOrder), canonRows(t, c.want, c.anyOrder); g != w {
				t.Errorf("got  %s\nwant %s", g, w)
			}
		})
	}
}

func TestEngagementMetricsValidation(t *testing.T) {
	cases := []struct{ plausible, query, want string }{
		{`query_parser_test.exs: scroll_depth metric: fails validation on its own`,
			`"metrics":["scroll_depth"],"date_range":"all"`, "Metric `scroll_depth` can only be queried with event:page filters or dimensions."},
		{`query_parser_test.exs: scroll_depth metric: fails with only a non-top-level event:page filter`,
			`"metrics":["scroll_depth"],"date_range":"all","filters":[["not",["is","event:page",["/"]]]]`, "Metric `scroll_depth` can only be queried with event:page filters or dimensions."},
		{`main_graph_test.exs: scroll_depth plot: returns 400 when scroll_depth is queried without a page filter`,
			`"metrics":["scroll_depth"],"date_range":"month","dimensions":["time:day"]`, "can only be queried with event:page filters or dimensions"},
		{`turf: time_on_page with a visit dimension`,
			`"metrics":["time_on_page"],"date_range":"all","dimensions":["event:page","visit:source"]`, "event:page, event:hostname and time dimensions"},
	}
	for _, c := range cases {
		_, err := ParseRequest([]byte(`{"site_id":"example.com",` + c.query + `}`))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", c.plausible, err, c.want)
		}
	}
	// The top-level filter makes it valid.
	if _, err := ParseRequest([]byte(`{"site_id":"example.com","metrics":["scroll_depth"],"date_range":"all","filters":[["is","event:page",["/"]]]}`)); err != nil {
		t.Errorf("query_parser_test.exs: scroll_depth metric: succeeds with top-level event:page filter: %v", err)
	}
}
