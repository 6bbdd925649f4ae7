package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"turf/internal/chtest"
	"turf/schema"
)

// TestLinkCreateAgainstServe runs the turf binary twice, as an operator
// would: `turf serve` in one process, `turf link create` and `turf link
// pixel` in others, on one ClickHouse. The key `turf serve` made at start
// signs the CLI's links; following them gets the 302 with the UTM
// parameters and the GIF, and the events land as human and machine.
func TestLinkCreateAgainstServe(t *testing.T) {
	db := chtest.New(t)
	// The events are written by the turf serve process, which the modern
	// leg does not see; statements still run on 26.x, unanswered.
	db.WrittenElsewhere()
	bin := filepath.Join(t.TempDir(), "turf")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	public := "http://" + addr
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	serve := exec.CommandContext(ctx, bin, "serve", "--clickhouse", db.DSN, "--listen", addr, "--site", "example.com",
		"--data-dir", t.TempDir(), "--flush-interval", "100ms", "--public-url", public)
	serve.Env = cleanEnv()
	logPath := filepath.Join(t.TempDir(), "serve.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	serve.Stdout, serve.Stderr = logFile, logFile
	readLog := func() []byte { b, _ := os.ReadFile(logPath); return b }
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	pid := serve.Process.Pid
	t.Cleanup(func() {
		// Only the process this test started, by its PID: SIGTERM, then the
		// final flush it does on the way out.
		_ = serve.Process.Signal(os.Interrupt)
		_ = serve.Wait()
		if t.Failed() {
			t.Logf("turf serve (pid %d) said:\n%s", pid, readLog())
		}
	})
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := client.Get(public + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("turf serve did not come up on %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	cli := func(args ...string) (string, string) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"link"}, append(args, "--clickhouse", db.DSN, "--public-url", public)...)...)
		cmd.Env = cleanEnv()
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("turf link %v: %v\n%s", args, err, errb.String())
		}
		return strings.TrimSpace(out.String()), errb.String()
	}
	link, warn := cli("create", "--site", "example.com", "--campaign", "nieuwsbrief-2026-12", "--url", "https://example.com/huren?uid=4711&wijk=noord")
	pixel, _ := cli("pixel", "--site", "example.com", "--campaign", "nieuwsbrief-2026-12")
	if !strings.HasPrefix(link, public+"/l/") || !strings.HasPrefix(pixel, public+"/o/") || !strings.Contains(warn, "uid") {
		t.Fatalf("link %q, pixel %q, warning %q", link, pixel, warn)
	}

	get := func(method, u, ua string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, u, nil)
		req.Header.Set("User-Agent", ua)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	want := "https://example.com/huren?wijk=noord&utm_source=newsletter&utm_medium=email&utm_campaign=nieuwsbrief-2026-12"
	for _, c := range []struct{ method, ua string }{{"GET", chromeUA}, {"GET", ppUA}} {
		if r := get(c.method, link, c.ua); r.StatusCode != http.StatusFound || r.Header.Get("Location") != want {
			t.Errorf("%s as %q: %d, Location %q; want 302 %q", c.method, c.ua, r.StatusCode, r.Header.Get("Location"), want)
		}
	}
	for _, ua := range []string{appleUA, chromeUA} {
		if r := get("GET", pixel, ua); r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "image/gif" {
			t.Errorf("pixel as %q: %d %s", ua, r.StatusCode, r.Header.Get("Content-Type"))
		}
	}
	if r := get("GET", link[:len(link)-2]+flip(link[len(link)-2:]), chromeUA); r.StatusCode != http.StatusNotFound || r.Header.Get("Location") != "" {
		t.Errorf("tampered link: %d %q", r.StatusCode, r.Header.Get("Location"))
	}

	// The events, once the serve process has flushed them.
	q := fmt.Sprintf(`SELECT name, if(has(props_keys, 'machine'), props_values[indexOf(props_keys, 'machine')], 'person'), pathname, utm_campaign
FROM %s WHERE site = 'example.com'`, schema.Table(db.Name, schema.Events))
	var got []string
	for deadline := time.Now().Add(30 * time.Second); ; {
		got = got[:0]
		rows, err := db.Conn.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name, who, path, camp string
			if err := rows.Scan(&name, &who, &path, &camp); err != nil {
				t.Fatal(err)
			}
			got = append(got, strings.Join([]string{name, who, path, camp}, " "))
		}
		rows.Close()
		if len(got) >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	slices.Sort(got)
	wantRows := []string{
		"Newsletter Click person /huren nieuwsbrief-2026-12",
		"Newsletter Click proofpoint /huren nieuwsbrief-2026-12",
		"Newsletter Open apple-mpp /o/ nieuwsbrief-2026-12",
		"Newsletter Open person /o/ nieuwsbrief-2026-12",
	}
	if strings.Join(got, "\n") != strings.Join(wantRows, "\n") {
		t.Errorf("stored events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantRows, "\n"))
	}
	// The serve process logged no key trouble.
	sc := bufio.NewScanner(bytes.NewReader(readLog()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "link key") {
			t.Errorf("turf serve: %s", sc.Text())
		}
	}
}

// cleanEnv is the environment without TURF_* settings of the caller, which
// would change the processes' flags.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TURF_") {
			out = append(out, kv)
		}
	}
	return out
}
