package chdb

import (
	"os"
	"strings"
	"testing"
)

// need opens the process's chDB or, without the library, skips; under
// CI=true it fails instead: CI must never pass by not testing.
func need(t *testing.T) *Conn {
	t.Helper()
	lib, err := Find()
	if err == nil {
		var c *Conn
		if c, err = Open(lib, t.TempDir()); err == nil {
			return c
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("chDB is required under CI=true: %v", err)
	}
	t.Skipf("no chDB: %v", err)
	return nil
}

func TestQuery(t *testing.T) {
	c := need(t)
	out, err := c.Query("SELECT version()", "TabSeparated")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "26.") {
		t.Fatalf("version %q, want 26.x", out)
	}
	for _, q := range []string{"CREATE DATABASE d1", "CREATE TABLE d1.t (a UInt8) ENGINE = MergeTree ORDER BY a"} {
		if _, err := c.Query(q, "TabSeparated"); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := c.Query("INSERT INTO d1.t VALUES (1), (2)", "TabSeparated"); err != nil {
		t.Fatal(err)
	}
	out, err = c.Query("SELECT sum(a) FROM d1.t", "TabSeparated")
	if err != nil || string(out) != "3\n" {
		t.Fatalf("sum: %q, %v", out, err)
	}
	// The error is ClickHouse's own message, with its code name.
	_, err = c.Query("SELECT * FROM (SELECT 1 AS a) ALL INNER JOIN (SELECT 1 AS a) USING a", "TabSeparated")
	if err == nil || !strings.Contains(err.Error(), "ALIAS_REQUIRED") {
		t.Fatalf("un-aliased join: %v, want ALIAS_REQUIRED", err)
	}
}

// deploy/install-deps.sh fetches the library into CachePath: both must name
// the same release.
func TestInstallScriptFetchesThisVersion(t *testing.T) {
	b, err := os.ReadFile("../../deploy/install-deps.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "chdb_version="+Version+"\n") {
		t.Fatalf("deploy/install-deps.sh does not fetch chDB %s", Version)
	}
}
