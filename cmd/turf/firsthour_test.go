package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"turf/internal/chserver"
)

// runAsTurf makes the test binary behave as the turf command (TestMain), so
// the test runs the real command lines without building another binary.
const runAsTurf = "TURF_TEST_RUN_AS_TURF"

// turfCmd is the turf command line args, run from this test binary.
func turfCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runAsTurf+"=1")
	return cmd
}

// TestFirstHour runs `turf serve` on its managed ClickHouse as a user would,
// takes the setup link it prints, then runs `turf user add` on the same data
// directory while serve runs: the command must use serve's ClickHouse (not
// start a second one, which ClickHouse refuses) and make an account that
// logs in. The setup link is dead once an account exists, and a second
// serve on the same data directory says what to do.
func TestFirstHour(t *testing.T) {
	if _, err := chserver.FindBinary(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dataDir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	base := "http://" + addr

	serve := turfCmd("serve", "--data-dir", dataDir, "--listen", addr, "--site", "example.com", "--retention-interval", "0")
	stdout, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var serveLog bytes.Buffer
	serve.Stderr = &serveLog
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = serve.Process.Signal(syscall.SIGTERM)
		if err := serve.Wait(); err != nil {
			t.Errorf("turf serve: %v\n%s", err, serveLog.String())
		}
	}
	defer stop()

	// The banner's one line about the first account.
	setupRe := regexp.MustCompile(`first account: open http://localhost:\d+(/setup/[A-Za-z0-9_-]+) to make the admin account`)
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var setupPath string
	deadline := time.After(2 * time.Minute)
	for setupPath == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("turf serve ended before its banner:\n%s", serveLog.String())
			}
			if m := setupRe.FindStringSubmatch(line); m != nil {
				setupPath = m[1]
			}
		case <-deadline:
			t.Fatalf("no setup link in the banner within 2 minutes:\n%s", serveLog.String())
		}
	}
	go func() {
		for range lines {
		}
	}()

	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, cookie string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(setupPath, ""); code != http.StatusOK || !strings.Contains(body, `name="password"`) {
		t.Fatalf("setup link: %d %s", code, body)
	}
	if code, _ := get("/setup/not-the-token", ""); code != http.StatusNotFound {
		t.Errorf("a made-up setup link: %d, want 404", code)
	}

	// A second serve on the same data directory says what to do.
	var second bytes.Buffer
	again := turfCmd("serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--site", "example.com")
	again.Stdout, again.Stderr = &second, &second
	if err := again.Run(); err == nil || !strings.Contains(second.String(), "turf serve is already running on --data-dir") || !strings.Contains(second.String(), "stop it first") {
		t.Errorf("second serve: %v\n%s", err, second.String())
	}

	// turf user add, while serve runs, on the same --data-dir.
	var out bytes.Buffer
	add := turfCmd("user", "add", "--name", "alice", "--password-stdin", "--data-dir", dataDir)
	add.Stdin = strings.NewReader("correct horse battery\n")
	add.Stdout, add.Stderr = &out, &out
	if err := add.Run(); err != nil {
		t.Fatalf("turf user add: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "using the ClickHouse of the turf serve running on --data-dir") || !strings.Contains(out.String(), "user alice (admin) may now log in") {
		t.Errorf("turf user add said:\n%s", out.String())
	}
	out.Reset()
	list := turfCmd("user", "list", "--data-dir", dataDir)
	list.Stdout, list.Stderr = &out, &out
	if err := list.Run(); err != nil || !regexp.MustCompile(`(?m)^alice\s+admin\s+\(all\)`).MatchString(out.String()) {
		t.Errorf("turf user list: %v\n%s", err, out.String())
	}

	// The account logs in to the running serve.
	form := url.Values{"username": {"alice"}, "password": {"correct horse battery"}, "next": {"/"}}
	req, _ := http.NewRequest("POST", base+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == "turf_session" && c.Value != "" {
			cookie = c.Name + "=" + c.Value
		}
	}
	if resp.StatusCode != http.StatusSeeOther || cookie == "" {
		t.Fatalf("log-in: %d, cookie %q", resp.StatusCode, cookie)
	}
	if code, body := get("/", cookie); code != http.StatusOK || !strings.Contains(body, `"user":"alice"`) || !strings.Contains(body, `"admin":true`) {
		t.Errorf("dashboard after log-in: %d %s", code, body)
	}
	if code, _ := get("/settings", cookie); code != http.StatusOK {
		t.Errorf("settings page for the admin: %d", code)
	}
	// An account exists: the setup link is dead.
	if code, _ := get(setupPath, ""); code != http.StatusNotFound {
		t.Errorf("setup link after the first account: %d, want 404", code)
	}

	// The record of the running server goes with serve.
	record := filepath.Join(dataDir, "clickhouse", "turf-serve.json")
	if _, err := os.Stat(record); err != nil {
		t.Errorf("no record of the running ClickHouse: %v", err)
	}
	stop()
	if _, err := os.Stat(record); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record left behind after serve stopped: %v", err)
	}
	if _, err := chserver.FindRunning(context.Background(), filepath.Join(dataDir, "clickhouse")); !errors.Is(err, chserver.ErrNotRunning) {
		t.Errorf("FindRunning after stop: %v", err)
	}
}
