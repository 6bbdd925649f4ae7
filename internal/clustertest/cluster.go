// Package clustertest runs a real replicated ClickHouse cluster on loopback
// for tests: one ZooKeeper and several ClickHouse servers, all child
// processes, as shards × replicas of one cluster. It is the topology turf
// supports with --clickhouse-cluster (see deploy/clickhouse-cluster).
//
// Like chtest, it skips without the servers on a developer's machine and
// fails when CI=true.
package clustertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/internal/chserver"
)

// Cluster is ZooKeeper plus ClickHouse servers. Nodes are listed shard by
// shard: with Replicas per shard, node i is replica r(i%Replicas+1) of shard
// 0(i/Replicas+1) of the cluster Name.
type Cluster struct {
	Name     string
	ZK       *ZooKeeper
	Nodes    []*chserver.Server
	Replicas int
	configs  []chserver.Config
	dirs     []string
}

// Start starts ZooKeeper and the replicas of one shard (the layout
// TestReplicatedSchema checks).
func Start(ctx context.Context, dir, name string, replicas int) (*Cluster, error) {
	return StartSharded(ctx, dir, name, 1, replicas)
}

// StartSharded starts ZooKeeper, waits until it serves clients, and then
// starts shards × replicas servers under dir in parallel. The order matters:
// the DDL worker of a ClickHouse 18.16 tries ZooKeeper at start-up, and a
// server whose attempt failed crashes on its first ON CLUSTER query.
func StartSharded(ctx context.Context, dir, name string, shards, replicas int) (*Cluster, error) {
	c := &Cluster{Name: name, Replicas: replicas}
	zk, err := StartZooKeeper(ctx, filepath.Join(dir, "zookeeper"))
	if err != nil {
		return nil, err
	}
	c.ZK = zk
	n := shards * replicas
	// Every node lists every node in remote_servers, so all ports are chosen
	// before any server starts.
	tcp := make([]int, n)
	for i := range tcp {
		if tcp[i], err = chserver.FreePort(); err != nil {
			c.Stop()
			return nil, err
		}
	}
	var topo strings.Builder
	for s := range shards {
		topo.WriteString("      <shard>\n        <internal_replication>true</internal_replication>\n")
		for r := range replicas {
			fmt.Fprintf(&topo, "        <replica><host>127.0.0.1</host><port>%d</port></replica>\n", tcp[s*replicas+r])
		}
		topo.WriteString("      </shard>\n")
	}
	c.configs = make([]chserver.Config, n)
	c.dirs = make([]string, n)
	for i := range n {
		interserver, err := chserver.FreePort()
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.configs[i] = chserver.Config{Port: tcp[i], ExtraXML: fmt.Sprintf(nodeXML, interserver, name, topo.String(), i/replicas+1, i%replicas+1, zk.Port),
			ProfileXML: ProfileXML}
		c.dirs[i] = filepath.Join(dir, fmt.Sprintf("s%dr%d", i/replicas+1, i%replicas+1))
	}
	type started struct {
		i   int
		srv *chserver.Server
		err error
	}
	ch := make(chan started, n)
	for i := range n {
		go func() {
			srv, err := chserver.StartWithConfig(ctx, c.dirs[i], c.configs[i])
			ch <- started{i, srv, err}
		}()
	}
	c.Nodes = make([]*chserver.Server, n)
	var errs []error
	for range n {
		s := <-ch
		c.Nodes[s.i] = s.srv
		if s.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.NodeName(s.i), s.err))
		}
	}
	if len(errs) > 0 {
		c.Stop()
		return nil, errors.Join(errs...)
	}
	for i, nd := range c.Nodes {
		if err := waitDDLQueue(ctx, nd.Addr()); err != nil {
			c.Stop()
			return nil, fmt.Errorf("%s: %w", c.NodeName(i), err)
		}
	}
	return c, nil
}

// NodeName names node i as its macros do, e.g. s2r1.
func (c *Cluster) NodeName(i int) string {
	return fmt.Sprintf("s%dr%d", i/c.Replicas+1, i%c.Replicas+1)
}

// Kill ends node i with SIGKILL, as a crash would; Restart brings it back
// with its data.
func (c *Cluster) Kill(i int) error {
	err := c.Nodes[i].Kill()
	c.Nodes[i] = nil
	return err
}

// Restart starts node i again from its directory, on the same port, and
// waits until its DDL worker is back in ZooKeeper.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	srv, err := chserver.StartWithConfig(ctx, c.dirs[i], c.configs[i])
	if err != nil {
		// A replica killed mid-insert can hold a part it never committed
		// in ZooKeeper; when such parts are many of its few rows it refuses
		// to start ("doesn't look like the set of parts in ZooKeeper"). The
		// documented remedy, which an operator would apply too
		// (deploy/clickhouse-cluster/README.md): the force_restore_data
		// flag, which sets the parts aside and fetches from the other
		// replica.
		flags := filepath.Join(c.dirs[i], "data", "flags")
		if mkErr := os.MkdirAll(flags, 0o750); mkErr != nil {
			return fmt.Errorf("restart %s: %w", c.NodeName(i), err)
		}
		if wErr := os.WriteFile(filepath.Join(flags, "force_restore_data"), nil, 0o640); wErr != nil {
			return fmt.Errorf("restart %s: %w", c.NodeName(i), err)
		}
		if srv, err = chserver.StartWithConfig(ctx, c.dirs[i], c.configs[i]); err != nil {
			return fmt.Errorf("restart %s (also with force_restore_data): %w", c.NodeName(i), err)
		}
	}
	c.Nodes[i] = srv
	return waitDDLQueue(ctx, srv.Addr())
}

// Addr is node i's native address, also while it is down.
func (c *Cluster) Addr(i int) string { return fmt.Sprintf("127.0.0.1:%d", c.configs[i].Port) }

// waitDDLQueue waits until a server's DDL worker has created its queue in
// ZooKeeper. A ClickHouse 18.16 answers queries before that, and an ON
// CLUSTER query sent in the gap was seen to crash it (segmentation fault in
// its ZooKeeper client).
func waitDDLQueue(ctx context.Context, addr string) error {
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: time.Second})
	if err != nil {
		return fmt.Errorf("cannot connect to ClickHouse on %s: %w", addr, err)
	}
	defer conn.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n uint64
		err := conn.QueryRow(ctx, "SELECT count() FROM system.zookeeper WHERE path = '/clickhouse/task_queue' AND name = 'ddl'").Scan(&n)
		if err == nil && n == 1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the DDL queue did not appear in ZooKeeper within 30s (last error: %v)", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop stops the ClickHouse servers first, so that they do not spend their
// shutdown reconnecting to a ZooKeeper that is already gone.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		if n != nil {
			_ = n.Stop()
		}
	}
	_ = c.ZK.Stop()
}

// Require starts a cluster for the test and stops it when the test ends. It
// skips the test when ClickHouse or ZooKeeper is missing, except under
// CI=true, where a cluster test that does not run must not pass.
func Require(t testing.TB, ctx context.Context, name string, replicas int) *Cluster {
	t.Helper()
	return RequireSharded(t, ctx, name, 1, replicas)
}

// RequireSharded is Require for shards × replicas servers.
func RequireSharded(t testing.TB, ctx context.Context, name string, shards, replicas int) *Cluster {
	t.Helper()
	missing := func(err error) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("ClickHouse and ZooKeeper are required under CI=true: %v", err)
		}
		t.Skipf("no cluster for this test: %v", err)
	}
	if _, err := chserver.FindBinary(); err != nil {
		missing(err)
	}
	if _, _, err := FindZooKeeper(); err != nil {
		missing(err)
	}
	c, err := StartSharded(ctx, t.TempDir(), name, shards, replicas)
	if err != nil {
		t.Fatalf("cannot start the test cluster: %v", err)
	}
	t.Cleanup(func() {
		c.Stop()
		// The directory is removed with the test: keep what explains a
		// failure in the test output, where CI shows it.
		if t.Failed() {
			t.Log(c.errorLogs())
		}
	})
	return c
}

// errorLogs returns the end of each server's error log and of ZooKeeper's.
func (c *Cluster) errorLogs() string {
	var b strings.Builder
	paths := []string{filepath.Join(c.ZK.Dir, "zookeeper.log")}
	for _, d := range c.dirs {
		paths = append(paths, filepath.Join(d, "log", "clickhouse-server.err.log"))
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintf(&b, "\n== %s: %v\n", p, err)
			continue
		}
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		fmt.Fprintf(&b, "\n== end of %s\n%s", p, data)
	}
	return b.String()
}

// ProfileXML is what turf needs in the settings profile of its user on a
// cluster (deploy/clickhouse-cluster/users.d/turf-profile.xml): IN and JOIN
// subqueries over Distributed tables run once, on the whole cluster
// (GLOBAL), so every answer equals a single node's. ClickHouse 18.16 cannot
// take this string setting from clickhouse-go per query.
const ProfileXML = "<distributed_product_mode>global</distributed_product_mode>"

// nodeXML is what a replica adds to chserver's config (all on loopback):
//   - interserver_http_*: the address other replicas fetch parts from; the
//     host must be 127.0.0.1 or they would try the machine's hostname.
//   - remote_servers: the cluster that ON CLUSTER and the Distributed tables
//     name, every shard with its replicas; internal_replication because
//     Replicated tables copy data themselves.
//   - macros: fill in {shard} and {replica} in the Replicated engines' paths.
//   - zookeeper: where replication and the DDL queue keep their state.
//   - distributed_ddl: the DDL queue in ZooKeeper; without it 18.16 starts
//     no DDL worker and refuses ON CLUSTER queries ("DDL background thread is
//     not initialized").
const nodeXML = `  <interserver_http_host>127.0.0.1</interserver_http_host>
  <interserver_http_port>%d</interserver_http_port>
  <remote_servers>
    <%[2]s>
%[3]s    </%[2]s>
  </remote_servers>
  <macros>
    <shard>%02[4]d</shard>
    <replica>r%[5]d</replica>
  </macros>
  <zookeeper>
    <node><host>127.0.0.1</host><port>%[6]d</port></node>
    <session_timeout_ms>10000</session_timeout_ms>
  </zookeeper>
  <distributed_ddl>
    <path>/clickhouse/task_queue/ddl</path>
  </distributed_ddl>
`

// Count runs a count() query and fails the test on error.
func Count(t testing.TB, ctx context.Context, conn driver.Conn, query string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(ctx, query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// WaitCount polls until query returns want, for up to 30 s: replication is
// asynchronous, a replica fetches new parts after it sees them in ZooKeeper.
func WaitCount(t testing.TB, ctx context.Context, conn driver.Conn, query string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := Count(t, ctx, conn, query)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: got %d, want %d after 30s", query, n, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
