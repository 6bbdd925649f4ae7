package chtest

// The mirror between turf and the driver: each call runs on 18.16 as asked,
// then goes to the leg (modern.go) in the order it ran.

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/internal/chdb"
)

// mirrorConn is a connection whose statements also run on the modern leg.
type mirrorConn struct {
	driver.Conn
	leg *leg
	db  string
	m   *mirrorDB
}

func (c *mirrorConn) bind(m *mirrorDB, query string, args []any) (string, bool) {
	sql, err := chdb.Bind(query, args...)
	if err != nil {
		c.leg.problem(m, fmt.Sprintf("cannot bind for the modern leg: %v\n%s", err, clip(query)))
		return "", false
	}
	return sql, true
}

func (c *mirrorConn) Exec(ctx context.Context, query string, args ...any) error {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	if err := c.Conn.Exec(ctx, query, args...); err != nil {
		return err
	}
	if sql, ok := c.bind(c.m, query, args); ok {
		c.leg.write(c.m, c.db, query, sql)
	}
	return nil
}

func (c *mirrorConn) compare(query string, args []any) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	if !c.leg.wantRead(c.db, query) {
		return
	}
	if sql, ok := c.bind(c.m, query, args); ok {
		c.leg.read(c.m, c.db, query, sql)
	}
}

// Query compares once the caller has read the rows to their end without an
// error: a statement that 18.16 stops half-way (a time budget, say) did
// not succeed, and is not asked of 26.x, where nothing would stop it.
func (c *mirrorConn) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	rows, err := c.Conn.Query(ctx, query, args...)
	if err != nil {
		return rows, err
	}
	return &mirrorRows{Rows: rows, c: c, query: query, args: args}, nil
}

type mirrorRows struct {
	driver.Rows
	c     *mirrorConn
	query string
	args  []any
	done  bool
}

func (r *mirrorRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.finish()
	return false
}

func (r *mirrorRows) Close() error {
	err := r.Rows.Close()
	r.finish()
	return err
}

func (r *mirrorRows) finish() {
	if r.done {
		return
	}
	r.done = true
	if r.Rows.Err() == nil {
		r.c.compare(r.query, r.args)
	}
}

// QueryRow compares once the row was scanned without an error: 18.16 may
// report a failure (a time budget, say) only then.
func (c *mirrorConn) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	return &mirrorRow{Row: c.Conn.QueryRow(ctx, query, args...), c: c, query: query, args: args}
}

type mirrorRow struct {
	driver.Row
	c     *mirrorConn
	query string
	args  []any
}

func (r *mirrorRow) Scan(dest ...any) error {
	err := r.Row.Scan(dest...)
	if err == nil {
		r.c.compare(r.query, r.args)
	}
	return err
}

func (r *mirrorRow) ScanStruct(dest any) error {
	err := r.Row.ScanStruct(dest)
	if err == nil {
		r.c.compare(r.query, r.args)
	}
	return err
}

func (c *mirrorConn) Select(ctx context.Context, dest any, query string, args ...any) error {
	err := c.Conn.Select(ctx, dest, query, args...)
	if err == nil {
		c.compare(query, args)
	}
	return err
}

func (c *mirrorConn) PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	b, err := c.Conn.PrepareBatch(ctx, query, opts...)
	if err != nil {
		return nil, err
	}
	return &mirrorBatch{Batch: b, c: c, query: query}, nil
}

// mirrorBatch keeps the literals of every value appended, row- or
// column-wise, and sends them to chDB when 18.16 took the batch.
type mirrorBatch struct {
	driver.Batch
	c     *mirrorConn
	query string
	rows  []string         // "(v1, v2, ...)" from Append
	cols  map[int][]string // per column, from Column(i).Append
	bad   error
}

func (b *mirrorBatch) Append(v ...any) error {
	if err := b.Batch.Append(v...); err != nil {
		return err
	}
	lits := make([]string, len(v))
	for i, x := range v {
		s, err := chdb.Literal(x)
		if err != nil {
			b.bad = err
		}
		lits[i] = s
	}
	b.rows = append(b.rows, "("+strings.Join(lits, ", ")+")")
	return nil
}

func (b *mirrorBatch) Column(i int) driver.BatchColumn {
	return &mirrorColumn{BatchColumn: b.Batch.Column(i), b: b, i: i}
}

type mirrorColumn struct {
	driver.BatchColumn
	b *mirrorBatch
	i int
}

// Append takes a column's values (a slice of them), as the driver's does.
func (c *mirrorColumn) Append(v any) error {
	if err := c.BatchColumn.Append(v); err != nil {
		return err
	}
	if c.b.cols == nil {
		c.b.cols = map[int][]string{}
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice {
		c.b.bad = fmt.Errorf("column %d: the modern leg takes a slice of values, not %T", c.i, v)
		return nil
	}
	for j := 0; j < rv.Len(); j++ {
		s, err := chdb.Literal(rv.Index(j).Interface())
		if err != nil {
			c.b.bad = err
		}
		c.b.cols[c.i] = append(c.b.cols[c.i], s)
	}
	return nil
}

// AppendRow takes one row's value, as the driver's does. Pointers (the
// sink passes an Array row as *[]*string, which the driver boxes without
// allocating) are mirrored as the values they point at.
func (c *mirrorColumn) AppendRow(v any) error {
	if err := c.BatchColumn.AppendRow(v); err != nil {
		return err
	}
	if c.b.cols == nil {
		c.b.cols = map[int][]string{}
	}
	s, err := chdb.Literal(pointee(reflect.ValueOf(v)))
	if err != nil {
		c.b.bad = fmt.Errorf("column %d: %w", c.i, err)
	}
	c.b.cols[c.i] = append(c.b.cols[c.i], s)
	return nil
}

// pointee follows pointers, also those a slice holds: *[]*string becomes
// []string (a nil element its zero value).
func pointee(v reflect.Value) any {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Pointer {
		out := reflect.MakeSlice(reflect.SliceOf(v.Type().Elem().Elem()), v.Len(), v.Len())
		for i := range v.Len() {
			if e := v.Index(i); !e.IsNil() {
				out.Index(i).Set(e.Elem())
			}
		}
		return out.Interface()
	}
	return v.Interface()
}

func (b *mirrorBatch) Send() error {
	m := b.c.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := b.Batch.Send(); err != nil {
		return err
	}
	rows := b.rows
	if len(b.cols) > 0 {
		rows = append(rows, zipColumns(b.cols)...)
	}
	if b.bad != nil {
		b.c.leg.problem(m, fmt.Sprintf("cannot mirror a batch: %v\n%s", b.bad, b.query))
		return nil
	}
	if len(rows) == 0 {
		return nil
	}
	b.c.leg.write(m, b.c.db, b.query+" VALUES", b.query+" VALUES "+strings.Join(rows, ", "))
	return nil
}

func zipColumns(cols map[int][]string) []string {
	n := len(cols)
	rows := make([]string, len(cols[0]))
	for r := range rows {
		vals := make([]string, n)
		for i := 0; i < n; i++ {
			if r < len(cols[i]) {
				vals[i] = cols[i][r]
			}
		}
		rows[r] = "(" + strings.Join(vals, ", ") + ")"
	}
	return rows
}
