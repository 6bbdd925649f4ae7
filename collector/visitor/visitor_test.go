package visitor

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"turf/internal/chtest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// SipHash-2-4 against the reference vectors of its authors (key 00..0f,
// message 00..n-1), so the key's byte order is the reference's too.
func TestSipHashVectors(t *testing.T) {
	var key, msg [16]byte
	for i := range key {
		key[i], msg[i] = byte(i), byte(i)
	}
	for _, c := range []struct {
		n    int
		want uint64
	}{{0, 0x726fdb47dd0e0e31}, {1, 0x74f839c593dc67fd}, {7, 0xab0200f58b01d137}, {8, 0x93f5f5799a932462}, {15, 0xa129ca6149be45e5}} {
		if got := sipHash(key[:], msg[:c.n]); got != c.want {
			t.Errorf("SipHash-2-4 of %d bytes = %#x, want %#x", c.n, got, c.want)
		}
	}
}

// A salt row keeps the hash it is for: rows of older builds (32 bare bytes)
// stay BLAKE2b, new rows are SipHash-2-4, and anything else is refused.
func TestStoredSalt(t *testing.T) {
	fresh := newSalt()
	if fresh.Hash != SipHash24 {
		t.Fatalf("a new salt is for hash %d, want SipHash-2-4", fresh.Hash)
	}
	back, err := parseStored(fresh.stored())
	if err != nil || *back != *fresh {
		t.Fatalf("a SipHash salt does not survive its row: %v", err)
	}
	legacy := string(make([]byte, 32))
	if s, err := parseStored(legacy); err != nil || s.Hash != BLAKE2b {
		t.Fatalf("a 32-byte row of an older build: %+v, %v; want a BLAKE2b salt", s, err)
	}
	for _, bad := range []string{"x", string(make([]byte, 17)), string(make([]byte, 33))} {
		if _, err := parseStored(bad); err == nil {
			t.Errorf("a %d-byte row was taken for a salt", len(bad))
		}
	}
}

func TestID(t *testing.T) {
	for _, h := range []Hash{BLAKE2b, SipHash24} {
		testID(t, h)
	}
	// The two hashes give different ids for the same key and inputs.
	a, b := Salt{Hash: BLAKE2b}, Salt{Hash: SipHash24}
	ip := netip.MustParseAddr("203.0.113.77")
	if ID(&a, "example.com", ip, "ua") == ID(&b, "example.com", ip, "ua") {
		t.Error("BLAKE2b and SipHash salts give the same id")
	}
}

func testID(t *testing.T, h Hash) {
	s1, s2 := Salt{Hash: h}, Salt{Hash: h}
	s1.Key[0], s2.Key[0] = 1, 2
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
		"long ua":    ID(&s1, "example.com", ip, ua+strings.Repeat("x", 1000)),
	}
	for what, id := range differ {
		if id == base {
			t.Errorf("hash %d: changing the %s does not change the id", h, what)
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
	for _, h := range []struct {
		name string
		hash Hash
	}{{"BLAKE2b", BLAKE2b}, {"SipHash24", SipHash24}} {
		b.Run(h.name, func(b *testing.B) {
			s := Salt{Hash: h.hash}
			ip := netip.MustParseAddr("2001:db8::1")
			b.ReportAllocs()
			for b.Loop() {
				ID(&s, "example.com", ip, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36")
			}
		})
	}
}

// TestHashChangesAtDayBoundary: after an upgrade, the days whose salts an
// older build already stored (today and tomorrow, as 32-byte BLAKE2b rows)
// keep BLAKE2b to their end on every instance, so no day is counted with
// two hashes; the first day this build makes a salt for is SipHash-2-4.
func TestHashChangesAtDayBoundary(t *testing.T) {
	db := chtest.New(t)
	clk := &clock{t: time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)}
	old, err := db.Conn.PrepareBatch(context.Background(), "INSERT INTO "+db.Name+".salts (day, salt, created)")
	if err != nil {
		t.Fatal(err)
	}
	for _, day := range []time.Time{Day(clk.now()), Day(clk.now()).AddDate(0, 0, 1)} {
		if err := old.Append(day, string(newSalt().Key[:]), clk.now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Send(); err != nil {
		t.Fatal(err)
	}
	a := NewStore(db.Conn, db.Name, clk.now, time.Minute, nolog)
	b := NewStore(db.Conn, db.Name, clk.now, time.Minute, nolog)
	mustSync(t, a)
	mustSync(t, b)
	ip := netip.MustParseAddr("198.51.100.9")
	for _, c := range []struct {
		at   time.Time
		want Hash
	}{
		{time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC), BLAKE2b},
		{time.Date(2026, 12, 3, 0, 5, 0, 0, time.UTC), BLAKE2b},
		{time.Date(2026, 12, 4, 0, 5, 0, 0, time.UTC), SipHash24},
		{time.Date(2026, 12, 4, 23, 59, 0, 0, time.UTC), SipHash24},
	} {
		clk.set(c.at)
		mustSync(t, a)
		mustSync(t, b)
		sa, sb := a.Get(c.at), b.Get(c.at)
		if sa.Hash != c.want || sb.Hash != c.want {
			t.Errorf("%s: the instances hash with %d and %d, want %d", c.at, sa.Hash, sb.Hash, c.want)
		}
		if ID(sa, "example.com", ip, "ua") != ID(sb, "example.com", ip, "ua") {
			t.Errorf("%s: two instances give one visitor two ids", c.at)
		}
	}
}

// The id of a SipHash day costs no allocation, from a string or from the
// header's bytes, and both give the same id.
func TestIDAllocs(t *testing.T) {
	s := newSalt()
	ip := netip.MustParseAddr("2001:db8::1")
	ua := "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
	ub := []byte(ua)
	if ID(s, "example.com", ip, ua) != ID(s, "example.com", ip, ub) {
		t.Fatal("a User-Agent as bytes gives another id than as a string")
	}
	if n := testing.AllocsPerRun(100, func() { ID(s, "example.com", ip, ub) }); n != 0 {
		t.Errorf("a visitor id allocates %.0f times", n)
	}
}
