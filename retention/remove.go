package retention

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/schema"
)

// Removal is what removing the rows matching Where from one table takes:
// whole partitions in which every row matches are dropped (the data leaves
// the disk at once), and the rest is deleted with a mutation.
type Removal struct {
	Table      Table
	Where      string
	Partitions []Partition
	DeleteRows uint64 // rows outside the dropped partitions
}

// Partition is one partition to drop, in the literal form DROP PARTITION takes.
type Partition struct {
	ID   string
	Rows uint64
}

// Rows is the total number of rows the removal takes away.
func (r Removal) Rows() uint64 {
	n := r.DeleteRows
	for _, p := range r.Partitions {
		n += p.Rows
	}
	return n
}

// planRemoval looks, without changing anything, at what removing the rows
// matching where from t would take.
func planRemoval(ctx context.Context, conn driver.Conn, db string, t Table, where string) (Removal, error) {
	r := Removal{Table: t, Where: where}
	name := fullName(db, t)
	var total uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+name+" WHERE "+where).Scan(&total); err != nil {
		return r, fmt.Errorf("cannot count the rows to remove from %s: %w", t.Name, err)
	}
	if total == 0 {
		return r, nil
	}
	if t.PartitionKey != "" {
		parts, err := partitions(ctx, conn, db, t)
		if err != nil {
			return r, err
		}
		for _, p := range parts {
			// A partition goes whole only when not one of its rows is kept.
			var kept uint8
			err := conn.QueryRow(ctx, "SELECT count() > 0 FROM (SELECT 1 FROM "+name+" WHERE ("+t.PartitionKey+") = "+p.ID+" AND NOT ("+where+") LIMIT 1)").Scan(&kept)
			if err != nil {
				return r, fmt.Errorf("cannot check partition %s of %s: %w", p.ID, t.Name, err)
			}
			if kept == 0 {
				r.Partitions = append(r.Partitions, p)
			}
		}
	}
	dropped := r.Rows()
	if dropped < total {
		r.DeleteRows = total - dropped
	}
	return r, nil
}

// partitions lists t's partitions on every shard: a partition some shard
// lacks is still dropped on those that have it.
func partitions(ctx context.Context, conn driver.Conn, db string, t Table) ([]Partition, error) {
	table := t.Name
	rows, err := conn.Query(ctx, "SELECT partition, sum(rows) FROM "+systemTable(t, "parts")+" WHERE database = ? AND table = ? AND active GROUP BY partition ORDER BY partition", db, storedName(t))
	if err != nil {
		return nil, fmt.Errorf("cannot list the partitions of %s: %w", table, err)
	}
	defer rows.Close()
	var out []Partition
	for rows.Next() {
		var p Partition
		if err := rows.Scan(&p.ID, &p.Rows); err != nil {
			return nil, fmt.Errorf("cannot list the partitions of %s: %w", table, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list the partitions of %s: %w", table, err)
	}
	return out, nil
}

// apply drops the partitions and, when del is set, starts the DELETE
// mutation for the remaining rows. Mutations run in the background; wait
// says whether to wait for them.
//
// A sharded table is changed ON CLUSTER in its local part (the statement
// runs on one replica per shard and replicates); any other table is
// changed without ON CLUSTER, on this node: on a cluster it is replicated
// to every node, so the change reaches all of them through replication,
// also a node that is down now. The cluster argument is kept for callers
// and no longer decides anything.
func (r Removal) apply(ctx context.Context, conn driver.Conn, db, _ string, del, wait bool) error {
	name := localName(db, r.Table)
	exec := func(stmt string) error {
		return schema.ExecDDL(ctx, conn, r.Table.Cluster, 0, stmt, func(string, ...any) {})
	}
	on := schema.OnCluster(r.Table.Cluster)
	for _, p := range r.Partitions {
		if err := exec("ALTER TABLE " + name + on + " DROP PARTITION " + p.ID); err != nil {
			return fmt.Errorf("cannot drop partition %s of %s: %w", p.ID, r.Table.Name, err)
		}
	}
	if !del || r.DeleteRows == 0 {
		return nil
	}
	if err := exec("ALTER TABLE " + name + on + " DELETE WHERE " + r.Where); err != nil {
		return fmt.Errorf("cannot delete rows of %s: %w", r.Table.Name, err)
	}
	if wait {
		return waitMutations(ctx, conn, db, r.Table)
	}
	return nil
}

// waitMutations waits until the table has no unfinished mutation. 18.16 has
// no mutations_sync setting, so system.mutations is polled.
func waitMutations(ctx context.Context, conn driver.Conn, db string, t Table) error {
	table := t.Name
	for {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+systemTable(t, "mutations")+" WHERE database = ? AND table = ? AND is_done = 0", db, storedName(t)).Scan(&n); err != nil {
			return fmt.Errorf("cannot follow the deletion in %s: %w", table, err)
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deletion in %s still running: %w", table, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
