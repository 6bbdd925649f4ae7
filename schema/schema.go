// Package schema owns turf's ClickHouse tables: the embedded, numbered
// migrations, applying them, and opening connections with the settings every
// part of turf needs. It is the only Go code the collector and the query side
// share.
//
// One set of migration files serves a single node and a sharded, replicated
// cluster (Options.Cluster). A file is a text/template with:
//
//   - {{.DB}}: the quoted database; {{.OnCluster}}: "ON CLUSTER `name`" or "".
//   - {{.Engine "t"}}, {{.ReplacingEngine "t" "version"}}: MergeTree on a
//     single node; on a cluster ReplicatedMergeTree with a Keeper path per
//     shard for a sharded table (ShardKeys) and one path for the whole
//     cluster, with a replica name per node ({shard}-{replica}), for every
//     other table, so shared state (salts, keys, users, sessions, shares,
//     link keys, migrations) is the same on every node.
//
// On a cluster Render rewrites two kinds of statement on a sharded table T,
// so the files name T the way readers do and need no cluster knowledge:
//
//   - CREATE TABLE ... {{.DB}}.T {{.OnCluster}} creates T_local (the
//     Replicated part) and then T as a Distributed table over it, sharded by
//     ShardKeys[T]. A new data table gets its twin by adding one line to
//     ShardKeys.
//   - ALTER TABLE {{.DB}}.T {{.OnCluster}} ... runs on T_local; when it
//     changes columns (ADD/DROP/MODIFY/RENAME/COMMENT COLUMN) the
//     Distributed T is dropped and created again from T_local, because
//     18.16 refuses ALTER ON CLUSTER on a Distributed table ("isn't
//     replicated, but shard is"). So ALTER TABLE {{.DB}}.events
//     {{.OnCluster}} ADD COLUMN region String reaches both. (18.16 has no
//     ADD COLUMN IF NOT EXISTS; a migration marked dirty is run again, so
//     such a statement must tolerate that: Migrate passes over "already
//     exists" errors of ADD COLUMN, code 15 and 44.)
//
// Migrate runs under a lock (a lease in a replicated table), does nothing
// at all when the schema is at its version (so serve starts with a node
// down), and gives every ON CLUSTER statement Options.DDLTimeout: a host
// that is down gets the statement from the DDL queue when it returns, and
// Migrate goes on; a host that is up but does not finish is an error.
package schema

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

//go:embed *.up.sql
var migrationFiles embed.FS

// Options says where the schema lives.
type Options struct {
	DB string
	// Cluster, when set, creates every table ON CLUSTER with a Replicated
	// engine, so one set of files serves a single node and a cluster.
	Cluster string
	// DDLTimeout bounds the wait for one ON CLUSTER statement on every host
	// (distributed_ddl_task_timeout); 0 means 60s.
	DDLTimeout time.Duration
}

// Migration is one numbered .up.sql file.
type Migration struct {
	Version int
	Name    string
	SQL     string // the template, before rendering
}

var fileName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.up\.sql$`)

// All returns the embedded migrations in order.
func All() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, ".")
	if err != nil {
		return nil, fmt.Errorf("BUG: cannot list embedded migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("BUG: migration file %q is not named NNNN_name.up.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile(e.Name())
		if err != nil {
			return nil, fmt.Errorf("BUG: cannot read embedded migration %q: %w", e.Name(), err)
		}
		v, _ := strconv.Atoi(m[1])
		out = append(out, Migration{Version: v, Name: m[2], SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("BUG: two migrations numbered %d", out[i].Version)
		}
	}
	return out, nil
}

type tmplData struct {
	DB        string // quoted, for SQL
	OnCluster string
	cluster   string
	rawDB     string // unquoted, for the ZooKeeper path
}

// Engine names the table engine: MergeTree on a single node,
// ReplicatedMergeTree with the conventional {shard}/{replica} macros on a
// cluster.
func (d tmplData) Engine(table string) string { return d.engine("MergeTree", table) }

// ReplacingEngine is Engine for ReplacingMergeTree tables.
func (d tmplData) ReplacingEngine(table string, version string) string {
	return d.engine("ReplacingMergeTree", table, version)
}

// SummingEngine is Engine for SummingMergeTree tables.
func (d tmplData) SummingEngine(table string, columns string) string {
	return d.engine("SummingMergeTree", table, "("+columns+")")
}

// Local names the table that holds table's rows on this node (see Local):
// what a materialized view reads from and writes to, as on a cluster it
// sees the inserts each node receives, never the Distributed table's.
func (d tmplData) Local(table string) string { return Local(d.rawDB, table, d.cluster) }

func (d tmplData) engine(kind, table string, args ...string) string {
	if d.cluster == "" {
		if len(args) == 0 {
			return kind
		}
		return kind + "(" + strings.Join(args, ", ") + ")"
	}
	path, replica := fmt.Sprintf("'/clickhouse/tables/{shard}/%s/%s'", d.rawDB, table), "'{replica}'"
	if ShardKeys[table] == "" {
		// Shared state: one replica set spanning every node of every shard.
		path, replica = fmt.Sprintf("'/clickhouse/tables/all/%s/%s'", d.rawDB, table), "'{shard}-{replica}'"
	}
	all := append([]string{path, replica}, args...)
	return "Replicated" + kind + "(" + strings.Join(all, ", ") + ")"
}

// Render turns a migration template into its SQL statements.
func Render(sqlTmpl string, o Options) ([]string, error) {
	t, err := template.New("").Parse(sqlTmpl)
	if err != nil {
		return nil, fmt.Errorf("BUG: migration template: %w", err)
	}
	d := tmplData{DB: quoteIdent(o.DB), cluster: o.Cluster, rawDB: o.DB}
	if o.Cluster != "" {
		d.OnCluster = "ON CLUSTER " + quoteIdent(o.Cluster)
	}
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("BUG: migration template: %w", err)
	}
	var stmts []string
	for _, s := range strings.Split(b.String(), ";\n") {
		if s = strings.TrimSpace(stripComments(s)); s != "" {
			s = strings.TrimSuffix(s, ";")
			if o.Cluster != "" {
				stmts = append(stmts, shard(s, o)...)
				continue
			}
			stmts = append(stmts, s)
		}
	}
	return stmts, nil
}

func stripComments(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	for _, l := range lines {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidIdent reports whether s can be used as a database or cluster name.
// Turf only accepts plain identifiers so that names never need escaping.
func ValidIdent(s string) bool { return identRe.MatchString(s) }

func quoteIdent(s string) string { return "`" + s + "`" }

// Migrate creates the database and applies every migration not yet applied,
// recording each in the migrations table. ClickHouse DDL is not
// transactional, so a migration is marked dirty before it runs and clean
// after; every statement is written to be idempotent (IF NOT EXISTS), so a
// dirty migration left by a crash is simply applied again. logf reports
// progress.
func Migrate(ctx context.Context, conn driver.Conn, o Options, logf func(format string, args ...any)) error {
	if !ValidIdent(o.DB) {
		return fmt.Errorf("invalid database name %q: use letters, digits and _", o.DB)
	}
	if o.Cluster != "" && !ValidIdent(o.Cluster) {
		return fmt.Errorf("invalid cluster name %q: use letters, digits and _", o.Cluster)
	}
	all, err := All()
	if err != nil {
		return err
	}
	// At its version already: no DDL at all, so nothing waits on a host
	// that is down.
	if done, err := upToDate(ctx, conn, o.DB, all); err != nil || done {
		return err
	}
	x, err := newDDL(conn, o, logf)
	if err != nil {
		return err
	}
	if err := x.exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(o.DB)+OnCluster(o.Cluster)); err != nil {
		return fmt.Errorf("cannot create database %s: %w", o.DB, err)
	}
	d := tmplData{DB: quoteIdent(o.DB), cluster: o.Cluster, rawDB: o.DB}
	mt := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s (version UInt32, dirty UInt8, seq UInt64, applied DateTime) ENGINE = %s ORDER BY (version, seq)",
		quoteIdent(o.DB), Migrations, OnCluster(o.Cluster), d.Engine(Migrations))
	if err := x.exec(ctx, mt); err != nil {
		return fmt.Errorf("cannot create migrations table: %w", err)
	}
	unlock, err := lock(ctx, x, o, logf)
	if err != nil {
		return err
	}
	defer unlock()
	// Read after the lock: another run may have applied everything while
	// this one waited.
	state, err := applied(ctx, conn, o.DB)
	if err != nil {
		return err
	}
	for _, m := range all {
		dirty, ok := state[m.Version]
		if ok && !dirty {
			continue
		}
		if dirty {
			logf("migration %04d_%s was interrupted earlier; applying it again", m.Version, m.Name)
		}
		start := time.Now()
		if err := record(ctx, conn, o.DB, m.Version, true); err != nil {
			return err
		}
		stmts, err := Render(m.SQL, o)
		if err != nil {
			return err
		}
		for _, s := range stmts {
			if err := x.exec(ctx, s); err != nil {
				if addedBefore(s, err) {
					continue
				}
				return fmt.Errorf("migration %04d_%s failed (it stays marked dirty and is retried on the next run): %w", m.Version, m.Name, err)
			}
		}
		if err := record(ctx, conn, o.DB, m.Version, false); err != nil {
			return err
		}
		logf("applied migration %04d_%s in %s", m.Version, m.Name, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// applied returns, per recorded version, whether its newest record is dirty.
func applied(ctx context.Context, conn driver.Conn, db string) (map[int]bool, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT version, argMax(dirty, seq) FROM %s.%s GROUP BY version", quoteIdent(db), Migrations))
	if err != nil {
		return nil, fmt.Errorf("cannot read applied migrations: %w", err)
	}
	defer rows.Close()
	out := map[int]bool{}
	for rows.Next() {
		var v uint32
		var dirty uint8
		if err := rows.Scan(&v, &dirty); err != nil {
			return nil, fmt.Errorf("cannot read applied migrations: %w", err)
		}
		out[int(v)] = dirty == 1
	}
	return out, rows.Err()
}

func record(ctx context.Context, conn driver.Conn, db string, version int, dirty bool) error {
	var d uint8
	if dirty {
		d = 1
	}
	// clickhouse-go sends inline VALUES in a way 18.16 never answers; a
	// batch with an explicit column list works on every version.
	b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (version, dirty, seq, applied)", quoteIdent(db), Migrations))
	if err != nil {
		return fmt.Errorf("cannot record migration %04d: %w", version, err)
	}
	defer b.Close()
	if err := b.Append(uint32(version), d, uint64(time.Now().UnixNano()), time.Now()); err != nil {
		return fmt.Errorf("cannot record migration %04d: %w", version, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot record migration %04d: %w", version, err)
	}
	return nil
}

// Open connects to ClickHouse over the native protocol. The DSN's path names
// the database; it need not exist yet (Migrate creates it), so the connection
// itself uses the default database and every query names its tables in full.
func Open(dsn string) (driver.Conn, string, error) {
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return nil, "", fmt.Errorf("invalid ClickHouse DSN: %w", err)
	}
	db := opts.Auth.Database
	if db == "" {
		db = "turf"
	}
	if !ValidIdent(db) {
		return nil, "", fmt.Errorf("invalid database name %q in the ClickHouse DSN: use letters, digits and _", db)
	}
	opts.Auth.Database = ""
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.MaxOpenConns == 0 {
		opts.MaxOpenConns = 8
	}
	if opts.MaxCompressionBuffer == 0 {
		// clickhouse-go encodes a block into one buffer and writes it
		// when the buffer reaches this size (default 10 MiB): a batch of
		// 10,000 events was encoded whole and written in one go, some
		// 30 ms that the collector's handlers waited on a core shared
		// with the insert. In 256 KiB steps the block is the same, written
		// in pieces, and the handlers run in between. DSN parameter
		// max_compression_buffer overrides it.
		opts.MaxCompressionBuffer = 256 << 10
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, "", fmt.Errorf("cannot connect to ClickHouse: %w", err)
	}
	if Wrap != nil {
		conn = Wrap(conn, opts.Addr, db)
	}
	return conn, db, nil
}

// Wrap, when set, wraps every connection Open returns; addrs are the
// servers it talks to and db the DSN's database. Only tests set it
// (internal/chtest replays every statement on a modern ClickHouse through
// it), before their first Open; production code never does.
var Wrap func(conn driver.Conn, addrs []string, db string) driver.Conn

// Features are the optional server capabilities turf uses when present.
type Features struct {
	Version string
	// TTL: table TTL expressions (19.6+); without it retention runs as a job.
	TTL bool
	// LowCardinalityNeedsSetting: 18.x knows LowCardinality only behind
	// allow_experimental_low_cardinality_type.
	LowCardinalityNeedsSetting bool
}

// Check reads the server version and refuses servers turf cannot work with:
// the new-style MergeTree syntax and ALTER ... DELETE need 18.16 or newer.
func Check(ctx context.Context, conn driver.Conn) (Features, error) {
	v, err := conn.ServerVersion()
	if err != nil {
		return Features{}, fmt.Errorf("cannot read ClickHouse server version: %w", err)
	}
	f := Features{Version: fmt.Sprintf("%d.%d.%d", v.Version.Major, v.Version.Minor, v.Version.Patch)}
	major, minor := int(v.Version.Major), int(v.Version.Minor)
	if major < 18 || (major == 18 && minor < 16) {
		return f, fmt.Errorf("ClickHouse %s is too old: turf needs 18.16 or newer", f.Version)
	}
	f.TTL = major > 19 || (major == 19 && minor >= 6)
	f.LowCardinalityNeedsSetting = major < 19
	return f, nil
}

// String lists the optional features for the start-up log.
func (f Features) String() string {
	return fmt.Sprintf("ClickHouse %s (table TTL: %v, LowCardinality behind a setting: %v)", f.Version, f.TTL, f.LowCardinalityNeedsSetting)
}

// addedBefore reports whether err is ClickHouse refusing an ADD COLUMN
// because the column exists: 18.16 has no ADD COLUMN IF NOT EXISTS, so a
// dirty migration applied again meets the columns its first run added.
// 18.16 says ILLEGAL_COLUMN (44) "... column with this name already
// exists", later versions DUPLICATE_COLUMN (15).
//
// On a cluster the refusal may come back as the text of a distributed DDL
// task's result rather than an exception, so the text counts too.
func addedBefore(stmt string, err error) bool {
	if !addColumn.MatchString(stmt) {
		return false
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return ex.Code == 15 || ex.Code == 44 && strings.Contains(ex.Message, "already exists")
	}
	msg := err.Error()
	return strings.Contains(msg, "already exists") || strings.Contains(msg, "code: 15,") || strings.Contains(msg, "code: 44,")
}

var addColumn = regexp.MustCompile(`(?i)\bADD\s+COLUMN\b`)
