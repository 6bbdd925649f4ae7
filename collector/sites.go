package collector

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/schema"
)

// Sites is the set of sites whose events are stored: the --site flags plus
// the sites admins added in the dashboard, which the query side writes to
// the settings_sites table. The collector reads that table itself (Sync,
// every few seconds in Run), so a site added on any instance is accepted by
// every collector without a restart, and the collector keeps importing
// nothing of the query side.
type Sites struct {
	conn  driver.Conn // nil: the flags only
	table string
	flags []string
	set   atomic.Pointer[map[string]bool]
}

// NewSites starts with the flag sites; conn may be nil (no stored sites).
func NewSites(conn driver.Conn, db string, flags []string) (*Sites, error) {
	s := &Sites{conn: conn, table: schema.Table(db, schema.SettingsSites)}
	for _, f := range flags {
		f = strings.ToLower(strings.TrimSpace(f))
		if f == "" || strings.ContainsAny(f, "/:@ ") {
			return nil, fmt.Errorf("invalid site %q: give the bare domain, e.g. example.com", f)
		}
		s.flags = append(s.flags, f)
	}
	s.store(nil)
	return s, nil
}

func (s *Sites) store(stored []string) {
	m := make(map[string]bool, len(s.flags)+len(stored))
	for _, f := range s.flags {
		m[f] = true
	}
	for _, x := range stored {
		m[x] = true
	}
	s.set.Store(&m)
}

// Has reports whether events of site are stored.
func (s *Sites) Has(site string) bool { return (*s.set.Load())[site] }

// Map is the current set; callers must not change it.
func (s *Sites) Map() map[string]bool { return *s.set.Load() }

// Len is how many sites there are.
func (s *Sites) Len() int { return len(*s.set.Load()) }

// Sync reads the stored sites.
func (s *Sites) Sync(ctx context.Context) error {
	if s.conn == nil {
		return nil
	}
	rows, err := s.conn.Query(ctx, "SELECT site FROM "+s.table+" GROUP BY site HAVING argMax(deleted, version) = 0")
	if err != nil {
		return fmt.Errorf("cannot read the sites: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var x string
		if err := rows.Scan(&x); err != nil {
			return fmt.Errorf("cannot read the sites: %w", err)
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read the sites: %w", err)
	}
	s.store(out)
	return nil
}

// Run calls Sync every interval until ctx ends, logging failures: the last
// set read stays in force meanwhile.
func (s *Sites) Run(ctx context.Context, every time.Duration, logf func(string, ...any)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := s.Sync(sctx); err != nil {
			logf("collector: %v", err)
		}
		cancel()
	}
}
