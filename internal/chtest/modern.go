package chtest

// The modern leg: every statement a test sends to the test server through a
// connection of schema.Open is also run, in the same order, on ClickHouse
// 26.x (chDB, in this process; see internal/chdb). Every statement must
// succeed on both, and every read must give the same answer on both. So a
// new query route is proven on a modern ClickHouse by the test that covers
// it on 18.16, without anyone adding it anywhere.
//
// How it keeps the two in step: the wrapper sits between turf and the
// driver (schema.Wrap). A write (Exec, a batch's Send) runs on 18.16 first
// and, only when that succeeded, on chDB; a batch's rows go to chDB as an
// INSERT ... VALUES of the same literals. A read runs as the caller asked on
// 18.16; then, with that database's writes held off, the same text is asked
// of 18.16 over its HTTP port and of chDB, both as TabSeparated, and the two
// texts are compared. Statements are bound to text with the driver's own
// binder, so both servers see exactly what 18.16 saw. Mutations (ALTER ...
// DELETE/UPDATE) are waited for on both before the next statement, so a
// compared read never sees one half-done.

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/internal/chdb"
)

// leg is the process's modern leg.
type leg struct {
	ch      *chdb.Conn
	version string // chDB's version()
	addr    string // the 18.16 test server's native address: only its connections are mirrored
	http    string // its HTTP base URL

	jobs chan job // statements for 26.x, in order (see work)

	mu    sync.Mutex     // guards dbs, seen, stats and every mirrorDB's problems
	seen  map[string]int // runs of each read, by template
	dbs   map[string]*mirrorDB
	stats Stats
}

// mirrorDB is one database's state in the leg.
type mirrorDB struct {
	mu       sync.Mutex // one mirrored statement at a time: a write and a compared read never interleave
	problems []string   // guarded by leg.mu
	// elsewhere: another process writes to this database (a turf binary a
	// test started), so 26.x lacks its rows; statements still run there,
	// answers are not compared.
	elsewhere bool
}

// Stats are the leg's figures for this process.
type Stats struct {
	Version                 string              // chDB's version()
	Statements              map[string]struct{} `json:"-"` // distinct statements as turf wrote them, the database name replaced
	Reads                   map[string]struct{} `json:"-"` // the distinct ones among them whose answers were compared
	StatementList, ReadList []string
	Repeats                 int // runs of a read beyond the first few, not compared (see repeats)
	Reordered               int // ordered answers with the same rows, tied rows in another order
	Runs                    int // statements run on both
	Answers                 int // answers compared
	Differed                int // answers that differed
	Failed                  int // statements that failed on the modern server only
	// Time the leg added to the tests: statements on chDB, and the second
	// reading of 18.16's answers over HTTP.
	ModernTime, HTTPTime time.Duration
	cost                 map[string]time.Duration // per statement, on 26.x
	Slowest              []string                 // the statements that took longest on 26.x in all, with that time
}

func newLeg(ch *chdb.Conn, addr, httpURL string) (*leg, error) {
	v, err := ch.Query("SELECT version()", "TabSeparated")
	if err != nil {
		return nil, fmt.Errorf("chDB does not answer: %w", err)
	}
	// One thread per query: the tests' data are small, and a query spread
	// over threads costs more in start-up than it gains (15 ms against 5 ms
	// here); the leg runs beside the tests, on the other core.
	// And a time limit of the harness's own, so that a runaway statement is
	// reported as failed instead of stopping the suite.
	for _, q := range []string{"SET max_threads = 1", "SET max_execution_time = 120"} {
		if _, err := ch.Query(q, "TabSeparated"); err != nil {
			return nil, fmt.Errorf("chDB: %w", err)
		}
	}
	l := &leg{ch: ch, version: strings.TrimSpace(string(v)), addr: addr, http: httpURL, dbs: map[string]*mirrorDB{}, jobs: make(chan job, 1<<16)}
	l.stats = Stats{Version: l.version, Statements: map[string]struct{}{}, Reads: map[string]struct{}{}}
	go l.work()
	return l, nil
}

// wrap is schema.Wrap: connections to the test server get a mirror.
func (l *leg) wrap(conn driver.Conn, addrs []string, db string) driver.Conn {
	if !slices.Contains(addrs, l.addr) {
		return conn
	}
	return &mirrorConn{Conn: conn, leg: l, db: db, m: l.database(db)}
}

func (l *leg) database(db string) *mirrorDB {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.dbs[db]
	if m == nil {
		m = &mirrorDB{}
		l.dbs[db] = m
	}
	return m
}

// takeProblems returns and forgets what went wrong for db.
func (l *leg) takeProblems(db string) []string {
	m := l.database(db)
	l.flush()
	l.mu.Lock()
	defer l.mu.Unlock()
	p := m.problems
	m.problems = nil
	return p
}

func (l *leg) timed(d *time.Duration, start time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	*d += time.Since(start)
}

func (l *leg) costs(db, template string, start time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stats.cost == nil {
		l.stats.cost = map[string]time.Duration{}
	}
	l.stats.cost[strings.ReplaceAll(template, db, "{db}")] += time.Since(start)
}

// repeats is how many runs of one read (as turf wrote it, before its
// values are bound) are compared; later ones are left out, counted as
// Repeats. The oracle tests ask the same few hundred questions thousands of
// times with other values, and comparing each every time would triple
// their run time (TURF_MODERN_REPEATS=0 compares every run). Writes always
// run: 26.x must hold the same rows.
var repeats = func() int {
	if n, err := strconv.Atoi(os.Getenv("TURF_MODERN_REPEATS")); err == nil && n >= 0 {
		return n
	}
	return 4
}()

func (l *leg) wantRead(db, template string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string]int{}
	}
	t := strings.ReplaceAll(template, db, "{db}")
	l.seen[t]++
	if repeats > 0 && l.seen[t] > repeats {
		l.stats.Repeats++
		return false
	}
	return true
}

func (l *leg) count(db, template string, read, differed, failed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := strings.ReplaceAll(template, db, "{db}")
	l.stats.Statements[t] = struct{}{}
	l.stats.Runs++
	if read {
		l.stats.Reads[t] = struct{}{}
		l.stats.Answers++
	}
	if differed {
		l.stats.Differed++
	}
	if failed {
		l.stats.Failed++
	}
}

// Snapshot returns a copy of the figures, with the statement sets as sorted
// lists.
func (l *leg) snapshot() Stats {
	l.flush()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats
	s.StatementList = sortedKeys(s.Statements)
	s.ReadList = sortedKeys(s.Reads)
	type tc struct {
		t string
		d time.Duration
	}
	var all []tc
	for t, d := range s.cost {
		all = append(all, tc{t, d})
	}
	slices.SortFunc(all, func(a, b tc) int { return int(b.d - a.d) })
	for i := 0; i < len(all) && i < 10; i++ {
		s.Slowest = append(s.Slowest, fmt.Sprintf("%v %s", all[i].d.Round(time.Millisecond), clip(all[i].t)))
	}
	return s
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TURF_MODERN_TRACE names a file that gets every statement run on 26.x with
// its time in µs and answer size, tab-separated: to find what makes the leg
// slow.
var traceFile = func() *os.File {
	if p := os.Getenv("TURF_MODERN_TRACE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			panic(fmt.Sprintf("TURF_MODERN_TRACE: %v", err))
		}
		return f
	}
	return nil
}()

// A job is one statement for 26.x, in the order 18.16 ran it. One worker
// runs them one after another, so 26.x may lag behind the test but never
// reorders; the test does not wait for it, and the two servers work side by
// side on this machine's two cores.
type job struct {
	m                 *mirrorDB
	db, template, sql string
	read              bool
	compare           bool          // a read whose answers are compared
	old               []byte        // its answer on 18.16, taken when the test asked
	flushed           chan struct{} // a barrier: closed once every earlier job is done
}

func (l *leg) work() {
	for j := range l.jobs {
		if j.flushed != nil {
			close(j.flushed)
			continue
		}
		l.run(j)
	}
}

// flush waits until 26.x has run every statement queued so far.
func (l *leg) flush() {
	done := make(chan struct{})
	l.jobs <- job{flushed: done}
	<-done
}

func (l *leg) problem(m *mirrorDB, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m.problems = append(m.problems, msg)
}

// write queues a statement that succeeded on 18.16 (called with m.mu held).
// A mutation is waited for on 18.16 first, so that the test's next compared
// read does not see it half-done.
func (l *leg) write(m *mirrorDB, db, template, sql string) {
	if mutation.MatchString(sql) {
		if err := settle(l.ask18, "18.16", db); err != nil {
			l.problem(m, err.Error())
		}
	}
	l.jobs <- job{m: m, db: db, template: template, sql: sql}
}

// read takes 18.16's answer now and queues the question for 26.x (called
// with m.mu held, so no write of the test comes in between). Statements
// about the server rather than the data (system tables, SHOW, version())
// must run on both but may answer differently: parts, settings and
// formatting are the server's own.
func (l *leg) read(m *mirrorDB, db, template, sql string) {
	j := job{m: m, db: db, template: template, sql: sql, read: true}
	if !m.elsewhere && !serverState.MatchString(sql) {
		start := time.Now()
		old, err := l.ask18(sql)
		l.timed(&l.stats.HTTPTime, start)
		if err != nil {
			l.problem(m, fmt.Sprintf("cannot read the 18.16 answer over HTTP: %v\n%s", err, clip(sql)))
		} else {
			j.compare, j.old = true, old
		}
	}
	l.jobs <- j
}

// run runs one job on 26.x and judges it.
func (l *leg) run(j job) {
	start := time.Now()
	modern, err := l.ch.Query(j.sql, "TabSeparated")
	l.timed(&l.stats.ModernTime, start)
	l.costs(j.db, j.template, start)
	if traceFile != nil {
		fmt.Fprintf(traceFile, "%d\t%d\t%q\n", time.Since(start).Microseconds(), len(modern), j.sql)
	}
	if err != nil {
		l.problem(j.m, fmt.Sprintf("fails on ClickHouse %s: %v\n%s", l.version, err, clip(j.sql)))
		l.count(j.db, j.template, false, false, true)
		return
	}
	if !j.read && mutation.MatchString(j.sql) {
		if err := settle(func(q string) ([]byte, error) { return l.ch.Query(q, "TabSeparated") }, l.version, j.db); err != nil {
			l.problem(j.m, err.Error())
		}
	}
	if !j.compare {
		l.count(j.db, j.template, false, false, false)
		return
	}
	same := sameAnswer(j.old, modern, false)
	if same && orderBy.MatchString(j.sql) && !sameAnswer(j.old, modern, true) {
		// The same rows, in another order. Under an ORDER BY that is only
		// legitimate among rows the ORDER BY ties, which the leg cannot
		// tell from the text; turf's answers never depend on the order of
		// ties (its own ORDER BYs end in a unique key), so it is counted, not
		// failed.
		l.mu.Lock()
		l.stats.Reordered++
		l.mu.Unlock()
	}
	if !same {
		l.problem(j.m, fmt.Sprintf("answers differ between 18.16 and %s\n%s\n%s", l.version, clip(j.sql), firstDifference(j.old, modern, l.version)))
	}
	l.count(j.db, j.template, true, !same, false)
}

var (
	mutation    = regexp.MustCompile(`(?is)^\s*ALTER\s+TABLE\s.*\s(DELETE|UPDATE)\s`)
	serverState = regexp.MustCompile(`(?is)\bsystem\.|^\s*(SHOW|DESCRIBE|DESC|EXISTS)\s|\bversion\(\)`)
	orderBy     = regexp.MustCompile(`(?is)\bORDER\s+BY\b[^)]*$`) // an outermost ORDER BY: no ')' after it
)

// settle waits until a server (asked through ask) has finished db's
// mutations.
func settle(ask func(string) ([]byte, error), server, db string) error {
	q := "SELECT count() FROM system.mutations WHERE database = '" + strings.ReplaceAll(db, "'", "") + "' AND is_done = 0"
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := ask(q)
		if err != nil {
			return fmt.Errorf("cannot read the mutations of %s on %s: %w", db, server, err)
		}
		if string(out) == "0\n" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mutations of %s still running on %s after a minute", db, server)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *leg) ask18(sql string) ([]byte, error) {
	resp, err := http.Post(l.http, "text/plain", strings.NewReader(sql))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	return body, nil
}
