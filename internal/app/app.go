// Package app wires turf's parts into one running server: ClickHouse, the
// sink, salts, the collector and the HTTP router. `turf serve` and the test
// harness both start turf through it, so tests run what users run.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"turf/collector"
	"turf/collector/geo"
	"turf/collector/newsletter"
	"turf/collector/sink"
	"turf/collector/visitor"
	"turf/query"
	"turf/query/dashboard"
	"turf/query/rollup"
	"turf/retention"
)

// Config is what App needs beyond an open, migrated ClickHouse.
type Config struct {
	Listen string
	// MetricsListen, when set, is a second address that serves /metrics
	// and nothing else, without a token (bind it to a private interface).
	// MetricsToken, when set, lets the main listener serve /metrics to
	// callers with "Authorization: Bearer <token>". With neither, the
	// main listener answers /metrics with 404: metrics are never public.
	MetricsListen   string
	MetricsToken    string
	Collector       collector.Config
	GeoIPDB         string
	Sink            sink.Config
	Query           query.Config
	Dashboard       dashboard.Config
	SaltGrace       time.Duration
	Retention       retention.Config // enforced every Retention.Interval; 0 (tests): never
	ShutdownTimeout time.Duration
	// Logf receives every line turf logs, fasthttp's included, already
	// scrubbed of client addresses beyond Collector.IPv4Prefix/IPv6Prefix
	// and of credentials (see Logger): Start wraps it, so no caller can
	// forget to.
	Logf func(string, ...any)
}

// App is a running turf.
type App struct {
	cfg        Config
	ln         net.Listener
	srv        *fasthttp.Server
	metricsLn  net.Listener // nil without Config.MetricsListen
	metricsSrv *fasthttp.Server
	sink       *sink.Sink
	sinkDone   chan struct{}
	geo        *geo.DB
	stopBg     context.CancelFunc
	serveErr   chan error
	Metrics    *metrics.Set
}

// Start listens, starts the flush loop and the salt keeper, and serves HTTP.
func Start(ctx context.Context, cfg Config, conn driver.Conn, db string) (*App, error) {
	cfg.Logf = scrubbed(cfg.Logf, cfg.Collector.IPv4Prefix, cfg.Collector.IPv6Prefix)
	a := &App{cfg: cfg, Metrics: metrics.NewSet(), serveErr: make(chan error, 1)}
	var err error
	if cfg.GeoIPDB == "" {
		cfg.Logf("warning: no --geoip-db given: countries will be empty (run deploy/fetch-geoip.sh for a free database)")
	} else if a.geo, err = geo.Open(cfg.GeoIPDB); err != nil {
		return nil, err
	} else {
		cfg.Logf("geo database %s (layout %s)", cfg.GeoIPDB, a.geo.Layout())
	}
	if a.sink, err = sink.New(conn, db, cfg.Sink, a.Metrics, cfg.Logf); err != nil {
		a.geo.Close()
		return nil, err
	}
	salts := visitor.NewStore(conn, db, time.Now, cfg.SaltGrace, cfg.Logf)
	if err := salts.Sync(ctx); err != nil {
		cfg.Logf("warning: %v (a local salt is used until ClickHouse answers)", err)
	}
	// Newsletter links verify from these keys in memory; loaded now so links
	// work from the first request, and kept refreshed by links.Run.
	links := newsletter.NewKeys(conn, db, time.Now)
	if err := links.Sync(ctx); err != nil {
		cfg.Logf("warning: %v (newsletter links answer 503 until ClickHouse answers)", err)
	}
	col, err := collector.New(cfg.Collector, collector.Deps{Sink: a.sink, Salts: salts, Geo: a.geo, Metrics: a.Metrics, Links: links})
	if err != nil {
		a.geo.Close()
		return nil, err
	}
	if cfg.Collector.TestMode {
		cfg.Logf("WARNING: test mode is on: clients can set event times and addresses. Never use it in production.")
	}
	if cfg.Query.Logf == nil {
		cfg.Query.Logf = cfg.Logf
	}
	api, err := query.New(cfg.Query, conn, db)
	if err != nil {
		a.geo.Close()
		return nil, err
	}
	api.Engine().RegisterMetrics(a.Metrics)
	if cfg.Dashboard.Logf == nil {
		cfg.Dashboard.Logf = cfg.Logf
	}
	if cfg.Dashboard.Sites == nil {
		cfg.Dashboard.Sites = cfg.Collector.Sites
	}
	if cfg.Dashboard.Gate == nil {
		cfg.Dashboard.Gate = api.Gate()
	}
	if cfg.Dashboard.TrustedProxies == nil {
		cfg.Dashboard.TrustedProxies = cfg.Collector.TrustedProxies
	}
	dash, err := dashboard.New(cfg.Dashboard, conn, db, api.Engine())
	if err != nil {
		a.geo.Close()
		return nil, err
	}
	if a.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		a.geo.Close()
		return nil, fmt.Errorf("cannot listen on %s: %w", cfg.Listen, err)
	}
	if cfg.MetricsListen != "" {
		if a.metricsLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			a.ln.Close()
			a.geo.Close()
			return nil, fmt.Errorf("cannot listen on %s (--metrics-listen): %w", cfg.MetricsListen, err)
		}
	}
	a.sinkDone = make(chan struct{})
	go func() { a.sink.Run(); close(a.sinkDone) }()
	bg, stop := context.WithCancel(context.Background())
	a.stopBg = stop
	go salts.Run(bg, time.Minute)
	go links.Run(bg, time.Minute, cfg.Logf)
	go retention.New(conn, db, cfg.Retention, time.Now, cfg.Logf).Run(bg)
	// Copies finished days into the visits and event_stats tables that the
	// dashboard's queries read (see query/rollup); safe on every instance.
	go rollup.New(conn, db, time.Now, cfg.Logf).Run(bg, 5*time.Minute)

	rt := &router{collector: col, query: api, dashboard: dash, metrics: a.Metrics, metricsToken: cfg.MetricsToken, conn: conn, sinkHealth: a.sink.Health}
	a.srv = HTTPServer(rt.handle, fasthttpLogger(cfg.Logf))
	go func() { a.serveErr <- a.srv.Serve(a.ln) }()
	if a.metricsLn != nil {
		a.metricsSrv = HTTPServer(rt.metricsOnly, fasthttpLogger(cfg.Logf))
		go func() { _ = a.metricsSrv.Serve(a.metricsLn) }()
	}
	return a, nil
}

// Addr is the address HTTP listens on.
func (a *App) Addr() string { return a.ln.Addr().String() }

// MetricsAddr is the metrics listener's address, "" without one.
func (a *App) MetricsAddr() string {
	if a.metricsLn == nil {
		return ""
	}
	return a.metricsLn.Addr().String()
}

// Done reports the HTTP server stopping on its own.
func (a *App) Done() <-chan error { return a.serveErr }

// Flush inserts everything accepted so far (tests use it).
func (a *App) Flush(ctx context.Context) error { return a.sink.Flush(ctx) }

// Shutdown stops in order: HTTP (open requests finish), then the final
// insert with a fresh deadline, logging how long each step took. The caller
// closes ClickHouse afterwards.
func (a *App) Shutdown() error {
	deadline := time.Now().Add(a.cfg.ShutdownTimeout)
	start := time.Now()
	httpCtx, cancel := context.WithDeadline(context.Background(), deadline)
	if err := a.srv.ShutdownWithContext(httpCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		a.cfg.Logf("HTTP shutdown: %v (continuing)", err)
	}
	if a.metricsSrv != nil {
		_ = a.metricsSrv.ShutdownWithContext(httpCtx)
	}
	cancel()
	a.cfg.Logf("HTTP stopped in %s", time.Since(start).Round(time.Millisecond))
	a.stopBg()

	start = time.Now()
	// A fresh context: whatever triggered the shutdown must not cancel the
	// last insert. At least 5s even when HTTP used up the deadline.
	flushCtx, cancel := context.WithDeadline(context.Background(), later(deadline, time.Now().Add(5*time.Second)))
	defer cancel()
	err := a.sink.Close(flushCtx)
	<-a.sinkDone
	a.cfg.Logf("final flush done in %s", time.Since(start).Round(time.Millisecond))
	a.geo.Close()
	return err
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// HTTPServer is turf's HTTP server around h (bench/wrk/noop measures the
// same settings with a handler that does nothing). fasthttp logs through
// logger, and never quotes a request's headers or body when it does
// (SecureErrorLogMessage): they hold API keys and session cookies.
func HTTPServer(h fasthttp.RequestHandler, logger fasthttp.Logger) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               h,
		Logger:                logger,
		SecureErrorLogMessage: true,
		Name:                  "turf",
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          10 * time.Second,
		// Idle keep-alive connections are closed after this, which also
		// bounds how long Shutdown waits for them.
		IdleTimeout: 30 * time.Second,
		// Larger than any valid event so that oversized bodies reach the
		// handler and are counted, instead of being refused unseen.
		MaxRequestBodySize: 1 << 20,
		NoDefaultDate:      true,
	}
}
