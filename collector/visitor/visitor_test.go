package visitor

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"turf/internal/chtest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

func TestID(t *testing.T) {
	var s1, s2 Salt
	s1[0], s2[0] = 1, 2
	ip := netip.MustParseAddr("203.0.113.77")
	ua := "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"
	base := ID(&s1, "example.com", ip, ua)
	if base != ID(&s1, "example.com", ip, ua) {
		t.Fatal("same inputs give different ids")
	}
	if base != ID(&s1, "example.com", netip.MustParseAddr("::ffff:203.0.113.77"), ua) {
		t.Error("IPv4-mapped address hashes differently from IPv4")
	}
	differ := map[string]uint64{
		"salt (day)": ID(&s2, "example.com", ip, ua),
		"site":       ID(&s1, "example.org", ip, ua),
		"ip":         ID(&s1, "example.com", netip.MustParseAddr("203.0.113.78"), ua),
		"ua":         ID(&s1, "example.com", ip, ua+" "),
		"boundary":   ID(&s1, "example.co", ip, "m"+ua),
	}
	for what, id := range differ {
		if id == base {
			t.Errorf("changing the %s does not change the id", what)
		}
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func nolog(string, ...any)       {}
func mustSync(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestSaltLifeCycle walks a salt through its days with an injected clock.
func TestSaltLifeCycle(t *testing.T) {
	db := chtest.New(t)
	clk := &clock{t: time.Date(2026, 3, 29, 10, 0, 0, 0, time.UTC)}
	a := NewStore(db.Conn, db.Name, clk.now, 15*time.Minute, nolog)
	b := NewStore(db.Conn, db.Name, clk.now, 15*time.Minute, nolog) // a second collector
	mustSync(t, a)
	mustSync(t, b)
	ip := netip.MustParseAddr("198.51.100.23")
	ua := "Mozilla/5.0 Safari"
	day1 := clk.now()
	idA := ID(a.Get(day1), "example.com", ip, ua)
	if idB := ID(b.Get(day1), "example.com", ip, ua); idA != idB {
		t.Fatal("two instances compute different ids on the same day")
	}
	// A restart keeps today's salt.
	c := NewStore(db.Conn, db.Name, clk.now, 15*time.Minute, nolog)
	mustSync(t, c)
	if ID(c.Get(day1), "example.com", ip, ua) != idA {
		t.Fatal("a restart changed today's salt")
	}
	if ID(a.Get(day1), "example.org", ip, ua) == idA {
		t.Error("same id on another site")
	}
	// The next day has another salt; within the grace period yesterday's
	// salt is still there.
	clk.set(time.Date(2026, 3, 30, 0, 10, 0, 0, time.UTC))
	mustSync(t, a)
	if ID(a.Get(clk.now()), "example.com", ip, ua) == idA {
		t.Fatal("same id on the next day")
	}
	if n := db.Count(t, "SELECT count() FROM "+db.Name+".salts WHERE day = toDate('2026-03-29')"); n == 0 {
		t.Fatal("salt deleted within its grace period")
	}
	// After the grace period it is gone from ClickHouse and from memory.
	saltRef := a.Get(day1)
	clk.set(time.Date(2026, 3, 30, 0, 16, 0, 0, time.UTC))
	mustSync(t, a)
	if n := db.Count(t, "SELECT count() FROM "+db.Name+".salts WHERE day = toDate('2026-03-29')"); n != 0 {
		t.Fatalf("%d salt rows of the expired day remain", n)
	}
	if *saltRef != (Salt{}) {
		t.Error("expired salt bytes still in memory")
	}
	// Asking for the old day now yields a fresh salt, not the destroyed one:
	// the old ids cannot be recomputed.
	if ID(a.Get(day1), "example.com", ip, ua) == idA {
		t.Fatal("visitor id of a destroyed day can be recomputed")
	}
	// Today's and tomorrow's salts exist.
	if n := db.Count(t, "SELECT uniqExact(day) FROM "+db.Name+".salts"); n != 2 {
		t.Errorf("%d salt days stored, want 2 (today and tomorrow)", n)
	}
}

// TestLocalSaltConverges: a salt made while ClickHouse was unreachable gives
// way to the stored one.
func TestLocalSaltConverges(t *testing.T) {
	db := chtest.New(t)
	clk := &clock{t: time.Date(2026, 10, 25, 1, 0, 0, 0, time.UTC)}
	a := NewStore(db.Conn, db.Name, clk.now, time.Minute, nolog)
	mustSync(t, a)
	b := NewStore(db.Conn, db.Name, clk.now, time.Minute, nolog)
	local := *b.Get(clk.now()) // made locally, before any Sync
	if local == *a.Get(clk.now()) {
		t.Fatal("fresh local salt equals the stored one")
	}
	mustSync(t, b)
	if *b.Get(clk.now()) != *a.Get(clk.now()) {
		t.Fatal("instance did not adopt the stored salt")
	}
}

func BenchmarkID(b *testing.B) {
	var s Salt
	ip := netip.MustParseAddr("2001:db8::1")
	b.ReportAllocs()
	for b.Loop() {
		ID(&s, "example.com", ip, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36")
	}
}
