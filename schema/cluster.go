package schema

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

var (
	createRe = regexp.MustCompile("(?s)^CREATE TABLE (IF NOT EXISTS )?`([A-Za-z0-9_]+)`\\.([A-Za-z0-9_]+)(\\s+ON CLUSTER `[A-Za-z0-9_]+`)(.*)$")
	alterRe  = regexp.MustCompile("(?s)^ALTER TABLE `([A-Za-z0-9_]+)`\\.([A-Za-z0-9_]+)(\\s+ON CLUSTER `[A-Za-z0-9_]+`)(.*)$")
	columnOp = regexp.MustCompile(`(?i)\b(ADD|DROP|MODIFY|RENAME|COMMENT|CLEAR)\s+COLUMN\b`)
)

// shard rewrites one rendered statement for a cluster (see the package
// comment): CREATE and ALTER of a sharded table go to its _local part, and
// its Distributed twin is created, or recreated after a column change.
func shard(stmt string, o Options) []string {
	if m := createRe.FindStringSubmatch(stmt); m != nil && m[2] == o.DB && ShardKeys[m[3]] != "" {
		local := "CREATE TABLE IF NOT EXISTS `" + o.DB + "`." + m[3] + LocalSuffix + m[4] + m[5]
		return []string{local, distributed(o, m[3])}
	}
	if m := alterRe.FindStringSubmatch(stmt); m != nil && m[1] == o.DB && ShardKeys[m[2]] != "" {
		out := []string{"ALTER TABLE `" + o.DB + "`." + m[2] + LocalSuffix + m[3] + m[4]}
		if columnOp.MatchString(m[4]) {
			out = append(out, "DROP TABLE IF EXISTS "+Table(o.DB, m[2])+OnCluster(o.Cluster), distributed(o, m[2]))
		}
		return out
	}
	return []string{stmt}
}

// distributed creates table's Distributed twin over its _local part.
func distributed(o Options, table string) string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s%s AS %s ENGINE = Distributed(%s, %s, %s, %s)",
		Table(o.DB, table), OnCluster(o.Cluster), Table(o.DB, table+LocalSuffix), quoteIdent(o.Cluster), quoteIdent(o.DB), table+LocalSuffix, ShardKeys[table])
}

// upToDate reports whether every migration is recorded clean, reading only
// the connected node (the migrations table is replicated to all).
func upToDate(ctx context.Context, conn driver.Conn, db string, all []Migration) (bool, error) {
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", db, Migrations).Scan(&n); err != nil {
		return false, fmt.Errorf("cannot look for the migrations table: %w", err)
	}
	if n == 0 {
		return false, nil
	}
	state, err := applied(ctx, conn, db)
	if err != nil {
		return false, err
	}
	for _, m := range all {
		if dirty, ok := state[m.Version]; !ok || dirty {
			return false, nil
		}
	}
	return true, nil
}

// ddl runs statements, giving ON CLUSTER ones a bounded wait.
type ddl struct {
	conn    driver.Conn
	o       Options
	logf    func(string, ...any)
	timeout time.Duration
	// zigzag: 18.x reads distributed_ddl_task_timeout (a signed setting) as
	// a zigzag varint from the native protocol, where clickhouse-go writes a
	// plain one: 4 arrives as 2, and 3 as -2, which means wait for ever.
	zigzag bool
	down   bool // a host did not answer: later statements wait less
}

func newDDL(conn driver.Conn, o Options, logf func(string, ...any)) (*ddl, error) {
	x := &ddl{conn: conn, o: o, logf: logf, timeout: o.DDLTimeout}
	if x.timeout <= 0 {
		x.timeout = time.Minute
	}
	if o.Cluster != "" {
		v, err := conn.ServerVersion()
		if err != nil {
			return nil, fmt.Errorf("cannot read ClickHouse server version: %w", err)
		}
		x.zigzag = v.Version.Major < 19
	}
	return x, nil
}

var unfinished = regexp.MustCompile(`There are (\d+) unfinished hosts \((\d+) of them are currently active\)`)

// exec runs one statement. An ON CLUSTER statement that some hosts have not
// run when the timeout ends is fine when none of them is active (they are
// down and run it from the DDL queue when they return) and an error
// otherwise.
func (x *ddl) exec(ctx context.Context, stmt string, args ...any) error {
	if x.o.Cluster == "" || !strings.Contains(stmt, " ON CLUSTER ") {
		return x.conn.Exec(ctx, stmt, args...)
	}
	t := x.timeout
	if x.down && t > 10*time.Second {
		t = 10 * time.Second
	}
	secs := int(t / time.Second)
	if secs < 1 {
		secs = 1
	}
	wire := secs
	if x.zigzag {
		wire = 2 * secs
	}
	cctx, cancel := context.WithTimeout(ctx, t+30*time.Second)
	defer cancel()
	cctx = clickhouse.Context(cctx, clickhouse.WithSettings(clickhouse.Settings{"distributed_ddl_task_timeout": wire}))
	err := x.conn.Exec(cctx, stmt, args...)
	if err == nil {
		return nil
	}
	if m := unfinished.FindStringSubmatch(err.Error()); m != nil {
		hosts, _ := strconv.Atoi(m[1])
		active, _ := strconv.Atoi(m[2])
		if active == 0 {
			if !x.down {
				x.logf("warning: %d host(s) of cluster %s are down; they apply the schema from the DDL queue when they return", hosts, x.o.Cluster)
			}
			x.down = true
			return nil
		}
		return fmt.Errorf("ON CLUSTER statement not finished after %ds on %d host(s) that are up (raise --clickhouse-ddl-timeout or look at system.distributed_ddl_queue / the server logs): %w", secs, active, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("ON CLUSTER statement got no answer within %s: %w", t+30*time.Second, err)
	}
	return err
}

// The migration lock is a lease in a table replicated to every node: each
// run writes a claim and renews it while it works; the oldest live claim
// (ties by token) holds the lock. A claim is seen on other nodes once
// replicated, so a run waits claimWait before it looks.
const (
	lockTable = "schema_lock"
	lease     = 30 * time.Second
	claimWait = 2 * time.Second
)

func lock(ctx context.Context, x *ddl, o Options, logf func(string, ...any)) (func(), error) {
	d := tmplData{DB: quoteIdent(o.DB), cluster: o.Cluster, rawDB: o.DB}
	create := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s%s (token String, since DateTime, beat DateTime, released UInt8) ENGINE = %s ORDER BY (token, beat)",
		Table(o.DB, lockTable), OnCluster(o.Cluster), d.Engine(lockTable))
	if err := x.exec(ctx, create); err != nil {
		return nil, fmt.Errorf("cannot create the migration lock table: %w", err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	since := time.Now().UTC().Truncate(time.Second)
	write := func(ctx context.Context, released uint8) error {
		batch, err := x.conn.PrepareBatch(ctx, "INSERT INTO "+Table(o.DB, lockTable)+" (token, since, beat, released)")
		if err != nil {
			return err
		}
		defer batch.Close()
		if err := batch.Append(token, since, time.Now().UTC(), released); err != nil {
			return err
		}
		return batch.Send()
	}
	if err := write(ctx, 0); err != nil {
		return nil, fmt.Errorf("cannot claim the migration lock: %w", err)
	}
	q := fmt.Sprintf("SELECT argMin(token, (since, token)) FROM (SELECT token, min(since) AS since, max(beat) AS beat, max(released) AS released FROM %s GROUP BY token) WHERE released = 0 AND beat > now() - %d",
		Table(o.DB, lockTable), int(lease/time.Second))
	waited := false
	// A single node sees every claim at once; a cluster once replicated.
	wait := time.Duration(0)
	if o.Cluster != "" {
		wait = claimWait
	}
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the migration lock (another turf is migrating): %w", ctx.Err())
		case <-time.After(wait):
		}
		wait = max(wait, 500*time.Millisecond)
		var holder string
		if err := x.conn.QueryRow(ctx, q).Scan(&holder); err != nil {
			return nil, fmt.Errorf("cannot read the migration lock: %w", err)
		}
		if holder == token {
			break
		}
		if !waited {
			logf("another turf is migrating database %s; waiting for it", o.DB)
			waited = true
		}
		if err := write(ctx, 0); err != nil {
			return nil, fmt.Errorf("cannot renew the migration claim: %w", err)
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(lease / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := write(wctx, 0); err != nil {
					logf("warning: cannot renew the migration lock: %v", err)
				}
				cancel()
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := write(wctx, 1); err != nil {
			logf("warning: cannot release the migration lock (it lapses after %s): %v", lease, err)
		}
	}, nil
}

var distributedRe = regexp.MustCompile("^Distributed\\(`?([A-Za-z0-9_]+)`?, *`?[A-Za-z0-9_]+`?, *`?([A-Za-z0-9_]+)`?")

// ClusterOf returns the cluster db's sharded tables are spread over, read
// from the Distributed events table (engine_full), or "" when db is on a
// single node (or on a cluster without shards, the layout before 0040).
// Jobs that write to local tables (the rollup job's cleanup) use it, so
// they need no configuration to find the cluster.
func ClusterOf(ctx context.Context, conn driver.Conn, db string) (string, error) {
	rows, err := conn.Query(ctx, "SELECT engine_full FROM system.tables WHERE database = ? AND name = ?", db, Events)
	if err != nil {
		return "", fmt.Errorf("cannot read the events table's engine: %w", err)
	}
	defer rows.Close()
	var engine string
	for rows.Next() {
		if err := rows.Scan(&engine); err != nil {
			return "", fmt.Errorf("cannot read the events table's engine: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("cannot read the events table's engine: %w", err)
	}
	if m := distributedRe.FindStringSubmatch(engine); m != nil {
		return m[1], nil
	}
	return "", nil
}

// ParseDistributed returns the cluster and local table of a Distributed
// engine_full, ok false for any other engine.
func ParseDistributed(engineFull string) (cluster, local string, ok bool) {
	m := distributedRe.FindStringSubmatch(engineFull)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// ExecDDL runs one statement with Migrate's bounded wait for ON CLUSTER
// statements (timeout 0: 60s): hosts that are down get it from the DDL
// queue later, and a host that is up but does not finish is an error.
func ExecDDL(ctx context.Context, conn driver.Conn, cluster string, timeout time.Duration, stmt string, logf func(string, ...any), args ...any) error {
	x, err := newDDL(conn, Options{Cluster: cluster, DDLTimeout: timeout}, logf)
	if err != nil {
		return err
	}
	return x.exec(ctx, stmt, args...)
}

// CheckCluster refuses a cluster turf cannot answer correctly on: one this
// server does not know, or a settings profile without
// distributed_product_mode = 'global', under which an IN or JOIN over two
// Distributed tables is refused (18.16's default, 'deny') or, with 'local',
// answered from each shard's rows alone. ClickHouse 18.16 takes string
// settings from clickhouse-go only in the profile, so it is set there
// (deploy/clickhouse-cluster/users.d/turf-profile.xml).
func CheckCluster(ctx context.Context, conn driver.Conn, cluster string) error {
	if cluster == "" {
		return nil
	}
	var hosts uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.clusters WHERE cluster = ?", cluster).Scan(&hosts); err != nil {
		return fmt.Errorf("cannot read the cluster definition: %w", err)
	}
	if hosts == 0 {
		return fmt.Errorf("ClickHouse knows no cluster %q (remote_servers in its config; see deploy/clickhouse-cluster)", cluster)
	}
	var mode string
	if err := conn.QueryRow(ctx, "SELECT value FROM system.settings WHERE name = 'distributed_product_mode'").Scan(&mode); err != nil {
		return fmt.Errorf("cannot read distributed_product_mode: %w", err)
	}
	if mode != "global" {
		return fmt.Errorf("turf's ClickHouse user has distributed_product_mode = %q; a cluster needs 'global' in its settings profile (deploy/clickhouse-cluster/users.d/turf-profile.xml), or answers over Distributed tables are refused or wrong", mode)
	}
	return nil
}
