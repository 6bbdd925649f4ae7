package clustertest_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/collector/visitor"
	"turf/internal/chtest"
	"turf/internal/clustertest"
	"turf/internal/turftest"
	"turf/query"
	"turf/query/dashboard"
	"turf/query/rollup"
	"turf/retention"
	"turf/schema"
)

func TestMain(m *testing.M) { chtest.Main(m) }

const (
	db      = "turf"
	chrome  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	shards  = 2
	perNode = 2
)

var sites = []string{"e1.test", "e2.test"}

// TestShardedCluster runs turf on 2 shards × 2 replicas of ClickHouse 18.16
// with two collectors, one connected to each shard, and checks what issue 13
// asks of a sharded cluster: known traffic sent alternately to both is
// stored once (also while a replica is killed), the totals from either
// collector's API equal a single node's over the same traffic, a key, user
// and share made through one collector work on the other, retention and
// site erasure remove exactly the right rows on every shard, concurrent
// migrations apply each version once, and a collector starts with a node
// down.
func TestShardedCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	c := clustertest.RequireSharded(t, ctx, "turf_cluster", shards, perNode)
	t.Logf("ZooKeeper and %d×%d ClickHouse up in %s", shards, perNode, time.Since(start).Round(time.Millisecond))
	conns := make([]driver.Conn, len(c.Nodes))
	for i := range c.Nodes {
		conn, _, err := schema.Open("clickhouse://" + c.Addr(i) + "/" + db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		conns[i] = conn
	}
	opts := schema.Options{DB: db, Cluster: c.Name, DDLTimeout: 20 * time.Second}

	// Two migrations at once, through different shards: each version is
	// applied once (one dirty and one clean record).
	start = time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for k, i := range []int{0, 2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = schema.Migrate(ctx, conns[i], opts, func(f string, a ...any) { t.Logf(c.NodeName(i)+": "+f, a...) })
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
	t.Logf("two concurrent migrations done in %s", time.Since(start).Round(time.Millisecond))
	all, _ := schema.All()
	clustertest.WaitCount(t, ctx, conns[3], "SELECT count() FROM turf.schema_migrations", uint64(2*len(all)))
	for i := range conns {
		if n := clustertest.Count(t, ctx, conns[i], "SELECT count() FROM turf.schema_migrations"); n != uint64(2*len(all)) {
			t.Errorf("%s: %d migration records for %d versions, want %d", c.NodeName(i), n, len(all), 2*len(all))
		}
		engines := map[string]string{}
		rows, err := conns[i].Query(ctx, "SELECT name, engine FROM system.tables WHERE database = 'turf'")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n, e string
			_ = rows.Scan(&n, &e)
			engines[n] = e
		}
		rows.Close()
		for name := range schema.ShardKeys {
			if engines[name] != "Distributed" || !strings.HasPrefix(engines[name+schema.LocalSuffix], "Replicated") {
				t.Errorf("%s: %s is %q and %s%s %q, want Distributed over Replicated", c.NodeName(i), name, engines[name], name, schema.LocalSuffix, engines[name+schema.LocalSuffix])
			}
		}
	}

	// Collector A on shard 1, collector B on shard 2; B starts once A's
	// salt has reached its node, as a second collector started later would.
	a := startTurf(t, conns[0])
	clustertest.WaitCount(t, ctx, conns[2], "SELECT count() FROM turf.salts", 2)
	bin := buildTurf(t)
	b := startServe(t, bin, c.Addr(2), c.Name, t.TempDir(), 0)
	collectors := []string{a, b.url}
	ref := turftest.Start(t, sites...)

	// Known traffic: per site 40 visitors with 3 page views each; every
	// event goes to A and B in turn, and the same events to the single
	// node. Halfway, replica s2r2 is killed with SIGKILL.
	var accepted, refAccepted int
	send := func(base string, site string, v, p int) bool {
		body := fmt.Sprintf(`{"name":"pageview","url":"https://%s/v%d/p%d","domain":"%s"}`, site, v, p, site)
		req, _ := http.NewRequest("POST", base+"/api/event", strings.NewReader(body))
		req.Header.Set("User-Agent", chrome)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Turf-Test-Peer", fmt.Sprintf("10.%d.%d.7", v, len(site)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", base, err)
		}
		resp.Body.Close()
		return resp.StatusCode == 202
	}
	n := 0
	for v := range 40 {
		if v == 10 {
			// kill -9 of collector B with events in its spool, and a new
			// B on the same data directory and port.
			b.kill(t)
			b = startServe(t, bin, c.Addr(2), c.Name, b.dataDir, b.port)
			t.Logf("killed collector B (SIGKILL) and started it again after %d events", accepted)
		}
		if v == 20 {
			if err := c.Kill(3); err != nil {
				t.Fatal(err)
			}
			t.Logf("killed %s (SIGKILL) after %d events", c.NodeName(3), accepted)
		}
		for p := range 3 {
			for _, site := range sites {
				if send(collectors[n%2], site, v, p) {
					accepted++
				}
				if send(ref.URL, site, v, p) {
					refAccepted++
				}
				n++
			}
		}
	}
	if accepted != n || refAccepted != n {
		t.Fatalf("accepted %d (cluster) and %d (single node) of %d events", accepted, refAccepted, n)
	}
	flush(t, a)
	ref.Flush(t)
	if err := c.Restart(ctx, 3); err != nil {
		t.Fatal(err)
	}
	for i := range conns {
		syncReplica(t, ctx, conns[i], c.NodeName(i))
	}
	// B is a separate process: its spool has drained when the cluster
	// holds every accepted event (or the wait fails).
	clustertest.WaitCount(t, ctx, conns[1], "SELECT count() FROM turf.events", uint64(accepted))
	stored := clustertest.Count(t, ctx, conns[1], "SELECT count() FROM turf.events")
	distinct := clustertest.Count(t, ctx, conns[1], "SELECT uniqExact(site, pathname) FROM turf.events")
	t.Logf("events: sent %d, accepted %d, stored %d, distinct %d", n, accepted, stored, distinct)
	if stored != uint64(accepted) || distinct != stored {
		t.Errorf("stored %d events (%d distinct) of %d accepted: every event must be stored once", stored, distinct, accepted)
	}
	// The day tallies the query side checks its rollups against counted
	// each stored event once, also the blocks a retry or a replay sent
	// again (no rollup pass has corrected anything yet). Waited for like
	// the events above: the read goes to one replica per shard, which may
	// not have fetched the newest tally part yet (seen once: 238 of 240).
	clustertest.WaitCount(t, ctx, conns[2], "SELECT toUInt64(sum(events)) FROM turf.event_days", stored)
	// Both shards hold part of the events, and each replica all of its
	// shard's: the sharding key spread them.
	perShard := make([]uint64, shards)
	for i := range conns {
		if r := i % perNode; r == 0 {
			perShard[i/perNode] = clustertest.Count(t, ctx, conns[i], "SELECT count() FROM turf.events_local")
		} else {
			// The restarted replica resumes replication once its old
			// ZooKeeper session has expired.
			clustertest.WaitCount(t, ctx, conns[i], "SELECT count() FROM turf.events_local", perShard[i/perNode])
		}
	}
	t.Logf("events per shard: %v", perShard)
	for s, k := range perShard {
		if k == 0 {
			t.Errorf("shard %d holds no events", s+1)
		}
	}
	// One salt for the whole cluster: each visitor is one id, whichever
	// collector saw its events.
	if ids := clustertest.Count(t, ctx, conns[0], "SELECT uniqExact(site, visitor_id) FROM turf.events"); ids != 80 {
		t.Errorf("%d visitor ids for 80 visitors", ids)
	}

	// Salt destruction reaches every replica of every shard: an expired
	// salt stored through s1r1 is destroyed by a salt keeper on s2r1.
	saltBatch, err := conns[0].PrepareBatch(ctx, "INSERT INTO turf.salts (day, salt, created)")
	if err != nil {
		t.Fatal(err)
	}
	_ = saltBatch.Append(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), strings.Repeat("x", 32) /* a 32-byte (BLAKE2b) salt row */, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	if err := saltBatch.Send(); err != nil {
		t.Fatal(err)
	}
	oldSalt := "SELECT count() FROM turf.salts WHERE day = toDate('2026-11-01')"
	for i := range conns {
		clustertest.WaitCount(t, ctx, conns[i], oldSalt, 1)
	}
	if err := visitor.NewStore(conns[2], db, time.Now, 15*time.Minute, t.Logf).Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range conns {
		clustertest.WaitCount(t, ctx, conns[i], oldSalt, 0)
		if n := clustertest.Count(t, ctx, conns[i], "SELECT uniqExact(salt) FROM turf.salts WHERE day = today()"); n != 1 {
			t.Errorf("%s: %d salts for today, want one for the whole cluster", c.NodeName(i), n)
		}
	}

	// A key, a user and a share made through A work on B.
	key, _, err := query.CreateKey(ctx, conns[0], db, sites, "cluster test")
	if err != nil {
		t.Fatal(err)
	}
	refKey, _, err := query.CreateKey(ctx, ref.Conn, ref.DB, sites, "reference")
	if err != nil {
		t.Fatal(err)
	}
	if err := dashboard.AddUser(ctx, conns[0], db, "anna", "a good password", nil); err != nil {
		t.Fatal(err)
	}
	share, _, err := dashboard.CreateShare(ctx, conns[0], db, "e1.test", "team")
	if err != nil {
		t.Fatal(err)
	}
	clustertest.WaitCount(t, ctx, conns[3], "SELECT count() FROM turf.dashboard_shares", 1)
	clustertest.WaitCount(t, ctx, conns[2], "SELECT count() FROM turf.dashboard_shares", 1)
	clustertest.WaitCount(t, ctx, conns[2], "SELECT count() FROM turf.api_keys", 1)
	clustertest.WaitCount(t, ctx, conns[2], "SELECT count() FROM turf.dashboard_users", 1)
	for _, site := range sites {
		want := totals(t, ref.URL, refKey, site)
		for i, base := range collectors {
			if got := totals(t, base, key, site); got != want {
				t.Errorf("%s from collector %c: visitors, visits, pageviews %v, single node %v", site, 'A'+i, got, want)
			} else if i == 0 {
				t.Logf("%s: visitors, visits, pageviews %v on the cluster and on one node", site, got)
			}
		}
	}
	// The dashboard of the share link, on both collectors.
	want := totals(t, ref.URL, refKey, "e1.test")
	for i, base := range collectors {
		if got := totalsWith(t, base, "X-Turf-Share", share, "e1.test"); got != want {
			t.Errorf("e1.test on the share dashboard of collector %c: %v, single node %v", 'A'+i, got, want)
		}
	}
	for i, base := range collectors {
		if !login(t, base, "anna", "a good password") {
			t.Errorf("collector %c: user anna cannot log in", 'A'+i)
		}
		if code := get(t, base+"/share/"+share); code != 200 {
			t.Errorf("collector %c: share link answers %d", 'A'+i, code)
		}
	}

	// Retention and erasure. Rows a month apart, for both sites, put both
	// sites in partitions 202610 and 202611 on both shards (visitor ids
	// 0..19 fall on both). e1.test keeps a month, e2.test the default 13:
	// retention must delete e1's October rows without dropping partition
	// 202610 (e2 keeps its rows there), and erasing e1 must leave e2's
	// November rows.
	old := []time.Time{time.Date(2026, 10, 20, 12, 0, 0, 0, time.UTC), time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	insertOld(t, ctx, conns[1], "turf.events", old)
	insertOld(t, ctx, ref.Conn, ref.DB+".events", old)
	for i := range conns {
		syncReplica(t, ctx, conns[i], c.NodeName(i))
	}
	// The rollup job, run through one node, builds those days from every
	// shard's events, and the API's answers for them stay the single
	// node's.
	for _, j := range []*rollup.Job{rollup.New(conns[0], db, nil, t.Logf), rollup.New(ref.Conn, ref.DB, nil, t.Logf)} {
		if _, err := j.Pass(ctx, time.Unix(0, 0).UTC()); err != nil {
			t.Fatalf("rollup pass: %v", err)
		}
	}
	if n := clustertest.Count(t, ctx, conns[3], "SELECT count() FROM turf.rollup_days WHERE day IN (toDate('2026-10-20'), toDate('2026-11-20'))"); n != 4 {
		t.Errorf("%d rollup markers for 2 sites × 2 old days, want 4", n)
	}
	if got, want := clustertest.Count(t, ctx, conns[3], "SELECT sum(visitors) FROM turf.visit_stats WHERE dim = '' AND day = toDate('2026-11-20')"), uint64(40); got != want {
		t.Errorf("visit_stats over the cluster: %d visitors on 2026-11-20, want %d", got, want)
	}
	for _, site := range sites {
		want := totalsRange(t, ref.URL, refKey, site, "2026-10-01", "2026-11-30")
		for i, base := range collectors {
			if got := totalsRange(t, base, key, site, "2026-10-01", "2026-11-30"); got != want {
				t.Errorf("%s in Oct-Nov (rollups) from collector %c: %v, single node %v", site, 'A'+i, got, want)
			}
		}
	}
	before := perSite(t, ctx, conns, c)
	pol := retention.Policy{Events: retention.Period{Months: 13}, Sites: map[string]retention.Period{"e1.test": {Months: 1}}}
	now := func() time.Time { return time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC) }
	e := retention.New(conns[2], db, retention.Config{Policy: pol, Cluster: c.Name}, now, t.Logf)
	pl, err := e.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Apply(ctx, pl); err != nil {
		t.Fatal(err)
	}
	waitNoMutations(t, ctx, conns, c)
	for _, tp := range pl.Tables {
		if tp.Table.Name == schema.Events && (tp.Rows() != 20 || len(tp.Partitions) != 0) {
			t.Errorf("retention of events removes %d rows in %d whole partitions, want e1.test's 20 October rows and no partition (e2.test keeps its own)", tp.Rows(), len(tp.Partitions))
		}
	}
	after := perSite(t, ctx, conns, c)
	for i := range conns {
		k := c.NodeName(i)
		if after[i]["e1.test/202610"] != 0 {
			t.Errorf("%s: %d expired e1 rows left", k, after[i]["e1.test/202610"])
		}
		for _, key := range []string{"e2.test/202610", "e2.test/202611", "e1.test/202611", "e2.test/202612", "e1.test/202612"} {
			if after[i][key] != before[i][key] {
				t.Errorf("%s: retention changed %s from %d to %d rows", k, key, before[i][key], after[i][key])
			}
		}
	}
	// Export reads every shard.
	exported, err := retention.Export(ctx, conns[2], db, "e1.test", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e1 := clustertest.Count(t, ctx, conns[0], "SELECT count() FROM turf.events WHERE site = 'e1.test'")
	for _, ex := range exported {
		if ex.Table == schema.Events && uint64(ex.Rows) != e1 {
			t.Errorf("export of e1.test has %d events, the cluster %d", ex.Rows, e1)
		}
	}
	plan, err := retention.PlanErase(ctx, conns[3], db, "e1.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := retention.Erase(ctx, conns[3], db, c.Name, plan); err != nil {
		t.Fatal(err)
	}
	waitNoMutations(t, ctx, conns, c)
	erased := perSite(t, ctx, conns, c)
	for i := range conns {
		for key, n := range erased[i] {
			if strings.HasPrefix(key, "e1.test/") && n != 0 {
				t.Errorf("%s: %d rows of %s after erasing e1.test", c.NodeName(i), n, key)
			}
			if strings.HasPrefix(key, "e2.test/") && n != before[i][key] {
				t.Errorf("%s: erasing e1.test changed %s from %d to %d rows", c.NodeName(i), key, before[i][key], n)
			}
		}
	}
	t.Logf("rows per node and site/month before retention %v, after erasing e1.test %v", before, erased)
	for _, table := range schema.RollupTables {
		if n := clustertest.Count(t, ctx, conns[0], "SELECT count() FROM turf."+table+" WHERE site = 'e1.test'"); n != 0 {
			t.Errorf("%d rows of e1.test left in %s after erasing it", n, table)
		}
	}
	if n := clustertest.Count(t, ctx, conns[0], "SELECT count() FROM turf.visits WHERE site = 'e2.test'"); n == 0 {
		t.Error("erasing e1.test took e2.test's visits too")
	}

	// A collector starts, migrations included, with a node down, and an
	// ON CLUSTER statement returns after its timeout; the node runs it
	// when it is back.
	if err := c.Kill(1); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	probe := "CREATE TABLE IF NOT EXISTS turf.ddl_probe ON CLUSTER turf_cluster (x String) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/turf/ddl_probe', '{replica}') ORDER BY x"
	if err := schema.ExecDDL(ctx, conns[0], c.Name, 3*time.Second, probe, t.Logf); err != nil {
		t.Fatalf("ON CLUSTER with %s down: %v", c.NodeName(1), err)
	}
	t.Logf("ON CLUSTER statement with %s down returned in %s", c.NodeName(1), time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if err := schema.Migrate(ctx, conns[2], opts, t.Logf); err != nil {
		t.Fatalf("migrate with %s down: %v", c.NodeName(1), err)
	}
	startServe(t, bin, c.Addr(2), c.Name, t.TempDir(), 0)
	t.Logf("migrated and started turf serve with %s down in %s", c.NodeName(1), time.Since(start).Round(time.Millisecond))
	if err := c.Restart(ctx, 1); err != nil {
		t.Fatal(err)
	}
	back, _, err := schema.Open("clickhouse://" + c.Addr(1) + "/" + db)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	clustertest.WaitCount(t, ctx, back, "SELECT count() FROM system.tables WHERE database = 'turf' AND name = 'ddl_probe'", 1)
}
