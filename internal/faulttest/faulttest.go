// Package faulttest proves turf's storage promise under faults: every event
// answered 202 is stored exactly once. It drives a steady load of distinct,
// numbered events at a real turf process (the built binary, so it can be
// killed with SIGKILL) in front of a real ClickHouse, while it
//
//  1. stops ClickHouse for a while and starts it again,
//  2. makes ClickHouse slow (answers delayed past --insert-timeout, so
//     inserts time out on the client after the server has taken them),
//  3. kill -9s turf while it flushes (and once SIGTERMs it) and restarts it,
//  4. fills the spool to its limit with ClickHouse down,
//
// and then counts, in ClickHouse, the distinct event numbers and the rows.
// The short form runs in CI (fault_test.go); bench/faults runs the long one.
package faulttest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"turf/internal/chserver"
	"turf/schema"
)

// Config sizes a run.
type Config struct {
	Dir           string        // scratch directory: binary, ClickHouse, spool, logs
	Rate          int           // events per second offered
	Warmup        time.Duration // plain load before the first fault
	Outage        time.Duration // (1) ClickHouse stopped this long
	Slow          time.Duration // (2) ClickHouse answers late for this long
	SlowDelay     time.Duration // how late; above InsertTimeout
	InsertTimeout time.Duration // turf's --insert-timeout
	Kills         int           // (3) kill -9s of turf mid-flush
	FillFor       time.Duration // (4) keep loading this long after the spool first refuses
	SpoolMaxBytes int64         // turf's --spool-max-bytes during (4)
	FsyncInterval time.Duration // turf's --spool-fsync-interval
	Logf          func(string, ...any)
}

// Short is the CI form: well under 90 s.
func Short(dir string) Config {
	return Config{Dir: dir, Rate: 1500, Warmup: 2 * time.Second, Outage: 5 * time.Second, Slow: 4 * time.Second,
		SlowDelay: 1500 * time.Millisecond, InsertTimeout: time.Second, Kills: 3, FillFor: 2 * time.Second,
		SpoolMaxBytes: 1 << 20, FsyncInterval: 200 * time.Millisecond}
}

// Report is what a run found.
type Report struct {
	Sent, Accepted, Refused, InDoubt      int64
	Stored, StoredInDoubt, Rows           uint64
	Duplicates, Lost, StoredButRefused    uint64
	PeakRSSKiB, PeakSpoolBytes            int64
	SpoolFullRefusals, Kills, Restarts    int
	Elapsed                               time.Duration
	TurfLog                               string
	MaxLatency                            time.Duration
	RefusedSpoolFull, RefusedNoConnection int64
	RefusedOther                          int64 // neither 202 nor 503 with Retry-After: must stay 0

	// Recovery paths taken, summed over turf processes (lower bounds).
	InsertErrors, AlreadyStored, Replayed int64
}

// OK is the pass condition of the issue.
func (r *Report) OK() bool {
	return r.Stored == uint64(r.Accepted) && r.Duplicates == 0 && r.Lost == 0 && r.StoredButRefused == 0 && r.RefusedOther == 0
}

func (r *Report) String() string {
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL"
	}
	return fmt.Sprintf(`%s after %s
  sent        %d events (numbered)
  accepted    %d (202)
  refused     %d (%d with 503 while the spool was full or turf stopping, %d could not connect: turf was down, %d other answers)
  in doubt    %d (connection cut by kill -9 before an answer; %d of them stored, allowed either way)
  stored      %d of the accepted, in %d rows
  duplicates  %d
  lost        %d
  stored although refused: %d
  kills %d, ClickHouse restarts %d; peak turf RSS %.1f MiB, peak spool %.2f MiB, slowest 202 %s
  turf saw at least: %d failed insert attempts, %d events found already stored after an unknown outcome, %d events replayed after a restart`,
		verdict, r.Elapsed.Round(time.Second), r.Sent, r.Accepted, r.Refused, r.RefusedSpoolFull, r.RefusedNoConnection, r.RefusedOther,
		r.InDoubt, r.StoredInDoubt, r.Stored, r.Rows, r.Duplicates, r.Lost, r.StoredButRefused,
		r.Kills, r.Restarts, float64(r.PeakRSSKiB)/1024, float64(r.PeakSpoolBytes)/(1<<20), r.MaxLatency.Round(time.Millisecond),
		r.InsertErrors, r.AlreadyStored, r.Replayed)
}

// Run builds turf, starts ClickHouse and turf, and runs the faults.
func Run(ctx context.Context, c Config) (*Report, error) {
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	h := &harness{c: c, rep: &Report{}, outcome: map[int64]byte{}}
	start := time.Now()
	defer h.cleanup()
	if err := h.setup(ctx); err != nil {
		return nil, err
	}
	if err := h.faults(ctx); err != nil {
		return h.rep, err
	}
	h.rep.Elapsed = time.Since(start)
	return h.rep, h.count(ctx)
}

type harness struct {
	c   Config
	rep *Report

	bin, dataDir, logPath string
	ch                    *chserver.Server
	chDir                 string
	chPort                int
	proxy                 *proxy
	listen                string
	spoolMax              int64

	turfMu sync.Mutex
	turf   *exec.Cmd
	exited chan struct{}

	mu      sync.Mutex
	outcome map[int64]byte // event number -> 'a'ccepted, 'r'efused, 'd'oubt

	next       atomic.Int64
	stopLoad   chan struct{}
	loadDone   sync.WaitGroup
	samplerEnd chan struct{}
}

const db = "faults"

func (h *harness) setup(ctx context.Context) error {
	h.bin = filepath.Join(h.c.Dir, "turf")
	h.dataDir = filepath.Join(h.c.Dir, "turf-data")
	h.logPath = filepath.Join(h.c.Dir, "turf.log")
	h.rep.TurfLog = h.logPath
	h.c.Logf("building turf")
	if err := buildTurf(ctx, h.bin); err != nil {
		return err
	}
	h.chDir = filepath.Join(h.c.Dir, "clickhouse")
	var err error
	if h.ch, err = chserver.Start(ctx, h.chDir); err != nil {
		return err
	}
	h.chPort = h.ch.Port
	if h.proxy, err = newProxy(h.ch.Addr()); err != nil {
		return err
	}
	port, err := chserver.FreePort()
	if err != nil {
		return err
	}
	h.listen = "127.0.0.1:" + strconv.Itoa(port)
	h.spoolMax = 256 << 20
	if err := h.startTurf(ctx); err != nil {
		return err
	}
	h.stopLoad, h.samplerEnd = make(chan struct{}), make(chan struct{})
	go h.sample()
	h.startLoad()
	return nil
}

func (h *harness) cleanup() {
	if h.stopLoad != nil {
		select {
		case <-h.stopLoad:
		default:
			close(h.stopLoad)
		}
		h.loadDone.Wait()
	}
	if h.samplerEnd != nil {
		select {
		case <-h.samplerEnd:
		default:
			close(h.samplerEnd)
		}
	}
	h.turfMu.Lock()
	if h.turf != nil {
		_ = h.turf.Process.Kill()
		<-h.exited
	}
	h.turfMu.Unlock()
	if h.proxy != nil {
		h.proxy.close()
	}
	if h.ch != nil {
		_ = h.ch.Stop()
	}
}

func (h *harness) faults(ctx context.Context) error {
	c := h.c
	sleep(c.Warmup)

	c.Logf("(1) ClickHouse stopped for %s", c.Outage)
	if err := h.ch.Stop(); err != nil {
		return err
	}
	sleep(c.Outage)
	if err := h.restartClickHouse(ctx); err != nil {
		return err
	}
	if err := h.waitDrained(ctx, 60*time.Second); err != nil {
		return fmt.Errorf("after the outage: %w", err)
	}

	c.Logf("(2) ClickHouse answers %s late for %s (insert timeout %s)", c.SlowDelay, c.Slow, c.InsertTimeout)
	h.proxy.setDelay(c.SlowDelay)
	sleep(c.Slow)
	h.proxy.setDelay(0)
	if err := h.waitDrained(ctx, 60*time.Second); err != nil {
		return fmt.Errorf("after the slow phase: %w", err)
	}

	c.Logf("(3) %d kill -9s of turf while it flushes, then one SIGTERM", c.Kills)
	for i := range c.Kills {
		// Slow answers keep an insert in flight most of the time, so the
		// kill lands mid-flush; some kills catch a timed-out insert that
		// the server is still finishing.
		h.proxy.setDelay(time.Duration(rand.Int64N(int64(c.InsertTimeout))))
		sleep(time.Duration(300+rand.IntN(900)) * time.Millisecond)
		if err := h.killTurf(syscall.SIGKILL); err != nil {
			return err
		}
		h.rep.Kills++
		h.proxy.setDelay(0)
		if i%2 == 1 {
			sleep(500 * time.Millisecond) // let the clients see it down
		}
		if err := h.startTurf(ctx); err != nil {
			return err
		}
	}
	sleep(time.Second)
	if err := h.killTurf(syscall.SIGTERM); err != nil {
		return err
	}

	c.Logf("(4) spool limited to %d bytes, ClickHouse stopped until the spool has refused for %s", c.SpoolMaxBytes, c.FillFor)
	h.spoolMax = c.SpoolMaxBytes
	if err := h.startTurf(ctx); err != nil {
		return err
	}
	if err := h.ch.Stop(); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for n, _ := h.metric("turf_spool_refused_total"); n == 0; n, _ = h.metric("turf_spool_refused_total") {
		if time.Now().After(deadline) {
			return errors.New("the spool never filled up")
		}
		sleep(100 * time.Millisecond)
	}
	sleep(c.FillFor)
	if err := h.restartClickHouse(ctx); err != nil {
		return err
	}
	sleep(c.Warmup)

	c.Logf("stopping the load; waiting for the spool to drain")
	close(h.stopLoad)
	h.loadDone.Wait()
	if err := h.waitDrained(ctx, 2*time.Minute); err != nil {
		return err
	}
	if err := h.killTurf(syscall.SIGTERM); err != nil {
		return err
	}
	close(h.samplerEnd)
	return nil
}

func sleep(d time.Duration) { time.Sleep(d) }

func (h *harness) restartClickHouse(ctx context.Context) error {
	var err error
	h.ch, err = chserver.StartWithConfig(ctx, h.chDir, chserver.Config{Port: h.chPort})
	if err != nil {
		return fmt.Errorf("cannot restart ClickHouse: %w", err)
	}
	h.rep.Restarts++
	return nil
}

func buildTurf(ctx context.Context, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "./cmd/turf")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, b)
	}
	return nil
}

func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot find the source tree")
	}
	return filepath.Join(filepath.Dir(file), "..", ".."), nil
}

func (h *harness) startTurf(ctx context.Context) error {
	logf, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "==== start at %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(h.bin, "serve",
		"--clickhouse", "clickhouse://"+h.proxy.addr()+"/"+db,
		"--data-dir", h.dataDir, "--listen", h.listen, "--metrics-token", "faulttest", "--site", "example.com", "--trusted-proxy", "127.0.0.1",
		"--test-mode", "--batch-size", "500", "--flush-interval", "200ms",
		"--insert-timeout", h.c.InsertTimeout.String(), "--shutdown-timeout", "5s",
		"--spool-max-bytes", strconv.FormatInt(h.spoolMax, 10), "--spool-fsync-interval", h.c.FsyncInterval.String())
	cmd.Stdout, cmd.Stderr = logf, logf
	// Never outlive the harness.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("cannot start turf: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	h.turfMu.Lock()
	h.turf, h.exited = cmd, exited
	h.turfMu.Unlock()
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("turf exited during start-up; see %s", h.logPath)
		default:
		}
		if resp, err := http.Get("http://" + h.listen + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("turf did not become healthy; see %s", h.logPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (h *harness) killTurf(sig syscall.Signal) error {
	h.turfMu.Lock()
	defer h.turfMu.Unlock()
	h.noteRSS()
	h.scrapeTotals()
	if err := h.turf.Process.Signal(sig); err != nil {
		return err
	}
	select {
	case <-h.exited:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("turf did not exit on %s", sig)
	}
	h.turf = nil
	return nil
}

// scrapeTotals adds the counters of the turf about to be stopped to the
// report: they show which recovery paths the faults exercised. What the
// process counts after the scrape is missed, so these are lower bounds.
func (h *harness) scrapeTotals() {
	for name, dst := range map[string]*int64{
		"turf_insert_errors_total":         &h.rep.InsertErrors,
		"turf_events_already_stored_total": &h.rep.AlreadyStored,
		"turf_events_replayed_total":       &h.rep.Replayed,
	} {
		if v, err := h.metric(name); err == nil {
			*dst += int64(v)
		}
	}
}

// noteRSS records the peak resident memory of the running turf (VmHWM).
func (h *harness) noteRSS() {
	if h.turf == nil {
		return
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.turf.Process.Pid))
	if err != nil {
		return
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			h.rep.PeakRSSKiB = max(h.rep.PeakRSSKiB, n)
		}
	}
}

// sample tracks the spool's size on disk (it exists even while turf is down).
func (h *harness) sample() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-h.samplerEnd:
			return
		case <-t.C:
		}
		segs, _ := filepath.Glob(filepath.Join(h.dataDir, "spool", "*.seg"))
		var n int64
		for _, s := range segs {
			if fi, err := os.Stat(s); err == nil {
				n += fi.Size()
			}
		}
		h.mu.Lock()
		h.rep.PeakSpoolBytes = max(h.rep.PeakSpoolBytes, n)
		h.mu.Unlock()
		h.turfMu.Lock()
		h.noteRSS()
		h.turfMu.Unlock()
	}
}

func (h *harness) metric(name string) (float64, error) {
	req, _ := http.NewRequest("GET", "http://"+h.listen+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer faulttest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// waitDrained waits until turf's spool holds nothing ClickHouse lacks.
func (h *harness) waitDrained(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		// With load running the spool is rarely empty; a backlog below two
		// batches means it has caught up.
		if n, err := h.metric("turf_spool_pending_events"); err == nil && n < 1000 {
			if n == 0 || h.loadRunning() {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("turf's spool did not drain within %s; see %s", limit, h.logPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (h *harness) loadRunning() bool {
	select {
	case <-h.stopLoad:
		return false
	default:
		return true
	}
}

// startLoad sends numbered events at the configured rate, each once: a
// tracker does not retry a refused event forever, and this one never does.
func (h *harness) startLoad() {
	const workers = 32
	tickets := make(chan int64, workers)
	h.loadDone.Add(1)
	go func() {
		defer h.loadDone.Done()
		defer close(tickets)
		interval := time.Second / time.Duration(h.c.Rate)
		next := time.Now()
		for {
			next = next.Add(interval)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			select {
			case <-h.stopLoad:
				return
			case tickets <- h.next.Add(1):
			}
		}
	}()
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: workers, DialContext: (&net.Dialer{Timeout: time.Second}).DialContext,
			DisableCompression: true},
	}
	for range workers {
		h.loadDone.Add(1)
		go func() {
			defer h.loadDone.Done()
			for n := range tickets {
				h.send(client, n)
			}
		}()
	}
}

func (h *harness) send(client *http.Client, n int64) {
	body := fmt.Sprintf(`{"name":"pageview","url":"https://example.com/n/%d","domain":"example.com"}`, n)
	req, _ := http.NewRequest("POST", "http://"+h.listen+"/api/event", strings.NewReader(body))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0")
	req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", 1+n%250))
	start := time.Now()
	resp, err := client.Do(req)
	lat := time.Since(start)
	var o byte
	switch {
	case err != nil:
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			o = 'c' // never reached turf
		} else {
			o = 'd' // sent, no answer: turf may have it
		}
	default:
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusAccepted:
			o = 'a'
		case http.StatusServiceUnavailable:
			o = 'r'
			if resp.Header.Get("Retry-After") == "" {
				o = 'x' // a refusal must tell the client when to come back
			}
		default:
			o = 'x'
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.outcome[n] = o
	h.rep.Sent++
	if o == 'a' {
		h.rep.MaxLatency = max(h.rep.MaxLatency, lat)
	}
	switch o {
	case 'a':
		h.rep.Accepted++
	case 'r':
		h.rep.Refused++
		h.rep.RefusedSpoolFull++
	case 'c':
		h.rep.Refused++
		h.rep.RefusedNoConnection++
	case 'x':
		h.rep.Refused++
		h.rep.RefusedOther++
	case 'd':
		h.rep.InDoubt++
	}
}

// count compares what ClickHouse holds with what the clients were told.
func (h *harness) count(ctx context.Context) error {
	conn, _, err := schema.Open("clickhouse://" + h.ch.Addr() + "/" + db)
	if err != nil {
		return err
	}
	defer conn.Close()
	rows, err := conn.Query(ctx, "SELECT toInt64(substring(pathname, 4)) AS n, count() FROM "+schema.Table(db, schema.Events)+" GROUP BY n")
	if err != nil {
		return fmt.Errorf("cannot count the stored events: %w", err)
	}
	defer rows.Close()
	seen := map[int64]bool{}
	for rows.Next() {
		var n int64
		var c uint64
		if err := rows.Scan(&n, &c); err != nil {
			return err
		}
		seen[n] = true
		h.rep.Rows += c
		h.rep.Duplicates += c - 1
		switch h.outcome[n] {
		case 'a':
			h.rep.Stored++
		case 'd':
			h.rep.StoredInDoubt++
		default:
			h.rep.StoredButRefused++
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for n, o := range h.outcome {
		if o == 'a' && !seen[n] {
			h.rep.Lost++
		}
	}
	return nil
}

// proxy sits between turf and ClickHouse and can delay ClickHouse's answers.
type proxy struct {
	ln     net.Listener
	target string
	delay  atomic.Int64
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

func newProxy(target string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	return p, nil
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) setDelay(d time.Duration) { p.delay.Store(int64(d)) }

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *proxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(client)
	}
}

func (p *proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *proxy) handle(client net.Conn) {
	server, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil {
		client.Close()
		return
	}
	p.track(client, true)
	p.track(server, true)
	defer func() {
		client.Close()
		server.Close()
		p.track(client, false)
		p.track(server, false)
	}()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(server, client); done <- struct{}{} }()
	go func() {
		// The answers are held back: the insert is complete on the server
		// while the client is still waiting, the case that tempts a retry
		// into a duplicate.
		buf := make([]byte, 64<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				if d := time.Duration(p.delay.Load()); d > 0 {
					time.Sleep(d)
				}
				if _, werr := client.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}()
	<-done
}
