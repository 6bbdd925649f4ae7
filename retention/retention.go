// Package retention keeps turf's promise that data does not outlive its
// purpose: expired rows are removed on a schedule (whole partitions dropped,
// the remainder deleted), or by table TTL where the server has it; and a
// site's data can be erased or exported on request. Every table of turf's
// database with a `site` column is covered, found through system.tables.
package retention

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/schema"
)

// Policy says how long each site's data is kept.
type Policy struct {
	Events Period            // raw events; zero means DefaultPeriod
	Sites  map[string]Period // per-site override of Events
	// Aggregates, when set, keeps pre-aggregated tables for at least this
	// long (never shorter than the site's events): counts without visitors
	// may outlive the events they were made from.
	Aggregates Period
}

// ParseSitePeriods reads "example.com=25mo" items.
func ParseSitePeriods(items []string) (map[string]Period, error) {
	out := map[string]Period{}
	for _, it := range items {
		site, per, ok := strings.Cut(it, "=")
		site = strings.ToLower(strings.TrimSpace(site))
		if !ok || site == "" {
			return nil, fmt.Errorf("invalid per-site retention %q: write site=period, e.g. example.com=25mo", it)
		}
		p, err := ParsePeriod(per)
		if err != nil {
			return nil, fmt.Errorf("retention of %s: %w", site, err)
		}
		out[site] = p
	}
	return out, nil
}

func (p Policy) events() Period {
	if p.Events.IsZero() {
		return DefaultPeriod
	}
	return p.Events
}

// For is the period of a site's rows in a raw or an aggregate table.
func (p Policy) For(site string, aggregate bool, now time.Time) Period {
	per, ok := p.Sites[site]
	if !ok {
		per = p.events()
	}
	if aggregate && !p.Aggregates.IsZero() && p.Aggregates.longer(per, now) {
		per = p.Aggregates
	}
	return per
}

func (p Policy) siteNames() []string {
	names := make([]string, 0, len(p.Sites))
	for s := range p.Sites {
		names = append(names, s)
	}
	sort.Strings(names)
	return names
}

// expired is the predicate of t's rows that are past their period at now.
func (p Policy) expired(t Table, now time.Time) string {
	lit := func(per Period) string {
		c := per.Cutoff(now)
		if strings.HasPrefix(t.TimeType, "Date") && !strings.HasPrefix(t.TimeType, "DateTime") {
			return "toDate('" + c.Format(time.DateOnly) + "')"
		}
		return "toDateTime('" + c.Format(time.DateTime) + "', 'UTC')"
	}
	col := quoteIdent(t.TimeColumn)
	names := p.siteNames()
	if len(names) == 0 {
		return col + " < " + lit(p.For("", t.Aggregate, now))
	}
	var or []string
	var quoted []string
	for _, s := range names {
		q := quoteString(s)
		quoted = append(quoted, q)
		or = append(or, "(site = "+q+" AND "+col+" < "+lit(p.For(s, t.Aggregate, now))+")")
	}
	or = append(or, "(site NOT IN ("+strings.Join(quoted, ", ")+") AND "+col+" < "+lit(p.For("", t.Aggregate, now))+")")
	return strings.Join(or, " OR ")
}

// ttl is the table TTL expression equivalent to expired, for servers that
// have TTL (19.6+). Like expired it keeps whole UTC days: a row of day d
// expires when day d + period + 1 begins, which is when the delete job's
// cutoff (midnight, minus the period) passes it. (ts + period would expire
// rows during the cutoff's day, hours before the job would, as the 26.x test
// found.) At a month's end the server clamps (Mar 31 - 1 month is Feb 28)
// where Cutoff normalises (Mar 3), so there the two differ by up to 3 days.
func (p Policy) ttl(t Table, now time.Time) string {
	col := "toDate(" + quoteIdent(t.TimeColumn) + ", 'UTC')"
	if !strings.HasPrefix(t.TimeType, "DateTime") {
		col = quoteIdent(t.TimeColumn) // a Date is a UTC day already
	}
	add := func(per Period) string {
		return col + " + toIntervalMonth(" + fmt.Sprint(per.Months) + ") + toIntervalDay(" + fmt.Sprint(per.Days+1) + ")"
	}
	names := p.siteNames()
	if len(names) == 0 {
		return add(p.For("", t.Aggregate, now))
	}
	var args []string
	for _, s := range names {
		args = append(args, "site = "+quoteString(s), add(p.For(s, t.Aggregate, now)))
	}
	return "multiIf(" + strings.Join(append(args, add(p.For("", t.Aggregate, now))), ", ") + ")"
}

// Config is the retention job's configuration.
type Config struct {
	Policy   Policy
	Interval time.Duration // how often Run enforces the policy; 0: never
	Cluster  string        // ALTER ... ON CLUSTER when set
}

// SetSitePeriods replaces the per-site periods (Policy.Sites): the
// settings admins make in the dashboard, with the --retention-site flags
// laid over them by the caller. The next run uses them.
func (e *Enforcer) SetSitePeriods(sites map[string]Period) {
	e.mu.Lock()
	e.cfg.Policy.Sites = sites
	e.mu.Unlock()
}

func (e *Enforcer) policy() Policy {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg.Policy
}

// Enforcer applies a Policy to one database.
type Enforcer struct {
	conn driver.Conn
	db   string
	cfg  Config
	// mu guards cfg.Policy.Sites, which SetSitePeriods replaces.
	mu   sync.Mutex
	now  func() time.Time
	logf func(string, ...any)
	// ttlSet remembers the TTL expressions this process has set, so that a
	// server that formats them differently is not altered on every run
	// (modifying a TTL rewrites every part on modern servers).
	ttlSet map[string]string
}

// New makes an enforcer. now is the clock (tests inject one).
func New(conn driver.Conn, db string, cfg Config, now func() time.Time, logf func(string, ...any)) *Enforcer {
	if now == nil {
		now = time.Now
	}
	return &Enforcer{conn: conn, db: db, cfg: cfg, now: now, logf: logf, ttlSet: map[string]string{}}
}

// Plan is what one enforcement run does.
type Plan struct {
	Now    time.Time
	UseTTL bool // the server has table TTL: the remainder is left to it
	Tables []TablePlan
}

// TablePlan is one table's part of a Plan.
type TablePlan struct {
	Removal
	TTL       string // the TTL expression the table should have (UseTTL only)
	TTLChange bool   // the table does not have it yet
	Skipped   string // why the table is not covered, if it is not
}

// Plan looks at what enforcing the policy now would remove, changing nothing.
func (e *Enforcer) Plan(ctx context.Context) (Plan, error) {
	pol := e.policy()
	f, err := schema.Check(ctx, e.conn)
	if err != nil {
		return Plan{}, err
	}
	now := e.now().UTC()
	tables, err := Discover(ctx, e.conn, e.db)
	if err != nil {
		return Plan{}, err
	}
	pl := Plan{Now: now, UseTTL: f.TTL}
	for _, t := range tables {
		tp := TablePlan{Removal: Removal{Table: t}}
		if t.Config {
			tp.Skipped = "configuration, not measurements: it never expires (erasing the site removes its rows)"
			pl.Tables = append(pl.Tables, tp)
			continue
		}
		if t.TimeColumn == "" {
			tp.Skipped = "no Date or DateTime column: it is covered by erasure, not by retention"
			pl.Tables = append(pl.Tables, tp)
			continue
		}
		if tp.Removal, err = planRemoval(ctx, e.conn, e.db, t, pol.expired(t, now)); err != nil {
			return Plan{}, err
		}
		if pl.UseTTL {
			tp.TTL = pol.ttl(t, now)
			if tp.TTLChange, err = e.needsTTL(ctx, t, tp.TTL); err != nil {
				return Plan{}, err
			}
		}
		pl.Tables = append(pl.Tables, tp)
	}
	return pl, nil
}

func (e *Enforcer) needsTTL(ctx context.Context, t Table, expr string) (bool, error) {
	if e.ttlSet[t.Name] == expr {
		return false, nil
	}
	var create string
	if err := e.conn.QueryRow(ctx, "SELECT create_table_query FROM system.tables WHERE database = ? AND name = ?", e.db, storedName(t)).Scan(&create); err != nil {
		return false, fmt.Errorf("cannot read the definition of %s: %w", t.Name, err)
	}
	return !strings.Contains(squash(create), "TTL"+squash(expr)), nil
}

// squash drops what servers reformat (spaces, quoting of names).
func squash(s string) string {
	return strings.NewReplacer(" ", "", "\n", "", "\t", "", "`", "").Replace(s)
}

// Apply carries out a plan: on servers without TTL the expired rows are
// deleted now; with TTL, the TTL is set and whole expired partitions are
// still dropped at once (the TTL only acts when parts merge).
func (e *Enforcer) Apply(ctx context.Context, pl Plan) error {
	for _, tp := range pl.Tables {
		if tp.Skipped != "" {
			continue
		}
		if pl.UseTTL && tp.TTLChange {
			// A table replicated to every node takes the TTL through
			// replication; a sharded one on every shard.
			stmt := "ALTER TABLE " + localName(e.db, tp.Table) + schema.OnCluster(tp.Table.Cluster) + " MODIFY TTL " + tp.TTL
			if err := schema.ExecDDL(ctx, e.conn, tp.Table.Cluster, 0, stmt, e.logf); err != nil {
				return fmt.Errorf("cannot set the TTL of %s: %w", tp.Table.Name, err)
			}
			e.ttlSet[tp.Table.Name] = tp.TTL
			e.logf("retention: %s now expires rows by TTL %s", tp.Table.Name, tp.TTL)
		}
		if err := tp.apply(ctx, e.conn, e.db, e.cfg.Cluster, !pl.UseTTL, false); err != nil {
			return err
		}
		if n := tp.Rows(); n > 0 {
			what := fmt.Sprintf("dropped %d partition(s)", len(tp.Partitions))
			if !pl.UseTTL && tp.DeleteRows > 0 {
				what += fmt.Sprintf(" and started deleting %d more rows", tp.DeleteRows)
			}
			e.logf("retention: %s: %s (rows before %s)", tp.Table.Name, what, e.policy().describe(tp.Table, pl.Now))
		}
	}
	return nil
}

// describe names the cutoffs of a table, for logs and dry runs.
func (p Policy) describe(t Table, now time.Time) string {
	parts := []string{p.For("", t.Aggregate, now).Cutoff(now).Format(time.DateOnly)}
	for _, s := range p.siteNames() {
		parts = append(parts, s+": "+p.For(s, t.Aggregate, now).Cutoff(now).Format(time.DateOnly))
	}
	return strings.Join(parts, ", ")
}

// Describe is describe for callers outside the package (turf retention).
func (p Policy) Describe(t Table, now time.Time) string { return p.describe(t, now) }

// Enforce plans and applies once.
func (e *Enforcer) Enforce(ctx context.Context) (Plan, error) {
	pl, err := e.Plan(ctx)
	if err != nil {
		return pl, err
	}
	return pl, e.Apply(ctx, pl)
}

// Run enforces the policy at once and then every cfg.Interval until ctx
// ends. Failures are logged and retried on the next run: an unreachable
// ClickHouse must not stop the collector.
func (e *Enforcer) Run(ctx context.Context) {
	if e.cfg.Interval <= 0 {
		return
	}
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		if _, err := e.Enforce(rctx); err != nil && ctx.Err() == nil {
			e.logf("retention: %v (retrying in %s)", err, e.cfg.Interval)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-time.After(e.cfg.Interval):
		}
	}
}

// Wait waits until the deletions a plan started are done (the scheduled job
// does not wait; the retention command does, so that what it reports is true).
func (e *Enforcer) Wait(ctx context.Context, pl Plan) error {
	for _, tp := range pl.Tables {
		if tp.Skipped == "" && tp.DeleteRows > 0 {
			if err := waitMutations(ctx, e.conn, e.db, tp.Table); err != nil {
				return err
			}
		}
	}
	return nil
}
