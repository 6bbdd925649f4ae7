package synth

import (
	"turf/schema"

	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Insert writes events straight into the events table of database db, in
// batches, the way the collector's sink does.
func Insert(ctx context.Context, conn driver.Conn, db string, evs []Event) error {
	for len(evs) > 0 {
		n := min(len(evs), 100000)
		b, err := conn.PrepareBatch(ctx, schema.EventInsert(db))
		if err != nil {
			return fmt.Errorf("cannot insert events: %w", err)
		}
		for _, e := range evs[:n] {
			keys, vals := e.PropsKeys, e.PropsValues
			if keys == nil {
				keys, vals = []string{}, []string{}
			}
			if err := b.Append(e.Site, e.TS, e.Name, e.VisitorID, e.Hostname, e.Pathname, e.ReferrerHost, e.ReferrerPath,
				e.Source, e.Channel, e.UTMSource, e.UTMMedium, e.UTMCampaign, e.UTMContent, e.UTMTerm,
				e.Country, notSet(e.Region), notSet(e.City), e.Browser, e.BrowserVersion, e.OS, e.OSVersion, e.Device, e.IP, keys, vals,
				e.RevenueMicros, e.RevenueCurrency, e.Interactive, "synth"); err != nil {
				b.Close()
				return fmt.Errorf("cannot insert events: %w", err)
			}
		}
		if err := b.Send(); err != nil {
			b.Close()
			return fmt.Errorf("cannot insert events: %w", err)
		}
		b.Close()
		evs = evs[n:]
	}
	return nil
}

func notSet(s string) string {
	if s == "" {
		return "(not set)"
	}
	return s
}

// Engagement is one row of the engagements table: an engagement beacon.
// ScrollDepth is 0..100, or 255 for none.
type Engagement struct {
	Site               string
	TS                 time.Time
	VisitorID          uint64
	Hostname, Pathname string
	ScrollDepth        uint8
	EngagementMS       uint32
	// How the tracker sends it: the page's URL, from the person's address
	// and browser.
	URL, IP, UserAgent string
}

// InsertEngagements writes engagement beacons straight into the
// engagements table of database db, as the collector's engagement sink does.
func InsertEngagements(ctx context.Context, conn driver.Conn, db string, es []Engagement) error {
	if len(es) == 0 {
		return nil
	}
	b, err := conn.PrepareBatch(ctx, schema.EngagementInsert(db))
	if err != nil {
		return fmt.Errorf("cannot insert engagements: %w", err)
	}
	defer b.Close()
	for _, e := range es {
		if err := b.Append(e.Site, e.TS, e.VisitorID, e.Hostname, e.Pathname, e.ScrollDepth, e.EngagementMS, "synth"); err != nil {
			return fmt.Errorf("cannot insert engagements: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot insert engagements: %w", err)
	}
	return nil
}
