package chserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// A long-running owner of the managed server (`turf serve`) records where it
// listens in the server's directory, so that other turf commands on the same
// data directory use that server instead of starting a second one on the
// same files, which ClickHouse refuses (it exits with status 70 when the
// directory is locked).

const runningFile = "turf-serve.json"

// Running is what the file holds.
type Running struct {
	Addr string `json:"addr"` // host:port of the native protocol
	PID  int    `json:"pid"`  // of the turf process that owns the server
	// ServerPID is the ClickHouse process's own id.
	ServerPID int       `json:"server_pid"`
	Since     time.Time `json:"since"`
}

// DSN returns a DSN for database db on the recorded server.
func (r Running) DSN(db string) string { return "clickhouse://" + r.Addr + "/" + db }

// ErrNotRunning says no live owner is recorded in the directory.
var ErrNotRunning = errors.New("no running turf serve recorded")

// Publish records the server's address for other turf commands; Stop
// removes the record.
func (s *Server) Publish() error {
	r := Running{Addr: s.Addr(), PID: os.Getpid(), ServerPID: s.cmd.Process.Pid, Since: time.Now().UTC().Truncate(time.Second)}
	b, _ := json.Marshal(r)
	tmp := filepath.Join(s.Dir, runningFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return fmt.Errorf("cannot record the managed ClickHouse's address: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.Dir, runningFile)); err != nil {
		return fmt.Errorf("cannot record the managed ClickHouse's address: %w", err)
	}
	s.published = true
	return nil
}

func (s *Server) unpublish() {
	if s.published {
		_ = os.Remove(filepath.Join(s.Dir, runningFile))
		s.published = false
	}
}

// FindRunning reads the record in dir and checks that its owner and its
// server are alive and answer. A stale record (its owner was killed) is
// removed and reported as ErrNotRunning.
func FindRunning(ctx context.Context, dir string) (Running, error) {
	path := filepath.Join(dir, runningFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Running{}, ErrNotRunning
	}
	if err != nil {
		return Running{}, fmt.Errorf("cannot read %s: %w", path, err)
	}
	var r Running
	if err := json.Unmarshal(b, &r); err != nil || r.Addr == "" {
		_ = os.Remove(path)
		return Running{}, ErrNotRunning
	}
	if !alive(r.PID) || !alive(r.ServerPID) {
		_ = os.Remove(path)
		return Running{}, ErrNotRunning
	}
	if err := ping(ctx, r.Addr); err != nil {
		return r, fmt.Errorf("turf serve (pid %d) runs on this data directory, but its ClickHouse on %s does not answer: %w; "+
			"wait until it has started, or stop it (kill %d) and try again", r.PID, r.Addr, err, r.PID)
	}
	return r, nil
}

// alive reports whether a process with the id exists (signal 0 only checks).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func ping(ctx context.Context, addr string) error {
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: 2 * time.Second})
	if err != nil {
		return err
	}
	defer conn.Close()
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return conn.Ping(pctx)
}
