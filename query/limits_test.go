package query

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"turf/internal/chtest"
	"turf/schema"
)

// laneAuth takes the principal from an X-Who header ("share:a",
// "user:carol", "key:k"), its lane from the prefix.
type laneAuth struct{}

func (laneAuth) Authorize(_ context.Context, req *fasthttp.RequestCtx) (*Principal, error) {
	who := string(req.Request.Header.Peek("X-Who"))
	lanes := map[string]Lane{"share": LaneShare, "user": LaneStaff, "key": LaneKey}
	kind, _, _ := strings.Cut(who, ":")
	return &Principal{ID: who, Sites: []string{"example.com", "other.org"}, Denied: errWrongSite, Lane: lanes[kind]}, nil
}

// blockingRunner holds every query for a site in block until the site's
// channel is closed, and answers the others at once.
type blockingRunner struct {
	block   map[string]chan struct{}
	started chan string
}

func (r *blockingRunner) Run(ctx context.Context, q *Query) (*Response, error) {
	if ch, ok := r.block[q.Site]; ok {
		r.started <- q.Site
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &Response{Results: []Row{}}, nil
}

func (r *blockingRunner) Realtime(context.Context, string) (int64, error) { return 0, nil }

func laneCall(p *Pipeline, who, body string) (int, string, string) {
	var c fasthttp.RequestCtx
	c.Request.Header.SetMethod("POST")
	c.Request.SetRequestURI(QueryPath)
	c.Request.Header.Set("X-Who", who)
	c.Request.SetBodyString(body)
	p.Serve(&c)
	return c.Response.StatusCode(), string(c.Response.Body()), string(c.Response.Header.Peek("Retry-After"))
}

const laneBody = `{"site_id":"example.com","metrics":["visitors"],"date_range":"day"}`

// A flood of slow share-link queries fills the share lane and no more:
// a staff query and a key query still find a free slot and answer while
// every share query is held. And one share link holds at most half of the
// share lane, so a second link still gets its turn.
func TestShareFloodLeavesStaffLane(t *testing.T) {
	hold := make(chan struct{})
	run := &blockingRunner{block: map[string]chan struct{}{"example.com": hold}, started: make(chan string, 100)}
	gate := NewGate(Limits{ShareSlots: 2, StaffSlots: 2, KeySlots: 2})
	cfg := PipelineConfig{RateLimit: 1000, Burst: 1000, QueryTimeout: time.Minute, Gate: gate, Now: time.Now, Logf: t.Logf}
	shares := NewPipeline(cfg, run, laneAuth{})
	var wg sync.WaitGroup
	codes := make(chan int, 20)
	flood := func(who string, n int) {
		for range n {
			wg.Go(func() { code, _, _ := laneCall(shares, who, laneBody); codes <- code })
		}
	}
	// One link sends ten: it gets one of the two share slots.
	flood("share:a", 10)
	<-run.started
	if n := gate.Busy(LaneShare); n != 1 {
		t.Fatalf("one share link holds %d share slots, want 1 of 2", n)
	}
	// Another link gets the second; the lane is then full.
	flood("share:b", 10)
	<-run.started
	if n := gate.Busy(LaneShare); n != 2 {
		t.Fatalf("share lane: %d busy, want 2 (full)", n)
	}

	// Staff and keys answer while every share query is held (they ask
	// for a site the fake does not hold).
	other := strings.Replace(laneBody, "example.com", "other.org", 1)
	if code, body, _ := laneCall(NewPipeline(cfg, run, laneAuth{}), "user:carol", other); code != 200 {
		t.Errorf("staff query during a share flood: %d %s", code, body)
	}
	if code, body, _ := laneCall(NewPipeline(cfg, run, laneAuth{}), "key:k", other); code != 200 {
		t.Errorf("key query during a share flood: %d %s", code, body)
	}
	if n := gate.Busy(LaneShare); n != 2 {
		t.Errorf("share lane: %d busy after the staff query, want still 2", n)
	}
	close(hold)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("share query answered %d", c)
		}
	}
	if gate.Busy(LaneShare) != 0 || len(gate.lanes[LaneShare].mine) != 0 {
		t.Errorf("slots left after the flood: %d busy, %d principals", gate.Busy(LaneShare), len(gate.lanes[LaneShare].mine))
	}
}

// A share query that finds no slot within its timeout gets 503 with
// Retry-After, not a bare error.
func TestNoSlotIs503(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	run := &blockingRunner{block: map[string]chan struct{}{"example.com": hold}, started: make(chan string, 10)}
	gate := NewGate(Limits{ShareSlots: 1})
	p := NewPipeline(PipelineConfig{RateLimit: 1000, Burst: 1000, QueryTimeout: 50 * time.Millisecond, Gate: gate, Now: time.Now, Logf: t.Logf}, run, laneAuth{})
	go laneCall(NewPipeline(PipelineConfig{RateLimit: 1000, Burst: 1000, QueryTimeout: time.Minute, Gate: gate, Now: time.Now, Logf: t.Logf}, run, laneAuth{}), "share:a", laneBody)
	<-run.started
	code, body, retry := laneCall(p, "share:b", laneBody)
	if code != 503 || retry == "" {
		t.Errorf("no slot: %d %s Retry-After %q, want 503 with Retry-After", code, body, retry)
	}
}

func TestRegexLimits(t *testing.T) {
	run := &blockingRunner{started: make(chan string, 10)}
	p := NewPipeline(PipelineConfig{RateLimit: 1000, Burst: 1000, QueryTimeout: time.Minute, Gate: NewGate(Limits{MaxRegexes: 3, MaxRegexBytes: 100}), Now: time.Now, Logf: t.Logf}, run, laneAuth{})
	q := func(filters string) (int, string) {
		code, body, _ := laneCall(p, "share:a", `{"site_id":"example.com","metrics":["visitors"],"date_range":"day","filters":`+filters+`}`)
		return code, body
	}
	for _, c := range []struct {
		name, filters string
		code          int
		want          string
	}{
		{"three", `[["matches","event:page",["^/a","^/b"]],["matches_not","event:page",["x"]]]`, 200, ""},
		{"four", `[["matches","event:page",["^/a","^/b"]],["not",["matches_not","visit:source",["x","y"],{"case_sensitive":false}]]]`, 400, "#/filters/1/1/2: visit:source"},
		{"four case-insensitive, nested", `[["or",[["matches","event:page",["^/a"],{"case_sensitive":false}],["matches_not","event:page",["a","b","c"],{"case_sensitive":false}]]]]`, 400, "#/filters/0/1/1/2: event:page"},
		{"too long", `[["matches","event:page",["` + strings.Repeat("a", 101) + `"]]]`, 400, "bytes together; at most 100"},
		{"contains is not a regex", `[["contains","event:page",["a","b","c","d","e"]]]`, 200, ""},
	} {
		code, body := q(c.filters)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s, want %d naming %q", c.name, code, body, c.code, c.want)
		}
	}
}

// A statement over max_execution_time is stopped by ClickHouse itself,
// and the caller gets 503 with Retry-After. The runner runs real, heavy
// SQL with the context the pipeline gave it, so this checks both that the
// limits travel with the context and how the real exception is mapped.
func TestOverTimeBudgetIs503(t *testing.T) {
	// A connection of its own, with no database of chtest.New's. The
	// modern leg still mirrors it (schema.Open wraps every connection to
	// the test server), and compares a read only once 18.16 delivered it
	// whole: before it did, the heavy statement was replayed on chDB with
	// no limit, and the next test's cleanup waited for it forever.
	conn, _, err := schema.Open("clickhouse://" + chtest.Server(t) + "/default")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	run := runnerFunc(func(ctx context.Context, q *Query) (*Response, error) {
		var n string
		err := conn.QueryRow(ctx, "SELECT toString(sum(cityHash64(number))) FROM system.numbers_mt LIMIT 50000000000").Scan(&n)
		if err != nil {
			return nil, fmt.Errorf("cannot run query: %w", err)
		}
		return &Response{}, nil
	})
	p := NewPipeline(PipelineConfig{RateLimit: 1000, Burst: 1000, QueryTimeout: 40 * time.Second, Gate: NewGate(Limits{MaxExecutionTime: time.Second, MaxRowsToRead: 1 << 62, RetryAfter: 7 * time.Second}), Now: time.Now, Logf: t.Logf}, run, laneAuth{})
	code, body, retry := laneCall(p, "user:carol", laneBody)
	if code != 503 || retry != "7" || !strings.Contains(body, "longer than its 1s budget") {
		t.Errorf("over the time budget: %d %s Retry-After %q, want 503, the budget message and Retry-After 7", code, body, retry)
	}
}

// A statement over max_memory_usage is stopped by ClickHouse (code 241)
// and the caller gets 503 with Retry-After and the memory message; a
// request that sets no budget still carries the default one.
func TestOverMemoryBudgetIs503(t *testing.T) {
	if got := (Limits{}).withDefaults().settings()["max_memory_usage"]; got != 2<<30 {
		t.Errorf("default max_memory_usage %v, want 2 GiB", got)
	}
	conn, _, err := schema.Open("clickhouse://" + chtest.Server(t) + "/default")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	run := runnerFunc(func(ctx context.Context, q *Query) (*Response, error) {
		var n uint64
		// An exact distinct count of 20M numbers needs far more than 16 MB.
		err := conn.QueryRow(ctx, "SELECT uniqExact(number) FROM (SELECT number FROM system.numbers LIMIT 20000000)").Scan(&n)
		if err != nil {
			return nil, fmt.Errorf("cannot run query: %w", err)
		}
		return &Response{}, nil
	})
	p := NewPipeline(PipelineConfig{RateLimit: 1000, Burst: 1000, QueryTimeout: 40 * time.Second, Gate: NewGate(Limits{MaxMemoryUsage: 16 << 20, RetryAfter: 6 * time.Second}), Now: time.Now, Logf: t.Logf}, run, laneAuth{})
	code, body, retry := laneCall(p, "user:carol", laneBody)
	if code != 503 || retry != "6" || !strings.Contains(body, "more memory than its budget") {
		t.Errorf("over the memory budget: %d %s Retry-After %q, want 503, the memory message and Retry-After 6", code, body, retry)
	}
}

type runnerFunc func(ctx context.Context, q *Query) (*Response, error)

func (f runnerFunc) Run(ctx context.Context, q *Query) (*Response, error) { return f(ctx, q) }
func (f runnerFunc) Realtime(context.Context, string) (int64, error)      { return 0, nil }

// The real engine over real events with a row budget of one row, on the
// raw route and on the rollup tables: ClickHouse stops the statement, the
// caller gets a 400 saying so (never a 500), the call's slot is free again
// and no statement of it is left running on the server.
func TestOverRowBudgetIs400(t *testing.T) {
	for _, mode := range []string{modeRaw, modeRollups} {
		e := newEnv(t, mode)
		now := e.now
		api, err := New(Config{Now: func() time.Time { return now }, Limits: Limits{MaxRowsToRead: 1}, Logf: t.Logf}, e.conn, e.db)
		if err != nil {
			t.Fatal(err)
		}
		for _, body := range []string{
			`{"site_id":"example.com","metrics":["visitors","pageviews"],"date_range":"7d","dimensions":["event:page"]}`,
			`{"site_id":"example.com","metrics":["visitors","bounce_rate"],"date_range":"7d","dimensions":["visit:source"]}`,
		} {
			var c fasthttp.RequestCtx
			c.Request.Header.SetMethod("POST")
			c.Request.SetRequestURI(QueryPath)
			c.Request.Header.Set("Authorization", "Bearer "+e.keys["example.com"])
			c.Request.SetBodyString(body)
			api.Handler(&c)
			if code, got := c.Response.StatusCode(), string(c.Response.Body()); code != 400 || !strings.Contains(got, "more than 1 rows") {
				t.Errorf("%s %s: over the row budget: %d %s, want 400 naming the budget", mode, body, code, got)
			}
			if n := api.Gate().Busy(LaneKey); n != 0 {
				t.Errorf("%s: %d key slots still held after the refusal", mode, n)
			}
		}
		// A sibling statement of a refused call is cancelled, and the server
		// takes a moment to stop it (seen more often on a busy machine since
		// every statement carries max_memory_usage): none may be left
		// running after that.
		var running uint64
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if err := e.conn.QueryRow(context.Background(), "SELECT count() FROM system.processes WHERE query LIKE @db AND query NOT LIKE '%system.processes%'",
				clickhouse.Named("db", "%"+e.db+"%")).Scan(&running); err != nil {
				t.Fatal(err)
			}
			if running == 0 || time.Now().After(deadline) {
				break
			}
		}
		if running != 0 {
			t.Errorf("%s: %d statements of the refused calls still run on the server a second later", mode, running)
		}
	}
}

// The lanes' metrics follow the calls: slots held, calls waiting, admitted
// and refused, per lane, and the other lanes stay untouched.
func TestLaneMetrics(t *testing.T) {
	hold := make(chan struct{})
	run := &blockingRunner{block: map[string]chan struct{}{"example.com": hold}, started: make(chan string, 10)}
	gate := NewGate(Limits{ShareSlots: 2})
	set := metrics.NewSet()
	gate.RegisterMetrics(set)
	cfg := PipelineConfig{RateLimit: 1000, Burst: 1000, QueryTimeout: time.Minute, Gate: gate, Now: time.Now, Logf: t.Logf}
	p := NewPipeline(cfg, run, laneAuth{})
	short := cfg
	short.QueryTimeout = 50 * time.Millisecond
	impatient := NewPipeline(short, run, laneAuth{})
	read := func() map[string]float64 {
		var b bytes.Buffer
		set.WritePrometheus(&b)
		out := map[string]float64{}
		for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
			name, v, _ := strings.Cut(line, " ")
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			out[name] = f
		}
		return out
	}
	check := func(step string, want map[string]float64) {
		t.Helper()
		got := read()
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %v, want %v", step, k, got[k], v)
			}
		}
	}
	var wg sync.WaitGroup
	for _, who := range []string{"share:a", "share:b"} {
		wg.Go(func() { laneCall(p, who, laneBody) })
		<-run.started
	}
	check("two share links held", map[string]float64{
		`turf_query_lane_slots{lane="share"}`: 2, `turf_query_lane_in_use{lane="share"}`: 2,
		`turf_query_lane_admitted_total{lane="share"}`: 2, `turf_query_lane_waiting{lane="share"}`: 0,
		`turf_query_lane_in_use{lane="staff"}`: 0, `turf_query_lane_admitted_total{lane="staff"}`: 0,
	})
	if code, _, _ := laneCall(impatient, "share:c", laneBody); code != 503 {
		t.Errorf("share:c with the lane full: %d, want 503", code)
	}
	check("one refused", map[string]float64{`turf_query_lane_refused_total{lane="share"}`: 1, `turf_query_lane_refused_total{lane="staff"}`: 0})
	wg.Go(func() { laneCall(p, "share:d", laneBody) })
	for deadline := time.Now().Add(10 * time.Second); read()[`turf_query_lane_waiting{lane="share"}`] != 1; {
		if time.Now().After(deadline) {
			t.Fatal("share:d never counted as waiting")
		}
		time.Sleep(time.Millisecond)
	}
	other := strings.Replace(laneBody, "example.com", "other.org", 1)
	if code, body, _ := laneCall(p, "user:carol", other); code != 200 {
		t.Errorf("staff during the flood: %d %s", code, body)
	}
	check("staff answered", map[string]float64{`turf_query_lane_admitted_total{lane="staff"}`: 1, `turf_query_lane_in_use{lane="staff"}`: 0})
	close(hold)
	wg.Wait()
	check("all done", map[string]float64{
		`turf_query_lane_in_use{lane="share"}`: 0, `turf_query_lane_waiting{lane="share"}`: 0,
		`turf_query_lane_admitted_total{lane="share"}`: 3, `turf_query_lane_refused_total{lane="share"}`: 1,
		`turf_query_lane_admitted_total{lane="key"}`: 0,
	})
	if w := read()[`turf_query_lane_wait_seconds_total{lane="share"}`]; w < 0.05 {
		t.Errorf("share lane waited %vs in all, want at least share:c's 50ms", w)
	}
}
