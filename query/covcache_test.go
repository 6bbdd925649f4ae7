package query

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"turf/query/rollup"
)

func TestMarkerCache(t *testing.T) {
	ctx := context.Background()
	day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	from, to := day, day.AddDate(0, 0, 28)
	var loads atomic.Int64
	release := make(chan struct{})
	load := func() (map[time.Time]rollup.Built, error) {
		loads.Add(1)
		<-release
		return map[time.Time]rollup.Built{day: {Build: 7}}, nil
	}

	// Concurrent queries over one range share one check.
	c := newMarkerCache(time.Hour)
	var wg sync.WaitGroup
	results := make([]map[time.Time]rollup.Built, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := c.get(ctx, "example.com", from, to, load)
			if err != nil {
				t.Error(err)
			}
			results[i] = m
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Errorf("%d checks for 8 concurrent queries, want 1", n)
	}
	for i, m := range results {
		if m[day].Build != 7 {
			t.Errorf("query %d got %v", i, m)
		}
	}
	// Another site or range is checked on its own.
	if _, err := c.get(ctx, "other.org", from, to, load); err != nil {
		t.Fatal(err)
	}
	if _, err := c.get(ctx, "example.com", from, to.AddDate(0, 0, 1), load); err != nil {
		t.Fatal(err)
	}
	if n := loads.Load(); n != 3 {
		t.Errorf("%d checks, want 3", n)
	}

	// Past the TTL, the check runs again.
	short := newMarkerCache(20 * time.Millisecond)
	loads.Store(0)
	for range 2 {
		if _, err := short.get(ctx, "example.com", from, to, load); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(40 * time.Millisecond)
	if _, err := short.get(ctx, "example.com", from, to, load); err != nil {
		t.Fatal(err)
	}
	if n := loads.Load(); n != 2 {
		t.Errorf("%d checks around the TTL, want 2", n)
	}

	// A failed check is not remembered.
	boom := errors.New("connection refused")
	fails := 0
	failing := func() (map[time.Time]rollup.Built, error) { fails++; return nil, boom }
	for range 2 {
		if _, err := c.get(ctx, "failing.example", from, to, failing); !errors.Is(err, boom) {
			t.Fatalf("error %v, want %v", err, boom)
		}
	}
	if fails != 2 {
		t.Errorf("failed check reused: %d loads", fails)
	}

	// A negative TTL checks every time.
	off := newMarkerCache(-1)
	loads.Store(0)
	for range 3 {
		if _, err := off.get(ctx, "example.com", from, to, load); err != nil {
			t.Fatal(err)
		}
	}
	if n := loads.Load(); n != 3 {
		t.Errorf("%d checks with the cache off, want 3", n)
	}
}
