package chdb

// A clickhouse-go driver.Conn over chDB, so that turf's own code (schema
// migrations, retention with TTL) can run as it is on ClickHouse 26.x in
// tests. It covers what turf uses: Exec, Query and QueryRow with Scan into
// plain Go types, PrepareBatch with Append, ServerVersion. Arguments are
// bound with the driver's own binder, and batches become INSERT ... VALUES
// of the driver's own literals, so chDB gets the text the driver would send.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "unsafe" // go:linkname, for the driver's own binder

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// Bind is clickhouse-go's client-side binder: the text the driver sends for
// a statement with arguments (server time zone UTC, as turf's servers run).
// Writing our own would prove a copy, not what turf sends.
func Bind(query string, args ...any) (string, error) { return chBind(time.UTC, query, args...) }

// Literal is clickhouse-go's SQL literal of one value, as Bind writes it.
func Literal(v any) (string, error) { return chFormat(time.UTC, clickhouse.Seconds, v) }

//go:linkname chBind github.com/ClickHouse/clickhouse-go/v2.bind
func chBind(tz *time.Location, query string, args ...any) (string, error)

//go:linkname chFormat github.com/ClickHouse/clickhouse-go/v2.format
func chFormat(tz *time.Location, scale clickhouse.TimeUnit, v any) (string, error)

// Driver returns the connection as a driver.Conn. Methods turf does not use
// (Select, AsyncInsert, QueryFormat, ...) are not there and panic.
func (c *Conn) Driver() driver.Conn { return &drv{c: c} }

type drv struct {
	driver.Conn // nil: only the methods below exist
	c           *Conn
}

func (d *drv) ServerVersion() (*driver.ServerVersion, error) {
	out, err := d.c.Query("SELECT version()", "TabSeparated")
	if err != nil {
		return nil, err
	}
	return &driver.ServerVersion{Name: "chDB", Version: proto.ParseVersion(strings.TrimSpace(string(out))), Timezone: time.UTC}, nil
}

func (d *drv) Ping(context.Context) error { return nil }
func (d *drv) Close() error               { return nil }
func (d *drv) Stats() driver.Stats        { return driver.Stats{} }

func (d *drv) Exec(_ context.Context, query string, args ...any) error {
	sql, err := Bind(query, args...)
	if err != nil {
		return err
	}
	_, err = d.c.Query(sql, "TabSeparated")
	return err
}

func (d *drv) Query(_ context.Context, query string, args ...any) (driver.Rows, error) {
	sql, err := Bind(query, args...)
	if err != nil {
		return nil, err
	}
	out, err := d.c.Query(sql, "TabSeparatedWithNames")
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	r := &rows{i: -1}
	if len(lines) > 0 && lines[0] != "" {
		r.cols = splitRow(lines[0]) // turf's column names need no unescaping
		for _, l := range lines[1:] {
			r.data = append(r.data, splitRow(l))
		}
	}
	return r, nil
}

func (d *drv) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	rs, err := d.Query(ctx, query, args...)
	if err != nil {
		return &row{err: err}
	}
	r := rs.(*rows)
	if !r.Next() {
		return &row{err: errors.New("sql: no rows in result set")}
	}
	return &row{r: r}
}

func (d *drv) PrepareBatch(_ context.Context, query string, _ ...driver.PrepareBatchOption) (driver.Batch, error) {
	return &batch{d: d, query: query}, nil
}

type rows struct {
	driver.Rows // nil: only the methods below exist
	cols        []string
	data        [][]string
	i           int
}

func (r *rows) Next() bool        { r.i++; return r.i < len(r.data) }
func (r *rows) Columns() []string { return r.cols }
func (r *rows) Close() error      { return nil }
func (r *rows) Err() error        { return nil }

func (r *rows) Scan(dest ...any) error {
	if r.i < 0 || r.i >= len(r.data) {
		return errors.New("Scan called without a row")
	}
	vals := r.data[r.i]
	if len(dest) != len(vals) {
		return fmt.Errorf("Scan of %d values into %d destinations", len(vals), len(dest))
	}
	for i, d := range dest {
		if err := scanText(vals[i], d); err != nil {
			return fmt.Errorf("column %s: %w", r.cols[i], err)
		}
	}
	return nil
}

type row struct {
	driver.Row // nil: only the methods below exist
	r          *rows
	err        error
}

func (r *row) Err() error { return r.err }

func (r *row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return r.r.Scan(dest...)
}

// splitRow splits a TabSeparated line into its fields, still escaped: a
// String is escaped as a field, an array's text as it is (its elements are
// quoted and escaped inside it), so scanText unescapes by type.
func splitRow(line string) []string { return strings.Split(line, "\t") }

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case '0':
			b.WriteByte(0)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// scanText converts one field's text to the destination's type.
func scanText(s string, dest any) error {
	var err error
	switch d := dest.(type) {
	case *string:
		*d = unescape(s)
	case *bool:
		*d = s == "1" || s == "true"
	case *uint8:
		var v uint64
		v, err = strconv.ParseUint(s, 10, 8)
		*d = uint8(v)
	case *uint16:
		var v uint64
		v, err = strconv.ParseUint(s, 10, 16)
		*d = uint16(v)
	case *uint32:
		var v uint64
		v, err = strconv.ParseUint(s, 10, 32)
		*d = uint32(v)
	case *uint64:
		*d, err = strconv.ParseUint(s, 10, 64)
	case *int64:
		*d, err = strconv.ParseInt(s, 10, 64)
	case *int32:
		var v int64
		v, err = strconv.ParseInt(s, 10, 32)
		*d = int32(v)
	case *float64:
		*d, err = strconv.ParseFloat(s, 64)
	case *time.Time:
		layout := time.DateTime
		if len(s) == len(time.DateOnly) {
			layout = time.DateOnly
		}
		*d, err = time.ParseInLocation(layout, s, time.UTC)
	case *[]string:
		*d, err = parseStrings(s)
	default:
		return fmt.Errorf("cannot scan into %T", dest)
	}
	return err
}

// parseStrings reads an Array(String) as TabSeparated writes it: ['a','b\'c'].
func parseStrings(s string) ([]string, error) {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return nil, fmt.Errorf("not an array: %q", s)
	}
	out := []string{}
	body := s[1 : len(s)-1]
	for i := 0; i < len(body); {
		if body[i] == ',' || body[i] == ' ' {
			i++
			continue
		}
		if body[i] != '\'' {
			return nil, fmt.Errorf("not an array of strings: %q", s)
		}
		j := i + 1
		for ; j < len(body) && body[j] != '\''; j++ {
			if body[j] == '\\' {
				j++ // an escaped character, a quote perhaps
			}
		}
		if j >= len(body) {
			return nil, fmt.Errorf("unterminated string in %q", s)
		}
		out = append(out, unescape(body[i+1:j]))
		i = j + 1
	}
	return out, nil
}

type batch struct {
	driver.Batch // nil: only the methods below exist
	d            *drv
	query        string
	rows         []string
	sent         bool
}

func (b *batch) Append(v ...any) error {
	lits := make([]string, len(v))
	for i, x := range v {
		s, err := Literal(x)
		if err != nil {
			return err
		}
		lits[i] = s
	}
	b.rows = append(b.rows, "("+strings.Join(lits, ", ")+")")
	return nil
}

func (b *batch) Send() error {
	b.sent = true
	if len(b.rows) == 0 {
		return nil
	}
	_, err := b.d.c.Query(b.query+" VALUES "+strings.Join(b.rows, ", "), "TabSeparated")
	return err
}

func (b *batch) Abort() error { b.sent = true; return nil }
func (b *batch) Close() error { b.sent = true; return nil }
func (b *batch) IsSent() bool { return b.sent }
func (b *batch) Rows() int    { return len(b.rows) }
func (b *batch) Flush() error { return nil }
