package query

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/valyala/fasthttp"

	"turf/internal/chtest"
	"turf/query/rollup"
	"turf/query/synth"
)

// TestPlausibleSpec runs the cases transcribed from Plausible's own Stats
// API v2 tests (testdata/plausible/*.json; each names the Plausible test it
// comes from). Each case's fixture rows go straight into the events table,
// as Plausible's populate_stats writes them past its ingestion, and its
// query goes through the real HTTP handler. Every case runs twice: on the
// raw events, and with every finished day built by the rollup job, so the
// rollup routes give the same answers. A 200 answer's echoed query is
// posted back and must give the same results (Plausible clients do that).
//
// Where turf differs from Plausible on purpose, the case says why in its
// "difference"; testdata/plausible/README.md lists every such reason.
func TestPlausibleSpec(t *testing.T) {
	files, err := filepath.Glob("testdata/plausible/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	var cases []specCase
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cs []specCase
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i := range cs {
			cs[i].file = filepath.Base(f)
		}
		cases = append(cases, cs...)
	}
	db := chtest.New(t)
	ctx := context.Background()
	var evs []synth.Event
	sites := []string{}
	for i := range cases {
		c := &cases[i]
		if c.Test == "" || !strings.Contains(c.Test, ".exs: ") {
			t.Fatalf("case %d of %s does not name its Plausible test", i, c.file)
		}
		c.site = fmt.Sprintf("c%d.test", i)
		sites = append(sites, c.site)
		for j, e := range c.Events {
			ev, err := e.event(c.site, 1_000_000+j)
			if err != nil {
				t.Fatalf("%s: event %d: %v", c.Test, j, err)
			}
			evs = append(evs, ev)
		}
	}
	if err := synth.Insert(ctx, db.Conn, db.Name, evs); err != nil {
		t.Fatal(err)
	}
	key, _, err := CreateKey(ctx, db.Conn, db.Name, sites, "plausible spec")
	if err != nil {
		t.Fatal(err)
	}
	passes := 0
	run := func(mode string) {
		for i := range cases {
			c := &cases[i]
			t.Run(mode+"/"+c.file+"/"+c.Test, func(t *testing.T) {
				if c.check(t, db.Conn, db.Name, key) {
					passes++
				}
			})
		}
	}
	run("raw")
	// Every day up to the latest "now" of the cases built, then the same
	// answers again.
	job := rollup.New(db.Conn, db.Name, func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }, t.Logf)
	if _, err := job.Pass(ctx, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	run("rollups")
	t.Logf("Plausible cases: %d transcribed, %d of %d runs passed (raw and rollups)", len(cases), passes, 2*len(cases))
}

// specCase is one transcribed Plausible test (or one expansion of a
// parametrised one).
type specCase struct {
	// Test is "<file>.exs: <test name>" in Plausible's repository.
	Test string `json:"test"`
	// Goals and Timezone are the site's settings (the --goal and
	// --site-timezone flag syntax).
	Goals    []string `json:"goals,omitempty"`
	Timezone string   `json:"timezone,omitempty"`
	// Now is the clock, "2006-01-02 15:04:05" UTC; default 2021-01-01 12:00:00.
	Now    string      `json:"now,omitempty"`
	Events []specEvent `json:"events"`
	// Query is the request body without site_id.
	Query map[string]any `json:"query"`
	// Status is the expected status; default 200.
	Status int `json:"status,omitempty"`
	// Results, Meta (a subset of keys) are compared for a 200; Error (the
	// whole message) or ErrorContains for a 400.
	Results json.RawMessage `json:"results,omitempty"`
	Meta    map[string]any  `json:"meta,omitempty"`
	// MetaAbsent are keys meta must not have.
	MetaAbsent []string `json:"meta_absent,omitempty"`
	// TimeLabelsCount, when set, is how many time labels meta holds.
	TimeLabelsCount int    `json:"time_labels_count,omitempty"`
	Error           string `json:"error,omitempty"`
	ErrorContains   string `json:"error_contains,omitempty"`
	// Difference, when set, says why turf's answer, the one transcribed,
	// differs from Plausible's on purpose.
	Difference string `json:"difference,omitempty"`
	// NoRepost: the echoed query is not posted back (a preset range echoed
	// as dates would not be the same range on another day).
	NoRepost bool `json:"no_repost,omitempty"`

	file, site string
}

// specEvent is one fixture row in Plausible's factory names
// (build(:pageview, ...) / build(:event, ...)).
type specEvent struct {
	Name            string   `json:"name,omitempty"`
	UserID          *int     `json:"user_id,omitempty"`
	Timestamp       string   `json:"timestamp,omitempty"`
	Pathname        string   `json:"pathname,omitempty"`
	Hostname        string   `json:"hostname,omitempty"`
	ReferrerSource  string   `json:"referrer_source,omitempty"`
	Referrer        string   `json:"referrer,omitempty"`
	Channel         string   `json:"channel,omitempty"`
	UTMMedium       string   `json:"utm_medium,omitempty"`
	UTMSource       string   `json:"utm_source,omitempty"`
	UTMCampaign     string   `json:"utm_campaign,omitempty"`
	UTMContent      string   `json:"utm_content,omitempty"`
	UTMTerm         string   `json:"utm_term,omitempty"`
	Browser         string   `json:"browser,omitempty"`
	BrowserVersion  string   `json:"browser_version,omitempty"`
	OS              string   `json:"operating_system,omitempty"`
	OSVersion       string   `json:"operating_system_version,omitempty"`
	ScreenSize      string   `json:"screen_size,omitempty"`
	CountryCode     string   `json:"country_code,omitempty"`
	MetaKey         []string `json:"meta.key,omitempty"`
	MetaValue       []string `json:"meta.value,omitempty"`
	RevenueAmount   string   `json:"revenue_reporting_amount,omitempty"`
	RevenueCurrency string   `json:"revenue_reporting_currency,omitempty"`
	NonInteractive  bool     `json:"non_interactive,omitempty"`
}

// defaultTS is the fixture's timestamp when a row gives none (Plausible's
// factory uses the current time; the cases' clock is fixed after it).
const defaultTS = "2021-01-01 00:00:00"

// event is the row as the collector would have stored it. A row without a
// user_id is a visitor of its own (Plausible's factory draws a random one).
// The visitor id is the user id hashed with the UTC day, as turf's daily
// salt makes it: the same person on two days is two visitors.
func (e specEvent) event(site string, n int) (synth.Event, error) {
	ts := e.Timestamp
	if ts == "" {
		ts = defaultTS
	}
	t, err := time.Parse(time.DateTime, ts)
	if err != nil {
		return synth.Event{}, err
	}
	user := n
	if e.UserID != nil {
		user = *e.UserID
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d/%s", site, user, t.Format(time.DateOnly))
	name := e.Name
	if name == "" {
		name = "pageview"
	}
	ev := synth.Event{Site: site, TS: t, Name: name, VisitorID: h.Sum64(), Hostname: or(e.Hostname, "default.test"),
		Pathname: or(e.Pathname, "/"), Source: or(e.ReferrerSource, ""), Channel: e.Channel,
		UTMSource: e.UTMSource, UTMMedium: e.UTMMedium, UTMCampaign: e.UTMCampaign, UTMContent: e.UTMContent, UTMTerm: e.UTMTerm,
		Country: e.CountryCode, Browser: e.Browser, BrowserVersion: e.BrowserVersion, OS: e.OS, OSVersion: e.OSVersion,
		Device: e.ScreenSize, PropsKeys: e.MetaKey, PropsValues: e.MetaValue, Interactive: 1}
	if e.NonInteractive {
		ev.Interactive = 0
	}
	// Plausible stores the referrer as host and path in one column; turf
	// in two, which its visit:referrer joins again.
	ev.ReferrerHost = e.Referrer
	if ev.Source == "" {
		ev.Source = "Direct / None" // as the collector stores it
	}
	if ev.Channel == "" {
		ev.Channel = "Direct"
		if ev.Source != "Direct / None" || ev.UTMSource != "" {
			ev.Channel = "Referral"
		}
	}
	if e.RevenueAmount != "" {
		f, err := strconv.ParseFloat(e.RevenueAmount, 64)
		if err != nil {
			return synth.Event{}, err
		}
		ev.RevenueMicros = int64(math.Round(f * 1e6))
		ev.RevenueCurrency = e.RevenueCurrency
	}
	if len(ev.PropsKeys) != len(ev.PropsValues) {
		return synth.Event{}, fmt.Errorf("meta.key and meta.value differ in length")
	}
	return ev, nil
}

func or(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// check runs the case and reports whether it passed.
func (c *specCase) check(t *testing.T, conn driver.Conn, db, key string) bool {
	now := time.Date(2021, 1, 1, 12, 0, 0, 0, time.UTC)
	if c.Now != "" {
		var err error
		if now, err = time.Parse(time.DateTime, c.Now); err != nil {
			t.Fatal(err)
		}
	}
	sc := SiteConfig{Timezone: c.Timezone, Goals: c.Goals}
	api, err := New(Config{Sites: map[string]SiteConfig{c.site: sc}, Now: func() time.Time { return now },
		Burst: 1000, RateLimit: 1000, RollupCheckTTL: -1, Logf: t.Logf}, conn, db)
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"site_id": c.site}
	for k, v := range c.Query {
		body[k] = v
	}
	status, resp := specPost(t, api, key, body)
	want := c.Status
	if want == 0 {
		want = 200
	}
	if status != want {
		t.Errorf("status %d, want %d: %s", status, want, resp)
		return false
	}
	if status != 200 {
		var e struct{ Error string }
		_ = json.Unmarshal(resp, &e)
		if c.Error != "" && e.Error != c.Error {
			t.Errorf("error %q, want %q", e.Error, c.Error)
			return false
		}
		if c.ErrorContains != "" && !strings.Contains(e.Error, c.ErrorContains) {
			t.Errorf("error %q, want it to contain %q", e.Error, c.ErrorContains)
			return false
		}
		return true
	}
	var got struct {
		Results json.RawMessage `json:"results"`
		Meta    map[string]any  `json:"meta"`
		Query   map[string]any  `json:"query"`
	}
	if err := json.Unmarshal(resp, &got); err != nil {
		t.Fatalf("%v: %s", err, resp)
	}
	ok := true
	if !jsonEqual(got.Results, c.Results) {
		t.Errorf("results\n got %s\nwant %s", got.Results, c.Results)
		ok = false
	}
	for k, v := range c.Meta {
		if !reflect.DeepEqual(normalize(got.Meta[k]), normalize(v)) {
			g, _ := json.Marshal(got.Meta[k])
			w, _ := json.Marshal(v)
			t.Errorf("meta %s\n got %s\nwant %s", k, g, w)
			ok = false
		}
	}
	for _, k := range c.MetaAbsent {
		if _, has := got.Meta[k]; has {
			t.Errorf("meta has %s: %v", k, got.Meta[k])
			ok = false
		}
	}
	if n, _ := got.Meta["time_labels"].([]any); c.TimeLabelsCount != 0 && len(n) != c.TimeLabelsCount {
		t.Errorf("%d time labels, want %d", len(n), c.TimeLabelsCount)
		ok = false
	}
	if ok && !c.NoRepost {
		status, again := specPost(t, api, key, got.Query)
		var g2 struct {
			Results json.RawMessage `json:"results"`
		}
		_ = json.Unmarshal(again, &g2)
		if status != 200 || !jsonEqual(g2.Results, got.Results) {
			t.Errorf("the echoed query posted back: %d %s", status, again)
			ok = false
		}
	}
	return ok
}

func specPost(t *testing.T, api *API, key string, body any) (int, []byte) {
	t.Helper()
	j, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	var c fasthttp.RequestCtx
	c.Request.Header.SetMethod("POST")
	c.Request.SetRequestURI(QueryPath)
	c.Request.Header.Set("Authorization", "Bearer "+key)
	c.Request.SetBody(j)
	if !api.Handler(&c) {
		t.Fatal("path not served")
	}
	return c.Response.StatusCode(), bytes.Clone(c.Response.Body())
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// normalize makes a decoded or literal value comparable as JSON.
func normalize(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}
