// Package clustertest runs a real replicated ClickHouse cluster on loopback
// for tests: one ZooKeeper and several ClickHouse servers, all child
// processes, as replicas of a single shard. It is the topology turf supports
// with --clickhouse-cluster (see deploy/clickhouse-cluster), so the test here
// proves that the schema's ON CLUSTER migrations and Replicated engines work.
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

	"turf/internal/chserver"
)

// Cluster is ZooKeeper plus ClickHouse servers that are the replicas r1, r2,
// ... of shard 01 of the cluster Name.
type Cluster struct {
	Name  string
	ZK    *ZooKeeper
	Nodes []*chserver.Server
}

// Start starts ZooKeeper, waits until it serves clients, and then starts the
// replicas under dir in parallel. The order matters: the DDL worker of a
// ClickHouse 18.16 tries ZooKeeper at start-up, and a server whose attempt
// failed crashes on its first ON CLUSTER query.
func Start(ctx context.Context, dir, name string, replicas int) (*Cluster, error) {
	c := &Cluster{Name: name}
	zk, err := StartZooKeeper(ctx, filepath.Join(dir, "zookeeper"))
	if err != nil {
		return nil, err
	}
	c.ZK = zk
	// Every node lists every node in remote_servers, so all ports are chosen
	// before any server starts.
	tcp := make([]int, replicas)
	for i := range tcp {
		if tcp[i], err = chserver.FreePort(); err != nil {
			c.Stop()
			return nil, err
		}
	}
	var shard strings.Builder
	for _, p := range tcp {
		fmt.Fprintf(&shard, "        <replica><host>127.0.0.1</host><port>%d</port></replica>\n", p)
	}
	type started struct {
		i   int
		srv *chserver.Server
		err error
	}
	ch := make(chan started, replicas)
	for i := range replicas {
		interserver, err := chserver.FreePort()
		if err != nil {
			c.Stop()
			return nil, err
		}
		xml := fmt.Sprintf(nodeXML, interserver, name, shard.String(), i+1, zk.Port)
		go func() {
			srv, err := chserver.StartWithConfig(ctx, filepath.Join(dir, fmt.Sprintf("r%d", i+1)), chserver.Config{Port: tcp[i], ExtraXML: xml})
			ch <- started{i, srv, err}
		}()
	}
	c.Nodes = make([]*chserver.Server, replicas)
	var errs []error
	for range replicas {
		s := <-ch
		c.Nodes[s.i] = s.srv
		if s.err != nil {
			errs = append(errs, fmt.Errorf("replica r%d: %w", s.i+1, s.err))
		}
	}
	if len(errs) > 0 {
		c.Stop()
		return nil, errors.Join(errs...)
	}
	for i, n := range c.Nodes {
		if err := waitDDLQueue(ctx, n.Addr()); err != nil {
			c.Stop()
			return nil, fmt.Errorf("replica r%d: %w", i+1, err)
		}
	}
	return c, nil
}

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
	c, err := Start(ctx, t.TempDir(), name, replicas)
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
	for _, n := range c.Nodes {
		paths = append(paths, filepath.Join(n.Dir, "log", "clickhouse-server.err.log"))
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

// nodeXML is what a replica adds to chserver's config (all on loopback):
//   - interserver_http_*: the address other replicas fetch parts from; the
//     host must be 127.0.0.1 or they would try the machine's hostname.
//   - remote_servers: the cluster that ON CLUSTER names, one shard with every
//     replica; internal_replication because Replicated tables copy data
//     themselves.
//   - macros: fill in {shard} and {replica} in the Replicated engines' paths.
//   - zookeeper: where replication and the DDL queue keep their state.
//   - distributed_ddl: the DDL queue in ZooKeeper; without it 18.16 starts
//     no DDL worker and refuses ON CLUSTER queries ("DDL background thread is
//     not initialized").
const nodeXML = `  <interserver_http_host>127.0.0.1</interserver_http_host>
  <interserver_http_port>%d</interserver_http_port>
  <remote_servers>
    <%[2]s>
      <shard>
        <internal_replication>true</internal_replication>
%[3]s      </shard>
    </%[2]s>
  </remote_servers>
  <macros>
    <shard>01</shard>
    <replica>r%[4]d</replica>
  </macros>
  <zookeeper>
    <node><host>127.0.0.1</host><port>%[5]d</port></node>
    <session_timeout_ms>10000</session_timeout_ms>
  </zookeeper>
  <distributed_ddl>
    <path>/clickhouse/task_queue/ddl</path>
  </distributed_ddl>
`
