package synth

import (
	"turf/schema"

	"context"
	"fmt"

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
				e.Country, e.Browser, e.BrowserVersion, e.OS, e.OSVersion, e.Device, e.IP, keys, vals,
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
