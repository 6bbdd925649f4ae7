package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"turf/collector"
	"turf/collector/sink"
	"turf/internal/app"
	"turf/internal/clientip"
	"turf/query"
	"turf/query/dashboard"
	"turf/query/plan"
	"turf/retention"
)

// serveConfig is everything `turf serve` is configured with.
type serveConfig struct {
	db              *dbFlags
	listen          string
	metricsListen   string
	metricsToken    string
	publicURL       string
	sites           listFlag
	trustedProxies  listFlag
	ipv4Prefix      int
	ipv6Prefix      int
	geoipDB         string
	geoipCityDB     listFlag
	batchSize       int
	flushInterval   time.Duration
	queueSize       int
	spoolMaxBytes   int64
	spoolFsync      time.Duration
	insertTimeout   time.Duration
	shutdownTimeout time.Duration
	keepFragment    bool
	honourGPC       bool
	honourDNT       bool
	saltGrace       time.Duration
	retention       *retentionFlags
	retentionEvery  time.Duration
	retentionPolicy retention.Policy
	retentionMin    retention.Period
	retentionMax    retention.Period
	testMode        bool
	siteTimezones   listFlag
	goals           listFlag
	queryRate       float64
	queryBurst      int
}

func init() {
	register("serve", "run the collector (and the query API and dashboard)", runServe)
}

func serveFlags(args []string) (*serveConfig, error) {
	c := &serveConfig{}
	fs := newFlagSet("serve", "Receives events on POST/GET /api/event, serves the tracker at /js/script.js,\nand stores events in ClickHouse.")
	c.db = addDBFlags(fs)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8080", "address to listen on for HTTP")
	fs.StringVar(&c.metricsListen, "metrics-listen", "", "address that serves Prometheus /metrics (and nothing else) without a token, e.g. 127.0.0.1:9100; see --metrics-token. With neither, /metrics is not served")
	fs.StringVar(&c.metricsToken, "metrics-token", "", "token that lets /metrics on --listen answer requests with 'Authorization: Bearer <token>'; see --metrics-listen")
	fs.StringVar(&c.publicURL, "public-url", "", "turf's public address as mail clients reach it, e.g. https://stats.example.com: newsletter links made on the dashboard's link page start with it (as turf link --public-url); empty: the page's own address")
	fs.Var(&c.sites, "site", "domain whose events are stored, e.g. example.com (repeatable, or comma-separated); admins add more in the dashboard's settings. Events for other domains are dropped and counted")
	fs.Var(&c.trustedProxies, "trusted-proxy", "CIDR or address of a reverse proxy whose X-Forwarded-For / X-Real-IP is believed (repeatable); otherwise the TCP peer is the client")
	fs.IntVar(&c.ipv4Prefix, "ipv4-prefix", 24, "bits of an IPv4 address kept (16 or 24); the rest is zeroed on arrival, see also --ipv6-prefix")
	fs.IntVar(&c.ipv6Prefix, "ipv6-prefix", 48, "bits of an IPv6 address kept (32, 48 or 64), see also --ipv4-prefix")
	fs.StringVar(&c.geoipDB, "geoip-db", "", "path to a country or city .mmdb (MaxMind GeoIP2/GeoLite2, DB-IP, or ip-location-db's country_code layout); empty: no countries")
	fs.Var(&c.geoipCityDB, "geoip-city-db", "city .mmdb for the visit:region and visit:city of each visit (MaxMind GeoLite2/GeoIP2 City, DB-IP City Lite, or ip-location-db's city files: pass its -ipv4 and -ipv6 halves, repeatable or comma-separated); never finer than a city; empty: region and city are (not set). Countries still come from --geoip-db")
	fs.IntVar(&c.batchSize, "batch-size", 10000, "insert into ClickHouse when this many events wait, or after --flush-interval")
	fs.DurationVar(&c.flushInterval, "flush-interval", time.Second, "insert waiting events at least this often, see --batch-size")
	fs.IntVar(&c.queueSize, "queue-size", 200000, "events held in memory while they wait to be written to the spool; when full, new events get 503 with Retry-After")
	fs.Int64Var(&c.spoolMaxBytes, "spool-max-bytes", 1<<30, "disk space for the spool under --data-dir/spool, where every accepted event waits until ClickHouse has it; when full, new events get 503 with Retry-After")
	fs.DurationVar(&c.spoolFsync, "spool-fsync-interval", time.Second, "fsync the spool this often: a power cut can lose the events of the last interval (kill -9 loses none); 0: fsync before every 202, slower but loses nothing")
	fs.DurationVar(&c.insertTimeout, "insert-timeout", 30*time.Second, "give up one insert attempt into ClickHouse after this; it is retried, exactly once, from the spool")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGTERM/SIGINT, how long to wait for open requests and the final insert")
	fs.BoolVar(&c.keepFragment, "keep-fragment", false, "keep the URL fragment (#...) in page paths, for sites with hash routing")
	fs.BoolVar(&c.honourGPC, "honour-gpc", true, "do not store events of requests with Sec-GPC: 1 (Global Privacy Control); they are only counted")
	fs.BoolVar(&c.honourDNT, "honour-dnt", false, "do not store events of requests with DNT: 1; they are only counted")
	fs.DurationVar(&c.saltGrace, "salt-grace", 15*time.Minute, "how long after its UTC day a visitor salt is kept (for clock skew between instances) before it is destroyed")
	fs.Var(&c.siteTimezones, "site-timezone", "time zone of a site's reports as site=Zone, e.g. example.com=Europe/Amsterdam (repeatable); default UTC. Wins over the dashboard's setting")
	fs.Var(&c.goals, "goal", "a site's goal as site=Goal: a custom event name (site=Signup), with revenue in a currency (site=Purchase;currency=EUR), a page, * and ** as wildcards (site=Visit /blog/**), or a scroll depth on a page (site=Scroll 50% /blog) (repeatable); added to the goals set in the dashboard")
	fs.Float64Var(&c.queryRate, "query-rate-limit", 10, "queries per second one API key may make on average, see --query-burst; more get 429")
	fs.IntVar(&c.queryBurst, "query-burst", 30, "queries one API key may make at once, see --query-rate-limit")
	c.retention = addRetentionFlags(fs)
	fs.Var(&c.retentionMin, "retention-min", "shortest retention admins may set for a site in the dashboard, e.g. 30d (default 1mo); see --retention-max")
	fs.Var(&c.retentionMax, "retention-max", "longest retention admins may set for a site in the dashboard, e.g. 25mo (default: --retention); --retention-site may go beyond it")
	fs.DurationVar(&c.retentionEvery, "retention-interval", time.Hour, "how often expired rows are removed (see --retention); 0: never, e.g. when a cron job runs turf retention")
	fs.BoolVar(&c.testMode, "test-mode", false, "FOR TESTS ONLY: believe X-Turf-Test-Time / X-Turf-Test-Peer headers")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	var err error
	if c.retentionPolicy, err = c.retention.policy(); err != nil {
		return nil, err
	}
	if c.batchSize < 1 || c.queueSize < c.batchSize {
		return nil, fmt.Errorf("--batch-size must be at least 1 and --queue-size at least --batch-size (got %d and %d)", c.batchSize, c.queueSize)
	}
	if c.spoolMaxBytes < 1<<20 || c.spoolFsync < 0 || c.insertTimeout <= 0 {
		return nil, errors.New("--spool-max-bytes must be at least 1 MiB (1048576), --spool-fsync-interval not negative, --insert-timeout positive")
	}
	if c.flushInterval <= 0 || c.shutdownTimeout <= 0 {
		return nil, errors.New("--flush-interval and --shutdown-timeout must be positive")
	}
	if err := clientip.ValidateBits(c.ipv4Prefix, c.ipv6Prefix); err != nil {
		return nil, err
	}
	if c.queryRate <= 0 || c.queryBurst < 1 {
		return nil, errors.New("--query-rate-limit must be positive and --query-burst at least 1")
	}
	if c.publicURL != "" {
		if err := checkPublicURL(c.publicURL); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// sinkConfig puts the spool under --data-dir, next to the managed ClickHouse.
func (c *serveConfig) sinkConfig() sink.Config {
	return sink.Config{Dir: filepath.Join(c.db.dataDir, "spool"), MaxBytes: c.spoolMaxBytes, SyncInterval: c.spoolFsync,
		BatchSize: c.batchSize, FlushInterval: c.flushInterval, QueueSize: c.queueSize, InsertTimeout: c.insertTimeout}
}

func runServe(args []string) error {
	cfg, err := serveFlags(args)
	if err != nil {
		return err
	}
	// Every line of the standard logger (turf's, and any library's that
	// uses it) is scrubbed of client addresses and credentials.
	log.SetOutput(app.NewLogger(os.Stderr, cfg.ipv4Prefix, cfg.ipv6Prefix))
	trusted, err := clientip.ParsePrefixes(cfg.trustedProxies)
	if err != nil {
		return err
	}
	sites, err := siteConfigs(cfg)
	if err != nil {
		return err
	}
	// The port first: a port in use should fail before ClickHouse starts.
	if ln, err := net.Listen("tcp", cfg.listen); err != nil {
		return fmt.Errorf("cannot listen on %s: %w", cfg.listen, err)
	} else {
		ln.Close()
	}
	startCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ch, features, err := cfg.db.open(startCtx, true)
	if err != nil {
		return err
	}
	defer ch.close()
	log.Print(features)
	if err := ch.migrate(startCtx, cfg.db); err != nil {
		return err
	}
	a, err := app.Start(startCtx, app.Config{
		Listen: cfg.listen, MetricsListen: cfg.metricsListen, MetricsToken: cfg.metricsToken,
		Collector: collector.Config{
			Sites: cfg.sites, TrustedProxies: trusted, IPv4Prefix: cfg.ipv4Prefix, IPv6Prefix: cfg.ipv6Prefix,
			KeepFragment: cfg.keepFragment, HonourGPC: cfg.honourGPC, HonourDNT: cfg.honourDNT, TestMode: cfg.testMode,
		},
		GeoIPDB:         cfg.geoipDB,
		GeoIPCityDB:     cfg.geoipCityDB,
		Sink:            cfg.sinkConfig(),
		Query:           query.Config{Sites: sites, RateLimit: cfg.queryRate, Burst: cfg.queryBurst},
		Dashboard:       dashboard.Config{PublicURL: cfg.publicURL},
		SaltGrace:       cfg.saltGrace,
		Retention:       retention.Config{Policy: cfg.retentionPolicy, Interval: cfg.retentionEvery, Cluster: cfg.db.cluster},
		Settings:        app.SettingsConfig{RetentionMin: cfg.retentionMin, RetentionMax: cfg.retentionMax},
		ShutdownTimeout: cfg.shutdownTimeout,
		Logf:            log.Printf,
	}, ch.conn, ch.db)
	if err != nil {
		return err
	}
	printReady(cfg, ch, a.SetupPath())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sig:
		log.Printf("received %s, shutting down (deadline %s)", s, cfg.shutdownTimeout)
	case err := <-a.Done():
		log.Printf("HTTP server stopped: %v", err)
	}
	signal.Stop(sig)
	return a.Shutdown()
}

// siteConfigs collects --site-timezone and --goal per site.
func siteConfigs(cfg *serveConfig) (map[string]query.SiteConfig, error) {
	known := map[string]bool{}
	for _, s := range cfg.sites {
		known[strings.ToLower(s)] = true
	}
	out := map[string]query.SiteConfig{}
	split := func(flagName, v string) (string, string, error) {
		site, val, ok := strings.Cut(v, "=")
		site, val = strings.ToLower(strings.TrimSpace(site)), strings.TrimSpace(val)
		if !ok || site == "" || val == "" {
			return "", "", fmt.Errorf("--%s %q: want site=value", flagName, v)
		}
		if !known[site] {
			return "", "", fmt.Errorf("--%s %q: %s is not a --site", flagName, v, site)
		}
		return site, val, nil
	}
	for _, v := range cfg.siteTimezones {
		site, tz, err := split("site-timezone", v)
		if err != nil {
			return nil, err
		}
		if _, err := time.LoadLocation(tz); err != nil {
			return nil, fmt.Errorf("--site-timezone %q: unknown time zone: %w", v, err)
		}
		sc := out[site]
		sc.Timezone = tz
		out[site] = sc
	}
	for _, v := range cfg.goals {
		site, goal, err := split("goal", v)
		if err != nil {
			return nil, err
		}
		if _, err := plan.ParseGoal(goal); err != nil {
			return nil, fmt.Errorf("--goal %q: %w", v, err)
		}
		sc := out[site]
		sc.Goals = append(sc.Goals, goal)
		out[site] = sc
	}
	return out, nil
}

func printReady(cfg *serveConfig, ch *clickhouse, setupPath string) {
	host := cfg.listen
	if h, p, err := net.SplitHostPort(cfg.listen); err == nil && (h == "" || h == "0.0.0.0" || h == "::" || h == "127.0.0.1") {
		host = "localhost:" + p
	}
	where := "ClickHouse database " + ch.db
	if ch.managed != nil {
		where += fmt.Sprintf(" on the managed server %s (data in %s; query it with: clickhouse-client --port %d -d %s)", ch.managed.Addr(), ch.managed.Dir, ch.managed.Port, ch.db)
	}
	site, sites := "example.com", cfg.sites.String()
	if len(cfg.sites) > 0 {
		site = cfg.sites[0]
	} else {
		sites = "none from flags; add them in the dashboard (Settings)"
	}
	account := fmt.Sprintf("dashboard:     http://%s/ (add sites, goals and colleagues under Settings)", host)
	if setupPath != "" {
		account = fmt.Sprintf("first account: open http://%s%s to make the admin account (works once, until an account exists)", host, setupPath)
	}
	fmt.Printf(`
turf is running on http://%[1]s
  %[5]s
  sites:         %[2]s
  tracker:       <script defer data-domain="%[3]s" src="http://%[1]s/js/script.js"></script>
  send an event: curl -X POST http://%[1]s/api/event -H 'Content-Type: application/json' \
                   -A 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0' \
                   -d '{"name":"pageview","url":"https://%[3]s/","domain":"%[3]s"}'
                 (a browser User-Agent: curl's own is dropped as a bot)
  health:        http://%[1]s/healthz    metrics: --metrics-listen or --metrics-token
  data:          %[4]s
Stop with Ctrl-C.
`, host, sites, site, where, account)
}
