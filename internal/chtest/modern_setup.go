package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"turf/internal/chdb"
	"turf/schema"
)

// The modern leg is on wherever the chDB library is found; TURF_TEST_MODERN=0
// turns it off on a developer's machine. Under CI=true a test that needs it
// fails when it is missing or turned off.
var (
	modern    *leg
	modernErr error
)

// startModern sets the leg up beside the managed 18.16 server at addr (HTTP
// at httpURL), with chDB's data under dir. With an external server
// (TURF_TEST_CLICKHOUSE) there is no HTTP port to compare with, so no leg.
func startModern(addr, httpURL, dir string) {
	if os.Getenv("TURF_TEST_MODERN") == "0" {
		modernErr = fmt.Errorf("the modern leg is turned off (TURF_TEST_MODERN=0)")
		return
	}
	lib, err := chdb.Find()
	if err != nil {
		modernErr = err
		return
	}
	ch, err := chdb.Open(lib, dir)
	if err != nil {
		modernErr = err
		return
	}
	if modern, modernErr = newLeg(ch, addr, httpURL); modernErr == nil {
		schema.Wrap = modern.wrap
	}
}

// requireModern fails the test under CI=true when the leg is not running.
func requireModern(t testing.TB) {
	t.Helper()
	if modern != nil {
		return
	}
	err := modernErr
	if err == nil {
		err = fmt.Errorf("an external ClickHouse (TURF_TEST_CLICKHOUSE) has no modern leg")
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("the ClickHouse 26.x leg (chDB) is required under CI=true: %v", err)
	}
}

// checkModern fails the test for every statement of db that failed on the
// modern server or answered differently there.
func checkModern(t testing.TB, db string) {
	t.Helper()
	if modern == nil {
		return
	}
	problems := modern.takeProblems(db)
	for i, p := range problems {
		if i == 10 {
			t.Errorf("modern leg: %d more problems", len(problems)-i)
			break
		}
		t.Errorf("modern leg: %s", p)
	}
}

// WrittenElsewhere tells the modern leg that another process (a turf binary
// the test started) writes to d: those rows never reach 26.x, so the
// statements the test sends itself still have to succeed there, but their
// answers are not compared.
func (d *DB) WrittenElsewhere() {
	if modern != nil {
		m := modern.database(d.Name)
		m.mu.Lock()
		m.elsewhere = true
		m.mu.Unlock()
	}
}

// Report is what one test binary's modern leg did; TURF_MODERN_REPORT names
// a directory that gets one file of it per test binary, which
// `go run ./internal/chtest/modernreport DIR` adds up.
type Report struct {
	Package string
	Stats
}

func writeModernReport() error {
	dir := os.Getenv("TURF_MODERN_REPORT")
	if dir == "" || modern == nil {
		return nil
	}
	wd, _ := os.Getwd()
	// A test binary runs in its package's directory.
	r := Report{Package: filepath.Base(wd), Stats: modern.snapshot()}
	if rel, err := filepath.Rel(moduleRoot(wd), wd); err == nil {
		r.Package = rel
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("cannot encode the modern leg's report: %w", err)
	}
	name := filepath.Join(dir, strings.ReplaceAll(r.Package, string(filepath.Separator), "_")+".json")
	if err := os.WriteFile(name, b, 0o644); err != nil {
		return fmt.Errorf("cannot write the modern leg's report: %w", err)
	}
	return nil
}

func moduleRoot(dir string) string {
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return dir
}

// NewModern is New on ClickHouse 26.x alone: a fresh database on chDB,
// migrated by schema.Migrate as turf migrates a modern server, its Conn a
// driver.Conn over chDB (internal/chdb). For what 18.16 cannot run at all,
// such as retention by table TTL. It needs the modern leg (skipped without
// it on a developer's machine, failed under CI=true).
func NewModern(t testing.TB) *DB {
	t.Helper()
	Server(t)
	requireModern(t)
	if modern == nil {
		t.Skipf("no ClickHouse 26.x (chDB) here: %v", modernErr)
	}
	conn := modern.ch.Driver()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "m_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := schema.Migrate(ctx, conn, schema.Options{DB: name}, func(string, ...any) {}); err != nil {
		t.Fatalf("migrate %s on chDB: %v", name, err)
	}
	t.Cleanup(func() {
		if err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Logf("cannot drop chDB database %s: %v", name, err)
		}
	})
	return &DB{Conn: conn, Name: name}
}
