package query

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

// What one query may cost, and who waits for whom.
//
// ClickHouse spreads one query over every core, so a few expensive queries
// make every other one late, the dashboard's included. Three things bound
// that:
//
//   - every statement carries ClickHouse limits (max_execution_time,
//     max_rows_to_read, max_memory_usage): the server stops it, and
//     writeError answers 503 with Retry-After (time, memory) or 400 (rows),
//     never a bare 500;
//   - calls wait for a slot of their lane: staff sessions, share links and
//     Bearer keys each have their own (a Gate holds the three), so a public
//     share link can fill only the share lane and staff always find theirs;
//     within a lane one principal holds at most half the slots (rounded
//     up), so one link, user or key cannot take a lane for itself;
//   - regular-expression filters, the most expensive per value, are bounded
//     in count and total size (checkRegexes).

// Lane is the class of caller a Principal belongs to; each has its own
// slots.
type Lane int

// The lanes. The zero Lane is no lane: an Authorizer must choose.
const (
	LaneKey   Lane = iota + 1 // Bearer API keys
	LaneStaff                 // logged-in dashboard users
	LaneShare                 // share links
)

func (l Lane) String() string {
	switch l {
	case LaneKey:
		return "key"
	case LaneStaff:
		return "staff"
	case LaneShare:
		return "share"
	}
	return "Lane(" + strconv.Itoa(int(l)) + ")"
}

// Limits are the cost limits of every query, whoever asks. The zero value
// means the defaults.
type Limits struct {
	// MaxExecutionTime is ClickHouse's max_execution_time for every
	// statement, in whole seconds; a statement over it answers 503 with
	// Retry-After. Default: 20s.
	MaxExecutionTime time.Duration
	// MaxRowsToRead is ClickHouse's max_rows_to_read for every statement;
	// past it the query answers 400 (narrow the range or the filters).
	// Default: 2,000,000,000.
	MaxRowsToRead int
	// MaxMemoryUsage is ClickHouse's max_memory_usage, in bytes, for every
	// statement; past it the query answers 503 with Retry-After. Default:
	// 2 GiB, so that one request cannot take the server's memory (the
	// server's own default is 10 GB per query, more than many hosts have).
	MaxMemoryUsage int
	// KeySlots, StaffSlots and ShareSlots are how many calls of Bearer
	// keys, staff sessions and share links run in ClickHouse at once; the
	// rest wait their turn (within the call's QueryTimeout, then 503). One
	// principal holds at most half of its lane's slots, rounded up.
	// Defaults: 2 each.
	KeySlots, StaffSlots, ShareSlots int
	// MaxRegexes bounds how many values all matches/matches_not filters
	// of a query have together, MaxRegexBytes their total length. Defaults:
	// 20 and 2000.
	MaxRegexes    int
	MaxRegexBytes int
	// RetryAfter is what a 503 for a query over its time or memory budget,
	// or one that found no slot, tells the caller to wait. Default: 5s.
	RetryAfter time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxExecutionTime <= 0 {
		l.MaxExecutionTime = 20 * time.Second
	}
	if l.MaxRowsToRead <= 0 {
		l.MaxRowsToRead = 2_000_000_000
	}
	if l.MaxMemoryUsage <= 0 {
		l.MaxMemoryUsage = 2 << 30
	}
	for _, n := range []*int{&l.KeySlots, &l.StaffSlots, &l.ShareSlots} {
		if *n <= 0 {
			*n = 2
		}
	}
	if l.MaxRegexes <= 0 {
		l.MaxRegexes = 20
	}
	if l.MaxRegexBytes <= 0 {
		l.MaxRegexBytes = 2000
	}
	if l.RetryAfter <= 0 {
		l.RetryAfter = 5 * time.Second
	}
	return l
}

// settings are the ClickHouse settings every statement carries. On 18.16
// clickhouse-go sends settings in the old binary form, which takes only
// int values: whole seconds, rows and bytes.
func (l Limits) settings() clickhouse.Settings {
	s := clickhouse.Settings{
		"max_execution_time": max(1, int(l.MaxExecutionTime/time.Second)),
		"max_rows_to_read":   l.MaxRowsToRead,
		"max_memory_usage":   l.MaxMemoryUsage,
	}
	return s
}

// Gate holds the lanes' slots. One Gate is shared by every Pipeline of a
// process (the API's and the dashboard's), so the lanes bound all of them.
type Gate struct {
	limits Limits
	lanes  map[Lane]*lane
}

// NewGate returns a gate with l's slots (zero fields: the defaults).
func NewGate(l Limits) *Gate {
	l = l.withDefaults()
	return &Gate{limits: l, lanes: map[Lane]*lane{
		LaneKey:   newLane(l.KeySlots),
		LaneStaff: newLane(l.StaffSlots),
		LaneShare: newLane(l.ShareSlots),
	}}
}

// Limits are the gate's limits, defaults filled in.
func (g *Gate) Limits() Limits { return g.limits }

// Busy reports how many calls of lane l run now (tests and metrics).
func (g *Gate) Busy(l Lane) int { return len(g.lane(l).slots) }

func (g *Gate) lane(l Lane) *lane {
	ln, ok := g.lanes[l]
	if !ok {
		panic(fmt.Sprintf("BUG: principal without a lane (%v)", l))
	}
	return ln
}

// acquire waits for a slot of who's lane, at most perPrincipal of them
// held by who, until c is done.
func (g *Gate) acquire(c context.Context, who *Principal) (release func(), err error) {
	return g.lane(who.Lane).acquire(c, who.ID)
}

// lane is a semaphore of slots plus, per principal, a smaller one: a call
// first takes its principal's token, then a slot, so a principal waiting
// on itself never holds a slot another could use.
type lane struct {
	slots chan struct{}
	per   int
	mu    sync.Mutex
	mine  map[string]*principalSlots

	// For the metrics: calls waiting now, calls that got a slot, calls
	// refused for want of one, and the time calls spent waiting.
	waiting, admitted, refused atomic.Int64
	waitedNanos                atomic.Int64
}

type principalSlots struct {
	tokens chan struct{}
	refs   int // calls holding or waiting for a token
}

func newLane(n int) *lane {
	return &lane{slots: make(chan struct{}, n), per: (n + 1) / 2, mine: map[string]*principalSlots{}}
}

func (l *lane) acquire(c context.Context, id string) (func(), error) {
	start := time.Now()
	l.waiting.Add(1)
	defer func() {
		l.waiting.Add(-1)
		l.waitedNanos.Add(int64(time.Since(start)))
	}()
	l.mu.Lock()
	ps := l.mine[id]
	if ps == nil {
		ps = &principalSlots{tokens: make(chan struct{}, l.per)}
		l.mine[id] = ps
	}
	ps.refs++
	l.mu.Unlock()
	done := func() {
		l.mu.Lock()
		if ps.refs--; ps.refs == 0 {
			delete(l.mine, id)
		}
		l.mu.Unlock()
	}
	select {
	case ps.tokens <- struct{}{}:
	case <-c.Done():
		done()
		l.refused.Add(1)
		return nil, errNoSlot
	}
	select {
	case l.slots <- struct{}{}:
	case <-c.Done():
		<-ps.tokens
		done()
		l.refused.Add(1)
		return nil, errNoSlot
	}
	l.admitted.Add(1)
	return func() { <-l.slots; <-ps.tokens; done() }, nil
}

// RegisterMetrics exports each lane's slots (lane="key", "staff",
// "share"): turf_query_lane_slots (its size), turf_query_lane_in_use and
// turf_query_lane_waiting (calls holding and waiting for a slot now),
// turf_query_lane_admitted_total and turf_query_lane_refused_total (calls
// that got a slot, and that waited their whole timeout for one: a 503),
// and turf_query_lane_wait_seconds_total (time spent waiting). A lane
// whose refusals grow needs more slots, or has a principal flooding it.
func (g *Gate) RegisterMetrics(set *metrics.Set) {
	for _, l := range []Lane{LaneKey, LaneStaff, LaneShare} {
		ln, label := g.lane(l), `{lane="`+l.String()+`"}`
		set.NewGauge("turf_query_lane_slots"+label, func() float64 { return float64(cap(ln.slots)) })
		set.NewGauge("turf_query_lane_in_use"+label, func() float64 { return float64(len(ln.slots)) })
		set.NewGauge("turf_query_lane_waiting"+label, func() float64 { return float64(ln.waiting.Load()) })
		set.NewGauge("turf_query_lane_admitted_total"+label, func() float64 { return float64(ln.admitted.Load()) })
		set.NewGauge("turf_query_lane_refused_total"+label, func() float64 { return float64(ln.refused.Load()) })
		set.NewGauge("turf_query_lane_wait_seconds_total"+label, func() float64 { return float64(ln.waitedNanos.Load()) / 1e9 })
	}
}

// errNoSlot is a call that waited its whole QueryTimeout for a slot.
var errNoSlot = &HTTPError{fasthttp.StatusServiceUnavailable, "too many queries are running; try again shortly"}

// checkRegexes refuses a query whose regular-expression filters have more
// values, or more bytes, than the limits allow, naming the filter where
// the sum passed the limit.
func checkRegexes(q *Query, l Limits) error {
	n, size := 0, 0
	var walk func(f Filter, p string) error
	walk = func(f Filter, p string) error {
		switch {
		case f.Op == "not":
			return walk(f.Children[0], p+"/1")
		case len(f.Children) > 0:
			for i, c := range f.Children {
				if err := walk(c, fmt.Sprintf("%s/1/%d", p, i)); err != nil {
					return err
				}
			}
			return nil
		case f.Op != "matches" && f.Op != "matches_not":
			return nil
		}
		for _, v := range f.Values {
			n, size = n+1, size+len(v)
		}
		if n > l.MaxRegexes {
			return badf("%s/2: %s: the query's matches and matches_not filters have %d regular expressions; at most %d", p, f.Dimension, n, l.MaxRegexes)
		}
		if size > l.MaxRegexBytes {
			return badf("%s/2: %s: the query's regular expressions are %d bytes together; at most %d", p, f.Dimension, size, l.MaxRegexBytes)
		}
		return nil
	}
	for i, f := range q.Filters {
		if err := walk(f, fmt.Sprintf("#/filters/%d", i)); err != nil {
			return err
		}
	}
	return nil
}

// ClickHouse's error codes for a statement stopped by its limits.
const (
	chTooManyRows     = 158
	chTimeoutExceeded = 159
	chMemoryLimit     = 241
	chTooManyBytes    = 307
)

// limitError turns a ClickHouse exception raised by a statement's limits
// into the error the caller gets, or returns nil for any other error.
func limitError(err error, l Limits) error {
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		return nil
	}
	switch ex.Code {
	case chTimeoutExceeded:
		return &HTTPError{fasthttp.StatusServiceUnavailable, fmt.Sprintf("the query took longer than its %s budget; try again later, or narrow the date range or filters", l.MaxExecutionTime)}
	case chMemoryLimit:
		return &HTTPError{fasthttp.StatusServiceUnavailable, "the query needed more memory than its budget; try again later, or use fewer dimensions or a narrower date range"}
	case chTooManyRows, chTooManyBytes:
		return &HTTPError{fasthttp.StatusBadRequest, fmt.Sprintf("the query would read more than %d rows; narrow the date range or filters", l.MaxRowsToRead)}
	}
	return nil
}
