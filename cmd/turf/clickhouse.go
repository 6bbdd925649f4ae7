package main

import (
	"context"
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
}

func addDBFlags(fs *flag.FlagSet) *dbFlags {
	d := &dbFlags{}
	fs.StringVar(&d.dsn, "clickhouse", "", "ClickHouse DSN, e.g. clickhouse://user:pass@127.0.0.1:9000/turf (native protocol; the path is the database).\nEmpty: turf starts and manages its own local ClickHouse under --data-dir")
	fs.StringVar(&d.dataDir, "data-dir", "./data", "directory for turf's own files: the managed ClickHouse (when --clickhouse is empty) and, later, the spool")
	fs.StringVar(&d.cluster, "clickhouse-cluster", "", "ClickHouse cluster name: create tables ON CLUSTER with Replicated engines (see deploy/clickhouse-cluster)")
	return d
}

// clickhouse is an open connection and what to do to let it go.
type clickhouse struct {
	conn    driver.Conn
	db      string
	managed *chserver.Server
}

// open connects to the configured server, first starting the managed one
// when no DSN is given, and checks the server version.
func (d *dbFlags) open(ctx context.Context) (*clickhouse, schema.Features, error) {
	c := &clickhouse{}
	dsn := d.dsn
	if dsn == "" {
		dir := filepath.Join(d.dataDir, "clickhouse")
		log.Printf("no --clickhouse given: starting a managed local ClickHouse in %s", dir)
		start := time.Now()
		srv, err := chserver.Start(ctx, dir)
		if err != nil {
			return nil, schema.Features{}, fmt.Errorf("cannot start the managed ClickHouse: %w", err)
		}
		c.managed = srv
		dsn = srv.DSN("turf")
		log.Printf("managed ClickHouse is up on %s after %s (data in %s)", srv.Addr(), time.Since(start).Round(time.Millisecond), filepath.Join(dir, "data"))
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

func (c *clickhouse) migrate(ctx context.Context, cluster string) error {
	return schema.Migrate(ctx, c.conn, schema.Options{DB: c.db, Cluster: cluster}, log.Printf)
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
		c, _, err := d.open(ctx)
		if err != nil {
			return nil, "", nil, err
		}
		if err := c.migrate(ctx, d.cluster); err != nil {
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
		c, f, err := d.open(ctx)
		if err != nil {
			return err
		}
		defer c.close()
		log.Print(f)
		if err := c.migrate(ctx, d.cluster); err != nil {
			return err
		}
		log.Printf("schema of database %s is up to date", c.db)
		return nil
	})
}
