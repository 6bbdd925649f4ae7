// Package sink moves events from request handlers into ClickHouse, exactly
// once, through a write-ahead spool on local disk.
//
// Add writes the event to the spool (group-committed with the other requests
// of the moment) and returns: an accepted event is on disk before its 202,
// whatever ClickHouse is doing. One flush loop reads the spool in order and
// inserts batches when they are full or old enough; a record leaves the
// spool only once ClickHouse has it. While ClickHouse is down or slow the
// loop retries one batch and the spool grows on disk, not in memory; when
// the spool reaches its size limit Add refuses (the handler answers 503).
//
// Exactly once: every insert takes one contiguous run of spool records of
// one month (one partition, so ClickHouse applies it atomically) and is
// named after the spool position of its first record, in the batch_id
// column and as the query id. The name is fixed before the first attempt
// and is the same in every later attempt and process, so whenever the
// outcome of an attempt is unknown (an error, a timeout, a kill -9, or a
// replay of records spooled by an earlier run) the loop first waits until
// no insert of this spool is still running on the server, then counts the
// rows with that name: n > 0 means the run's first n records are stored and
// are passed over, 0 means none is and the run is sent again. No FINAL, no
// ReplacingMergeTree, nothing ClickHouse 18.16 lacks.
//
// On a sharded cluster (deploy/clickhouse-cluster) the sink inserts through
// the Distributed events table, synchronously (insert_distributed_sync), not
// into the shards' local tables: the Distributed table alone applies the
// sharding key, so a visitor's day lands on one shard whichever collector
// took the events, and its answer means what a single node's does, every
// shard has its part in a Replicated table. The ClickHouse side splits the
// run by shard and each shard's part is applied atomically (and replicated
// from there); the parts of one run on different shards are not one
// transaction. So after an unknown outcome the count goes through the
// Distributed table too (every shard), and a run some shards stored and
// others did not is sent again whole: each shard receives the same block
// it was sent before, which its Replicated table's block deduplication
// (replicated_deduplication_window, keyed on the block's content) passes
// over, so no event is stored twice and the missing parts land; what it
// dropped is counted (turf_events_dedup_dropped_total). A run is sent
// again whole only when it is known to be cut exactly as before: a run this
// process failed to send, or the one an earlier process was inserting when
// it stopped. Before every insert the sink notes the run (its first
// position and length) next to the spool checkpoint (spool.NoteInflight:
// one small file write per insert, none per event); a process started on
// that spool reads the note and treats that run like its own failed
// attempt: it waits until the batch holds the noted number of records (they
// are on disk; a changed batch size does not change the cut), counts, and
// on a cluster sends a run found partly or not at all stored again whole.
// That covers a lagging replica answering the count with too few rows after
// a restart. Without a note (lost with a power cut when the spool is not
// fsynced, or a checkpoint from before notes) a replayed run is passed over
// by the prefix rule above. What remains is written down in
// deploy/clickhouse-cluster/README.md.
//
// A run ClickHouse rejects for good (a schema mismatch, an undecodable
// record) is set aside in the spool's dead/ directory, counted and logged,
// and the loop goes on.
package sink

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/VictoriaMetrics/metrics"

	"turf/collector/spool"
	"turf/schema"
)

// Config sizes the sink.
type Config struct {
	Dir           string        // spool directory (under --data-dir)
	MaxBytes      int64         // spool size on disk; beyond it Add refuses. 0: 1 GiB
	SyncInterval  time.Duration // fsync the spool this often; 0: before every Add returns (see package spool)
	SegmentBytes  int64         // spool segment size; 0: derived from MaxBytes
	BatchSize     int           // insert when this many events are waiting
	FlushInterval time.Duration // or when the oldest waiting event is this old
	QueueSize     int           // events waiting for the spool writer; beyond it Add refuses
	InsertTimeout time.Duration // one insert attempt; 0 means 30s
	// Table is the table the sink fills: schema.Events ("" too), or
	// schema.Engagements for the engagement beacons, which get a spool
	// and a flush loop of their own so that each insert's exactly-once
	// count reads one table. Its metrics carry a table="engagements"
	// label.
	Table string
}

// ErrClosed is returned by Add after Close.
var ErrClosed = errors.New("sink is shutting down")

// ErrFull is returned by Add when the spool is full.
var ErrFull = errors.New("event spool is full")

// Sink batches events into the events table.
type Sink struct {
	conn  driver.Conn
	table string // the events (or engagements) table's full name
	// engagements: the sink fills the engagements table (Config.Table).
	engagements bool
	db          string
	cfg         Config
	logf        func(string, ...any)
	spool       *spool.Spool
	idPrefix    string         // of batch ids: this spool's id
	loc         *time.Location // the server's time zone: it decides the month partitions

	stop     chan context.Context
	flushRq  chan flushReq
	done     chan error
	abortCtx context.Context // cancelled at the shutdown deadline: cuts an insert short
	abort    context.CancelFunc
	closed   atomic.Bool

	// Owned by Run.
	batch     []item
	firstAt   time.Time
	skip      int  // records already in ClickHouse, passed over as they are read
	uncertain bool // the last attempt's outcome is unknown: count before sending again
	// uncertainLen is the length of the run whose outcome is unknown: a
	// retry on a cluster sends exactly that run again (see resend).
	uncertainLen int
	cluster      *bool // whether events is Distributed; nil until asked
	closing      bool
	waiters      []flushReq
	committed    spool.Pos
	// replay is the run an earlier process was inserting when it stopped
	// (spool.Inflight), until the head reaches it.
	replay        spool.Inflight
	replayPending bool
	chunks        strChunks     // the batch's prop lists
	cols          *batchColumns // reused by every insert of events
	// A failing checkpoint write is logged once a minute, with how many
	// failed since: it fails on every commit and note while it fails at all.
	commitWarnAt time.Time
	commitFails  int

	failing      atomic.Bool  // the last insert attempt failed
	lastRefused  atomic.Int64 // unix nanoseconds of the last refusal
	refusedSince atomic.Int64 // refusals since the last log line
	lastRefusLog atomic.Int64

	inserted      *metrics.Counter
	insertErrors  *metrics.Counter
	insertRetries *metrics.Counter
	replayed      *metrics.Counter
	alreadyStored *metrics.Counter
	dedupDropped  *metrics.Counter
	deadEvents    *metrics.Counter
	deadBatches   *metrics.Counter
	batchSeconds  *metrics.Histogram
}

// item is one spool record in the batch: an event, or a record that does not
// decode (err set, raw kept for the dead-letter file).
type item struct {
	e       Event
	at, end spool.Pos
	raw     []byte
	err     error
}

type flushReq struct {
	target spool.Pos
	reply  chan error
}

// New opens the spool in cfg.Dir (replaying what an earlier run left there)
// and makes a sink writing to db.events. Metrics go to set.
func New(conn driver.Conn, db string, cfg Config, set *metrics.Set, logf func(string, ...any)) (*Sink, error) {
	if cfg.InsertTimeout == 0 {
		cfg.InsertTimeout = 30 * time.Second
	}
	if cfg.Dir == "" {
		return nil, errors.New("BUG: sink.Config.Dir is empty")
	}
	label, name := "", func(n string) string { return n }
	switch cfg.Table {
	case "", schema.Events:
	case schema.Engagements:
		label = `table="engagements"`
		name = func(n string) string { return n + "{" + label + "}" }
	default:
		return nil, fmt.Errorf("BUG: sink.Config.Table %q", cfg.Table)
	}
	sp, err := spool.Open(cfg.Dir, spool.Options{
		MaxBytes: cfg.MaxBytes, SegmentBytes: cfg.SegmentBytes, SyncInterval: cfg.SyncInterval,
		MaxPending: cfg.QueueSize, Metrics: set, Logf: logf, Label: label,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot open the spool: %w", err)
	}
	s := &Sink{
		conn: conn, table: schema.Table(db, schema.Events), db: db, engagements: cfg.Table == schema.Engagements, cfg: cfg, logf: logf, spool: sp, idPrefix: sp.ID() + "-",
		stop:          make(chan context.Context, 1),
		flushRq:       make(chan flushReq),
		done:          make(chan error, 1),
		batch:         make([]item, 0, cfg.BatchSize),
		inserted:      set.NewCounter(name("turf_events_inserted_total")),
		insertErrors:  set.NewCounter(name("turf_insert_errors_total")),
		insertRetries: set.NewCounter(name("turf_insert_retries_total")),
		replayed:      set.NewCounter(name("turf_events_replayed_total")),
		alreadyStored: set.NewCounter(name("turf_events_already_stored_total")),
		dedupDropped:  set.NewCounter(name("turf_events_dedup_dropped_total")),
		deadEvents:    set.NewCounter(name("turf_events_dead_lettered_total")),
		deadBatches:   set.NewCounter(name("turf_batches_dead_lettered_total")),
		batchSeconds:  set.NewHistogram(name("turf_batch_insert_duration_seconds")),
	}
	if s.engagements {
		s.table = schema.Table(db, schema.Engagements)
	}
	s.replay, s.replayPending = sp.Inflight()
	s.abortCtx, s.abort = context.WithCancel(context.Background())
	set.NewGauge(name("turf_clickhouse_failing"), func() float64 {
		if s.failing.Load() {
			return 1
		}
		return 0
	})
	return s, nil
}

var encBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Add writes the event to the spool and returns once it is there (see
// package spool for what "there" means under each fsync setting); it never
// waits on ClickHouse. The event is encoded (copied) before Add returns and
// nothing of it is kept, so it may even alias request memory.
func (s *Sink) Add(e Event) error {
	bp := encBufs.Get().(*[]byte)
	*bp = e.encode((*bp)[:0])
	err := s.spool.Append(*bp)
	encBufs.Put(bp)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, spool.ErrClosed):
		return ErrClosed
	case errors.Is(err, spool.ErrFull):
		s.noteRefusal()
		return ErrFull
	}
	return fmt.Errorf("cannot spool the event: %w", err)
}

// noteRefusal logs a full spool at most once a minute.
func (s *Sink) noteRefusal() {
	now := time.Now().UnixNano()
	s.lastRefused.Store(now)
	n := s.refusedSince.Add(1)
	last := s.lastRefusLog.Load()
	if now-last >= int64(time.Minute) && s.lastRefusLog.CompareAndSwap(last, now) {
		s.refusedSince.Add(-n)
		s.logf("spool is full (%d of %d bytes, %d events waiting for ClickHouse): %d events refused with 503 since the last report",
			s.spool.Bytes(), s.spool.MaxBytes(), s.spool.Unconsumed(), n)
	}
}

// readEvery is how often the flush loop reads the spool while a batch is
// open. It adds at most this much to the time an event waits for its
// insert, which FlushInterval already bounds far more loosely.
const readEvery = 20 * time.Millisecond

// Run is the flush loop. It returns after Close, once everything spooled is
// stored or Close's deadline has passed; what is left stays in the spool for
// the next start.
func (s *Sink) Run() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	backoff := 100 * time.Millisecond
	for {
		if err := s.fill(); err != nil {
			s.logf("cannot read the spool, retrying in %s: %v", backoff, err)
			if s.closing && s.abortCtx.Err() != nil {
				s.done <- s.finish()
				return
			}
			s.sleep(backoff)
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if len(s.batch) > 0 && (s.closing || len(s.waiters) > 0 || len(s.batch) >= s.cfg.BatchSize ||
			time.Since(s.firstAt) >= s.cfg.FlushInterval) {
			if !s.flush() {
				s.done <- s.finish()
				return
			}
			continue
		}
		if s.closing {
			s.done <- s.finish()
			return
		}
		s.answerWaiters()
		// With a batch open, the loop reads the spool every readEvery
		// instead of at each write: under load that is one large read
		// instead of one wake-up and one small read per group of events.
		written := s.spool.Written()
		var due <-chan time.Time
		if len(s.batch) > 0 {
			timer.Reset(min(time.Until(s.firstAt.Add(s.cfg.FlushInterval)), readEvery))
			due, written = timer.C, nil
		}
		select {
		case <-written:
		case <-due:
		case r := <-s.flushRq:
			s.waiters = append(s.waiters, r)
		case <-s.stop:
			s.closing = true
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// fill reads spooled records into the batch, up to BatchSize, or up to the
// length of the earlier process's run in flight while it is ahead.
func (s *Sink) fill() error {
	skipped := 0
	var skippedEnd spool.Pos
	limit := s.cfg.BatchSize
	if s.replayPending {
		limit = max(limit, s.replay.Len)
	}
	for len(s.batch) < limit {
		rec, at, end, ok, err := s.spool.Next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if s.skip > 0 {
			if len(s.batch) > 0 {
				panic("BUG: skipping records behind a batch")
			}
			s.skip--
			skipped++
			skippedEnd = end
			continue
		}
		it := item{at: at, end: end}
		if it.e, it.err = decodeEvent(rec, &s.chunks); it.err != nil {
			it.raw = append([]byte(nil), rec...)
		}
		if len(s.batch) == 0 {
			s.firstAt = time.Now()
		}
		s.batch = append(s.batch, it)
	}
	if skipped > 0 {
		s.commit(skippedEnd, skipped)
	}
	return nil
}

// flush stores the batch, run by run, retrying each until it is stored or
// set aside. It returns false when the shutdown deadline passed first.
func (s *Sink) flush() bool {
	backoff := 100 * time.Millisecond
	for len(s.batch) > 0 {
		n, err := s.storeHead()
		if err == nil {
			s.failing.Store(false)
			s.dropHead(n)
			backoff = 100 * time.Millisecond
			continue
		}
		s.failing.Store(true)
		s.insertErrors.Inc()
		if s.closing && s.abortCtx.Err() != nil {
			return false
		}
		s.logf("insert failed, events stay in the spool; retrying in %s: %v", backoff, err)
		s.sleep(backoff)
		s.insertRetries.Inc()
		backoff = min(backoff*2, 10*time.Second)
	}
	s.answerWaiters()
	return true
}

// sleep waits d, taking Flush and Close requests meanwhile.
func (s *Sink) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return
		case r := <-s.flushRq:
			s.waiters = append(s.waiters, r)
		case <-s.stop:
			s.closing = true
			return // try at once: the deadline is short
		case <-s.abortCtx.Done():
			return
		}
	}
}

// storeHead stores the run at the head of the batch and returns how many
// records are done with: stored now, found already stored, or set aside.
func (s *Sink) storeHead() (int, error) {
	ctx, cancel := context.WithTimeout(s.abortCtx, s.cfg.InsertTimeout)
	defer cancel()
	head := s.batch[0]
	if head.err != nil {
		return 1, s.deadLetter(head.at, [][]byte{head.raw}, head.err)
	}
	if s.replayPending && !head.at.Less(s.replay.At) {
		if err := s.takeReplay(head.at); err != nil {
			return 0, err
		}
	}
	if s.loc == nil {
		if err := s.serverZone(ctx); err != nil {
			return 0, err
		}
	}
	from := monthStart(head.e.TS, s.loc)
	j := 1
	for j < len(s.batch) && s.batch[j].err == nil && monthStart(s.batch[j].e.TS, s.loc).Equal(from) {
		j++
	}
	if s.uncertain && s.uncertainLen > 0 && s.uncertainLen < j {
		j = s.uncertainLen
	}
	run := s.batch[:j]
	id := s.batchID(head.at)
	if s.uncertain || s.spool.Replayed(head.at) {
		n, err := s.landed(ctx, id, from, from.AddDate(0, 1, 0))
		if err != nil {
			return 0, fmt.Errorf("cannot check whether batch %s is stored: %w", id, err)
		}
		// Only a run known to be cut as before is sent again whole: this
		// process's own failed attempt or the earlier process's noted one
		// (takeReplay). Another replayed run may be cut differently, so
		// there the stored records are taken for a prefix, as on one node.
		resend := false
		if s.uncertain && s.uncertainLen == len(run) {
			if resend, err = s.resend(ctx, n, len(run)); err != nil {
				return 0, err
			}
		}
		s.uncertain = false
		if resend {
			return s.sendAgain(ctx, run, id, n, from)
		}
		if n > 0 {
			s.alreadyStored.Add(int(n))
			return int(n), nil
		}
	}
	start := time.Now()
	err := s.insert(ctx, run, id)
	if err == nil {
		s.batchSeconds.UpdateDuration(start)
		s.inserted.Add(len(run))
		if s.spool.Replayed(head.at) {
			s.replayed.Add(len(run))
		}
		return len(run), nil
	}
	if permanent(err) {
		recs := make([][]byte, len(run))
		for i := range run {
			recs[i] = run[i].e.encode(nil)
		}
		return len(run), s.deadLetter(head.at, recs, err)
	}
	s.uncertain = true
	s.uncertainLen = len(run)
	return 0, fmt.Errorf("cannot insert %d events: %w", len(run), err)
}

// takeReplay makes the earlier process's insert in flight this process's
// own unknown outcome once the head has reached it: the run is cut to the
// noted length and counted before it is sent (again).
func (s *Sink) takeReplay(at spool.Pos) error {
	if at != s.replay.At {
		// The noted run is behind the head (its first record was damaged
		// and skipped): nothing to cut by it.
		s.replayPending = false
		return nil
	}
	if len(s.batch) < s.replay.Len {
		// The run's records are on disk: read them all before cutting.
		if err := s.fill(); err != nil {
			return err
		}
	}
	s.replayPending = false
	s.uncertain, s.uncertainLen = true, s.replay.Len
	if len(s.batch) < s.replay.Len {
		s.logf("batch %s: the earlier process was inserting %d events when it stopped, but only %d are left in the spool; counting what is stored as on one node",
			s.batchID(at), s.replay.Len, len(s.batch))
	}
	return nil
}

// resend reports whether a run found partly stored (n of its runLen
// records) must be sent again whole rather than passed over in part. On a
// single node a run is one atomic insert, so its stored records are a
// prefix. On a cluster each shard's part is atomic but the parts are not one
// transaction (a replica killed mid-insert stored one shard's part and not
// the other's, seen in internal/clustertest), and a lagging replica can
// undercount, so n does not say which records are stored: the same run is
// sent again, and every shard's Replicated table passes over a block it
// already has (block deduplication), also one that only a replica which
// is down has committed.
func (s *Sink) resend(ctx context.Context, n uint64, runLen int) (bool, error) {
	if n == 0 || n >= uint64(runLen) {
		return false, nil
	}
	if s.cluster == nil {
		c, err := schema.ClusterOf(ctx, s.conn, s.db)
		if err != nil {
			return false, err
		}
		on := c != ""
		s.cluster = &on
	}
	return *s.cluster, nil
}

// sendAgain sends a partly stored run again (see resend) and counts what
// the shards' block deduplication dropped: the rows the count found
// already stored, plus the run, less the rows stored now.
func (s *Sink) sendAgain(ctx context.Context, run []item, id string, before uint64, from time.Time) (int, error) {
	s.logf("batch %s: %d of its %d events found on the cluster; sending it again whole, the shards drop the blocks they already have", id, before, len(run))
	if err := s.insert(ctx, run, id); err != nil {
		s.uncertain, s.uncertainLen = true, len(run)
		return 0, fmt.Errorf("cannot insert %d events again: %w", len(run), err)
	}
	s.inserted.Add(len(run))
	after, err := s.landed(ctx, id, from, from.AddDate(0, 1, 0))
	if err != nil {
		s.logf("batch %s sent again; cannot count what deduplication dropped: %v", id, err)
		return len(run), nil
	}
	if dropped := int64(before) + int64(len(run)) - int64(after); dropped > 0 {
		s.dedupDropped.Add(int(dropped))
	}
	return len(run), nil
}

func (s *Sink) batchID(p spool.Pos) string { return s.idPrefix + p.String() }

// queryID names an insert on the server; it differs from the batch id only
// so that the pattern that finds this spool's inserts in system.processes
// cannot match an unrelated query.
func queryID(batchID string) string { return "turf-insert-" + batchID }

// insert sends one run. Its query id is the batch's, so a later attempt can
// see it in system.processes while the server still works on it. The run
// is noted in the spool first, so that a process started after a kill cuts
// it the same way (see the package comment). A note that cannot be written
// is warned about like a failing commit and the run is sent anyway: events
// keep flowing while the checkpoint cannot be written, and should the
// process die before the next note succeeds, the replay falls back to the
// prefix rule.
func (s *Sink) insert(ctx context.Context, run []item, id string) error {
	if err := s.spool.NoteInflight(run[0].at, len(run)); err != nil {
		s.warnCheckpoint(err)
	}
	// insert_distributed_sync: on a cluster the events table is
	// Distributed, and the insert returns only once every shard's part is
	// in its Replicated table (see the package comment); on a single node
	// it changes nothing.
	ctx = clickhouse.Context(ctx, clickhouse.WithQueryID(queryID(id)), clickhouse.WithSettings(clickhouse.Settings{"insert_distributed_sync": 1}))
	head := schema.EventInsert(s.db)
	var values []any
	if s.engagements {
		head = schema.EngagementInsert(s.db)
		var cols engagementColumns
		for i := range run {
			cols.add(&run[i].e, id)
		}
		values = cols.values()
	} else {
		if s.cols == nil {
			s.cols = newBatchColumns(s.cfg.BatchSize)
		}
		cols := s.cols
		cols.reset()
		for i := range run {
			cols.add(&run[i].e, id)
			if i%yieldRows == yieldRows-1 {
				runtime.Gosched()
			}
		}
		values = cols.values()
	}
	b, err := s.conn.PrepareBatch(ctx, head)
	if err != nil {
		return err
	}
	defer b.Close()
	for i, v := range values {
		if err := appendColumn(b.Column(i), v); err != nil {
			return &rowError{err}
		}
	}
	return b.Send()
}

// yieldRows is how many rows the insert copies before it lets the request
// handlers run. With one core for Go (GOMAXPROCS=1), a batch copied in one
// go would keep every handler waiting for all of it, up to the scheduler's
// 10 ms preemption and then again. 4096 rows of a column are a few tenths of
// a millisecond of copying.
const yieldRows = 4096

// appendColumn appends a whole column, yieldRows rows at a time.
// clickhouse-go appends a slice of rows of an Array column by reflection,
// boxing every row and element into an interface; rows of *string passed by
// pointer box without allocating, and an empty row (most events have no
// props) costs nothing.
func appendColumn(col driver.BatchColumn, v any) error {
	switch v := v.(type) {
	case []string:
		return appendChunks(col, v)
	case []time.Time:
		return appendChunks(col, v)
	case []uint64:
		return appendChunks(col, v)
	case []int64:
		return appendChunks(col, v)
	case []uint8:
		return appendChunks(col, v)
	case []uint32:
		return appendChunks(col, v)
	case [][]*string:
		for i := range v {
			if err := col.AppendRow(&v[i]); err != nil {
				return err
			}
			if i%yieldRows == yieldRows-1 {
				runtime.Gosched()
			}
		}
		runtime.Gosched()
		return nil
	}
	return col.Append(v)
}

func appendChunks[T any](col driver.BatchColumn, v []T) error {
	for len(v) > 0 {
		n := min(len(v), yieldRows)
		if err := col.Append(v[:n]); err != nil {
			return err
		}
		v = v[n:]
		runtime.Gosched()
	}
	return nil
}

// landed counts the rows of batch id, once no insert of this spool is still
// running on the server: one whose client gave up (a timeout, a killed
// turf) can still commit, and its rows must not land after the count.
func (s *Sink) landed(ctx context.Context, id string, from, to time.Time) (uint64, error) {
	for {
		var running uint64
		if err := s.conn.QueryRow(ctx, "SELECT count() FROM system.processes WHERE query_id LIKE ?",
			queryID(s.idPrefix)+"%").Scan(&running); err != nil {
			return 0, err
		}
		if running == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("an earlier insert is still running on the server: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	// The time range confines the scan to the run's partition.
	var n uint64
	err := s.conn.QueryRow(ctx, "SELECT count() FROM "+s.table+" WHERE ts >= toDateTime(?) AND ts < toDateTime(?) AND batch_id = ?",
		from.Unix(), to.Unix(), id).Scan(&n)
	return n, err
}

func (s *Sink) serverZone(ctx context.Context) error {
	var tz string
	if err := s.conn.QueryRow(ctx, "SELECT timezone()").Scan(&tz); err != nil {
		return fmt.Errorf("cannot ask ClickHouse for its time zone: %w", err)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		s.logf("warning: ClickHouse's time zone %q is unknown here (%v); batches are split by UTC month, which may not match its partitions", tz, err)
		loc = time.UTC
	}
	s.loc = loc
	return nil
}

func monthStart(t time.Time, loc *time.Location) time.Time {
	y, m, _ := t.In(loc).Date()
	return time.Date(y, m, 1, 0, 0, 0, 0, loc)
}

func (s *Sink) deadLetter(at spool.Pos, recs [][]byte, reason error) error {
	id := s.batchID(at)
	if err := s.spool.DeadLetter(id, recs, reason.Error()); err != nil {
		return err
	}
	s.deadBatches.Inc()
	s.deadEvents.Add(len(recs))
	s.logf("ClickHouse refused batch %s for good; its %d events are set aside in %s/dead/%s.seg: %v",
		id, len(recs), s.spool.Dir(), id, reason)
	return nil
}

// dropHead commits the first n records of the batch (n may go beyond the
// batch: the rest is passed over as it is read).
func (s *Sink) dropHead(n int) {
	k := min(n, len(s.batch))
	s.commit(s.batch[k-1].end, k)
	rest := copy(s.batch, s.batch[k:])
	clear(s.batch[rest:]) // let the strings go
	s.batch = s.batch[:rest]
	s.skip = n - k
}

func (s *Sink) commit(end spool.Pos, n int) {
	if err := s.spool.Commit(end, n); err != nil {
		// The events are stored; a stale checkpoint only costs a re-check
		// at the next start.
		s.warnCheckpoint(err)
	}
	s.committed = end
	s.answerWaiters()
}

// warnCheckpoint logs a failed checkpoint write (a commit or an in-flight
// note) at most once a minute.
func (s *Sink) warnCheckpoint(err error) {
	s.commitFails++
	if now := time.Now(); now.Sub(s.commitWarnAt) >= time.Minute {
		s.logf("warning: %v (%d times since the last report)", err, s.commitFails)
		s.commitWarnAt, s.commitFails = now, 0
	}
}

func (s *Sink) answerWaiters() {
	if len(s.waiters) == 0 {
		return
	}
	all := s.spool.Unconsumed() == 0
	kept := s.waiters[:0]
	for _, w := range s.waiters {
		if all || !s.committed.Less(w.target) {
			w.reply <- nil
		} else {
			kept = append(kept, w)
		}
	}
	s.waiters = kept
}

// finish ends Run at shutdown; what is not stored stays in the spool.
func (s *Sink) finish() error {
	for _, w := range s.waiters {
		w.reply <- ErrClosed
	}
	if n := s.spool.Unconsumed(); n > 0 {
		s.logf("%d events could not be stored before the shutdown deadline; they stay in the spool (%s) and are stored after the next start",
			n, s.spool.Dir())
	}
	return nil
}

// Flush waits until every event added before the call is stored (tests use
// it).
func (s *Sink) Flush(ctx context.Context) error {
	r := flushReq{target: s.spool.End(), reply: make(chan error, 1)}
	select {
	case s.flushRq <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting events (everything accepted is on disk by then),
// stores what it can before ctx's deadline and closes the spool; the rest is
// stored after the next start. ctx must be a fresh context, not the
// cancelled one that triggered the shutdown.
func (s *Sink) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return errors.New("BUG: sink closed twice")
	}
	s.spool.CloseAppends()
	s.stop <- ctx
	stopAbort := context.AfterFunc(ctx, s.abort)
	err := <-s.done
	stopAbort()
	s.abort()
	if cerr := s.spool.Close(); err == nil {
		err = cerr
	}
	return err
}

// Health is "ok"; "degraded" while ClickHouse inserts fail or a backlog is
// being replayed (events are accepted and spooled); or "down" when events
// are refused: the spool is full or turf is shutting down.
func (s *Sink) Health() (status, detail string) {
	pending := s.spool.Unconsumed()
	switch {
	case s.closed.Load():
		return "down", "shutting down"
	case time.Now().UnixNano()-s.lastRefused.Load() < int64(10*time.Second):
		return "down", fmt.Sprintf("the spool is full (%d of %d bytes): new events are refused with 503", s.spool.Bytes(), s.spool.MaxBytes())
	case s.failing.Load():
		return "degraded", fmt.Sprintf("ClickHouse inserts are failing; %d events are spooled on disk (%d bytes)", pending, s.spool.Bytes())
	case pending > int64(4*s.cfg.BatchSize):
		return "degraded", fmt.Sprintf("catching up: %d events waiting in the spool", pending)
	}
	return "ok", ""
}

// rowError is an event the client library cannot put in the insert.
type rowError struct{ err error }

func (e *rowError) Error() string { return "event does not fit the events table: " + e.err.Error() }
func (e *rowError) Unwrap() error { return e.err }

// permanent tells whether sending the same rows again cannot succeed: the
// server refused their shape or values, not their timing. Missing tables and
// databases are not in the list: an operator can fix those by migrating, and
// until then the spool holds the events.
func permanent(err error) bool {
	var re *rowError
	if errors.As(err, &re) {
		return true
	}
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		return false
	}
	switch ex.Code {
	case 6, // CANNOT_PARSE_TEXT
		8,   // THERE_IS_NO_COLUMN
		10,  // NOT_FOUND_COLUMN_IN_BLOCK
		16,  // NO_SUCH_COLUMN_IN_TABLE
		20,  // NUMBER_OF_COLUMNS_DOESNT_MATCH
		26,  // CANNOT_PARSE_QUOTED_STRING
		27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
		38,  // CANNOT_PARSE_DATE
		41,  // CANNOT_PARSE_DATETIME
		43,  // ILLEGAL_TYPE_OF_ARGUMENT
		47,  // UNKNOWN_IDENTIFIER
		53,  // TYPE_MISMATCH
		69,  // ARGUMENT_OUT_OF_BOUND
		70,  // CANNOT_CONVERT_TYPE
		72,  // CANNOT_PARSE_NUMBER
		117, // INCORRECT_DATA
		131, // TOO_LARGE_STRING_SIZE
		321: // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
		return true
	}
	return false
}
