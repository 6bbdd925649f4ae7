package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

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
	var out *string
	switch sub {
	case "erase":
		fs = newFlagSet("site erase SITE", "Removes every row of SITE from every turf table (events, pre-aggregated tables,\nshare links) and reports what was removed. Remove SITE from serve's --site first,\nor new events of it keep arriving; events still waiting in the spool under --data-dir\nare not erased yet: erase once turf_spool_pending_events is 0.")
		dryRun = fs.Bool("dry-run", false, "only show what would be removed")
		yes = fs.Bool("yes", false, "do not ask for confirmation (scripts); otherwise the site name is read from stdin")
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

	plan, err := retention.PlanErase(ctx, conn, db, site)
	if err != nil {
		return err
	}
	dataDir := fs.Lookup("data-dir").Value.String()
	spooled, err := countSpool(dataDir, site)
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
	n, err := eraseSpool(dataDir, site)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "erased %s: %d rows from ClickHouse, %s from the spool\n", site, total, n)
	fmt.Fprintln(os.Stderr, "ClickHouse removes the replaced data parts from disk after its old_parts_lifetime (8 minutes by default); backups keep what they hold until they expire")
	return nil
}

// TODO(spool, issue 6): collector/spool has no per-site erase yet. Once it
// has one (EraseSite(dir, site), decoding records with the sink's event
// format), count and remove the site's waiting events here: they are the
// site's data too. Until then the report says the spool was not searched.
func countSpool(dataDir, site string) (string, error) {
	return "not searched (no per-site spool erase yet; see docs/privacy.md)", nil
}

func eraseSpool(dataDir, site string) (string, error) { return "nothing (not supported yet)", nil }
