package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/VictoriaMetrics/metrics"

	"turf/collector/sink"
	"turf/collector/spool"
	"turf/retention"
)

// turf site erase|export: a site's data on request. The logic is in
// retention/site.go.

func init() {
	register("site", "erase or export every row of a site (turf site erase example.com)", runSite)
}

const siteUsage = "usage: turf site erase example.com [--dry-run] [--yes] | turf site export example.com [--out DIR]"

func runSite(args []string) error {
	if len(args) < 2 || strings.HasPrefix(args[0], "-") || strings.HasPrefix(args[1], "-") {
		return errors.New(siteUsage)
	}
	sub, site, args := args[0], strings.ToLower(strings.TrimSpace(args[1])), args[2:]
	if site == "" {
		return retention.ErrNoSite
	}
	var fs = newFlagSet("site "+sub+" SITE", "")
	var dryRun, yes *bool
	var grace *time.Duration
	var out *string
	switch sub {
	case "erase":
		fs = newFlagSet("site erase SITE", "Removes every row of SITE from every turf table (events, pre-aggregated tables,\nshare links) and reports what was removed. Remove SITE from serve's --site first,\nor new events of it keep arriving. Events waiting in the spool under --data-dir are\ndelivered first and erased with the rest.")
		dryRun = fs.Bool("dry-run", false, "only show what would be removed")
		yes = fs.Bool("yes", false, "do not ask for confirmation (scripts); otherwise the site name is read from stdin")
		grace = fs.Duration("spool-grace", 10*time.Second, "when a running turf holds the spool under --data-dir: wait this long for it to deliver, then erase what arrived")
	case "export":
		fs = newFlagSet("site export SITE", "Writes every row of SITE as CSV, one file per table with a header, plus the column\ntypes (TABLE.structure.txt) for loading the files back or converting them to Parquet.")
		out = fs.String("out", "", "directory to write to (default ./export-SITE-DATE)")
	default:
		return fmt.Errorf("unknown site command %q: %s", sub, siteUsage)
	}
	open := openClickHouse(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	conn, db, closeConn, err := open()
	if err != nil {
		return err
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if sub == "export" {
		dir := *out
		if dir == "" {
			dir = "export-" + site + "-" + time.Now().UTC().Format("20060102")
		}
		files, err := retention.Export(ctx, conn, db, site, dir)
		for _, f := range files {
			fmt.Printf("%s\t%d rows\n", f.Path, f.Rows)
		}
		return err
	}

	// Events of the site may still wait in the spool: deliver them first, so
	// the erase below removes them with the rest.
	dataDir := fs.Lookup("data-dir").Value.String()
	spooled, running := "delivered to ClickHouse first, then erased with it", false
	if !*dryRun {
		if spooled, running, err = drainSpool(ctx, conn, db, dataDir); err != nil {
			return err
		}
	}
	plan, err := retention.PlanErase(ctx, conn, db, site)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "WHERE\tROWS\tHOW")
	var total uint64
	for _, r := range plan {
		how := "-"
		switch {
		case len(r.Partitions) > 0 && r.DeleteRows > 0:
			how = fmt.Sprintf("drop %d partition(s), delete the rest", len(r.Partitions))
		case len(r.Partitions) > 0:
			how = fmt.Sprintf("drop %d partition(s)", len(r.Partitions))
		case r.DeleteRows > 0:
			how = "delete"
		}
		fmt.Fprintf(w, "%s\t%d\t%s\n", r.Table.Name, r.Rows(), how)
		total += r.Rows()
	}
	fmt.Fprintf(w, "spool (%s)\t%s\t-\n", dataDir, spooled)
	_ = w.Flush()
	if *dryRun {
		fmt.Fprintln(os.Stderr, "dry run: nothing was removed")
		return nil
	}
	if !*yes {
		fmt.Fprintf(os.Stderr, "This removes %d rows of %s for good. Type the site name to go on: ", total, site)
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		if strings.TrimSpace(line) != site {
			return errors.New("not confirmed; nothing was removed")
		}
	}
	if err := retention.Erase(ctx, conn, db, fs.Lookup("clickhouse-cluster").Value.String(), plan); err != nil {
		return err
	}
	if running {
		// A running turf delivers its spool itself, within a flush interval
		// or two while ClickHouse answers: erase what arrives meanwhile.
		time.Sleep(*grace)
		again, err := retention.PlanErase(ctx, conn, db, site)
		if err != nil {
			return err
		}
		var late uint64
		for _, r := range again {
			late += r.Rows()
		}
		if late > 0 {
			if err := retention.Erase(ctx, conn, db, fs.Lookup("clickhouse-cluster").Value.String(), again); err != nil {
				return err
			}
			total += late
		}
		spooled = fmt.Sprintf("%d rows delivered by the running turf within %s, erased too", late, *grace)
	}
	fmt.Fprintf(os.Stderr, "erased %s: %d rows from ClickHouse; spool: %s\n", site, total, spooled)
	fmt.Fprintln(os.Stderr, "ClickHouse removes the replaced data parts from disk after its old_parts_lifetime (8 minutes by default); backups keep what they hold until they expire")
	return nil
}

// drainSpool delivers every event waiting in the spool under dataDir to
// ClickHouse. When a running turf holds the spool it is delivering it
// itself; drainSpool then reports running, and the caller erases again after
// a grace period.
func drainSpool(ctx context.Context, conn driver.Conn, db, dataDir string) (msg string, running bool, err error) {
	dir := filepath.Join(dataDir, "spool")
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return "none under " + dataDir, false, nil
	}
	set := metrics.NewSet()
	snk, err := sink.New(conn, db, sink.Config{Dir: dir, BatchSize: 10000, FlushInterval: time.Second, QueueSize: 1000}, set, log.Printf)
	if errors.Is(err, spool.ErrLocked) {
		return "held by a running turf", true, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("cannot open the spool to deliver its events before erasing: %w", err)
	}
	go snk.Run()
	// Bounded: with ClickHouse down the sink would retry for ever.
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	ferr := snk.Flush(fctx)
	if err := snk.Close(fctx); err != nil && ferr == nil {
		ferr = err
	}
	if ferr != nil {
		return "", false, fmt.Errorf("cannot deliver the spool's events before erasing (is ClickHouse up?): %w", ferr)
	}
	n := set.GetOrCreateCounter("turf_events_inserted_total").Get()
	return fmt.Sprintf("%d waiting events (of all sites) delivered first, then erased with the rest", n), false, nil
}
