// Package sink moves events from request handlers into ClickHouse: a bounded
// queue that never blocks a handler, and one flush loop that inserts a batch
// when it is full or old enough.
package sink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/VictoriaMetrics/metrics"
)

// Config sizes the sink.
type Config struct {
	BatchSize     int           // insert when this many events are waiting
	FlushInterval time.Duration // or when the oldest waiting event is this old
	QueueSize     int           // events waiting for the flush loop; beyond it Add refuses
	InsertTimeout time.Duration // one insert attempt; 0 means 30s
}

// ErrClosed is returned by Add after Close.
var ErrClosed = errors.New("sink is shutting down")

// ErrFull is returned by Add when the queue is full.
var ErrFull = errors.New("event queue is full")

// Sink batches events into the events table.
type Sink struct {
	conn  driver.Conn
	table string
	cfg   Config
	logf  func(string, ...any)

	// mu orders Add against Close: once Close holds it, no Add can slip an
	// event into the queue behind the final drain.
	mu      sync.RWMutex
	closed  bool
	queue   chan Event
	flushRq chan chan error
	stop    chan context.Context
	done    chan error

	inserted     *metrics.Counter
	insertErrors *metrics.Counter
	batchSeconds *metrics.Histogram
}

// New makes a sink writing to db.events. Metrics go to set.
func New(conn driver.Conn, db string, cfg Config, set *metrics.Set, logf func(string, ...any)) *Sink {
	if cfg.InsertTimeout == 0 {
		cfg.InsertTimeout = 30 * time.Second
	}
	s := &Sink{
		conn: conn, table: db + ".events", cfg: cfg, logf: logf,
		queue:        make(chan Event, cfg.QueueSize),
		flushRq:      make(chan chan error),
		stop:         make(chan context.Context),
		done:         make(chan error, 1),
		inserted:     set.NewCounter("turf_events_inserted_total"),
		insertErrors: set.NewCounter("turf_insert_errors_total"),
		batchSeconds: set.NewHistogram("turf_batch_insert_duration_seconds"),
	}
	set.NewGauge("turf_queue_depth", func() float64 { return float64(len(s.queue)) })
	return s
}

// Add queues an event without waiting. The event must not alias request
// memory: the caller hands it over for good.
func (s *Sink) Add(e Event) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	select {
	case s.queue <- e:
		return nil
	default:
		return ErrFull
	}
}

// Run is the flush loop. It returns after Close, once the last batch is
// stored or Close's deadline has passed.
func (s *Sink) Run() {
	batch := make([]Event, 0, s.cfg.BatchSize)
	timer := time.NewTimer(s.cfg.FlushInterval)
	defer timer.Stop()
	for {
		select {
		case e := <-s.queue:
			batch = append(batch, e)
			if len(batch) >= s.cfg.BatchSize {
				if batch = s.flushRetrying(batch); batch == nil {
					return
				}
			}
		case <-timer.C:
			if len(batch) > 0 {
				if batch = s.flushRetrying(batch); batch == nil {
					return
				}
			}
			timer.Reset(s.cfg.FlushInterval)
		case reply := <-s.flushRq:
			var err error
			batch, err = s.drain(context.Background(), batch)
			reply <- err
		case ctx := <-s.stop:
			s.done <- s.final(ctx, batch)
			return
		}
	}
}

// flushRetrying keeps the batch until ClickHouse takes it, backing off; the
// queue fills meanwhile and Add refuses once it is full, so memory stays
// bounded. A shutdown interrupts the retries and finishes the job; then it
// returns nil and the loop ends.
func (s *Sink) flushRetrying(batch []Event) []Event {
	backoff := 100 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.InsertTimeout)
		var err error
		batch, err = s.insert(ctx, batch)
		cancel()
		if err == nil {
			return batch
		}
		s.logf("insert failed, retrying in %s: %v", backoff, err)
		select {
		case ctx := <-s.stop:
			// Answer the shutdown here; Run's loop will not see it again.
			s.done <- s.final(ctx, batch)
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// drain moves everything queued into the batch and inserts it.
func (s *Sink) drain(ctx context.Context, batch []Event) ([]Event, error) {
	for {
		select {
		case e := <-s.queue:
			batch = append(batch, e)
			if len(batch) < s.cfg.BatchSize {
				continue
			}
			var err error
			if batch, err = s.insert(ctx, batch); err != nil {
				return batch, err
			}
			continue
		default:
		}
		return s.insert(ctx, batch)
	}
}

// final stores what is left, retrying until ctx ends.
func (s *Sink) final(ctx context.Context, batch []Event) error {
	for {
		var err error
		if batch, err = s.drain(ctx, batch); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d events could not be stored before the shutdown deadline: %w", len(batch)+len(s.queue), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Flush inserts everything queued so far and waits for it (tests use it).
func (s *Sink) Flush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case s.flushRq <- reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting events, then stores everything queued, giving up at
// ctx's deadline; it reports the events that could not be stored. ctx must be
// a fresh context, not the cancelled one that triggered the shutdown:
// clickhouse-go gives up at once on a cancelled context and the last batch
// would be lost.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.stop <- ctx
	return <-s.done
}

// insert writes a batch and returns it emptied (for reuse), or, on error,
// holding the events not stored. Rows of different months go in separate
// inserts so that each insert touches one partition and is atomic: after an
// unknown outcome, the batch id tells whether it landed, so nothing is
// stored twice or half.
func (s *Sink) insert(ctx context.Context, batch []Event) ([]Event, error) {
	if len(batch) == 0 {
		return batch, nil
	}
	start := time.Now()
	for i := 0; i < len(batch); {
		j := i + 1
		y, m, _ := batch[i].TS.Date()
		for j < len(batch) {
			if y2, m2, _ := batch[j].TS.Date(); y2 != y || m2 != m {
				break
			}
			j++
		}
		if err := s.insertOnce(ctx, batch[i:j]); err != nil {
			s.insertErrors.Inc()
			rest := copy(batch, batch[i:])
			clear(batch[rest:])
			return batch[:rest], fmt.Errorf("cannot insert %d events: %w", j-i, err)
		}
		s.inserted.Add(j - i)
		i = j
	}
	s.batchSeconds.UpdateDuration(start)
	clear(batch) // let the strings go before the slice is refilled
	return batch[:0], nil
}

func (s *Sink) insertOnce(ctx context.Context, rows []Event) error {
	id := newBatchID()
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table+" ("+columns+")")
	if err != nil {
		return err
	}
	defer b.Close()
	for i := range rows {
		if err := rows[i].append(b, id); err != nil {
			return fmt.Errorf("BUG: event does not fit the events table: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		// The outcome is unknown (the connection may have broken after the
		// server committed): look before the caller retries.
		var n uint64
		qctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if qerr := s.conn.QueryRow(qctx, "SELECT count() FROM "+s.table+" WHERE batch_id = ?", id).Scan(&n); qerr == nil && n == uint64(len(rows)) {
			return nil
		}
		return err
	}
	return nil
}

func newBatchID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
