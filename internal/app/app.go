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
	"turf/collector/sink"
	"turf/collector/visitor"
	"turf/internal/linksign"
	"turf/query"
	"turf/query/dashboard"
	"turf/query/rollup"
	"turf/query/settings"
	"turf/retention"
	"turf/schema"
)

// Config is what App needs beyond an open, migrated ClickHouse.
type Config struct {
	Listen string
	// MetricsListen, when set, is a second address that serves /metrics
	// and nothing else, without a token (bind it to a private interface).
	// MetricsToken, when set, lets the main listener serve /metrics to
	// callers with "Authorization: Bearer <token>". With neither, the
	// main listener answers /metrics with 404: metrics are never public.
	MetricsListen string
	MetricsToken  string
	Collector     collector.Config
	GeoIPDB       string
	// GeoIPCityDB are city .mmdb files (in lookup order) for the region
	// and city; none: both "(not set)".
	GeoIPCityDB     []string
	Sink            sink.Config
	Query           query.Config
	Dashboard       dashboard.Config
	SaltGrace       time.Duration
	Retention       retention.Config // enforced every Retention.Interval; 0 (tests): never
	Settings        SettingsConfig
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
	engSink    *sink.Sink // the engagements table's (EngagementSink)
	engDone    chan struct{}
	geo        *geo.DB
	city       *geo.CityDB
	stopBg     context.CancelFunc
	serveErr   chan error
	setupPath  string
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
	if len(cfg.GeoIPCityDB) > 0 {
		if a.city, err = geo.OpenCity(cfg.GeoIPCityDB...); err != nil {
			a.closeGeo()
			return nil, err
		}
		cfg.Logf("city database %v (layout %s)", cfg.GeoIPCityDB, a.city.Layout())
	}
	if a.sink, err = sink.New(conn, db, cfg.Sink, a.Metrics, cfg.Logf); err != nil {
		a.closeGeo()
		return nil, err
	}
	if a.engSink, err = sink.New(conn, db, EngagementSink(cfg.Sink), a.Metrics, cfg.Logf); err != nil {
		a.closeGeo()
		return nil, err
	}
	salts := visitor.NewStore(conn, db, time.Now, cfg.SaltGrace, cfg.Logf)
	if err := salts.Sync(ctx); err != nil {
		cfg.Logf("warning: %v (a local salt is used until ClickHouse answers)", err)
	}
	// Newsletter links verify from these keys in memory; loaded now so links
	// work from the first request, and kept refreshed by links.Run.
	links := linksign.NewKeys(conn, db, time.Now)
	if err := links.Sync(ctx); err != nil {
		cfg.Logf("warning: %v (newsletter links answer 503 until ClickHouse answers)", err)
	}
	// The flags seed the stored settings, so the dashboard lists them.
	flags := flagsOf(cfg)
	if err := settings.Seed(ctx, conn, db, flags); err != nil {
		a.closeGeo()
		return nil, err
	}
	sites, err := collector.NewSites(conn, db, cfg.Collector.Sites)
	if err != nil {
		a.closeGeo()
		return nil, err
	}
	if err := sites.Sync(ctx); err != nil {
		a.closeGeo()
		return nil, err
	}
	col, err := collector.New(cfg.Collector, collector.Deps{Sink: a.sink, Engagements: a.engSink, Salts: salts, Geo: a.geo, City: a.city, Metrics: a.Metrics, Links: links, Sites: sites})
	if err != nil {
		a.closeGeo()
		return nil, err
	}
	if cfg.Collector.TestMode {
		cfg.Logf("WARNING: test mode is on: clients can set event times and addresses. Never use it in production.")
	}
	if cfg.Query.Logf == nil {
		cfg.Query.Logf = cfg.Logf
	}
	if cfg.Query.TrustedProxies == nil {
		cfg.Query.TrustedProxies = cfg.Collector.TrustedProxies
	}
	api, err := query.New(cfg.Query, conn, db)
	if err != nil {
		a.closeGeo()
		return nil, err
	}
	api.Engine().RegisterMetrics(a.Metrics)
	api.Gate().RegisterMetrics(a.Metrics)
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
	if cfg.Settings.Poll <= 0 {
		cfg.Settings.Poll = 2 * time.Second
	}
	retDefault := cfg.Retention.Policy.Events
	if retDefault.IsZero() {
		retDefault = retention.DefaultPeriod
	}
	if cfg.Settings.RetentionMin.IsZero() {
		cfg.Settings.RetentionMin = retention.Period{Months: 1}
	}
	if cfg.Settings.RetentionMax.IsZero() {
		cfg.Settings.RetentionMax = retDefault
	}
	enforcer := retention.New(conn, db, cfg.Retention, time.Now, cfg.Logf)
	loop := &settingsLoop{conn: conn, db: db, flags: flags, base: cfg.Query.Sites, engine: api.Engine(), ret: enforcer, logf: cfg.Logf, kick: make(chan struct{}, 1)}
	if cfg.Dashboard.Settings == nil {
		cfg.Dashboard.Settings = &dashboard.Settings{Flags: flags, RetentionDefault: retDefault,
			RetentionMin: cfg.Settings.RetentionMin, RetentionMax: cfg.Settings.RetentionMax,
			Changed: func() {
				loop.changed()
				go func() {
					sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					if err := sites.Sync(sctx); err != nil {
						cfg.Logf("collector: %v", err)
					}
				}()
			}}
	}
	dash, err := dashboard.New(cfg.Dashboard, conn, db, api.Engine())
	if err != nil {
		a.closeGeo()
		return nil, err
	}
	loop.dash = dash
	if err := loop.apply(ctx); err != nil {
		a.closeGeo()
		return nil, err
	}
	if a.setupPath, err = dash.PrepareSetup(ctx); err != nil {
		a.closeGeo()
		return nil, err
	}
	if a.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		a.closeGeo()
		return nil, fmt.Errorf("cannot listen on %s: %w", cfg.Listen, err)
	}
	if cfg.MetricsListen != "" {
		if a.metricsLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			a.ln.Close()
			a.closeGeo()
			return nil, fmt.Errorf("cannot listen on %s (--metrics-listen): %w", cfg.MetricsListen, err)
		}
	}
	a.sinkDone = make(chan struct{})
	go func() { a.sink.Run(); close(a.sinkDone) }()
	a.engDone = make(chan struct{})
	go func() { a.engSink.Run(); close(a.engDone) }()
	bg, stop := context.WithCancel(context.Background())
	a.stopBg = stop
	go salts.Run(bg, time.Minute)
	go links.Run(bg, time.Minute, cfg.Logf)
	go enforcer.Run(bg)
	go sites.Run(bg, cfg.Settings.Poll, cfg.Logf)
	go loop.run(bg, cfg.Settings.Poll)
	// Copies finished days into the visits and event_stats tables that the
	// dashboard's queries read (see query/rollup); safe on every instance.
	job := rollup.New(conn, db, time.Now, cfg.Logf)
	job.Zone = api.Engine().Zone
	go job.Run(bg, 5*time.Minute)

	rt := &router{collector: col, query: api, dashboard: dash, metrics: a.Metrics, metricsToken: cfg.MetricsToken, conn: conn, sinkHealth: a.sink.Health}
	a.srv = HTTPServer(rt.handle, fasthttpLogger(cfg.Logf))
	go func() { a.serveErr <- a.srv.Serve(a.ln) }()
	if a.metricsLn != nil {
		a.metricsSrv = HTTPServer(rt.metricsOnly, fasthttpLogger(cfg.Logf))
		go func() { _ = a.metricsSrv.Serve(a.metricsLn) }()
	}
	return a, nil
}

// SetupPath is the one-time setup link's path (/setup/TOKEN) when no
// dashboard user existed at start, else "".
func (a *App) SetupPath() string { return a.setupPath }

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
func (a *App) Flush(ctx context.Context) error {
	return errors.Join(a.sink.Flush(ctx), a.engSink.Flush(ctx))
}

// EngagementSink is the engagement beacons' sink configuration: the events
// sink's settings, with a spool of its own next to the events' spool and a
// quarter of its disk space (at least 1 MiB).
func EngagementSink(c sink.Config) sink.Config {
	c.Table = schema.Engagements
	c.Dir += "-engagements"
	if c.MaxBytes > 0 {
		c.MaxBytes = max(c.MaxBytes/4, 1<<20)
	}
	if c.SegmentBytes > 0 {
		c.SegmentBytes = min(c.SegmentBytes, max(c.MaxBytes/4, 1))
	}
	return c
}

func (a *App) closeGeo() {
	a.geo.Close()
	a.city.Close()
}

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
	err := errors.Join(a.sink.Close(flushCtx), a.engSink.Close(flushCtx))
	<-a.sinkDone
	<-a.engDone
	a.cfg.Logf("final flush done in %s", time.Since(start).Round(time.Millisecond))
	a.closeGeo()
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
