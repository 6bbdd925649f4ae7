package query

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

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
	// A plain connection, not chtest.New's: the modern leg would replay
	// the heavy statement without its limit.
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

type runnerFunc func(ctx context.Context, q *Query) (*Response, error)

func (f runnerFunc) Run(ctx context.Context, q *Query) (*Response, error) { return f(ctx, q) }
func (f runnerFunc) Realtime(context.Context, string) (int64, error)      { return 0, nil }
