// Package chtest gives each test a fresh, migrated database on a real
// ClickHouse server. One server is started per test binary (or the one named
// by TURF_TEST_CLICKHOUSE is used); every test gets its own database, dropped
// when the test ends.
//
// Without a server a test is skipped on a developer's machine, but fails when
// CI=true: CI must never pass by not testing storage.
package chtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/internal/chserver"
	"turf/schema"
)

var (
	once    sync.Once
	srv     *chserver.Server
	addr    string
	tmpDir  string
	initErr error
)

// Main runs the package's tests and stops the shared server afterwards. Use
// it from TestMain: func TestMain(m *testing.M) { chtest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if err := writeModernReport(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	Shutdown()
	os.Exit(code)
}

// Shutdown stops the shared server if this process started it.
func Shutdown() {
	if srv != nil {
		_ = srv.Stop()
		srv = nil
	}
	if tmpDir != "" {
		_ = os.RemoveAll(tmpDir)
	}
}

// Server returns the address (host:port) of the test server, starting it on
// first use.
func Server(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		if a := os.Getenv("TURF_TEST_CLICKHOUSE"); a != "" {
			addr = a
			return
		}
		if _, err := chserver.FindBinary(); err != nil {
			initErr = err
			return
		}
		tmpDir, initErr = os.MkdirTemp("", "turf-chtest-")
		if initErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		// The HTTP port is for the modern leg only: it reads 18.16's answers
		// as text (turf itself speaks the native protocol).
		httpPort, err := chserver.FreePort()
		if err != nil {
			initErr = err
			return
		}
		srv, initErr = chserver.StartWithConfig(ctx, tmpDir, chserver.Config{ExtraXML: fmt.Sprintf("  <http_port>%d</http_port>\n", httpPort)})
		if initErr == nil {
			addr = srv.Addr()
			startModern(addr, fmt.Sprintf("http://127.0.0.1:%d/", httpPort), filepath.Join(tmpDir, "chdb"))
		}
	})
	if initErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ClickHouse is required under CI=true: %v", initErr)
		}
		t.Skipf("no ClickHouse server for this test: %v", initErr)
	}
	return addr
}

// Managed returns the server this process started, or nil when an external
// one (TURF_TEST_CLICKHOUSE) is used. Outage tests need it to pause the server.
func Managed(t testing.TB) *chserver.Server {
	Server(t)
	return srv
}

// DB is a fresh migrated database for one test.
type DB struct {
	Conn driver.Conn
	Name string
	DSN  string
}

// New creates a database named after a random suffix, migrates it, and drops
// it when the test ends.
func New(t testing.TB) *DB {
	t.Helper()
	a := Server(t)
	requireModern(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	dsn := fmt.Sprintf("clickhouse://%s/%s", a, name)
	conn, db, err := schema.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := schema.Migrate(ctx, conn, schema.Options{DB: db}, func(string, ...any) {}); err != nil {
		t.Fatalf("migrate %s: %v", db, err)
	}
	// Registered before the drop, so it runs after it: the drop is mirrored too.
	t.Cleanup(func() { checkModern(t, db) })
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Logf("cannot drop test database %s: %v", db, err)
		}
		conn.Close()
	})
	return &DB{Conn: conn, Name: db, DSN: dsn}
}

// Count runs a SELECT count() style query that returns one UInt64.
func (d *DB) Count(t testing.TB, query string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := d.Conn.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// Dump reads every column of every table of the database back through SQL
// as text, NUL-separated, so that a test can search everything stored for a
// value: compression and encodings cannot hide it.
func (d *DB) Dump(t testing.TB) []byte {
	t.Helper()
	ctx := context.Background()
	rows, err := d.Conn.Query(ctx, "SELECT table, name FROM system.columns WHERE database = ?", d.Name)
	if err != nil {
		t.Fatal(err)
	}
	var cols [][2]string
	for rows.Next() {
		var tb, c string
		if err := rows.Scan(&tb, &c); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, [2]string{tb, c})
	}
	rows.Close()
	if len(cols) < 20 {
		t.Fatalf("only %d columns found in %s", len(cols), d.Name)
	}
	var all bytes.Buffer
	for _, c := range cols {
		r, err := d.Conn.Query(ctx, fmt.Sprintf("SELECT toString(`%s`) FROM %s.`%s`", c[1], d.Name, c[0]))
		if err != nil {
			t.Fatalf("read %s.%s: %v", c[0], c[1], err)
		}
		for r.Next() {
			var s string
			if err := r.Scan(&s); err != nil {
				t.Fatal(err)
			}
			all.WriteString(s)
			all.WriteByte(0)
		}
		r.Close()
	}
	return all.Bytes()
}
