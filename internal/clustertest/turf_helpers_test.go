// Helpers of TestShardedCluster: turf in process and as a real `turf serve`
// process, asking its API, and counting rows per node.
package clustertest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/collector"
	"turf/collector/sink"
	"turf/internal/app"
	"turf/internal/chserver"
	"turf/internal/clustertest"
)

func startTurf(t *testing.T, conn driver.Conn) string {
	t.Helper()
	a, err := app.Start(context.Background(), app.Config{
		Listen:          "127.0.0.1:0",
		Collector:       collector.Config{Sites: sites, IPv4Prefix: 24, IPv6Prefix: 48, TestMode: true},
		Sink:            sink.Config{Dir: t.TempDir(), SyncInterval: 50 * time.Millisecond, BatchSize: 25, FlushInterval: 50 * time.Millisecond, QueueSize: 10000, InsertTimeout: 10 * time.Second},
		SaltGrace:       15 * time.Minute,
		ShutdownTimeout: 10 * time.Second,
		Logf:            t.Logf,
	}, conn, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown() })
	base := "http://" + a.Addr()
	flushers.Store(base, a)
	return base
}

var flushers sync.Map

func flush(t *testing.T, base string) {
	t.Helper()
	a, _ := flushers.Load(base)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.(*app.App).Flush(ctx); err != nil {
		t.Fatalf("flush %s: %v", base, err)
	}
}

// totals asks the Stats API for the site's visitors, visits and page views.
func totals(t *testing.T, base, key, site string) [3]float64 {
	t.Helper()
	return totalsWith(t, base, "Authorization", "Bearer "+key, site)
}

// totalsWith asks with one header: a key, or a share token (X-Turf-Share)
// as the dashboard of a share link does.
func totalsWith(t *testing.T, base, header, value, site string) [3]float64 {
	t.Helper()
	return ask(t, base, header, value, fmt.Sprintf(`{"site_id":%q,"metrics":["visitors","visits","pageviews"],"date_range":"7d"}`, site))
}

func totalsRange(t *testing.T, base, key, site, from, to string) [3]float64 {
	t.Helper()
	return ask(t, base, "Authorization", "Bearer "+key, fmt.Sprintf(`{"site_id":%q,"metrics":["visitors","visits","pageviews"],"date_range":[%q,%q]}`, site, from, to))
}

func ask(t *testing.T, base, header, value, body string) [3]float64 {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/v2/query", strings.NewReader(body))
	req.Header.Set(header, value)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Results []struct {
			Metrics []float64 `json:"metrics"`
		} `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || len(out.Results) != 1 || len(out.Results[0].Metrics) != 3 {
		t.Fatalf("%s query %s: %d %v %+v", base, body, resp.StatusCode, err, out)
	}
	m := out.Results[0].Metrics
	return [3]float64{m[0], m[1], m[2]}
}

func login(t *testing.T, base, user, pass string) bool {
	t.Helper()
	form := url.Values{"username": {user}, "password": {pass}, "next": {"/"}}.Encode()
	req, _ := http.NewRequest("POST", base+"/login", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == 303 && len(resp.Cookies()) > 0 && !strings.Contains(resp.Header.Get("Location"), "login")
}

func get(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// insertOld writes rows of both sites in two past months through the
// Distributed table, as a replayed spool would.
func insertOld(t *testing.T, ctx context.Context, conn driver.Conn, table string, days []time.Time) {
	t.Helper()
	// Synchronous, as the sink inserts: every shard has its rows on return.
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_distributed_sync": 1}))
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" (site, ts, name, visitor_id, pathname, props_keys, props_values, interactive, batch_id)")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range days {
		for _, site := range sites {
			for v := range 20 {
				if err := b.Append(site, d, "pageview", uint64(v), "/old", []string{}, []string{}, uint8(1), "old"); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// perSite counts each node's local events by site and month.
func perSite(t *testing.T, ctx context.Context, conns []driver.Conn, c *clustertest.Cluster) []map[string]uint64 {
	t.Helper()
	out := make([]map[string]uint64, len(conns))
	for i, conn := range conns {
		out[i] = map[string]uint64{}
		if c.Nodes[i] == nil {
			continue
		}
		rows, err := conn.Query(ctx, "SELECT site, toString(toYYYYMM(ts)), count() FROM turf.events_local GROUP BY site, toYYYYMM(ts)")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var site, month string
			var n uint64
			if err := rows.Scan(&site, &month, &n); err != nil {
				t.Fatal(err)
			}
			out[i][site+"/"+month] = n
		}
		rows.Close()
	}
	return out
}

func syncReplica(t *testing.T, ctx context.Context, conn driver.Conn, name string) {
	t.Helper()
	if err := conn.Exec(ctx, "SYSTEM SYNC REPLICA turf.events_local"); err != nil {
		t.Fatalf("%s: sync replica: %v", name, err)
	}
}

func waitNoMutations(t *testing.T, ctx context.Context, conns []driver.Conn, c *clustertest.Cluster) {
	t.Helper()
	for i, conn := range conns {
		if c.Nodes[i] == nil {
			continue
		}
		clustertest.WaitCount(t, ctx, conn, "SELECT count() FROM system.mutations WHERE database = 'turf' AND is_done = 0", 0)
		syncReplica(t, ctx, conn, c.NodeName(i))
	}
}

// buildTurf builds the turf binary for the collector that is killed.
func buildTurf(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "turf")
	cmd := exec.Command("go", "build", "-o", out, "turf/cmd/turf")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build turf: %v\n%s", err, b)
	}
	return out
}

type serveProc struct {
	url, dataDir string
	port         int
	cmd          *exec.Cmd
	done         chan struct{}
}

// startServe runs `turf serve` on a node of the cluster and waits until it
// answers /healthz; port 0 picks a free one.
func startServe(t *testing.T, bin, addr, cluster, dataDir string, port int) *serveProc {
	t.Helper()
	if port == 0 {
		var err error
		if port, err = chserver.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	p := &serveProc{url: fmt.Sprintf("http://127.0.0.1:%d", port), dataDir: dataDir, port: port, done: make(chan struct{})}
	logf, err := os.OpenFile(filepath.Join(dataDir, "serve.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "serve", "--clickhouse", "clickhouse://"+addr+"/"+db, "--clickhouse-cluster", cluster,
		"--clickhouse-ddl-timeout", "10s", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--site", strings.Join(sites, ","),
		"--test-mode", "--data-dir", dataDir, "--batch-size", "25", "--flush-interval", "50ms", "--retention-interval", "0")
	p.cmd.Env = append(os.Environ(), "TURF_CLICKHOUSE=", "TURF_CLICKHOUSE_CLUSTER=")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dataDir, "serve.log"))
			t.Logf("turf serve log (%s):\n%s", dataDir, b)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			b, _ := os.ReadFile(filepath.Join(dataDir, "serve.log"))
			t.Fatalf("turf serve exited during start-up:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("turf serve did not answer /healthz within 60s (last: %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill ends the process with SIGKILL and waits until it is gone.
func (p *serveProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
}
