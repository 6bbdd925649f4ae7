package chserver

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExitHint: ClickHouse's exit status 70 (its directory is locked by
// another server) is explained with what to do; other failures are not
// dressed up.
func TestExitHint(t *testing.T) {
	for code, want := range map[string]string{"70": "is another turf command", "1": ""} {
		err := exec.Command("sh", "-c", "exit "+code).Run()
		got := exitHint(err, "/data/clickhouse")
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) || want != "" && !strings.Contains(got, "--clickhouse") {
			t.Errorf("exit %s: hint %q", code, got)
		}
	}
	if exitHint(errors.New("other"), "/x") != "" {
		t.Error("a hint for an error that is no exit status")
	}
}

// TestFindRunningStale: no record, a broken one and one whose owner is gone
// all read as not running, and the stale record is removed.
func TestFindRunningStale(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	if _, err := FindRunning(ctx, dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("no record: %v", err)
	}
	path := filepath.Join(dir, runningFile)
	for _, body := range []string{"not json", mustJSON(t, Running{Addr: "127.0.0.1:1", PID: 1 << 30, ServerPID: 1 << 30})} {
		if err := os.WriteFile(path, []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
		if _, err := FindRunning(ctx, dir); !errors.Is(err, ErrNotRunning) {
			t.Errorf("record %q: %v", body, err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale record %q left: %v", body, err)
		}
	}
	// Alive owner (this process) but nothing answers: say so, with what to do.
	if err := os.WriteFile(path, []byte(mustJSON(t, Running{Addr: "127.0.0.1:1", PID: os.Getpid(), ServerPID: os.Getpid()})), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := FindRunning(ctx, dir); err == nil || errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "does not answer") {
		t.Errorf("owner alive, server silent: %v", err)
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
