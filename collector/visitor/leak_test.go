package visitor

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"turf/internal/chtest"
)

// TestSaltsNeverLeak drives the store through every path that logs or
// returns an error (adoption after a race, a damaged row, destruction) and
// checks that no salt, in any encoding, is in what it says.
func TestSaltsNeverLeak(t *testing.T) {
	db := chtest.New(t)
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	var mu sync.Mutex
	var said []string
	logf := func(f string, a ...any) { mu.Lock(); said = append(said, fmt.Sprintf(f, a...)); mu.Unlock() }

	a := NewStore(db.Conn, db.Name, clk.now, time.Minute, logf)
	b := NewStore(db.Conn, db.Name, clk.now, time.Minute, logf)
	local := *b.Get(clk.now()) // made while "offline"
	mustSync(t, a)
	mustSync(t, b) // adopts a's salt and says so
	var salts []Salt
	salts = append(salts, local, *a.Get(clk.now()), *a.Get(clk.now().AddDate(0, 0, 1)))

	// A damaged row: the error names the day and the length, nothing else.
	bad, err := db.Conn.PrepareBatch(ctx, "INSERT INTO "+db.Name+".salts (day, salt, created)")
	if err != nil {
		t.Fatal(err)
	}
	damaged := "0123456789abcdef0123"
	if err := bad.Append(time.Date(2026, 5, 3, 0, 0, 0, 0, time.UTC), damaged, clk.now()); err != nil {
		t.Fatal(err)
	}
	if err := bad.Send(); err != nil {
		t.Fatal(err)
	}
	clk.set(time.Date(2026, 5, 2, 12, 0, 0, 0, time.UTC))
	if err := a.Sync(ctx); err == nil {
		t.Error("a damaged salt row went unnoticed")
	} else {
		said = append(said, err.Error())
	}
	salts = append(salts, *a.Get(clk.now()))

	// Destruction is logged by day.
	clk.set(time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC))
	_ = a.Sync(ctx)
	var destroyed bool
	for _, s := range said {
		destroyed = destroyed || strings.Contains(s, "destroyed the visitor salt of 2026-05-01")
	}
	if !destroyed {
		t.Errorf("destruction not logged: %q", said)
	}

	all := strings.Join(said, "\n")
	if !strings.Contains(all, "adopting the stored one") {
		t.Errorf("the adoption path was not exercised: %q", said)
	}
	for i, s := range salts {
		for _, form := range saltForms(s.key()) {
			if form != "" && strings.Contains(all, form) {
				t.Errorf("salt #%d appears in a log line or error: %q", i, all)
			}
		}
	}
	if strings.Contains(all, damaged) {
		t.Error("the damaged salt's bytes appear in an error")
	}
}

// saltForms are the ways a salt could be printed by mistake.
func saltForms(b []byte) []string {
	return []string{
		string(b), hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
		base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
		fmt.Sprint(b), fmt.Sprintf("%x", b), fmt.Sprintf("%q", b),
		strings.Trim(fmt.Sprint(b), "[]"),
		string(bytes.TrimRight(b[:8], "\x00")),
	}
}

// TestDestroyedDayAfterRestart: once a day's salt is destroyed, not even a
// freshly started instance (which loads salts from ClickHouse) can compute
// that day's visitor ids again.
func TestDestroyedDayAfterRestart(t *testing.T) {
	db := chtest.New(t)
	clk := &clock{t: time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)}
	a := NewStore(db.Conn, db.Name, clk.now, 15*time.Minute, nolog)
	mustSync(t, a)
	day1 := clk.now()
	ip := netip.MustParseAddr("2001:db8:77::1")
	old := ID(a.Get(day1), "example.com", ip, "ua")
	clk.set(time.Date(2026, 7, 2, 1, 0, 0, 0, time.UTC))
	mustSync(t, a)
	restarted := NewStore(db.Conn, db.Name, clk.now, 15*time.Minute, nolog)
	mustSync(t, restarted)
	if ID(restarted.Get(day1), "example.com", ip, "ua") == old {
		t.Fatal("a restarted instance recomputed a destroyed day's visitor id")
	}
	if n := db.Count(t, "SELECT count() FROM "+db.Name+".salts WHERE day < toDate('2026-07-02')"); n != 0 {
		t.Errorf("%d rows of destroyed salts remain", n)
	}
}
