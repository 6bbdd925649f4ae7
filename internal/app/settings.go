package app

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/query"
	"turf/query/dashboard"
	"turf/query/plan"
	"turf/query/settings"
	"turf/retention"
)

// SettingsConfig is how settings made in the dashboard reach this instance.
type SettingsConfig struct {
	// Poll is how often the stored settings are read (default 2s): a
	// change made on another instance applies here within it.
	Poll time.Duration
	// RetentionMin and RetentionMax bound the per-site retention admins
	// may choose (--retention-min, --retention-max). Defaults: 1 month and
	// the configured --retention.
	RetentionMin, RetentionMax retention.Period
}

// settingsLoop reads the stored settings, lays the flags over them and
// hands the result to the query engine, the dashboard and the retention
// job. The collector reads the sites table on its own (collector.Sites).
type settingsLoop struct {
	conn   driver.Conn
	db     string
	flags  settings.Flags
	base   map[string]query.SiteConfig // what serve's flags or a test set
	engine *query.Engine
	dash   *dashboard.Dashboard
	ret    *retention.Enforcer
	logf   func(string, ...any)
	kick   chan struct{}
	mu     sync.Mutex // one apply at a time
}

// flagsOf collects the settings serve's configuration pins.
func flagsOf(cfg Config) settings.Flags {
	f := settings.Flags{Timezones: map[string]string{}, Goals: map[string][]string{}, Retention: map[string]string{}}
	f.Sites = append(f.Sites, cfg.Collector.Sites...)
	for site, sc := range cfg.Query.Sites {
		if sc.Timezone != "" {
			f.Timezones[site] = sc.Timezone
		}
		if len(sc.Goals) > 0 {
			f.Goals[site] = slices.Clone(sc.Goals)
		}
	}
	for site, p := range cfg.Retention.Policy.Sites {
		f.Retention[site] = p.String()
	}
	return f
}

// apply reads the settings once and applies them.
func (l *settingsLoop) apply(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	snap, err := settings.Load(ctx, l.conn, l.db)
	if err != nil {
		return err
	}
	eff := snap.Apply(l.flags)
	sites := map[string]query.SiteConfig{}
	for _, s := range eff.Sites {
		sc := l.base[s]
		sc.Goals = slices.Clone(sc.Goals)
		if tz := eff.Timezones[s]; tz != "" {
			sc.Timezone = tz
		}
		for _, g := range eff.Specs[s] {
			if slices.Contains(sc.Goals, g) {
				continue
			}
			// One goal stored before its syntax was checked must not keep
			// every other setting from applying.
			if _, err := plan.ParseGoal(g); err != nil {
				l.logf("settings: goal of %s left out: %v", s, err)
				continue
			}
			sc.Goals = append(sc.Goals, g)
		}
		sites[s] = sc
	}
	if err := l.engine.SetSites(sites); err != nil {
		return err
	}
	l.dash.SetSites(eff.Sites)
	periods := map[string]retention.Period{}
	for s, r := range eff.Retention {
		p, err := retention.ParsePeriod(r)
		if err != nil {
			return fmt.Errorf("retention of %s: %w", s, err)
		}
		periods[s] = p
	}
	l.ret.SetSitePeriods(periods)
	return nil
}

// changed asks for an apply now (after a change made on this instance).
func (l *settingsLoop) changed() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

func (l *settingsLoop) run(ctx context.Context, every time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		case <-l.kick:
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := l.apply(actx); err != nil {
			l.logf("settings: %v (the previous settings stay in force)", err)
		}
		cancel()
	}
}
