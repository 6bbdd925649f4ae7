package sink

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"turf/internal/chtest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

func ev(i int, ts time.Time) Event {
	return Event{Site: "example.com", TS: ts, Name: "pageview", VisitorID: uint64(i), Hostname: "example.com",
		Pathname: fmt.Sprintf("/p/%d", i), IPPrefix: netip.MustParsePrefix("203.0.113.0/24"), Interactive: true,
		PropKeys: []string{"n"}, PropValues: []string{fmt.Sprint(i)}}
}

func start(t *testing.T, cfg Config) (*Sink, *chtest.DB) {
	db := chtest.New(t)
	return startOn(t, db, cfg, metrics.NewSet()), db
}

// startOn runs a sink on db; an empty cfg.Dir gets a fresh spool.
func startOn(t *testing.T, db *chtest.DB, cfg Config, set *metrics.Set) *Sink {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.SyncInterval == 0 {
		// Sequential Adds would each wait for an fsync; package spool tests
		// both settings.
		cfg.SyncInterval = 50 * time.Millisecond
	}
	s, err := New(db.Conn, db.Name, cfg, set, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	go s.Run()
	return s
}

func waitCount(t *testing.T, db *chtest.DB, want uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := db.Count(t, "SELECT count() FROM "+db.Name+".events")
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events = %d, want %d", n, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFlushOnSizeAndAge(t *testing.T) {
	s, db := start(t, Config{BatchSize: 10, FlushInterval: time.Hour, QueueSize: 100})
	now := time.Now().UTC().Truncate(time.Second)
	for i := range 25 {
		if err := s.Add(ev(i, now)); err != nil {
			t.Fatal(err)
		}
	}
	waitCount(t, db, 20) // two full batches; five wait for their age
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitCount(t, db, 25)

	s2, db2 := start(t, Config{BatchSize: 1000, FlushInterval: 50 * time.Millisecond, QueueSize: 100})
	defer s2.Close(context.Background())
	_ = s2.Add(ev(1, now))
	waitCount(t, db2, 1)
}

func TestFinalFlushOnClose(t *testing.T) {
	s, db := start(t, Config{BatchSize: 100000, FlushInterval: time.Hour, QueueSize: 10000})
	now := time.Now().UTC()
	for i := range 5000 {
		if err := s.Add(ev(i, now)); err != nil {
			t.Fatal(err)
		}
	}
	// The context that triggered the shutdown is long cancelled by now; Close
	// gets its own.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := db.Count(t, "SELECT count() FROM "+db.Name+".events"); n != 5000 {
		t.Fatalf("stored %d of 5000 after Close", n)
	}
	if n := db.Count(t, "SELECT uniqExact(pathname) FROM "+db.Name+".events"); n != 5000 {
		t.Fatalf("distinct events = %d, want 5000", n)
	}
	if err := s.Add(ev(1, now)); err != ErrClosed {
		t.Fatalf("Add after Close = %v, want ErrClosed", err)
	}
}

func TestQueueFullRefuses(t *testing.T) {
	db := chtest.New(t)
	s, err := New(db.Conn, db.Name, Config{Dir: t.TempDir(), MaxBytes: 1 << 20, SyncInterval: time.Hour, BatchSize: 1000, FlushInterval: time.Hour, QueueSize: 3}, metrics.NewSet(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	// Run is not started: nothing drains the spool.
	n := 0
	for ; n < 100000; n++ {
		if err = s.Add(ev(n, time.Now())); err != nil {
			break
		}
	}
	if err != ErrFull {
		t.Fatalf("Add on a full spool = %v, want ErrFull", err)
	}
	if b := s.spool.Bytes(); b > 1<<20 || b < 1<<19 {
		t.Fatalf("spool holds %d bytes when full, limit 1 MiB", b)
	}
	if status, _ := s.Health(); status != "down" {
		t.Fatalf("health with a full spool = %s, want down", status)
	}
	go s.Run()
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitCount(t, db, uint64(n))
}

func TestBatchAcrossMonthsIsSplit(t *testing.T) {
	s, db := start(t, Config{BatchSize: 100, FlushInterval: time.Hour, QueueSize: 100})
	end := time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC)
	for i := range 10 {
		_ = s.Add(ev(i, end.Add(time.Duration(i-5)*time.Second)))
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := db.Count(t, "SELECT uniqExact(batch_id) FROM "+db.Name+".events"); n != 2 {
		t.Fatalf("batch ids = %d, want 2 (one insert per month)", n)
	}
	s.Close(context.Background())
}

// TestRetryAfterOutage pauses the server mid-run: the batch is kept and
// stored once when it answers again.
func TestRetryAfterOutage(t *testing.T) {
	db := chtest.New(t)
	srv := chtest.Managed(t)
	if srv == nil {
		t.Skip("external ClickHouse: cannot pause it")
	}
	s := startOn(t, db, Config{BatchSize: 5, FlushInterval: time.Hour, QueueSize: 100, InsertTimeout: 300 * time.Millisecond}, metrics.NewSet())
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		_ = s.Add(ev(i, time.Now()))
	}
	time.Sleep(time.Second) // a few failed attempts
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	waitCount(t, db, 5)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := db.Count(t, "SELECT count() FROM "+db.Name+".events"); n != 5 {
		t.Fatalf("stored %d rows, want exactly 5", n)
	}
}

// A checkpoint that cannot be written (the spool directory was removed
// under a running turf) fails on every commit: one warning a minute, not
// one per batch.
func TestCheckpointFailureWarnsOncePerMinute(t *testing.T) {
	db := chtest.New(t)
	dir := t.TempDir()
	var mu sync.Mutex
	var warnings []string
	logf := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		t.Log(line)
		if strings.Contains(line, "checkpoint") {
			mu.Lock()
			warnings = append(warnings, line)
			mu.Unlock()
		}
	}
	s, err := New(db.Conn, db.Name, Config{Dir: dir, SyncInterval: 50 * time.Millisecond, BatchSize: 10, FlushInterval: time.Hour, QueueSize: 1000}, metrics.NewSet(), logf)
	if err != nil {
		t.Fatal(err)
	}
	go s.Run()
	defer s.Close(context.Background())
	now := time.Now().UTC().Truncate(time.Second)
	for i := range 10 {
		if err := s.Add(ev(i, now)); err != nil {
			t.Fatal(err)
		}
	}
	waitCount(t, db, 10)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	// Five more batches, each one commit that fails.
	for i := 10; i < 60; i++ {
		if err := s.Add(ev(i, now)); err != nil {
			t.Fatal(err)
		}
	}
	waitCount(t, db, 60)
	mu.Lock()
	defer mu.Unlock()
	if len(warnings) != 1 {
		t.Fatalf("%d checkpoint warnings for five failed commits, want 1: %q", len(warnings), warnings)
	}
}

// TestStoredAsSent: the columns made without per-row allocations (props as
// pointers, the prefix as the record's text) store exactly what was added,
// with and without props, over more than one chunk of pointers.
func TestStoredAsSent(t *testing.T) {
	s, db := start(t, Config{BatchSize: 5000, FlushInterval: time.Hour, QueueSize: 5000})
	now := time.Now().UTC().Truncate(time.Second)
	var want []string
	for i := range 3000 {
		e := ev(i, now)
		switch i % 3 {
		case 0:
			e.PropKeys, e.PropValues = nil, nil
			e.IPPrefix = netip.Prefix{}
		case 1:
			e.PropKeys, e.PropValues = []string{"a", "b", ""}, []string{"x", "", fmt.Sprint(i)}
			e.IPPrefix = netip.MustParsePrefix("2001:db8:7::/48")
		}
		if err := s.Add(e); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("%s %q %q %s", e.Pathname, e.PropKeys, e.PropValues, textOf(e.IPPrefix)))
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Conn.Query(context.Background(), "SELECT pathname, props_keys, props_values, ip_prefix FROM "+db.Name+".events ORDER BY visitor_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var path, prefix string
		var keys, values []string
		if err := rows.Scan(&path, &keys, &values, &prefix); err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 {
			keys, values = nil, nil
		}
		got = append(got, fmt.Sprintf("%s %q %q %s", path, keys, values, prefix))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("stored %d events unlike the %d sent; first stored %q, sent %q", len(got), len(want), got[:min(3, len(got))], want[:3])
	}
}

func textOf(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}
