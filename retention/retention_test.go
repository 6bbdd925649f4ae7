package retention

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"turf/internal/chtest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

func TestParsePeriod(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Period
		err  bool
	}{
		{"13mo", Period{Months: 13}, false},
		{"25MO", Period{Months: 25}, false},
		{"2y", Period{Months: 24}, false},
		{"1y6mo", Period{Months: 18}, false},
		{"400d", Period{Days: 400}, false},
		{"2w3d", Period{Days: 17}, false},
		{"13m", Period{}, true}, // minutes or months?
		{"0d", Period{}, true},
		{"", Period{}, true},
		{"mo", Period{}, true},
		{"13", Period{}, true},
		{"-1d", Period{}, true},
	} {
		got, err := ParsePeriod(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ParsePeriod(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.err)
		}
	}
}

func TestCutoff(t *testing.T) {
	now := time.Date(2026, 3, 31, 17, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		p    Period
		want string
	}{
		{Period{Months: 13}, "2025-03-03"}, // 2025-02-31 normalises like time.AddDate
		{Period{Months: 25}, "2024-03-02"},
		{Period{Days: 1}, "2026-03-30"},
	} {
		if got := c.p.Cutoff(now).Format(time.DateOnly); got != c.want {
			t.Errorf("%v before %s = %s, want %s", c.p, now, got, c.want)
		}
	}
}

func TestPolicy(t *testing.T) {
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	sites, err := ParseSitePeriods([]string{"Long.example=25mo"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseSitePeriods([]string{"nosign"}); err == nil {
		t.Error("site without =period accepted")
	}
	p := Policy{Sites: sites, Aggregates: Period{Months: 37}}
	for _, c := range []struct {
		site string
		agg  bool
		want Period
	}{
		{"short.example", false, DefaultPeriod},
		{"long.example", false, Period{Months: 25}},
		{"short.example", true, Period{Months: 37}},
		{"long.example", true, Period{Months: 37}},
	} {
		if got := p.For(c.site, c.agg, now); got != c.want {
			t.Errorf("For(%s, aggregate %v) = %v, want %v", c.site, c.agg, got, c.want)
		}
	}
	// Aggregates are never kept shorter than their site's events.
	q := Policy{Sites: sites, Aggregates: Period{Months: 14}}
	if got := q.For("long.example", true, now); got != (Period{Months: 25}) {
		t.Errorf("aggregates of a 25mo site kept %v", got)
	}
	ev := Table{Name: "events", TimeColumn: "ts", TimeType: "DateTime"}
	want := "(site = 'long.example' AND `ts` < toDateTime('2024-02-15 00:00:00', 'UTC')) OR (site NOT IN ('long.example') AND `ts` < toDateTime('2025-02-15 00:00:00', 'UTC'))"
	if got := p.expired(ev, now); got != want {
		t.Errorf("expired =\n%s\nwant\n%s", got, want)
	}
	day := Table{Name: "daily", TimeColumn: "day", TimeType: "Date", Aggregate: true}
	if got := (Policy{}).expired(day, now); got != "`day` < toDate('2025-02-15')" {
		t.Errorf("expired on a Date column = %s", got)
	}
	if got := p.ttl(ev, now); got != "multiIf(site = 'long.example', toDate(`ts`, 'UTC') + toIntervalMonth(25) + toIntervalDay(1), toDate(`ts`, 'UTC') + toIntervalMonth(13) + toIntervalDay(1))" {
		t.Errorf("ttl = %s", got)
	}
}

// fixture fills a database with two sites' events across 27 months, an
// aggregate table partitioned by a Date, and a table with no time column.
func fixture(t *testing.T) *chtest.DB {
	t.Helper()
	return fill(t, chtest.New(t))
}

func fill(t *testing.T, db *chtest.DB) *chtest.DB {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE " + db.Name + ".daily_pages (site String, day Date, pathname String, visitors UInt64) ENGINE = MergeTree PARTITION BY toYYYYMM(day) ORDER BY (site, day)",
		"CREATE TABLE " + db.Name + ".site_notes (site String, note String) ENGINE = MergeTree ORDER BY site",
	} {
		if err := db.Conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	ev, err := db.Conn.PrepareBatch(ctx, "INSERT INTO "+db.Name+".events (site, ts, name, ip_prefix, batch_id)")
	if err != nil {
		t.Fatal(err)
	}
	agg, err := db.Conn.PrepareBatch(ctx, "INSERT INTO "+db.Name+".daily_pages (site, day, pathname, visitors)")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := db.Conn.PrepareBatch(ctx, "INSERT INTO "+db.Name+".engagements (site, ts, visitor_id, pathname, scroll_depth, engagement_ms, batch_id)")
	if err != nil {
		t.Fatal(err)
	}
	// One event per site on the 1st and the 20th of each month from
	// 2024-01 to 2026-03.
	for m := 0; m < 27; m++ {
		for _, d := range []int{1, 20} {
			ts := time.Date(2024, time.January+time.Month(m), d, 10, 0, 0, 0, time.UTC)
			for _, s := range []string{"a.example", "b.example"} {
				if err := ev.Append(s, ts, "pageview", "198.51.100.0/24", "b"); err != nil {
					t.Fatal(err)
				}
				if err := agg.Append(s, ts, "/", uint64(1)); err != nil {
					t.Fatal(err)
				}
				if err := eng.Append(s, ts, uint64(7), "/", uint8(50), uint32(1000), "b"); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := ev.Send(); err != nil {
		t.Fatal(err)
	}
	if err := eng.Send(); err != nil {
		t.Fatal(err)
	}
	if err := agg.Send(); err != nil {
		t.Fatal(err)
	}
	notes, err := db.Conn.PrepareBatch(ctx, "INSERT INTO "+db.Name+".site_notes (site, note)")
	if err != nil {
		t.Fatal(err)
	}
	_ = notes.Append("a.example", "x")
	_ = notes.Append("b.example", "y")
	if err := notes.Send(); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestDiscover(t *testing.T) {
	db := fixture(t)
	tables, err := Discover(context.Background(), db.Conn, db.Name)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Table{}
	for _, tb := range tables {
		got[tb.Name] = tb
	}
	for _, n := range []string{"events", "daily_pages", "site_notes"} {
		if _, ok := got[n]; !ok {
			t.Errorf("%s not found", n)
		}
	}
	for _, n := range []string{"salts", "api_keys", "schema_migrations"} {
		if _, ok := got[n]; ok {
			t.Errorf("%s has no site column but was found", n)
		}
	}
	for _, n := range []string{"dashboard_shares", "settings_sites", "settings_goals"} {
		if s, ok := got[n]; !ok || !s.Config {
			t.Errorf("%s is configuration, not data: %+v (found: %v)", n, s, ok)
		}
	}
	for _, n := range []string{"settings_audit", "dashboard_roles", "dashboard_invites"} {
		if _, ok := got[n]; ok {
			t.Errorf("%s has no site column but was found", n)
		}
	}
	if e := got["events"]; e.TimeColumn != "ts" || e.Aggregate || e.PartitionKey == "" {
		t.Errorf("events: %+v", e)
	}
	// Engagement beacons hold visitor ids: raw data, expired by ts like
	// the events, never kept longer as an aggregate.
	if e, ok := got["engagements"]; !ok || e.TimeColumn != "ts" || e.Aggregate || e.Rollup || e.Config || e.PartitionKey == "" {
		t.Errorf("engagements: %+v", e)
	}
	if d := got["daily_pages"]; d.TimeColumn != "day" || d.TimeType != "Date" || !d.Aggregate {
		t.Errorf("daily_pages: %+v", d)
	}
	if n := got["site_notes"]; n.TimeColumn != "" || n.PartitionKey != "" {
		t.Errorf("site_notes: %+v", n)
	}
	// The rollups hold visitor ids: they expire with the events, whatever
	// --retention-aggregates says.
	for _, n := range []string{"visits", "visit_stats", "hour_stats", "event_stats", "event_props", "rollup_days"} {
		if r, ok := got[n]; !ok || !r.Rollup || r.Aggregate || r.TimeColumn != "day" {
			t.Errorf("%s: %+v", n, r)
		}
	}
}

func TestEnforce(t *testing.T) {
	db := fixture(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	var logs []string
	e := New(db.Conn, db.Name, Config{Policy: Policy{Sites: map[string]Period{"b.example": {Months: 25}}, Aggregates: Period{Months: 37}}},
		func() time.Time { return now }, func(f string, a ...any) { logs = append(logs, f) })

	// The dry run: a.example keeps from 2025-02-15, b.example from 2024-02-15.
	pl, err := e.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pl.UseTTL {
		t.Skip("this server has TTL; the scheduled deletions are tested on 18.16")
	}
	byName := map[string]TablePlan{}
	for _, tp := range pl.Tables {
		byName[tp.Table.Name] = tp
	}
	ev := byName["events"]
	// Months 2024-01 (b too old by 25mo: both sites' rows expired) is the
	// only whole partition; a.example's 2024-02..2025-02-01 are deleted.
	if len(ev.Partitions) != 1 || ev.Partitions[0].ID != "202401" || ev.Partitions[0].Rows != 4 {
		t.Errorf("partitions to drop: %+v", ev.Partitions)
	}
	// a.example: 2024-02 .. 2025-01 (12 months x 2 days) and 2025-02-01;
	// b.example: 2024-02-01.
	if ev.DeleteRows != 24+1+1 {
		t.Errorf("rows to delete: %d, want 26", ev.DeleteRows)
	}
	if agg := byName["daily_pages"]; agg.Rows() != 0 {
		t.Errorf("aggregates kept 37 months lose %d rows", agg.Rows())
	}
	// Engagement beacons are raw: they expire with the events, not after
	// the 37 months aggregates may be kept.
	if eng := byName["engagements"]; eng.Rows() != ev.Rows() || eng.DeleteRows != 26 {
		t.Errorf("engagements lose %d rows (%d deleted), the events %d", eng.Rows(), eng.DeleteRows, ev.Rows())
	}
	if s := byName["site_notes"]; s.Skipped == "" {
		t.Error("table without a time column not reported as skipped")
	}
	before := db.Count(t, "SELECT count() FROM "+db.Name+".events")
	if before != 27*2*2 {
		t.Fatalf("fixture has %d events", before)
	}

	if err := e.Apply(ctx, pl); err != nil {
		t.Fatal(err)
	}
	if err := waitMutations(ctx, db.Conn, db.Name, Table{Name: "events"}); err != nil {
		t.Fatal(err)
	}
	if n := db.Count(t, "SELECT count() FROM "+db.Name+".events"); n != before-30 {
		t.Errorf("%d events left, want %d", n, before-30)
	}
	for site, cutoff := range map[string]string{"a.example": "2025-02-15", "b.example": "2024-02-15"} {
		if n := db.Count(t, "SELECT count() FROM "+db.Name+".events WHERE site = ? AND ts < toDateTime(?)", site, cutoff+" 00:00:00"); n != 0 {
			t.Errorf("%s: %d rows older than %s remain", site, n, cutoff)
		}
		if n := db.Count(t, "SELECT count() FROM "+db.Name+".events WHERE site = ? AND ts >= toDateTime(?)", site, cutoff+" 00:00:00"); n == 0 {
			t.Errorf("%s: rows after %s were removed", site, cutoff)
		}
	}
	if n := db.Count(t, "SELECT count() FROM system.parts WHERE database = ? AND table = 'events' AND active AND partition = '202401'", db.Name); n != 0 {
		t.Error("expired partition still there")
	}
	// A second run finds nothing more.
	pl, err = e.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range pl.Tables {
		if tp.Rows() != 0 {
			t.Errorf("second run would remove %d rows from %s", tp.Rows(), tp.Table.Name)
		}
	}
	if len(logs) == 0 {
		t.Error("removal not logged")
	}
}

// On a server with table TTL (19.6+, here ClickHouse 26.x) the enforcer
// sets a TTL on every data table and drops whole expired partitions; the
// remaining expired rows go when parts merge. After OPTIMIZE ... FINAL the
// same rows are gone as with the delete job on 18.16 (TestEnforce), and the
// rest stay. The server's clock decides what a TTL expires, so this test
// runs on the real clock and works out what should stay from the cutoffs.
func TestEnforceByTTL(t *testing.T) {
	db := fill(t, chtest.NewModern(t))
	ctx := context.Background()
	policy := Policy{Sites: map[string]Period{"b.example": {Months: 25}}, Aggregates: Period{Months: 37}}
	e := New(db.Conn, db.Name, Config{Policy: policy}, time.Now, t.Logf)
	pl, err := e.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !pl.UseTTL {
		t.Fatal("a modern server is not taken to have table TTL")
	}
	changes := 0
	for _, tp := range pl.Tables {
		if tp.Skipped == "" && tp.TTLChange {
			changes++
		}
	}
	if changes == 0 {
		t.Fatal("no table gets a TTL")
	}
	if err := e.Apply(ctx, pl); err != nil {
		t.Fatal(err)
	}
	var create string
	if err := db.Conn.QueryRow(ctx, "SELECT create_table_query FROM system.tables WHERE database = ? AND name = 'events'", db.Name).Scan(&create); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(create, "TTL") {
		t.Fatalf("events has no TTL after Apply: %s", create)
	}
	for _, table := range []string{"events", "daily_pages"} {
		if err := db.Conn.Exec(ctx, "OPTIMIZE TABLE "+db.Name+"."+table+" FINAL"); err != nil {
			t.Fatal(err)
		}
	}
	// The fixture's events (see fill) that are younger than their site's cutoff.
	now := time.Now()
	want := map[string]uint64{}
	for m := 0; m < 27; m++ {
		for _, d := range []int{1, 20} {
			ts := time.Date(2024, time.January+time.Month(m), d, 10, 0, 0, 0, time.UTC)
			for _, s := range []string{"a.example", "b.example"} {
				if !ts.Before(policy.For(s, false, now).Cutoff(now)) {
					want[s]++
				}
			}
		}
	}
	if want["a.example"] == want["b.example"] {
		t.Fatalf("BUG: the fixture does not tell the sites' periods apart today: %v", want)
	}
	for s, n := range want {
		if got := db.Count(t, "SELECT count() FROM "+db.Name+".events WHERE site = ?", s); got != n {
			t.Errorf("%s: %d events left, want %d (rows before %s gone, the rest kept)", s, got, n, policy.For(s, false, now).Cutoff(now).Format(time.DateOnly))
		}
	}
	// Aggregates are kept 37 months: none of the fixture's is that old yet.
	if n := db.Count(t, "SELECT count() FROM "+db.Name+".daily_pages"); n != 27*2*2 {
		t.Errorf("%d daily_pages rows left, want all %d", n, 27*2*2)
	}
	// A second run changes nothing: the TTLs are in place.
	pl, err = e.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range pl.Tables {
		if tp.Rows() != 0 || tp.TTLChange {
			t.Errorf("second run on %s: %d rows, TTL change %v", tp.Table.Name, tp.Rows(), tp.TTLChange)
		}
	}
}

func TestEraseAndExport(t *testing.T) {
	db := fixture(t)
	ctx := context.Background()

	dir := t.TempDir()
	files, err := Export(ctx, db.Conn, db.Name, "a.example", dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 {
		t.Fatalf("exported %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs)-1 != f.Rows || recs[0][0] != "site" {
			t.Errorf("%s: %d records for %d rows, header %v", f.Path, len(recs), f.Rows, recs[0])
		}
		for _, r := range recs[1:] {
			if r[0] != "a.example" {
				t.Fatalf("%s holds a row of %s", f.Path, r[0])
			}
		}
		if f.Table == "events" && (f.Rows != 54 || !strings.Contains(string(b), "198.51.100.0/24")) {
			t.Errorf("events export: %d rows", f.Rows)
		}
		if f.Table == "engagements" && f.Rows != 54 {
			t.Errorf("engagements export: %d rows", f.Rows)
		}
		st, err := os.ReadFile(filepath.Join(dir, f.Table+".structure.txt"))
		if err != nil || !strings.HasPrefix(string(st), "site String") {
			t.Errorf("structure of %s: %q, %v", f.Table, st, err)
		}
	}

	// The query side's rollups (schema 0004) are erased with the site too.
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, q := range []string{
		"INSERT INTO " + db.Name + ".visit_stats (site, day, build, visitors)",
		"INSERT INTO " + db.Name + ".hour_stats (site, day, build, visitors_from)",
	} {
		b, err := db.Conn.PrepareBatch(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"a.example", "b.example"} {
			if err := b.Append(s, day, uint64(1), uint64(3)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	plan, err := PlanErase(ctx, db.Conn, db.Name, "a.example")
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, r := range plan {
		total += r.Rows()
	}
	// event_days: the view's rows, as many as its inserts made (unmerged).
	tallies := db.Count(t, "SELECT count() FROM "+db.Name+".event_days WHERE site = 'a.example'")
	if tallies == 0 {
		t.Error("no event_days rows for a.example: the view counted nothing")
	}
	if want := 54 + 54 + 54 + 1 + 2 + tallies; total != want { // events, engagements, daily_pages, site_notes, the two rollup rows, the tallies
		t.Errorf("erase plan removes %d rows, want %d", total, want)
	}
	if err := Erase(ctx, db.Conn, db.Name, "", plan); err != nil {
		t.Fatal(err)
	}
	for _, tb := range []string{"events", "engagements", "daily_pages", "site_notes", "visit_stats", "hour_stats", "event_days"} {
		if n := db.Count(t, "SELECT count() FROM "+db.Name+"."+tb+" WHERE site = 'a.example'"); n != 0 {
			t.Errorf("%s: %d rows of the erased site remain", tb, n)
		}
		if n := db.Count(t, "SELECT count() FROM "+db.Name+"."+tb+" WHERE site = 'b.example'"); n == 0 {
			t.Errorf("%s: the other site's rows went too", tb)
		}
	}
}
