// Command dashboard measures how long the 30-day dashboard takes to render
// in a real browser over a site with many events, and prints the figure.
//
// It fills a database with the synthetic traffic generator (once: a second
// run with the same -events reuses it), serves turf's query API and
// dashboard, logs in with headless Chromium and loads /?period=30d several
// times. The figure is the Performance API's time from navigation start to
// the mark the dashboard sets when every tile, the chart and every panel are
// drawn.
//
//	go run ./bench/dashboard -events 10000000
//	go run ./bench/dashboard -events 200000 -serve   # keep serving, to look
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/valyala/fasthttp"

	"turf/internal/chserver"
	"turf/query"
	"turf/query/dashboard"
	"turf/query/rollup"
	"turf/query/synth"
	"turf/schema"
)

const (
	site     = "example.com"
	user     = "bench"
	password = "bench password 1"
)

func main() {
	dsn := flag.String("clickhouse", os.Getenv("TURF_TEST_CLICKHOUSE"), "ClickHouse host:port (native protocol); empty: start a managed one under -data-dir")
	dataDir := flag.String("data-dir", "/tmp/turf-bench-dashboard", "where the managed ClickHouse keeps its data between runs")
	events := flag.Int("events", 10_000_000, "events of the site in the 30 days the dashboard shows")
	runs := flag.Int("runs", 5, "measured page loads (after one warm-up)")
	serve := flag.Bool("serve", false, "after measuring, keep serving until interrupted")
	listen := flag.String("listen", "127.0.0.1:0", "address for the dashboard")
	probe := flag.Bool("probe", false, "also time each of the dashboard's queries alone, one after the other")
	flag.Parse()
	if err := run(*dsn, *dataDir, *events, *runs, *serve, *probe, *listen); err != nil {
		log.Fatal(err)
	}
}

func run(addr, dataDir string, events, runs int, serve, probe bool, listen string) error {
	// Interrupted, the managed ClickHouse is still stopped.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if addr == "" {
		srv, err := chserver.Start(ctx, dataDir)
		if err != nil {
			return err
		}
		defer srv.Stop()
		addr = srv.Addr()
	}
	db := fmt.Sprintf("bench_dashboard_%d", events)
	conn, db, err := schema.Open("clickhouse://" + addr + "/" + db)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := schema.Migrate(ctx, conn, schema.Options{DB: db}, log.Printf); err != nil {
		return err
	}
	now := time.Now()
	have, err := fill(ctx, conn, db, events, now)
	if err != nil {
		return err
	}
	// What turf serve's rollup job does every few minutes: copy the finished
	// days into the tables the dashboard's queries read; today stays raw.
	api, err := query.New(query.Config{Sites: map[string]query.SiteConfig{site: {Timezone: "Europe/Amsterdam"}}}, conn, db)
	if err != nil {
		return err
	}
	t0 := time.Now()
	job := rollup.New(conn, db, time.Now, log.Printf)
	job.Zone = api.Engine().Zone
	built, err := job.Pass(ctx, time.Unix(0, 0))
	if err != nil {
		return err
	}
	log.Printf("rollup job: %d site-days built in %s", built, time.Since(t0).Round(time.Millisecond))
	d, err := dashboard.New(dashboard.Config{Sites: []string{site}}, conn, db, api.Engine())
	if err != nil {
		return err
	}
	if err := dashboard.AddUser(ctx, conn, db, user, password, nil); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	hs := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		if !d.Handle(c) && !api.Handler(c) {
			c.Error("not found", fasthttp.StatusNotFound)
		}
	}}
	go hs.Serve(ln)
	url := "http://" + ln.Addr().String()
	log.Printf("dashboard at %s (user %q, password %q)", url, user, password)
	times, calls, err := measure(url, runs)
	if err != nil {
		return err
	}
	if probe {
		if err := probeQueries(ctx, api.Engine(), calls); err != nil {
			return err
		}
	}
	slices.Sort(times)
	fmt.Printf("dashboard 30d, %d events in the range: rendered in median %.0f ms (min %.0f, max %.0f, %d runs)\n",
		have, times[len(times)/2], times[0], times[len(times)-1], len(times))
	if serve {
		log.Printf("serving at %s until interrupted", url)
		<-ctx.Done()
	}
	return nil
}

// fill generates events day by day so that memory stays bounded, unless the
// database already holds them.
func fill(ctx context.Context, conn driver.Conn, db string, events int, now time.Time) (uint64, error) {
	var have uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+schema.Table(db, schema.Events)).Scan(&have); err != nil {
		return 0, err
	}
	if have > 0 && math.Abs(float64(have)-float64(events))/float64(events) < 0.1 {
		log.Printf("reusing %d events in %s (they are %d days old at most)", have, db, 30)
		return have, nil
	}
	if have > 0 {
		if err := conn.Exec(ctx, "TRUNCATE TABLE "+schema.Table(db, schema.Events)); err != nil {
			return 0, err
		}
	}
	// About 3.1 events per visit.
	perDay := int(float64(events) / 30 / 3.1)
	start := time.Now()
	total := 0
	today := now.UTC().Truncate(24 * time.Hour)
	for day := -29; day <= 0; day++ {
		vs := synth.Generate(synth.Config{Seed: uint64(day + 100), Sites: []string{site}, Start: today.AddDate(0, 0, day), Days: 1,
			Persons: max(100, perDay/2), VisitsPerDay: perDay})
		evs := synth.Events(vs)
		if err := synth.Insert(ctx, conn, db, evs); err != nil {
			return 0, err
		}
		total += len(evs)
	}
	log.Printf("inserted %d events in %s", total, time.Since(start).Round(time.Second))
	return uint64(total), nil
}

// recordCalls wraps fetch in the page so that every Stats API call is kept
// with its body and duration (window.__turfCalls): the slowest are logged,
// and -probe replays exactly the queries one load made.
const recordCalls = `(() => {
  const calls = window.__turfCalls = [];
  const orig = window.fetch;
  window.fetch = async function (url, opts) {
    const t0 = performance.now();
    try { return await orig.apply(this, arguments); }
    finally { if (String(url).includes('/api/')) calls.push({ body: (opts && opts.body) || String(url), ms: performance.now() - t0 }); }
  };
})()`

type call struct {
	Body string  `json:"body"`
	MS   float64 `json:"ms"`
}

// measure logs in and loads the 30-day dashboard runs+1 times, returning the
// render times of all but the first, and the API calls of the last load.
func measure(url string, runs int) ([]float64, []call, error) {
	path, err := exec.LookPath("chromium")
	if err != nil {
		return nil, nil, fmt.Errorf("no chromium (apt-get install chromium): %w", err)
	}
	dir, err := os.MkdirTemp("", "turf-bench-chromium-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.UserDataDir(dir), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-sync", true), chromedp.WindowSize(1280, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 10*time.Minute)
	defer cancelT()
	if err := chromedp.Do(ctx,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: recordCalls})
			return err
		}),
		chromedp.Navigate(url+"/login"),
		chromedp.SendKeys("input[name=username]", user),
		chromedp.SendKeys("input[name=password]", password),
		chromedp.Click("button[type=submit]"),
		chromedp.WaitVisible(".tile"),
	); err != nil {
		return nil, nil, fmt.Errorf("log-in: %w", err)
	}
	var out []float64
	var calls []call
	for i := 0; i <= runs; i++ {
		if err := chromedp.Do(ctx, chromedp.Navigate(url+"/?period=30d")); err != nil {
			return nil, nil, err
		}
		ms, err := chromedp.Run(ctx, chromedp.Poll[float64](`(() => { const m = performance.getEntriesByName('turf:rendered'); return m.length ? m[0].startTime : 0; })()`, chromedp.WithPollingTimeout(5*time.Minute)))
		if err != nil {
			return nil, nil, err
		}
		calls, err = chromedp.Run(ctx, chromedp.Evaluate[[]call](`window.__turfCalls || []`))
		if err != nil {
			return nil, nil, err
		}
		slow := slices.Clone(calls)
		slices.SortFunc(slow, func(a, b call) int { return cmp.Compare(b.MS, a.MS) })
		log.Printf("load %d: rendered at %.0f ms, %d API calls; slowest:", i, ms, len(calls))
		for _, c := range slow[:min(3, len(slow))] {
			log.Printf("    %5.0f ms  %s", c.MS, c.Body)
		}
		if i > 0 {
			out = append(out, ms)
		}
	}
	return out, calls, nil
}

// probeQueries times each query of one dashboard load alone, one after
// the other, straight through the engine (no HTTP, no browser).
func probeQueries(ctx context.Context, e *query.Engine, calls []call) error {
	for _, c := range calls {
		if !strings.HasPrefix(c.Body, "{") {
			continue // not a Stats API query (e.g. a GET of the site list)
		}
		q, err := query.ParseRequest([]byte(c.Body))
		if err != nil {
			return fmt.Errorf("%s: %w", c.Body, err)
		}
		start := time.Now()
		if _, err := e.Run(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", c.Body, err)
		}
		log.Printf("%6.0f ms  %s", float64(time.Since(start).Microseconds())/1000, c.Body)
	}
	return nil
}
