// Package turftest starts a real turf (the same wiring as `turf serve`, in
// test mode) against a fresh database on the test ClickHouse server, for
// end-to-end tests that send HTTP and look at the rows that land.
package turftest

import (
	"io"
	"net/http"
	"turf/schema"

	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/collector"
	"turf/collector/sink"
	"turf/internal/app"
	"turf/internal/chtest"
	"turf/query"
)

// Options tune a test server; the zero value is fine.
type Options struct {
	TrustedProxies []netip.Prefix
	IPv4Prefix     int // default 24
	IPv6Prefix     int // default 48
	GeoIPDB        string
	GeoIPCityDB    []string
	HonourDNT      bool
	KeepFragment   bool
	Query          query.Config // per-site time zones and goals, rate limits
	DisableGPC     bool
	BatchSize      int           // default 1000
	FlushInterval  time.Duration // default 100ms
	MetricsListen  string        // turf's --metrics-listen; empty: none
}

// MetricsToken is the --metrics-token every test server has: /metrics on
// its main address answers only with it (Server.Metrics sends it).
const MetricsToken = "turftest-metrics"

// Server is a running turf.
type Server struct {
	URL  string // http://127.0.0.1:PORT
	DB   string
	Conn driver.Conn
	App  *app.App
}

// Start starts turf for sites with default options.
func Start(t testing.TB, sites ...string) *Server { return StartWith(t, Options{}, sites...) }

// StartWith starts turf for sites. It is shut down (with its final flush)
// when the test ends.
func StartWith(t testing.TB, o Options, sites ...string) *Server {
	t.Helper()
	db := chtest.New(t)
	if o.IPv4Prefix == 0 {
		o.IPv4Prefix = 24
	}
	if o.IPv6Prefix == 0 {
		o.IPv6Prefix = 48
	}
	if o.BatchSize == 0 {
		o.BatchSize = 1000
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = 100 * time.Millisecond
	}
	a, err := app.Start(context.Background(), app.Config{
		Listen: "127.0.0.1:0", MetricsListen: o.MetricsListen, MetricsToken: MetricsToken,
		Collector: collector.Config{
			Sites: sites, TrustedProxies: o.TrustedProxies, IPv4Prefix: o.IPv4Prefix, IPv6Prefix: o.IPv6Prefix,
			HonourGPC: !o.DisableGPC, HonourDNT: o.HonourDNT, KeepFragment: o.KeepFragment, TestMode: true,
		},
		GeoIPDB:     o.GeoIPDB,
		GeoIPCityDB: o.GeoIPCityDB,
		// A directory inside the test's, so that the engagement spool
		// next to it (app.EngagementSink) is removed with it.
		Sink:            sink.Config{Dir: filepath.Join(t.TempDir(), "spool"), SyncInterval: 100 * time.Millisecond, BatchSize: o.BatchSize, FlushInterval: o.FlushInterval, QueueSize: 100 * o.BatchSize},
		Query:           o.Query,
		SaltGrace:       15 * time.Minute,
		ShutdownTimeout: 10 * time.Second,
		Logf:            t.Logf,
	}, db.Conn, db.Name)
	if err != nil {
		t.Fatal(err)
	}
	// Registered after chtest's cleanup, so it runs before the database is
	// dropped.
	t.Cleanup(func() {
		if err := a.Shutdown(); err != nil {
			t.Errorf("turf shutdown: %v", err)
		}
	})
	return &Server{URL: "http://" + a.Addr(), DB: db.Name, Conn: db.Conn, App: a}
}

// Metrics fetches /metrics from the main address with the token.
func (s *Server) Metrics(t testing.TB) string {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+MetricsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics with the token: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// Flush waits until every event accepted so far is in ClickHouse.
func (s *Server) Flush(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.App.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// Events flushes, then returns the events matching the SQL where clause
// (empty: all), ordered by ts, each as column name -> value rendered as text
// by ClickHouse (arrays as ['a','b']).
func (s *Server) Events(t testing.TB, where string, args ...any) []map[string]string {
	t.Helper()
	s.Flush(t)
	if where == "" {
		where = "1"
	}
	cols := []string{"site", "ts", "name", "visitor_id", "hostname", "pathname", "referrer_host", "referrer_path",
		"source", "channel", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "country",
		"region", "city", "browser", "browser_version", "os", "os_version", "device", "ip_prefix", "props_keys", "props_values",
		"revenue_micros", "revenue_currency", "interactive"}
	sel := ""
	for i, c := range cols {
		if i > 0 {
			sel += ", "
		}
		sel += "toString(" + c + ")"
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY ts, pathname, name", sel, schema.Table(s.DB, schema.Events), where)
	rows, err := s.Conn.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []map[string]string
	for rows.Next() {
		vals := make([]string, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		m := make(map[string]string, len(cols))
		for i, c := range cols {
			m[c] = vals[i]
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
