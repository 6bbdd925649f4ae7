package chtest

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

func TestSameAnswer(t *testing.T) {
	for _, c := range []struct {
		name    string
		a, b    string
		ordered bool
		want    bool
	}{
		{"equal", "1\ta\n2\tb\n", "1\ta\n2\tb\n", true, true},
		{"empty", "", "", true, true},
		{"unordered rows in another order", "1\ta\n2\tb\n", "2\tb\n1\ta\n", false, true},
		{"ordered rows in another order", "1\ta\n2\tb\n", "2\tb\n1\ta\n", true, false},
		{"float rounding", "0.30000000000000004\n", "0.3\n", true, true},
		{"float difference", "0.3001\n", "0.3\n", true, false},
		{"a missing row", "1\n2\n", "1\n", false, false},
		{"another value", "1\tFacebook\n", "1\tfacebook\n", false, false},
		{"another column count", "1\t2\n", "1\n", false, false},
		{"text is not a float", "nan\n", "inf\n", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := sameAnswer([]byte(c.a), []byte(c.b), c.ordered); got != c.want {
				t.Fatalf("sameAnswer(%q, %q, %v) = %v, want %v", c.a, c.b, c.ordered, got, c.want)
			}
		})
	}
}

func TestOrderByIsOutermost(t *testing.T) {
	for q, want := range map[string]bool{
		"SELECT a FROM t ORDER BY a LIMIT 3":                    true,
		"SELECT a FROM (SELECT a FROM t ORDER BY a) GROUP BY a": false,
		"SELECT a FROM t": false,
		"SELECT a FROM (SELECT 1 AS a) AS x ORDER BY a DESC, b": true,
		"SELECT argMax(a, b) FROM t GROUP BY c":                 false,
	} {
		if got := orderBy.MatchString(q); got != want {
			t.Errorf("orderBy(%q) = %v, want %v", q, got, want)
		}
	}
}

// The leg itself must be able to fail: a statement that modern ClickHouse
// refuses, and an answer that differs, are both reported for the database.
func TestModernLegCatchesFailuresAndDifferences(t *testing.T) {
	d := New(t)
	if modern == nil {
		t.Skip("no modern leg here") // New has failed the test already under CI=true
	}
	// A leg of its own, so that what it catches here stays out of the
	// process's figures.
	l, err := newLeg(modern.ch, modern.addr, modern.http)
	if err != nil {
		t.Fatal(err)
	}
	conn := l.wrap(d.Conn.(*mirrorConn).Conn, []string{modern.addr}, d.Name)
	ctx := context.Background()
	if err := conn.Exec(ctx, "CREATE TABLE "+d.Name+".t (a UInt8) ENGINE = MergeTree ORDER BY a"); err != nil {
		t.Fatal(err)
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+d.Name+".t (a)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(uint8(1)); err != nil {
		t.Fatal(err)
	}
	if err := b.Column(0).Append([]uint8{2}); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+d.Name+".t").Scan(&n); err != nil || n != 2 {
		t.Fatalf("count: %d, %v", n, err)
	}
	if p := l.takeProblems(d.Name); len(p) != 0 {
		t.Fatalf("a portable statement was reported: %v", p)
	}

	// Valid on 18.16, refused by 26.x.
	rows, err := conn.Query(ctx, "SELECT a FROM (SELECT 1 AS a) ALL INNER JOIN (SELECT 1 AS a) USING a")
	if err != nil {
		t.Fatalf("18.16 refused the old join: %v", err)
	}
	rows.Close()
	// The same question, but chDB holds one more row than 18.16.
	if _, err := modern.ch.Query("INSERT INTO "+d.Name+".t VALUES (3)", "TabSeparated"); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+d.Name+".t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	p := l.takeProblems(d.Name)
	if len(p) != 2 || !strings.Contains(p[0], "ALIAS_REQUIRED") || !strings.Contains(p[1], "answers differ") {
		t.Fatalf("problems = %q, want the refused join and the differing count", p)
	}
	if s := l.snapshot(); s.Failed != 1 || s.Differed != 1 || s.Answers != 2 {
		t.Fatalf("figures %+v, want 1 failed, 1 differed, 2 answers compared", s)
	}
}

// NewModern's connection runs turf's migrations and reads back what it
// wrote, in the Go types turf scans into.
func TestNewModern(t *testing.T) {
	d := NewModern(t)
	ctx := context.Background()
	b, err := d.Conn.PrepareBatch(ctx, "INSERT INTO "+d.Name+".events (site, ts, name, props_keys, props_values, interactive, batch_id)")
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
	if err := b.Append("a.example", ts, "it's", []string{"k", "q'uote\\d"}, []string{"v\tw", ""}, uint8(1), "b"); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	var (
		site, name string
		at         time.Time
		keys, vals []string
		inter      uint8
		n          uint64
	)
	if err := d.Conn.QueryRow(ctx, "SELECT site, ts, name, props_keys, props_values, interactive, count() OVER () FROM "+d.Name+".events WHERE site = ?", "a.example").
		Scan(&site, &at, &name, &keys, &vals, &inter, &n); err != nil {
		t.Fatal(err)
	}
	if site != "a.example" || !at.Equal(ts) || name != "it's" || inter != 1 || n != 1 ||
		strings.Join(keys, "|") != "k|q'uote\\d" || strings.Join(vals, "|") != "v\tw|" {
		t.Fatalf("read back %q %v %q %q %q %d %d", site, at, name, keys, vals, inter, n)
	}
	v, err := d.Conn.ServerVersion()
	if err != nil || v.Version.Major < 23 {
		t.Fatalf("server version %+v, %v: want a modern ClickHouse", v, err)
	}
}
