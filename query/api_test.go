package query

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestAuth(t *testing.T) {
	e := newEnv(t, modeRaw)
	body := map[string]any{"site_id": "example.com", "metrics": []string{"visitors"}, "date_range": "7d"}
	if code, b := e.post("", body); code != 401 {
		t.Errorf("no key: %d %s", code, b)
	}
	if code, b := e.post("turf_00000000_"+strings.Repeat("0", 64), body); code != 401 {
		t.Errorf("unknown key: %d %s", code, b)
	}
	if code, b := e.post("nonsense", body); code != 401 {
		t.Errorf("malformed key: %d %s", code, b)
	}
	if code, b := e.post(e.keys["other.org"], body); code != 403 {
		t.Errorf("key of another site: %d %s", code, b)
	}
	if code, b := e.post(e.keys["example.com"], body); code != 200 {
		t.Errorf("right key: %d %s", code, b)
	}
	// A wrong key learns nothing from validation.
	if code, _ := e.post("", `{"metrics":["bogus"]}`); code != 401 {
		t.Errorf("anonymous invalid query: %d", code)
	}
}

func TestRevokeAndRateLimit(t *testing.T) {
	e := newEnv(t, modeRaw)
	now := e.now
	api, err := New(Config{Now: func() time.Time { return now }, RateLimit: 1, Burst: 2, KeyCacheTTL: time.Nanosecond}, e.conn, e.db)
	if err != nil {
		t.Fatal(err)
	}
	call := func(key string) int {
		var c fasthttp.RequestCtx
		c.Request.Header.SetMethod("POST")
		c.Request.SetRequestURI("/api/v2/query")
		c.Request.Header.Set("Authorization", "Bearer "+key)
		c.Request.SetBodyString(`{"site_id":"example.com","metrics":["visitors"],"date_range":"day"}`)
		if !api.Handler(&c) {
			t.Fatal("path not served")
		}
		return c.Response.StatusCode()
	}
	key := e.keys["example.com"]
	if a, b, c := call(key), call(key), call(key); a != 200 || b != 200 || c != 429 {
		t.Errorf("burst of 2: %d %d %d", a, b, c)
	}
	now = now.Add(time.Second)
	if c := call(key); c != 200 {
		t.Errorf("after a second: %d", c)
	}
	if err := RevokeKey(context.Background(), e.conn, e.db, key); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	if c := call(key); c != 401 {
		t.Errorf("revoked key: %d", c)
	}
	ks, err := ListKeys(context.Background(), e.conn, e.db)
	if err != nil || len(ks) != 2 {
		t.Fatalf("keys %v %v", ks, err)
	}
	for _, k := range ks {
		if k.Revoked != (k.Sites[0] == "example.com") {
			t.Errorf("key %+v", k)
		}
	}
}

func TestRealtime(t *testing.T) {
	e := newEnv(t, modeRaw)
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI("http://turf/api/v1/stats/realtime/visitors?site_id=example.com")
	req.Header.Set("Authorization", "Bearer "+e.keys["example.com"])
	if err := e.client.Do(req, resp); err != nil {
		t.Fatal(err)
	}
	want := map[uint64]bool{}
	for _, v := range e.or.visits {
		for _, ev := range v.Events {
			if v.Site == "example.com" && !ev.TS.Before(e.now.Add(-5*time.Minute)) && !ev.TS.After(e.now) {
				want[ev.VisitorID] = true
			}
		}
	}
	if resp.StatusCode() != 200 || string(resp.Body()) != strings.TrimSpace(jsonString(len(want))) {
		t.Errorf("realtime: %d %s, want %d", resp.StatusCode(), resp.Body(), len(want))
	}
}

func jsonString(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestInvalidQueries(t *testing.T) {
	e := newEnv(t, modeRaw)
	cases := []struct{ body, field string }{
		{`{"site_id":"example.com","metrics":["visitorz"],"date_range":"7d"}`, "#/metrics/0"},
		{`{"site_id":"example.com","metrics":"visitors","date_range":"7d"}`, "#/metrics"},
		{`{"site_id":"example.com","metrics":["visitors"],"date_range":"8d"}`, "#/date_range"},
		{`{"site_id":"example.com","metrics":["visitors"],"date_range":["2024-13-01","2024-01-02"]}`, "#/date_range/0"},
		{`{"site_id":"example.com","metrics":["visitors"],"date_range":["2024-02-01","2024-01-02"]}`, "#/date_range"},
		{`{"site_id":"example.com","metrics":["visitors"],"date_range":"7d","dimensions":["visit:nope"]}`, "#/dimensions/0"},
		{`{"site_id":"example.com","metrics":["visitors"],"date_range":"7d","filters":[["equals","visit:source",["X"]]]}`, "#/filters/0/0"},
		{`{"site_id":"example.com","metrics":["visitors"],"date_range":"7d","filters":[["is","visit:source","X"]]}`, "#/filters/0/2"},
		{`{"site_id":"example.com","metrics":["visitors"],"date_range":"7d","filters":[["and",[["is","bogus",["X"]]]]]}`, "#/filters/0/1/0/1"},
		{`{"site_id":"example.com","metrics":["visitors"],"date_range":"7d","filters":[["matches","event:page",["("]]]}`, "#/filters/0/2/0"},
		{`{"site_id":"example.com","metrics":["conversion_rate"],"date_range":"7d"}`, "Metric `conversion_rate` can only be queried with event:goal filters or dimensions."},
		{`{"site_id":"example.com","metrics":["visitors"],"date_range":"7d","order_by":[["pageviews","desc"]]}`, "#/order_by/0"},
		{`{"site_id":"example.com","metrics":["visitors"],"date_range":"7d","pagination":{"limit":"ten"}}`, "#/pagination/limit"},
		{`{"site_id":"example.com","metrics":["visitors"],"date_range":"7d","include":{"time_labels":true}}`, "#/include/time_labels"},
		{`{"site_id":"example.com","metrics":["visitors"],"date_range":"7d","bogus":1}`, "bogus"},
		{`{"site_id":42,"metrics":["visitors"],"date_range":"7d"}`, "#/site_id"},
		{`[1,2]`, "body"},
	}
	for _, c := range cases {
		code, b := e.post(e.keys["example.com"], c.body)
		var r struct{ Error string }
		_ = json.Unmarshal(b, &r)
		if code != 400 || !strings.Contains(r.Error, c.field) {
			t.Errorf("%s: %d %s, want 400 naming %s", c.body, code, b, c.field)
		}
	}
}

func TestPaginationAndLabels(t *testing.T) {
	e := newEnv(t, modeRaw)
	r := e.query(map[string]any{"site_id": "example.com", "metrics": []string{"visitors", "pageviews"}, "date_range": []string{"2024-03-29", "2024-04-01"},
		"dimensions": []string{"event:page"}, "include": map[string]bool{"total_rows": true}})
	all := r.Results
	var total int
	_ = json.Unmarshal(r.Meta["total_rows"], &total)
	if total != len(all) || total < 5 {
		t.Fatalf("total_rows %d, rows %d", total, len(all))
	}
	for i := 1; i < len(all); i++ {
		if metricNumber(t, all[i].Metrics[0]) > metricNumber(t, all[i-1].Metrics[0]) {
			t.Errorf("not sorted by visitors desc at %d", i)
		}
	}
	p := e.query(map[string]any{"site_id": "example.com", "metrics": []string{"visitors", "pageviews"}, "date_range": []string{"2024-03-29", "2024-04-01"},
		"dimensions": []string{"event:page"}, "pagination": map[string]int{"limit": 2, "offset": 3}})
	if len(p.Results) != 2 || p.Results[0].Dimensions[0] != all[3].Dimensions[0] || p.Results[1].Dimensions[0] != all[4].Dimensions[0] {
		t.Errorf("page 2..3: %+v", p.Results)
	}
	l := e.query(map[string]any{"site_id": "example.com", "metrics": []string{"visitors"}, "date_range": []string{"2024-03-31", "2024-03-31"},
		"dimensions": []string{"time:hour"}, "include": map[string]bool{"time_labels": true}})
	var labels []string
	_ = json.Unmarshal(l.Meta["time_labels"], &labels)
	// 2024-03-31 in Amsterdam has 23 hours: 02:00 does not exist.
	if len(labels) != 23 || labels[0] != "2024-03-31 00:00:00" || labels[2] != "2024-03-31 03:00:00" {
		t.Errorf("labels %v", labels)
	}
	var dr []string
	_ = json.Unmarshal(l.Query["date_range"], &dr)
	if dr[0] != "2024-03-31T00:00:00+01:00" || dr[1] != "2024-03-31T23:59:59+02:00" {
		t.Errorf("echoed date range %v", dr)
	}
	c := e.query(map[string]any{"site_id": "example.com", "metrics": []string{"visitors", "bounce_rate"}, "date_range": []string{"2024-03-31", "2024-04-01"},
		"include": map[string]any{"comparisons": map[string]string{"mode": "previous_period"}}})
	var cmp struct {
		Results []struct{ Comparison struct{ Metrics []float64 } }
	}
	_, b := e.post(e.keys["example.com"], map[string]any{"site_id": "example.com", "metrics": []string{"visitors", "bounce_rate"}, "date_range": []string{"2024-03-31", "2024-04-01"},
		"include": map[string]any{"comparisons": map[string]string{"mode": "previous_period"}}})
	_ = json.Unmarshal(b, &cmp)
	prev := e.or.run(oq{site: "example.com", start: time.Date(2024, 3, 29, 0, 0, 0, 0, ams), end: time.Date(2024, 3, 31, 0, 0, 0, 0, ams)})[""]
	if len(c.Results) != 1 || len(cmp.Results) != 1 || cmp.Results[0].Comparison.Metrics[0] != prev.value("visitors", 0) || cmp.Results[0].Comparison.Metrics[1] != prev.value("bounce_rate", 0) {
		t.Errorf("comparison %s", b)
	}
}

// TestUnknownKeysRateLimited: made-up keys, each a ClickHouse lookup, are
// limited per client network and over all clients; a real key keeps
// working meanwhile, and a key not cached yet is still looked up for a
// network that is not flooding.
func TestUnknownKeysRateLimited(t *testing.T) {
	e := newEnv(t, modeRaw)
	now := e.now
	// Shared: 8 at once; one network: a quarter, 2 at once.
	api, err := New(Config{Now: func() time.Time { return now }, KeyLookupRate: 1, KeyLookupBurst: 8, KeyCacheTTL: time.Second}, e.conn, e.db)
	if err != nil {
		t.Fatal(err)
	}
	call := func(key, from string) int {
		var c fasthttp.RequestCtx
		c.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.ParseIP(from), Port: 40000}, nil)
		c.Request.Header.SetMethod("POST")
		c.Request.SetRequestURI("/api/v2/query")
		c.Request.Header.Set("Authorization", "Bearer "+key)
		c.Request.SetBodyString(`{"site_id":"example.com","metrics":["visitors"],"date_range":"day"}`)
		api.Handler(&c)
		return c.Response.StatusCode()
	}
	fake := func(i int) string { return fmt.Sprintf("turf_%08x_%064x", i, i) }
	key := e.keys["example.com"]
	if c := call(key, "10.0.0.1"); c != 200 {
		t.Fatalf("real key: %d", c)
	}
	// One network floods, from every address of its /24.
	codes := map[int]int{}
	for i := range 20 {
		codes[call(fake(i), fmt.Sprintf("10.0.1.%d", i+1))]++
	}
	if codes[401] != 2 || codes[429] != 18 {
		t.Errorf("20 made-up keys from one /24: %v, want 2 looked up (401) and 18 refused (429)", codes)
	}
	// The flood spent 2 of the 8 shared lookups: another network's key that
	// is not cached yet is still looked up.
	if c := call(e.keys["other.org"], "10.0.2.1"); c != 403 {
		t.Errorf("an uncached real key from another network during the flood: %d, want 403 (looked up, other site)", c)
	}
	// A flood from many networks empties the shared budget: then an
	// uncached key waits too, whatever its network.
	codes = map[int]int{}
	for i := range 20 {
		codes[call(fake(100+i), fmt.Sprintf("10.1.%d.1", i))]++
	}
	if codes[401] != 4 || codes[429] != 16 {
		t.Errorf("20 made-up keys from 20 networks: %v, want the 4 shared lookups left (401) and 16 refused (429)", codes)
	}
	if c := call(fake(999), "10.2.0.1"); c != 429 {
		t.Errorf("a made-up key from a fresh network after the shared budget is spent: %d, want 429", c)
	}
	now = now.Add(2 * time.Second) // the real key's entry expired; lookups still spent
	for i := range 5 {
		call(fake(200+i), fmt.Sprintf("10.3.%d.1", i))
	}
	if c := call(key, "10.0.0.1"); c != 200 {
		t.Errorf("real key during the flood: %d", c)
	}
}

// TestQueryTooLargeForClickHouse: a query within the validation limits
// whose SQL would pass ClickHouse's max_query_size (262144 bytes) is
// refused with a 400 naming the filter, not a bare 500 from the server.
func TestQueryTooLargeForClickHouse(t *testing.T) {
	e := newEnv(t, modeRaw)
	now := e.now
	api, err := New(Config{Now: func() time.Time { return now }}, e.conn, e.db)
	if err != nil {
		t.Fatal(err)
	}
	call := func(filters string) (int, string) {
		var c fasthttp.RequestCtx
		c.Request.Header.SetMethod("POST")
		c.Request.SetRequestURI("/api/v2/query")
		c.Request.Header.Set("Authorization", "Bearer "+e.keys["example.com"])
		c.Request.SetBodyString(`{"site_id":"example.com","metrics":["visitors"],"date_range":"day","filters":` + filters + `}`)
		api.Handler(&c)
		return c.Response.StatusCode(), string(c.Response.Body())
	}
	values := make([]string, 1000)
	for i := range values {
		values[i] = fmt.Sprintf("%q", "/"+strings.Repeat("x", 300)+fmt.Sprint(i))
	}
	huge := `[["is","event:page",["/"],{}],["or",[["is","event:name",["pageview"]],["is_not","event:page",[` + strings.Join(values, ",") + `]]]]]`
	code, body := call(huge)
	if code != 400 || !strings.Contains(body, "#/filters/1/1/1") || !strings.Contains(body, "max_query_size") {
		t.Errorf("1000 values of 300 bytes: %d %s, want 400 naming #/filters/1/1/1 and max_query_size", code, body)
	}
	if code, body := call(`[["is","event:page",["/` + strings.Repeat("'", 140000) + `"]]]`); code != 400 || !strings.Contains(body, "#/filters/0") {
		t.Errorf("one value of 140000 quotes (escaped to twice that): %d %s, want 400 naming #/filters/0", code, body)
	}
	if code, body := call(`[["is","event:page",["/` + strings.Repeat("x", 100000) + `"]]]`); code != 200 {
		t.Errorf("one value of 100000 bytes: %d %s, want 200", code, body)
	}
}
