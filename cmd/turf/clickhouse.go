package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"path/filepath"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/internal/chserver"
	"turf/schema"
)

// dbFlags are the flags of every command that talks to ClickHouse.
type dbFlags struct {
	dsn     string
	dataDir string
	cluster string
	ddl     time.Duration
}

func addDBFlags(fs *flag.FlagSet) *dbFlags {
	d := &dbFlags{}
	fs.StringVar(&d.dsn, "clickhouse", "", "ClickHouse DSN, e.g. clickhouse://user:pass@127.0.0.1:9000/turf (native protocol; the path is the database).\nEmpty: turf starts and manages its own local ClickHouse under --data-dir")
	fs.StringVar(&d.dataDir, "data-dir", "./data", "directory for turf's own files: the managed ClickHouse (when --clickhouse is empty) and, later, the spool")
	fs.StringVar(&d.cluster, "clickhouse-cluster", "", "ClickHouse cluster name: create tables ON CLUSTER, sharded behind Distributed tables (see deploy/clickhouse-cluster and --clickhouse-ddl-timeout)")
	fs.DurationVar(&d.ddl, "clickhouse-ddl-timeout", time.Minute, "how long one ON CLUSTER statement waits for every host of --clickhouse-cluster; hosts that are down get it from the DDL queue when they return")
	return d
}

// clickhouse is an open connection and what to do to let it go.
type clickhouse struct {
	conn    driver.Conn
	db      string
	managed *chserver.Server
}

// open connects to the configured server. Without a DSN it uses the
// managed ClickHouse under --data-dir: the one a running `turf serve` owns
// there (recorded by chserver.Publish), or else one it starts for itself.
// serve is true for `turf serve`, which owns its server for its lifetime
// and records it for the other commands.
func (d *dbFlags) open(ctx context.Context, serve bool) (*clickhouse, schema.Features, error) {
	c := &clickhouse{}
	dsn := d.dsn
	if dsn == "" {
		dir := filepath.Join(d.dataDir, "clickhouse")
		r, err := chserver.FindRunning(ctx, dir)
		switch {
		case err == nil && serve:
			return nil, schema.Features{}, fmt.Errorf("turf serve is already running on --data-dir %s (pid %d, ClickHouse on %s): "+
				"stop it first (kill %d), or give this one another --data-dir, or --clickhouse with a DSN to share a server", d.dataDir, r.PID, r.Addr, r.PID)
		case err == nil:
			log.Printf("using the ClickHouse of the turf serve running on --data-dir %s (pid %d, %s)", d.dataDir, r.PID, r.Addr)
			dsn = r.DSN("turf")
		case !errors.Is(err, chserver.ErrNotRunning):
			return nil, schema.Features{}, err
		default:
			log.Printf("no --clickhouse given: starting a managed local ClickHouse in %s", dir)
			start := time.Now()
			srv, err := chserver.Start(ctx, dir)
			if err != nil {
				return nil, schema.Features{}, fmt.Errorf("cannot start the managed ClickHouse: %w", err)
			}
			c.managed = srv
			dsn = srv.DSN("turf")
			log.Printf("managed ClickHouse is up on %s after %s (data in %s)", srv.Addr(), time.Since(start).Round(time.Millisecond), filepath.Join(dir, "data"))
			if serve {
				if err := srv.Publish(); err != nil {
					c.close()
					return nil, schema.Features{}, err
				}
			}
		}
	}
	conn, db, err := schema.Open(dsn)
	if err != nil {
		c.close()
		return nil, schema.Features{}, err
	}
	c.conn, c.db = conn, db
	f, err := schema.Check(ctx, conn)
	if err != nil {
		c.close()
		return nil, f, err
	}
	return c, f, nil
}

func (c *clickhouse) migrate(ctx context.Context, d *dbFlags) error {
	if err := schema.CheckCluster(ctx, c.conn, d.cluster); err != nil {
		return err
	}
	return schema.Migrate(ctx, c.conn, schema.Options{DB: c.db, Cluster: d.cluster, DDLTimeout: d.ddl}, log.Printf)
}

func (c *clickhouse) close() {
	if c.conn != nil {
		c.conn.Close()
	}
	if c.managed != nil {
		start := time.Now()
		if err := c.managed.Stop(); err != nil {
			log.Printf("stopping the managed ClickHouse: %v", err)
		} else {
			log.Printf("managed ClickHouse stopped in %s", time.Since(start).Round(time.Millisecond))
		}
	}
}

// openClickHouse registers the database flags on fs and returns a function
// that, after parsing, opens the (migrated) database; the returned func
// releases it. Admin commands (key, site, ...) use it.
func openClickHouse(fs *flag.FlagSet) func() (driver.Conn, string, func(), error) {
	d := addDBFlags(fs)
	return func() (driver.Conn, string, func(), error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c, _, err := d.open(ctx, false)
		if err != nil {
			return nil, "", nil, err
		}
		if err := c.migrate(ctx, d); err != nil {
			c.close()
			return nil, "", nil, err
		}
		return c.conn, c.db, c.close, nil
	}
}

func init() {
	register("migrate", "apply the ClickHouse schema and exit", func(args []string) error {
		fs := newFlagSet("migrate", "Creates the database and applies every migration not yet applied. Safe to run again.")
		d := addDBFlags(fs)
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		c, f, err := d.open(ctx, false)
		if err != nil {
			return err
		}
		defer c.close()
		log.Print(f)
		if err := c.migrate(ctx, d); err != nil {
			return err
		}
		log.Printf("schema of database %s is up to date", c.db)
		return nil
	})
}
