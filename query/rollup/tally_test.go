package rollup

import (
	"context"
	"fmt"
	"testing"
	"time"

	"turf/internal/chtest"
	"turf/schema"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// TestTally: the view counts the events as they are inserted, Valid reads
// those tallies, and a pass puts right a tally that is off in either
// direction, rebuilding the day where a low tally had hidden late events.
func TestTally(t *testing.T) {
	db := chtest.New(t)
	ctx := context.Background()
	day := func(d int) time.Time { return time.Date(2024, 5, d, 0, 0, 0, 0, time.UTC) }
	insert := func(site string, d, n int) {
		t.Helper()
		b, err := db.Conn.PrepareBatch(ctx, "INSERT INTO "+schema.Table(db.Name, schema.Events)+" (site, ts, name, visitor_id)")
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if err := b.Append(site, day(d).Add(time.Duration(i)*time.Hour), "pageview", uint64(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	tally := func(site string, d int) int64 {
		t.Helper()
		var n int64
		q := fmt.Sprintf("SELECT sum(events) FROM %s WHERE site = ? AND day = toDate(?)", schema.Table(db.Name, schema.EventDays))
		if err := db.Conn.QueryRow(ctx, q, site, day(d).Format(time.DateOnly)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	addTally := func(site string, d int, n int64) {
		t.Helper()
		b, err := db.Conn.PrepareBatch(ctx, "INSERT INTO "+schema.Table(db.Name, schema.EventDays)+" (site, day, events)")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Append(site, day(d), n); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	insert("a.test", 1, 3)
	insert("a.test", 2, 5)
	insert("b.test", 2, 2)
	for _, c := range []struct {
		site string
		day  int
		want int64
	}{{"a.test", 1, 3}, {"a.test", 2, 5}, {"b.test", 2, 2}, {"b.test", 1, 0}} {
		if got := tally(c.site, c.day); got != c.want {
			t.Errorf("tally of %s on day %d: %d, want %d (the events)", c.site, c.day, got, c.want)
		}
	}

	job := New(db.Conn, db.Name, func() time.Time { return day(10) }, t.Logf)
	pass := func(want int) {
		t.Helper()
		n, err := job.Pass(ctx, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("the pass built %d site-days, want %d", n, want)
		}
	}
	valid := func(site string) map[time.Time]Built {
		t.Helper()
		v, err := Valid(ctx, db.Conn, db.Name, site, day(1), day(6))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	pass(3)
	before := valid("a.test")
	if len(before) != 2 || before[day(1)].Build == 0 || before[day(2)].Build == 0 {
		t.Fatalf("after the pass: %v, want builds of days 1 and 2", before)
	}

	// Too high (a block counted twice): the day is read raw until the
	// next pass, which corrects the tally and has nothing to rebuild.
	addTally("a.test", 1, 4)
	if got := valid("a.test")[day(1)]; got.Build != 0 {
		t.Errorf("a tally above the events still names build %d", got.Build)
	}
	pass(0)
	if got := tally("a.test", 1); got != 3 {
		t.Errorf("tally after the pass: %d, want 3", got)
	}
	if got := valid("a.test")[day(1)]; got != before[day(1)] {
		t.Errorf("after the correction: %v, want %v", got, before[day(1)])
	}

	// Too low by exactly the late events: the stale build looks valid to
	// the tally, never to the pass, which rebuilds the day and corrects.
	addTally("a.test", 2, -2)
	insert("a.test", 2, 2)
	pass(1)
	if got := tally("a.test", 2); got != 7 {
		t.Errorf("tally after the pass: %d, want 7", got)
	}
	if got := valid("a.test")[day(2)]; got.Build == 0 || got.Build == before[day(2)].Build {
		t.Errorf("after the rebuild: %v, want a build other than %d", got, before[day(2)].Build)
	}

	// A tally without events (erased ones): read as an empty day once
	// corrected, instead of a day to read raw.
	addTally("a.test", 4, 6)
	if got, ok := valid("a.test")[day(4)]; !ok || got.Build != 0 {
		t.Errorf("day 4 before the pass: %v %v, want listed, unbuilt", got, ok)
	}
	pass(0)
	if got, ok := valid("a.test")[day(4)]; ok {
		t.Errorf("day 4 after the pass: %v, want left out (no events)", got)
	}
}
