package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/query/settings"
	"turf/retention"
)

// retentionFlags are shared by serve (the scheduled job) and the retention
// command (one run, or a dry run), so both read the same policy.
type retentionFlags struct {
	events     retention.Period
	sites      listFlag
	aggregates retention.Period
}

func addRetentionFlags(fs *flag.FlagSet) *retentionFlags {
	r := &retentionFlags{events: retention.DefaultPeriod}
	fs.Var(&r.events, "retention", "how long events are kept, e.g. 13mo, 400d, 2y (default 13mo, the CNIL's limit for consent-exempt audience measurement); older rows are removed on a schedule, see --retention-site and --retention-aggregates")
	fs.Var(&r.sites, "retention-site", "per-site --retention as site=period, e.g. example.com=25mo (repeatable, or comma-separated)")
	fs.Var(&r.aggregates, "retention-aggregates", "keep pre-aggregated tables (no visitor ids) this long when longer than the site's --retention, e.g. 25mo; empty: the same as the events")
	return r
}

func (r *retentionFlags) policy() (retention.Policy, error) {
	sites, err := retention.ParseSitePeriods(r.sites)
	if err != nil {
		return retention.Policy{}, err
	}
	return retention.Policy{Events: r.events, Sites: sites, Aggregates: r.aggregates}, nil
}

func init() {
	register("retention", "remove data older than --retention now, or show what would go (--dry-run)", runRetention)
}

func runRetention(args []string) error {
	fs := newFlagSet("retention", "Removes every row older than its retention period from every turf table with a site\ncolumn: whole expired partitions are dropped, the remainder deleted. `turf serve` does\nthe same every --retention-interval; this command runs it once, or with --dry-run shows\nwhat would be removed.")
	rf := addRetentionFlags(fs)
	dryRun := fs.Bool("dry-run", false, "only show what would be removed")
	open := openClickHouse(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	pol, err := rf.policy()
	if err != nil {
		return err
	}
	conn, db, closeConn, err := open()
	if err != nil {
		return err
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	// Per-site periods set in the dashboard count here too, as in serve's
	// own job; --retention-site wins over them.
	if pol.Sites, err = storedSitePeriods(ctx, conn, db, pol.Sites); err != nil {
		return err
	}
	cluster := fs.Lookup("clickhouse-cluster").Value.String()
	e := retention.New(conn, db, retention.Config{Policy: pol, Cluster: cluster}, time.Now, logStderr)
	pl, err := e.Plan(ctx)
	if err != nil {
		return err
	}
	printPlan(pl, pol)
	if *dryRun {
		fmt.Fprintln(os.Stderr, "dry run: nothing was removed")
		return nil
	}
	if err := e.Apply(ctx, pl); err != nil {
		return err
	}
	if err := e.Wait(ctx, pl); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "done")
	return nil
}

func printPlan(pl retention.Plan, pol retention.Policy) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "TABLE\tKEEPS ROWS FROM\tPARTITIONS DROPPED\tROWS DELETED\n")
	for _, tp := range pl.Tables {
		if tp.Skipped != "" {
			fmt.Fprintf(w, "%s\t(%s)\t\t\n", tp.Table.Name, tp.Skipped)
			continue
		}
		parts := "none"
		if n := len(tp.Partitions); n > 0 {
			var rows uint64
			for _, p := range tp.Partitions {
				rows += p.Rows
			}
			parts = fmt.Sprintf("%d, %d rows (%s", n, rows, tp.Partitions[0].ID)
			if n > 1 {
				parts += " to " + tp.Partitions[n-1].ID
			}
			parts += ")"
		}
		del := fmt.Sprint(tp.DeleteRows)
		if pl.UseTTL {
			del += " (by TTL, as parts merge)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", tp.Table.Name, pol.Describe(tp.Table, pl.Now), parts, del)
	}
	_ = w.Flush()
	if pl.UseTTL {
		for _, tp := range pl.Tables {
			if tp.TTLChange {
				fmt.Printf("%s: TTL will be set to %s\n", tp.Table.Name, tp.TTL)
			}
		}
	}
}

func logStderr(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

// storedSitePeriods lays the --retention-site flags over the per-site
// retention stored in the dashboard's settings.
func storedSitePeriods(ctx context.Context, conn driver.Conn, db string, flags map[string]retention.Period) (map[string]retention.Period, error) {
	snap, err := settings.Load(ctx, conn, db)
	if err != nil {
		return nil, err
	}
	out := map[string]retention.Period{}
	for _, s := range snap.Sites {
		if s.Retention == "" {
			continue
		}
		p, err := retention.ParsePeriod(s.Retention)
		if err != nil {
			return nil, fmt.Errorf("stored retention of %s: %w", s.Site, err)
		}
		out[s.Site] = p
	}
	for site, p := range flags {
		out[site] = p
	}
	return out, nil
}
