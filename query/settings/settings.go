// Package settings stores what admins set in the dashboard (sites, their
// time zones and retention, goals) and who changed what (the audit log) in
// ClickHouse, where every turf instance reads it: app polls Load every few
// seconds and hands the result to the query engine, the dashboard and the
// retention job; the collector polls the sites table itself (collector and
// query share no Go code but schema).
//
// Flags of `turf serve` (--site, --site-timezone, --goal, --retention-site)
// seed the tables at start-up (Seed) and win over the stored values
// (Snapshot.Apply): an operator who pins something in the deployment keeps
// it pinned, and the dashboard shows it as set by a flag.
//
// The tables are append-only like the dashboard's: every change is a new
// row with a higher version, readers take the newest row per key.
package settings

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/query/plan"
	"turf/schema"
)

// Site is a stored site.
type Site struct {
	Site      string    `json:"site"`
	Timezone  string    `json:"timezone"`  // "" is UTC
	Retention string    `json:"retention"` // "" is the configured default
	Created   time.Time `json:"created"`
	deleted   bool
}

// Goal is a stored goal: Goal in --goal syntax (an event name, "Visit /path"
// or "Visit /path/*").
type Goal struct {
	Site     string `json:"site"`
	Goal     string `json:"goal"`
	Currency string `json:"currency,omitempty"`
	deleted  bool
}

// Snapshot is every stored setting at one moment.
type Snapshot struct {
	Sites []Site // sorted by name, deleted ones left out
	Goals []Goal // sorted by site, then as created
}

// Flags are the settings `turf serve` was started with.
type Flags struct {
	Sites     []string
	Timezones map[string]string // site -> zone
	Goals     map[string][]string
	Retention map[string]string // site -> period, from --retention-site
}

var siteRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

// NormalizeSite checks a site's domain and returns it in lower case.
func NormalizeSite(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s = strings.TrimSuffix(s, "/")
	if len(s) > 253 || !siteRe.MatchString(s) {
		return "", fmt.Errorf("invalid site %q: give the bare domain, e.g. example.com", s)
	}
	return s, nil
}

// CheckTimezone accepts "" (UTC) and IANA zone names.
func CheckTimezone(tz string) error {
	if tz == "" {
		return nil
	}
	if _, err := time.LoadLocation(tz); err != nil || strings.HasPrefix(tz, "/") {
		return fmt.Errorf("unknown time zone %q: use a name such as Europe/Amsterdam", tz)
	}
	return nil
}

var currencyRe = regexp.MustCompile(`^[A-Z]{3}$`)

// CheckGoal accepts what --goal accepts: a custom event name, or
// "Visit /path" where the path may end in * for a wildcard. The goal's
// meaning is the query side's (query/plan); this only refuses what no
// reading could make sense of.
func CheckGoal(goal, currency string) (string, string, error) {
	goal = strings.TrimSpace(goal)
	currency = strings.ToUpper(strings.TrimSpace(currency))
	if goal == "" || len(goal) > 200 || strings.ContainsAny(goal, "\r\n\t") {
		return "", "", fmt.Errorf("invalid goal %q: give an event name (Signup) or a page (Visit /thanks)", goal)
	}
	if p, ok := strings.CutPrefix(goal, "Visit "); ok {
		p = strings.TrimSpace(p)
		if !strings.HasPrefix(p, "/") {
			return "", "", fmt.Errorf("invalid page goal %q: the page starts with /, e.g. Visit /thanks or Visit /blog/*", goal)
		}
		goal = "Visit " + p
	}
	if currency != "" && !currencyRe.MatchString(currency) {
		return "", "", fmt.Errorf("invalid currency %q: use an ISO 4217 code such as EUR", currency)
	}
	// What the query side would refuse is refused here, so a stored goal
	// never stops the settings from applying.
	spec := goal
	if currency != "" {
		spec += ";currency=" + currency
	}
	if _, err := plan.ParseGoal(spec); err != nil {
		return "", "", err
	}
	return goal, currency, nil
}

func version() uint64 { return uint64(time.Now().UnixNano()) }

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// Load reads every stored setting.
func Load(ctx context.Context, conn driver.Conn, db string) (Snapshot, error) {
	var s Snapshot
	rows, err := conn.Query(ctx, "SELECT site, argMax(timezone, version), argMax(retention, version), argMax(created, version), argMax(deleted, version) FROM "+
		schema.Table(db, schema.SettingsSites)+" GROUP BY site ORDER BY site")
	if err != nil {
		return s, fmt.Errorf("cannot read the sites: %w", err)
	}
	for rows.Next() {
		var x Site
		var del uint8
		if err := rows.Scan(&x.Site, &x.Timezone, &x.Retention, &x.Created, &del); err != nil {
			rows.Close()
			return s, fmt.Errorf("cannot read the sites: %w", err)
		}
		if del == 0 {
			s.Sites = append(s.Sites, x)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("cannot read the sites: %w", err)
	}
	rows, err = conn.Query(ctx, "SELECT site, goal, argMax(currency, version), min(created) AS c, argMax(deleted, version) FROM "+
		schema.Table(db, schema.SettingsGoals)+" GROUP BY site, goal ORDER BY site, c, goal")
	if err != nil {
		return s, fmt.Errorf("cannot read the goals: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var g Goal
		var c time.Time
		var del uint8
		if err := rows.Scan(&g.Site, &g.Goal, &g.Currency, &c, &del); err != nil {
			return s, fmt.Errorf("cannot read the goals: %w", err)
		}
		if del == 0 {
			s.Goals = append(s.Goals, g)
		}
	}
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("cannot read the goals: %w", err)
	}
	return s, nil
}

// Site returns the stored site, or nil.
func (s Snapshot) Site(name string) *Site {
	for i := range s.Sites {
		if s.Sites[i].Site == name {
			return &s.Sites[i]
		}
	}
	return nil
}

// PutSite stores a site's settings (a new site, or a changed one).
func PutSite(ctx context.Context, conn driver.Conn, db string, x Site) error {
	if x.Created.IsZero() {
		x.Created = time.Now().UTC().Truncate(time.Second)
	}
	return insert(ctx, conn, "INSERT INTO "+schema.Table(db, schema.SettingsSites)+" (site, timezone, retention, created, deleted, version)",
		"site "+x.Site, x.Site, x.Timezone, x.Retention, x.Created, boolByte(x.deleted), version())
}

// DeleteSite marks a site removed: its events are no longer accepted. Its
// stored data stays until it expires or `turf site erase` removes it.
func DeleteSite(ctx context.Context, conn driver.Conn, db string, x Site) error {
	x.deleted = true
	return PutSite(ctx, conn, db, x)
}

// PutGoal stores a goal.
func PutGoal(ctx context.Context, conn driver.Conn, db string, g Goal) error {
	return insert(ctx, conn, "INSERT INTO "+schema.Table(db, schema.SettingsGoals)+" (site, goal, currency, created, deleted, version)",
		"goal "+g.Goal, g.Site, g.Goal, g.Currency, time.Now().UTC().Truncate(time.Second), boolByte(g.deleted), version())
}

// DeleteGoal removes a goal.
func DeleteGoal(ctx context.Context, conn driver.Conn, db string, g Goal) error {
	g.deleted = true
	return PutGoal(ctx, conn, db, g)
}

func insert(ctx context.Context, conn driver.Conn, head, what string, values ...any) error {
	b, err := conn.PrepareBatch(ctx, head)
	if err != nil {
		return fmt.Errorf("cannot store %s: %w", what, err)
	}
	defer b.Close()
	if err := b.Append(values...); err != nil {
		return fmt.Errorf("cannot store %s: %w", what, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot store %s: %w", what, err)
	}
	return nil
}

// Entry is one line of the audit log.
type Entry struct {
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Detail string    `json:"detail,omitempty"`
}

// Audit records a change.
func Audit(ctx context.Context, conn driver.Conn, db string, e Entry) error {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC().Truncate(time.Second)
	}
	return insert(ctx, conn, "INSERT INTO "+schema.Table(db, schema.SettingsAudit)+" (ts, actor, action, target, detail)",
		"the audit entry of "+e.Action, e.Time, e.Actor, e.Action, e.Target, e.Detail)
}

// RecentAudit returns the newest n entries, newest first.
func RecentAudit(ctx context.Context, conn driver.Conn, db string, n int) ([]Entry, error) {
	rows, err := conn.Query(ctx, "SELECT ts, actor, action, target, detail FROM "+schema.Table(db, schema.SettingsAudit)+
		" ORDER BY ts DESC LIMIT @n", clickhouse.Named("n", n))
	if err != nil {
		return nil, fmt.Errorf("cannot read the audit log: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		if err := rows.Scan(&e.Time, &e.Actor, &e.Action, &e.Target, &e.Detail); err != nil {
			return nil, fmt.Errorf("cannot read the audit log: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// FlagActor is the audit log's actor of what flags seeded.
const FlagActor = "flag"

// Seed stores the flags' sites, time zones and goals that are not stored
// yet, so that the dashboard lists them; the flags win anyway (Apply). It
// never removes anything: a site dropped from the flags stays until an
// admin removes it.
func Seed(ctx context.Context, conn driver.Conn, db string, f Flags) error {
	s, err := Load(ctx, conn, db)
	if err != nil {
		return err
	}
	for _, site := range f.Sites {
		cur := s.Site(site)
		switch {
		case cur == nil:
			x := Site{Site: site, Timezone: f.Timezones[site], Retention: f.Retention[site]}
			if err := PutSite(ctx, conn, db, x); err != nil {
				return err
			}
			if err := Audit(ctx, conn, db, Entry{Actor: FlagActor, Action: "site.add", Target: site, Detail: x.Timezone}); err != nil {
				return err
			}
		case f.Timezones[site] != "" && cur.Timezone != f.Timezones[site]:
			x := *cur
			x.Timezone = f.Timezones[site]
			if err := PutSite(ctx, conn, db, x); err != nil {
				return err
			}
			if err := Audit(ctx, conn, db, Entry{Actor: FlagActor, Action: "site.timezone", Target: site, Detail: x.Timezone}); err != nil {
				return err
			}
		}
	}
	for _, site := range sortedKeys(f.Goals) {
		for _, goal := range f.Goals[site] {
			if slices.ContainsFunc(s.Goals, func(g Goal) bool { return g.Site == site && g.Goal == goal }) {
				continue
			}
			if err := PutGoal(ctx, conn, db, Goal{Site: site, Goal: goal}); err != nil {
				return err
			}
			if err := Audit(ctx, conn, db, Entry{Actor: FlagActor, Action: "goal.add", Target: site, Detail: goal}); err != nil {
				return err
			}
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Effective is what turf runs with: the stored settings with the flags
// laid over them.
type Effective struct {
	Sites     []string // the flag sites in flag order, then the stored ones sorted
	Timezones map[string]string
	Goals     map[string][]string
	// Specs are each site's goals as the query side takes them
	// (plan.ParseGoal): a stored goal with a currency as "Name;currency=EUR",
	// in the order of Goals.
	Specs     map[string][]string
	Retention map[string]string // site -> period, "" left out
	// ByFlag names what a flag pins, as "site", "timezone:site",
	// "retention:site" and "goal:site:goal", for the dashboard to show.
	ByFlag map[string]bool
}

// Apply lays the flags over the snapshot: flag sites are always there, a
// flag's time zone or retention wins over the stored one, flag goals come
// first and stored ones are added.
func (s Snapshot) Apply(f Flags) Effective {
	e := Effective{Timezones: map[string]string{}, Goals: map[string][]string{}, Specs: map[string][]string{},
		Retention: map[string]string{}, ByFlag: map[string]bool{}}
	seen := map[string]bool{}
	for _, x := range s.Sites {
		seen[x.Site] = true
		if x.Timezone != "" {
			e.Timezones[x.Site] = x.Timezone
		}
		if x.Retention != "" {
			e.Retention[x.Site] = x.Retention
		}
	}
	for _, site := range f.Sites {
		seen[site] = true
		e.ByFlag["site"+":"+site] = true
	}
	for site, tz := range f.Timezones {
		e.Timezones[site] = tz
		e.ByFlag["timezone:"+site] = true
	}
	for site, r := range f.Retention {
		e.Retention[site] = r
		e.ByFlag["retention:"+site] = true
	}
	for site, gs := range f.Goals {
		for _, g := range gs {
			e.Goals[site] = append(e.Goals[site], g)
			e.Specs[site] = append(e.Specs[site], g)
			e.ByFlag["goal:"+site+":"+g] = true
		}
	}
	for _, g := range s.Goals {
		if !seen[g.Site] {
			continue
		}
		if !slices.Contains(e.Goals[g.Site], g.Goal) {
			e.Goals[g.Site] = append(e.Goals[g.Site], g.Goal)
			spec := g.Goal
			if g.Currency != "" {
				spec += ";currency=" + g.Currency
			}
			e.Specs[g.Site] = append(e.Specs[g.Site], spec)
		}
	}
	e.Sites = slices.Clone(f.Sites)
	for _, x := range sortedKeys(seen) {
		if !slices.Contains(e.Sites, x) {
			e.Sites = append(e.Sites, x)
		}
	}
	return e
}
