package query

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"turf/internal/chtest"
	"turf/query/plan"
	"turf/query/rollup"
	"turf/query/synth"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// The oracle: expected answers computed from the generator's visits, which
// are the truth (the generator made them as visits), with none of the SQL's
// machinery.

var ams = mustLoc("Europe/Amsterdam")

func mustLoc(n string) *time.Location {
	l, err := time.LoadLocation(n)
	if err != nil {
		panic(err)
	}
	return l
}

// oracleGoals are example.com's goals: the generator's custom events and
// two page goals, one with a wildcard, that no page matches both of.
var oracleGoals = []string{"Signup", "Purchase;currency=EUR", "Outbound Link: Click", "File Download", "Scroll", "404", "Visit /pricing", "Visit /blog/**"}

// goalOf is the configured goal an event completes, independently of
// plan's wildcard rules: "/blog/**" is every path under /blog/.
func goalOf(e *synth.Event) (string, bool) {
	if e.Name != "pageview" {
		return e.Name, slices.Contains(oracleGoals, e.Name) || e.Name == "Purchase"
	}
	switch {
	case e.Pathname == "/pricing":
		return "Visit /pricing", true
	case strings.HasPrefix(e.Pathname, "/blog/"):
		return "Visit /blog/**", true
	}
	return "", false
}

type oracle struct {
	visits []synth.Visit
	engs   []synth.Engagement // synth.Engagements(visits)
	locs   map[string]*time.Location
}

type oq struct {
	site       string
	start, end time.Time
	dims       []string
	gran       string // of the time dimension
	filters    []Filter
	goals      []string
	// machines: read machine events, as the query a base is of does.
	machines bool
}

type oagg struct {
	visitors, visits map[uint64]bool
	visitIDs         map[int]*synth.Visit
	pageviews        int64
	events           int64
	revenue, revN    int64
}

func visitDimValue(d string, v *synth.Visit) string {
	f, l := v.Events[0], v.Events[len(v.Events)-1]
	switch d {
	case "visit:entry_page":
		return f.Pathname
	case "visit:exit_page":
		return l.Pathname
	case "visit:source":
		return f.Source
	case "visit:referrer":
		if f.ReferrerHost == "" {
			return "Direct / None"
		}
		return f.ReferrerHost + strings.TrimRight(f.ReferrerPath, "/")
	case "visit:channel":
		return f.Channel
	case "visit:utm_source":
		return f.UTMSource
	case "visit:utm_medium":
		return f.UTMMedium
	case "visit:utm_campaign":
		return f.UTMCampaign
	case "visit:utm_content":
		return f.UTMContent
	case "visit:utm_term":
		return f.UTMTerm
	case "visit:country":
		return f.Country
	case "visit:region":
		return orNotSet(f.Region)
	case "visit:city":
		return orNotSet(f.City)
	case "visit:device":
		return f.Device
	case "visit:browser":
		return f.Browser
	case "visit:browser_version":
		return f.BrowserVersion
	case "visit:os":
		return f.OS
	case "visit:os_version":
		return f.OSVersion
	}
	panic(d)
}

func (o *oracle) dimValue(q oq, d string, e *synth.Event, v *synth.Visit) (string, bool) {
	loc := o.locs[q.site]
	switch {
	case d == "event:page":
		return e.Pathname, true
	case d == "event:hostname":
		return e.Hostname, true
	case d == "event:name":
		return e.Name, true
	case d == "event:goal":
		if q.site != "example.com" {
			return "", false // the other site has no goals
		}
		return goalOf(e)
	case strings.HasPrefix(d, "event:props:"):
		k := strings.TrimPrefix(d, "event:props:")
		if i := slices.Index(e.PropsKeys, k); i >= 0 {
			return e.PropsValues[i], true
		}
		return "(none)", true
	case strings.HasPrefix(d, "visit:"):
		x := visitDimValue(d, v)
		if x == "" {
			x = blankLabels[d]
		}
		return x, true
	case strings.HasPrefix(d, "time"):
		t := e.TS.In(loc)
		switch q.gran {
		case "hour":
			return t.Format("2006-01-02 15:00:00"), true
		case "day":
			return t.Format("2006-01-02"), true
		case "week":
			// Weeks start on Monday, the first one on the range's first day.
			first := q.start.In(loc).Format("2006-01-02")
			for t.Weekday() != time.Monday && t.Format("2006-01-02") != first {
				t = t.AddDate(0, 0, -1)
			}
			return t.Format("2006-01-02"), true
		case "month":
			return t.Format("2006-01") + "-01", true
		}
	}
	panic(d)
}

func (o *oracle) match(q oq, f Filter, e *synth.Event, v *synth.Visit) bool {
	switch f.Op {
	case "and":
		for _, c := range f.Children {
			if !o.match(q, c, e, v) {
				return false
			}
		}
		return true
	case "or":
		for _, c := range f.Children {
			if o.match(q, c, e, v) {
				return true
			}
		}
		return false
	case "not":
		return !o.match(q, f.Children[0], e, v)
	}
	var x string
	if f.Dimension == "event:goal" {
		x, _ = goalOf(e)
	} else {
		x, _ = o.dimValue(q, f.Dimension, e, v)
	}
	any := false
	for _, val := range f.Values {
		a, b := x, val
		if !f.CaseSensitive {
			a, b = strings.ToLower(a), strings.ToLower(b)
		}
		switch strings.TrimSuffix(f.Op, "_not") {
		case "is":
			any = any || a == b
		case "contains":
			any = any || strings.Contains(a, b)
		case "matches":
			pat := val
			if !f.CaseSensitive {
				pat = "(?i)" + pat
			}
			any = any || regexp.MustCompile(pat).MatchString(x)
		}
	}
	if strings.HasSuffix(f.Op, "_not") {
		// A negated property filter wants the property there.
		if k, ok := strings.CutPrefix(f.Dimension, "event:props:"); ok && !slices.Contains(e.PropsKeys, k) {
			return false
		}
		return !any
	}
	return any
}

// blankLabels are how empty visit values read (Plausible's labels).
var blankLabels = map[string]string{
	"visit:source": "Direct / None", "visit:utm_source": "(not set)", "visit:utm_medium": "(not set)",
	"visit:utm_campaign": "(not set)", "visit:utm_content": "(not set)", "visit:utm_term": "(not set)",
	"visit:device": "(not set)", "visit:browser": "(not set)", "visit:browser_version": "(not set)",
	"visit:os": "(not set)", "visit:os_version": "(not set)",
}

func (o *oracle) run(q oq) map[string]*oagg {
	out := map[string]*oagg{}
	for vi := range o.visits {
		v := &o.visits[vi]
		if v.Site != q.site {
			continue
		}
	events:
		for ei := range v.Events {
			e := &v.Events[ei]
			if e.TS.Before(q.start) || !e.TS.Before(q.end) {
				continue
			}
			// Machines are never people: left out unless the query names
			// the machine prop (plan.WantsMachines).
			if slices.Contains(e.PropsKeys, plan.MachineProp) && !q.machines && !plan.WantsMachines(q.dims, q.filters) {
				continue
			}
			for _, f := range q.filters {
				if !o.match(q, f, e, v) {
					continue events
				}
			}
			var key []string
			for _, d := range q.dims {
				val, ok := o.dimValue(q, d, e, v)
				if !ok {
					continue events
				}
				key = append(key, val)
			}
			k := strings.Join(key, "\x00")
			a := out[k]
			if a == nil {
				a = &oagg{visitors: map[uint64]bool{}, visitIDs: map[int]*synth.Visit{}}
				out[k] = a
			}
			a.visitors[e.VisitorID] = true
			a.visitIDs[v.ID] = v
			a.events++
			if e.Name == "pageview" {
				a.pageviews++
			}
			if e.RevenueMicros != 0 && e.RevenueCurrency == "EUR" {
				a.revenue += e.RevenueMicros
				a.revN++
			}
		}
	}
	return out
}

// isBounce and duration follow docs/query.md, on the generator's visits.
func isBounce(v *synth.Visit) bool {
	pv, other := 0, 0
	for _, e := range v.Events {
		if e.Name == "pageview" {
			pv++
		} else if e.Interactive == 1 {
			other++
		}
	}
	return pv == 1 && other == 0
}

func duration(v *synth.Visit) int64 {
	return int64(v.Events[len(v.Events)-1].TS.Sub(v.Events[0].TS) / time.Second)
}

// value is the expected metric, computed independently of metricValue.
func (a *oagg) value(m string, base int64) float64 {
	if a == nil {
		a = &oagg{visitIDs: map[int]*synth.Visit{}}
	}
	visits := float64(len(a.visitIDs))
	var bounces, dur float64
	for _, v := range a.visitIDs {
		if isBounce(v) {
			bounces++
		}
		dur += float64(duration(v))
	}
	safe := func(x, y float64) float64 {
		if y == 0 {
			return 0
		}
		return x / y
	}
	switch m {
	case "visitors":
		return float64(len(a.visitors))
	case "visits":
		return visits
	case "pageviews":
		return float64(a.pageviews)
	case "events":
		return float64(a.events)
	case "views_per_visit":
		return math.Round(safe(float64(a.pageviews), visits)*100) / 100
	case "bounce_rate":
		return math.Round(100 * safe(bounces, visits))
	case "visit_duration":
		return math.Round(safe(dur, visits))
	case "percentage":
		return math.Round(1000*safe(float64(len(a.visitors)), float64(base))) / 10
	case "conversion_rate", "group_conversion_rate":
		return math.Round(10000*safe(float64(len(a.visitors)), float64(base))) / 100
	case "total_revenue":
		return float64(a.revenue/1000) / 1000
	case "average_revenue":
		// Plausible's decimal average: thousandths, the rest cut off.
		if a.revN == 0 {
			return 0
		}
		return float64(a.revenue/a.revN/1000) / 1000
	}
	panic(m)
}

// --- the system under test, over HTTP ---

type env struct {
	t      *testing.T
	client *fasthttp.Client
	keys   map[string]string // site -> key
	or     *oracle
	now    time.Time
	conn   driver.Conn
	db     string
	engine *Engine
	job    *rollup.Job
	// newsletters: the events include newsletterVisits.
	newsletters bool
}

var testStart = time.Date(2024, 3, 28, 0, 0, 0, 0, time.UTC)

// The storage modes the oracle runs in: the same answers are expected from
// each.
const (
	modeRaw     = "raw"     // no rollups: visits rebuilt from raw events
	modeRollups = "rollups" // every finished day built by the rollup job
	// Every other day built, and late events (a replayed spool) for one
	// built day arriving after its build: that day must be read raw.
	modeMixed = "mixed"
)

var lateDay = time.Date(2024, 3, 30, 0, 0, 0, 0, time.UTC)

// late picks the events held back in modeMixed.
func late(v synth.Visit) bool { return v.ID%4 == 0 && rollup.UTCDay(v.Events[0].TS).Equal(lateDay) }

func newEnv(t *testing.T, mode string) *env {
	t.Helper()
	db := chtest.New(t)
	visits := append(synth.Generate(OracleConfig), newsletterVisits(OracleConfig)...)
	ctx := context.Background()
	now := time.Date(2024, 4, 2, 12, 0, 0, 0, time.UTC)
	load := visits
	if mode == modeMixed {
		load = slices.DeleteFunc(slices.Clone(visits), late)
	}
	if err := synth.Insert(ctx, db.Conn, db.Name, synth.Events(load)); err != nil {
		t.Fatal(err)
	}
	if err := synth.InsertEngagements(ctx, db.Conn, db.Name, synth.Engagements(visits)); err != nil {
		t.Fatal(err)
	}
	job := rollup.New(db.Conn, db.Name, func() time.Time { return now }, t.Logf)
	job.Zone = oracleZone
	switch mode {
	case modeRollups:
		n, err := job.Pass(ctx, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		if n != 2*5 { // two sites, five finished days (2024-04-02 is today)
			t.Fatalf("built %d site-days, want 10", n)
		}
	case modeMixed:
		for _, site := range []string{"example.com", "other.org"} {
			for _, d := range []int{28, 30} {
				if err := job.BuildDay(ctx, site, time.Date(2024, 3, d, 0, 0, 0, 0, time.UTC)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := synth.Insert(ctx, db.Conn, db.Name, synth.Events(slices.DeleteFunc(slices.Clone(visits), func(v synth.Visit) bool { return !late(v) }))); err != nil {
			t.Fatal(err)
		}
		c, err := rollup.Valid(ctx, db.Conn, db.Name, "example.com", testStart, testStart.AddDate(0, 0, 6))
		if err != nil {
			t.Fatal(err)
		}
		var built []time.Time
		for d, b := range c {
			if b.Build != 0 {
				built = append(built, d)
			}
		}
		if c[testStart].Build == 0 || len(built) != 1 {
			t.Fatalf("covered days %v, want only %s (%s has late events)", built, testStart, lateDay)
		}
	}
	e := serveEnv(t, db.Conn, db.Name, visits, now, job)
	e.newsletters = true
	return e
}

// oracleZone is the sites' time zones as serveEnv configures them, for the
// rollup job, which cuts example.com's days at Amsterdam's midnight.
func oracleZone(site string) *time.Location {
	if site == "example.com" {
		loc, err := time.LoadLocation("Europe/Amsterdam")
		if err != nil {
			panic(err)
		}
		return loc
	}
	return time.UTC
}

// serveEnv serves the query API over the events in db.
func serveEnv(t *testing.T, conn driver.Conn, dbName string, visits []synth.Visit, now time.Time, job *rollup.Job) *env {
	t.Helper()
	ctx := context.Background()
	db := struct {
		Conn driver.Conn
		Name string
	}{conn, dbName}
	api, err := New(Config{
		Sites: map[string]SiteConfig{"example.com": {Timezone: "Europe/Amsterdam", Goals: oracleGoals}},
		Now:   func() time.Time { return now },
		Burst: 1000, RateLimit: 1000,
		// Every query checks the rollups afresh: the late-event cases
		// rebuild days between queries.
		RollupCheckTTL: -1,
	}, db.Conn, db.Name)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, s := range []string{"example.com", "other.org"} {
		k, _, err := CreateKey(ctx, db.Conn, db.Name, []string{s}, "test")
		if err != nil {
			t.Fatal(err)
		}
		keys[s] = k
	}
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		if !api.Handler(c) {
			c.Error("not found", fasthttp.StatusNotFound)
		}
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { _ = srv.Shutdown() })
	client := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }}
	return &env{t: t, client: client, keys: keys, or: &oracle{visits: visits, engs: synth.Engagements(visits), locs: map[string]*time.Location{"example.com": ams, "other.org": time.UTC}}, now: now, conn: db.Conn, db: db.Name, engine: api.Engine(), job: job}
}

func (e *env) post(key string, body any) (int, []byte) {
	e.t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://turf/api/v2/query")
	req.Header.SetMethod("POST")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	switch b := body.(type) {
	case string:
		req.SetBodyString(b)
	default:
		j, _ := json.Marshal(b)
		req.SetBody(j)
	}
	if err := e.client.DoTimeout(req, resp, 60*time.Second); err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode(), bytes.Clone(resp.Body())
}

type apiResp struct {
	Results []struct {
		Metrics    []json.RawMessage `json:"metrics"`
		Dimensions []string          `json:"dimensions"`
	} `json:"results"`
	Meta  map[string]json.RawMessage `json:"meta"`
	Query map[string]json.RawMessage `json:"query"`
}

func (e *env) query(body map[string]any) apiResp {
	e.t.Helper()
	site, _ := body["site_id"].(string)
	code, b := e.post(e.keys[site], body)
	if code != 200 {
		e.t.Fatalf("status %d: %s", code, b)
	}
	var r apiResp
	if err := json.Unmarshal(b, &r); err != nil {
		e.t.Fatalf("%v: %s", err, b)
	}
	return r
}

func metricNumber(t *testing.T, raw json.RawMessage) float64 {
	var f float64
	if json.Unmarshal(raw, &f) == nil {
		return f
	}
	var rev plan.Revenue
	if err := json.Unmarshal(raw, &rev); err != nil {
		t.Fatalf("metric %s: %v", raw, err)
	}
	return rev.Value
}

// check runs a query through the API and the oracle and compares every
// number of every row.
func (e *env) check(name string, body map[string]any, q oq) {
	e.t.Run(name, func(t *testing.T) {
		t.Helper()
		env := *e
		env.t = t
		metrics := metricsFor(body["metrics"].([]string), q.dims, q.filters)
		body = maps.Clone(body)
		body["metrics"] = metrics
		r := env.query(body)
		exp := e.or.run(q)
		var base map[string]*oagg
		if slices.Contains(metrics, "percentage") {
			q2 := q
			q2.dims = nil
			q2.machines = plan.WantsMachines(q.dims, q.filters)
			base = e.or.run(q2)
		}
		// conversion_rate is of all visitors without the goal and property
		// filters, group_conversion_rate of those in the same other
		// dimensions.
		var conv, groupConv map[string]*oagg
		goalAt := slices.Index(q.dims, "event:goal")
		if slices.Contains(metrics, "conversion_rate") {
			q2 := q
			q2.dims = nil
			q2.filters = withoutGoalsAndProps(q.filters)
			q2.machines = plan.WantsMachines(q.dims, q.filters)
			conv = e.or.run(q2)
		}
		if slices.Contains(metrics, "group_conversion_rate") {
			q2 := q
			q2.dims = slices.DeleteFunc(slices.Clone(q.dims), func(d string) bool { return d == "event:goal" })
			q2.filters = withoutGoalsAndProps(q.filters)
			q2.machines = plan.WantsMachines(q.dims, q.filters)
			groupConv = e.or.run(q2)
		}
		// By page, bounce rate and visit duration are over the visits that
		// entered on the page; with a page filter, bounce rate is over the
		// visits that entered on a filtered page.
		var entry map[string]*oagg
		entryDur := false
		if pi := slices.Index(q.dims, "event:page"); pi >= 0 {
			q2 := q
			q2.dims = slices.Clone(q.dims)
			q2.dims[pi] = "visit:entry_page"
			q2.filters = renamePage(q.filters)
			entry, entryDur = e.or.run(q2), true
		} else if slices.ContainsFunc(q.filters, func(f Filter) bool { return f.Dimension == "event:page" }) {
			q2 := q
			for _, f := range q.filters {
				if f.Dimension == "event:page" {
					f.Dimension = "visit:entry_page"
					q2.filters = append(slices.Clone(q2.filters), f)
				}
			}
			entry = e.or.run(q2)
		}
		if len(q.dims) == 0 && len(exp) == 0 {
			exp[""] = nil
		}
		got := map[string]bool{}
		for _, row := range r.Results {
			k := strings.Join(row.Dimensions, "\x00")
			got[k] = true
			a, ok := exp[k]
			if !ok {
				t.Errorf("unexpected row %q", row.Dimensions)
				continue
			}
			for i, m := range metrics {
				var b int64
				if base != nil {
					if x := base[""]; x != nil {
						b = int64(len(x.visitors))
					}
				}
				if conv != nil && m == "conversion_rate" {
					if x := conv[""]; x != nil {
						b = int64(len(x.visitors))
					}
				}
				if groupConv != nil && m == "group_conversion_rate" {
					d := slices.Clone(row.Dimensions)
					if goalAt >= 0 {
						d = slices.Delete(d, goalAt, goalAt+1)
					}
					if x := groupConv[strings.Join(d, "\x00")]; x != nil {
						b = int64(len(x.visitors))
					}
				}
				src := a
				if entry != nil && (m == "bounce_rate" || m == "visit_duration" && entryDur) {
					src = entry[k]
					if src == nil {
						src = &oagg{visitors: map[uint64]bool{}, visitIDs: map[int]*synth.Visit{}}
					}
				}
				if plan.IsRevenue(m) && !oracleRevenue(q, row.Dimensions, goalAt) {
					if string(row.Metrics[i]) != "null" {
						t.Errorf("row %q metric %s = %s, want null (no revenue goal)", row.Dimensions, m, row.Metrics[i])
					}
					continue
				}
				want := src.value(m, b)
				if g := metricNumber(t, row.Metrics[i]); g != want {
					t.Errorf("row %q metric %s = %v, want %v", row.Dimensions, m, g, want)
				}
			}
		}
		for k := range exp {
			if !got[k] {
				t.Errorf("missing row %q", strings.Split(k, "\x00"))
			}
		}
		if len(exp) < 1 {
			t.Errorf("the oracle expects no rows: the case tests nothing")
		}
	})
}

// oracleRevenue: revenue has a figure (in EUR, Purchase's currency) in a
// Purchase row of a goal breakdown, or under a goal filter naming
// Purchase; it is null everywhere else.
func oracleRevenue(q oq, row []string, goalAt int) bool {
	if q.site != "example.com" {
		return false
	}
	if goalAt >= 0 {
		return row[goalAt] == "Purchase"
	}
	return slices.ContainsFunc(q.filters, func(f Filter) bool {
		return f.Dimension == "event:goal" && f.Op == "is" && slices.Contains(f.Values, "Purchase")
	})
}

// withoutGoalsAndProps drops the top-level filters on goals or properties.
func withoutGoalsAndProps(fs []Filter) []Filter {
	var out []Filter
	for _, f := range fs {
		if f.Dimension != "event:goal" && !strings.HasPrefix(f.Dimension, "event:props:") {
			out = append(out, f)
		}
	}
	return out
}

// renamePage puts the event:page leaves on visit:entry_page.
func renamePage(fs []Filter) []Filter {
	out := make([]Filter, len(fs))
	for i, f := range fs {
		if f.Dimension == "event:page" {
			f.Dimension = "visit:entry_page"
		}
		f.Children = renamePage(f.Children)
		out[i] = f
	}
	return out
}

// metricsFor drops what Plausible refuses for the dimensions and filters:
// views_per_visit with dimensions or a page filter, visit metrics by event
// names or properties.
func metricsFor(ms, dims []string, filters []Filter) []string {
	out := []string{}
	for _, m := range ms {
		if m == "views_per_visit" && (len(dims) > 0 || plan.Mentions(filters, "event:page")) {
			continue
		}
		if (m == "bounce_rate" || m == "visit_duration") && slices.ContainsFunc(dims, func(d string) bool {
			return d == "event:name" || strings.HasPrefix(d, "event:props:")
		}) {
			continue
		}
		out = append(out, m)
	}
	return out
}

var allMetrics = []string{"visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration", "events", "total_revenue", "average_revenue"}

func TestOracle(t *testing.T) {
	for _, mode := range []string{modeRaw, modeRollups, modeMixed} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, mode)
			oracleCases(e)
			routed := e.engine.routed.Load()
			if mode == modeRaw && routed != 0 || mode != modeRaw && routed == 0 {
				t.Errorf("%d queries read the rollup tables", routed)
			}
			if mode != modeRaw {
				// Every way of reading the rollups was taken, and some
				// sums were found inexact and made again without.
				for v, name := range map[plan.Route]string{plan.Visits: "visits", plan.VisitStats: "visit_stats", plan.EventSums: "event_stats sums", plan.EventStates: "event_stats states", plan.HourStats: "hour_stats", plan.PropSums: "event_props"} {
					if e.engine.routedBy[v].Load() == 0 {
						t.Errorf("no query read %s", name)
					}
				}
				if e.engine.resummed.Load() == 0 {
					t.Error("no sum was found inexact: the check is not exercised")
				}
				// Ranges of whole Amsterdam days read the head and tail
				// rows of their first and last UTC day.
				if e.engine.parted.Load() == 0 {
					t.Error("no statement read a day's head or tail rows")
				}
			}
			if mode != modeMixed {
				return
			}
			// The next pass rebuilds the stale day and the two never built.
			n, err := e.job.Pass(context.Background(), testStart)
			if err != nil {
				t.Fatal(err)
			}
			if n != 2*4 { // 2024-03-29, 30 (stale), 31 and 04-01
				t.Errorf("the pass after the late events built %d site-days, want 8", n)
			}
			oracleCases(e)
		})
	}
}

// newsletterVisits are newsletter opens and clicks as the collector stores
// them, from people and from machines (prop machine): each its own visit
// of its own visitor, as mail clients, proxies and scanners are apart from
// the site's visitors. Only newEnv stores them (the collector makes them
// from links, not beacons, so the collector's oracle run has none).
func newsletterVisits(c synth.Config) []synth.Visit {
	var out []synth.Visit
	id := 1_000_000
	for si, site := range c.Sites {
		for day := 0; day < c.Days; day++ {
			for i := 0; i < 12; i++ {
				ts := c.Start.AddDate(0, 0, day).Add(time.Duration(si*997+i*6151+day*313) % (24 * 3600) * time.Second)
				campaign := []string{"nieuwsbrief-2024-03", "nieuwsbrief-2024-04"}[i%2]
				name, page := "Newsletter Open", "/o/"
				keys, vals := []string{"campaign"}, []string{campaign}
				if i%3 == 0 {
					name, page = "Newsletter Click", "/pricing"
					keys, vals = append(keys, "url"), append(vals, "https://"+site+"/pricing")
				}
				switch i % 4 {
				case 1:
					keys, vals = append(keys, plan.MachineProp), append(vals, "apple-mpp")
				case 2:
					keys, vals = append(keys, plan.MachineProp), append(vals, []string{"gmail-proxy", "microsoft-safelinks"}[i%3%2])
				}
				e := synth.Event{Site: site, Name: name, TS: ts, VisitorID: uint64(0xbeef0000 + id), Hostname: site, Pathname: page,
					Source: "Newsletter", Channel: "Email", UTMSource: "newsletter", UTMMedium: "email", UTMCampaign: campaign,
					Device: "Desktop", PropsKeys: keys, PropsValues: vals}
				out = append(out, synth.Visit{ID: id, Site: site, Events: []synth.Event{e}})
				id++
			}
		}
	}
	return out
}

// OracleConfig is the synthetic traffic the oracle expects; the test in
// package query_test sends it through the real collector.
var OracleConfig = synth.Config{Seed: 42, Sites: []string{"example.com", "other.org"}, Start: testStart, Days: 6, Persons: 40, VisitsPerDay: 120}

// RunOracle runs every oracle case over visits that something else stored
// in database db (the real collector, in package query_test, which may
// import turftest where this package may not): first from the raw events,
// then again after the rollup job has built every finished day.
func RunOracle(t *testing.T, conn driver.Conn, db string, visits []synth.Visit) {
	now := time.Date(2024, 4, 2, 12, 0, 0, 0, time.UTC)
	job := rollup.New(conn, db, func() time.Time { return now }, t.Logf)
	job.Zone = oracleZone
	e := serveEnv(t, conn, db, visits, now, job)
	t.Run(modeRaw, func(t *testing.T) {
		e := *e
		e.t = t
		oracleCases(&e)
	})
	if n, err := job.Pass(context.Background(), time.Unix(0, 0)); err != nil || n != 10 {
		t.Fatalf("rollup pass: built %d site-days (want 10), %v", n, err)
	}
	t.Run(modeRollups, func(t *testing.T) {
		e := *e
		e.t = t
		oracleCases(&e)
	})
	if e.engine.routed.Load() == 0 {
		t.Errorf("no query read the rollup tables")
	}
}

// oracleCases compares every metric, dimension, range and filter case with
// the oracle.
func oracleCases(e *env) {
	amsDay := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, ams) }
	// The fixed clock is 2024-04-02 14:00 in Amsterdam.
	ranges := []struct {
		name       string
		dr         any
		start, end time.Time
	}{
		{"custom dates over DST", []string{"2024-03-29", "2024-04-01"}, amsDay(2024, 3, 29), amsDay(2024, 4, 2)},
		{"DST day", []string{"2024-03-31", "2024-03-31"}, amsDay(2024, 3, 31), amsDay(2024, 4, 1)},
		{"7d", "7d", amsDay(2024, 3, 26), amsDay(2024, 4, 2)},
		{"day", "day", amsDay(2024, 4, 2), amsDay(2024, 4, 3)},
		{"month", "month", amsDay(2024, 4, 1), amsDay(2024, 5, 1)},
		{"all", "all", amsDay(2024, 3, 28), amsDay(2024, 4, 3)},
		{"24h", "24h", e.now.Add(-24 * time.Hour).Add(time.Second), e.now.Add(time.Second)},
		{"date-times", []string{"2024-03-30T22:15:00+01:00", "2024-03-31T05:00:00+02:00"},
			time.Date(2024, 3, 30, 21, 15, 0, 0, time.UTC), time.Date(2024, 3, 31, 3, 0, 1, 0, time.UTC)},
	}
	site := "example.com"
	for _, r := range ranges {
		e.check("aggregate/"+r.name, map[string]any{"site_id": site, "metrics": allMetrics, "date_range": r.dr},
			oq{site: site, start: r.start, end: r.end})
	}
	full := ranges[0]
	dims := append(append(append([]string{}, plan.VisitDims()...), plan.Page, plan.Hostname, plan.Name, plan.Goal), "event:props:plan", "event:props:url")
	for _, d := range dims {
		ms := allMetrics
		if d != "event:goal" {
			ms = append(slices.Clone(allMetrics), "percentage")
		}
		e.check("dim/"+d, map[string]any{"site_id": site, "metrics": ms, "date_range": full.dr, "dimensions": []string{d}},
			oq{site: site, start: full.start, end: full.end, dims: []string{d}})
	}
	for _, g := range []struct{ dim, gran string }{{"time:hour", "hour"}, {"time:day", "day"}, {"time:week", "week"}, {"time:month", "month"}, {"time", "day"}} {
		e.check("time/"+g.dim, map[string]any{"site_id": site, "metrics": allMetrics, "date_range": full.dr, "dimensions": []string{g.dim}},
			oq{site: site, start: full.start, end: full.end, dims: []string{g.dim}, gran: g.gran})
	}
	e.check("time/hour on the DST day", map[string]any{"site_id": site, "metrics": allMetrics, "date_range": ranges[1].dr, "dimensions": []string{"time"}},
		oq{site: site, start: ranges[1].start, end: ranges[1].end, dims: []string{"time"}, gran: "hour"})
	e.check("two dims", map[string]any{"site_id": site, "metrics": allMetrics, "date_range": full.dr, "dimensions": []string{"visit:source", "event:page"}},
		oq{site: site, start: full.start, end: full.end, dims: []string{"visit:source", "event:page"}})

	filters := []struct {
		name string
		json []any
		f    []Filter
	}{
		{"source is", []any{[]any{"is", "visit:source", []string{"Facebook", "Twitter"}}},
			[]Filter{{Op: "is", Dimension: "visit:source", Values: []string{"Facebook", "Twitter"}, CaseSensitive: true}}},
		{"page contains", []any{[]any{"contains", "event:page", []string{"blog"}}},
			[]Filter{{Op: "contains", Dimension: "event:page", Values: []string{"blog"}, CaseSensitive: true}}},
		{"country is_not, case-insensitive", []any{[]any{"is_not", "visit:country", []string{"nl", "de"}, map[string]bool{"case_sensitive": false}}},
			[]Filter{{Op: "is_not", Dimension: "visit:country", Values: []string{"nl", "de"}}}},
		{"matches and contains_not", []any{[]any{"matches", "event:page", []string{"^/(docs|blog)"}}, []any{"contains_not", "visit:device", []string{"Mob"}}},
			[]Filter{{Op: "matches", Dimension: "event:page", Values: []string{"^/(docs|blog)"}, CaseSensitive: true}, {Op: "contains_not", Dimension: "visit:device", Values: []string{"Mob"}, CaseSensitive: true}}},
		{"or / not / matches_not", []any{[]any{"or", []any{[]any{"is", "visit:channel", []string{"Email"}}, []any{"not", []any{"matches_not", "visit:entry_page", []string{"^/pricing$"}}}}}},
			[]Filter{{Op: "or", Children: []Filter{{Op: "is", Dimension: "visit:channel", Values: []string{"Email"}, CaseSensitive: true}, {Op: "not", Children: []Filter{{Op: "matches_not", Dimension: "visit:entry_page", Values: []string{"^/pricing$"}, CaseSensitive: true}}}}}}},
		{"goal", []any{[]any{"is", "event:goal", []string{"Signup", "Visit /pricing"}}},
			[]Filter{{Op: "is", Dimension: "event:goal", Values: []string{"Signup", "Visit /pricing"}, CaseSensitive: true}}},
		{"revenue goal", []any{[]any{"is", "event:goal", []string{"Purchase", "Signup"}}},
			[]Filter{{Op: "is", Dimension: "event:goal", Values: []string{"Purchase", "Signup"}, CaseSensitive: true}}},
		{"props", []any{[]any{"is", "event:props:plan", []string{"pro"}}},
			[]Filter{{Op: "is", Dimension: "event:props:plan", Values: []string{"pro"}, CaseSensitive: true}}},
		{"utm and name", []any{[]any{"is", "visit:utm_medium", []string{"email"}}, []any{"is_not", "event:name", []string{"pageview"}}},
			[]Filter{{Op: "is", Dimension: "visit:utm_medium", Values: []string{"email"}, CaseSensitive: true}, {Op: "is_not", Dimension: "event:name", Values: []string{"pageview"}, CaseSensitive: true}}},
	}
	for _, f := range filters {
		for _, d := range [][]string{nil, {"visit:source"}, {"event:page"}} {
			ms := allMetrics
			if strings.Contains(f.name, "goal") {
				ms = append(slices.Clone(allMetrics), "conversion_rate", "group_conversion_rate")
			}
			body := map[string]any{"site_id": site, "metrics": ms, "date_range": full.dr, "filters": f.json}
			if d != nil {
				body["dimensions"] = d
			}
			e.check(fmt.Sprintf("filter/%s/%v", f.name, d), body, oq{site: site, start: full.start, end: full.end, dims: d, filters: f.f})
		}
	}
	e.check("goal dimension with conversion rate", map[string]any{"site_id": site, "metrics": []string{"visitors", "events", "conversion_rate", "group_conversion_rate"}, "date_range": full.dr, "dimensions": []string{"event:goal", "visit:device"}},
		oq{site: site, start: full.start, end: full.end, dims: []string{"event:goal", "visit:device"}})
	// The other site is in UTC and its own.
	e.check("other site", map[string]any{"site_id": "other.org", "metrics": allMetrics, "date_range": []string{"2024-03-29", "2024-04-01"}, "dimensions": []string{"time:day"}},
		oq{site: "other.org", start: time.Date(2024, 3, 29, 0, 0, 0, 0, time.UTC), end: time.Date(2024, 4, 2, 0, 0, 0, 0, time.UTC), dims: []string{"time:day"}, gran: "day"})

	// The shapes the rollup tables answer (no revenue, no time, no props),
	// over ranges with built days inside: the dashboard's queries.
	visitMetrics := []string{"visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration", "events"}
	wide := []struct {
		site       string
		dr         any
		start, end time.Time
	}{
		{site, "all", amsDay(2024, 3, 28), amsDay(2024, 4, 3)},
		{site, "7d", amsDay(2024, 3, 26), amsDay(2024, 4, 2)},
		{"other.org", []string{"2024-03-28", "2024-04-01"}, time.Date(2024, 3, 28, 0, 0, 0, 0, time.UTC), time.Date(2024, 4, 2, 0, 0, 0, 0, time.UTC)},
		{site, []string{"2024-03-28T00:30:00+01:00", "2024-04-01T10:00:00+02:00"}, time.Date(2024, 3, 27, 23, 30, 0, 0, time.UTC), time.Date(2024, 4, 1, 8, 0, 1, 0, time.UTC)},
	}
	for i, r := range wide {
		e.check(fmt.Sprintf("rollup/aggregate/%d", i), map[string]any{"site_id": r.site, "metrics": visitMetrics, "date_range": r.dr},
			oq{site: r.site, start: r.start, end: r.end})
		for _, d := range append(plan.VisitDims(), plan.Page, plan.Hostname, plan.Name, plan.Goal) {
			ms := append(slices.Clone(visitMetrics), "percentage")
			if !strings.HasPrefix(d, "visit:") {
				ms = []string{"visitors", "pageviews", "events", "percentage"}
			}
			if d == "event:goal" {
				ms = []string{"visitors", "events", "conversion_rate"}
				if r.site != site {
					// other.org has no goals: its goal breakdown is empty.
					if got := e.query(map[string]any{"site_id": r.site, "metrics": ms, "date_range": r.dr, "dimensions": []string{d}}); len(got.Results) != 0 {
						e.t.Errorf("%s without goals: goal rows %v", r.site, got.Results)
					}
					continue
				}
			}
			e.check(fmt.Sprintf("rollup/%d/%s", i, d), map[string]any{"site_id": r.site, "metrics": ms, "date_range": r.dr, "dimensions": []string{d}},
				oq{site: r.site, start: r.start, end: r.end, dims: []string{d}})
		}
	}
	// Time series of the built days: hour_stats, days cut by the time zone.
	for i, r := range wide {
		for _, d := range []string{"time", "time:day", "time:week", "time:month"} {
			gran := strings.TrimPrefix(d, "time:")
			if d == "time" {
				gran = "day"
			}
			e.check(fmt.Sprintf("rollup/%d/%s", i, d), map[string]any{"site_id": r.site, "metrics": []string{"visitors", "pageviews", "events"}, "date_range": r.dr, "dimensions": []string{d}},
				oq{site: r.site, start: r.start, end: r.end, dims: []string{d}, gran: gran})
		}
	}
	// Properties without "(none)", as the dashboard asks for them:
	// event_props, and for "plan", which two event names share, the sums
	// are inexact and the raw path answers.
	noneJSON := func(k string) []any { return []any{"is_not", "event:props:" + k, []string{"(none)"}} }
	none := func(k string) Filter {
		return Filter{Op: "is_not", Dimension: "event:props:" + k, Values: []string{"(none)"}, CaseSensitive: true}
	}
	for i, r := range wide {
		for _, c := range []struct {
			key, name string
		}{{"url", "Outbound Link: Click"}, {"url", "File Download"}, {"url", ""}, {"plan", ""}, {"plan", "Signup"}} {
			fj, f := []any{noneJSON(c.key)}, []Filter{none(c.key)}
			if c.name != "" {
				fj = append(fj, []any{"is", "event:name", []string{c.name}})
				f = append(f, Filter{Op: "is", Dimension: "event:name", Values: []string{c.name}, CaseSensitive: true})
			}
			d := []string{"event:props:" + c.key}
			e.check(fmt.Sprintf("rollup/%d/props/%s/%s", i, c.key, c.name), map[string]any{"site_id": r.site, "metrics": []string{"visitors", "events"}, "date_range": r.dr, "dimensions": d, "filters": fj},
				oq{site: r.site, start: r.start, end: r.end, dims: d, filters: f})
		}
	}
	// Machine opens and clicks: counted only where the query names the
	// machine prop, from the raw events whatever the rollups hold.
	machineJSON := []any{"is_not", plan.MachineDim, []string{"(none)"}}
	machine := Filter{Op: "is_not", Dimension: plan.MachineDim, Values: []string{"(none)"}, CaseSensitive: true}
	nameJSON := []any{"is", "event:name", []string{"Newsletter Open", "Newsletter Click"}}
	name := Filter{Op: "is", Dimension: "event:name", Values: []string{"Newsletter Open", "Newsletter Click"}, CaseSensitive: true}
	// Over the whole range and over one cut by date-times (two of the wide
	// ranges: the oracle is long enough).
	for _, i := range []int{0, 3} {
		r := wide[i]
		if !e.newsletters {
			break
		}
		for _, c := range []struct {
			what    string
			dims    []string
			fj      []any
			f       []Filter
			metrics []string
		}{
			{"by machine", []string{plan.MachineDim}, []any{nameJSON}, []Filter{name}, append(slices.Clone(visitMetrics), "percentage")},
			{"people by campaign", []string{"event:props:campaign", "event:name"}, []any{nameJSON}, []Filter{name}, []string{"visitors", "events"}},
			{"people's campaigns (event_props)", []string{"event:props:campaign"}, []any{noneJSON("campaign")}, []Filter{none("campaign")}, []string{"visitors", "events"}},
			{"machines by campaign", []string{"event:props:campaign", "event:name"}, []any{nameJSON, machineJSON}, []Filter{name, machine}, []string{"visitors", "events"}},
			// The Newsletters panel's own queries: campaign rows only, so
			// that the people's figures come from event_props.
			{"people by campaign without none (event_props)", []string{"event:props:campaign", "event:name"}, []any{nameJSON, noneJSON("campaign")}, []Filter{name, none("campaign")}, []string{"visitors", "events"}},
			{"name and campaign without none (event_props)", []string{"event:name", "event:props:campaign"}, []any{noneJSON("campaign")}, []Filter{none("campaign")}, []string{"visitors", "events"}},
			{"machines by campaign without none", []string{"event:props:campaign", "event:name"}, []any{nameJSON, noneJSON("campaign"), machineJSON}, []Filter{name, none("campaign"), machine}, []string{"events"}},
			{"machine visits", nil, []any{machineJSON}, []Filter{machine}, visitMetrics},
			{"visits of the campaign", []string{"visit:utm_campaign"}, []any{[]any{"is", "visit:channel", []string{"Email"}}},
				[]Filter{{Op: "is", Dimension: "visit:channel", Values: []string{"Email"}, CaseSensitive: true}}, visitMetrics},
			// As the Newsletters panel asks: visit_stats' rows within the
			// Email channel.
			{"visits of the campaigns", []string{"visit:utm_campaign"}, []any{[]any{"is", "visit:channel", []string{"Email"}}, []any{"is_not", "visit:utm_campaign", []string{""}}},
				[]Filter{{Op: "is", Dimension: "visit:channel", Values: []string{"Email"}, CaseSensitive: true}, {Op: "is_not", Dimension: "visit:utm_campaign", Values: []string{""}, CaseSensitive: true}}, visitMetrics},
			{"visits of one campaign", nil, []any{[]any{"is", "visit:channel", []string{"Email"}}, []any{"is", "visit:utm_campaign", []string{"nieuwsbrief-2024-03"}}},
				[]Filter{{Op: "is", Dimension: "visit:channel", Values: []string{"Email"}, CaseSensitive: true}, {Op: "is", Dimension: "visit:utm_campaign", Values: []string{"nieuwsbrief-2024-03"}, CaseSensitive: true}}, visitMetrics},
		} {
			body := map[string]any{"site_id": r.site, "metrics": c.metrics, "date_range": r.dr, "filters": c.fj}
			if c.dims != nil {
				body["dimensions"] = c.dims
			}
			e.check(fmt.Sprintf("machines/%d/%s", i, c.what), body, oq{site: r.site, start: r.start, end: r.end, dims: c.dims, filters: c.f})
		}
	}
	all := wide[0]
	for _, f := range filters {
		if strings.Contains(f.name, "props") {
			continue
		}
		for _, d := range [][]string{nil, {"visit:source"}, {"event:page"}} {
			ms := visitMetrics
			if slices.Contains(d, "event:page") || !strings.Contains(f.name, "source") && !strings.Contains(f.name, "country") && !strings.Contains(f.name, "channel") {
				ms = []string{"visitors", "pageviews", "events", "percentage"}
			}
			body := map[string]any{"site_id": site, "metrics": ms, "date_range": all.dr, "filters": f.json}
			if d != nil {
				body["dimensions"] = d
			}
			e.check(fmt.Sprintf("rollup/filter/%s/%v", f.name, d), body, oq{site: site, start: all.start, end: all.end, dims: d, filters: f.f})
		}
	}
	engagementCases(e, full.dr, full.start, full.end)
}

// sortedKeys is for readable failure messages.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
