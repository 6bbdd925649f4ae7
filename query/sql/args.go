// Package sql holds the SQL the query side's statements share: bound
// arguments, the time-range condition that lets 18.16 use the sorting key,
// and the one definition of a visit, which both the raw path of package
// query and the rollup job (query/rollup) read.
//
// Every identifier in the SQL written here comes from turf's own tables
// (schema, plan); every value is passed as a bound parameter.
package sql

import (
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Args collects a statement's bound values.
type Args struct{ List []any }

// Bind binds a value: clickhouse-go writes it into the text as an escaped
// literal (18.16 has no server-side query parameters). Times are passed as
// Unix seconds so that no time zone is involved.
func (a *Args) Bind(v any) string {
	name := fmt.Sprintf("p%d", len(a.List))
	if t, ok := v.(time.Time); ok {
		a.List = append(a.List, clickhouse.Named(name, t.Unix()))
		return "toDateTime(@" + name + ")"
	}
	a.List = append(a.List, clickhouse.Named(name, v))
	return "@" + name
}

// HintDay is t's UTC date moved by days, as a string for toDate() (18.16
// compares a Date with a bound value wrongly), kept within 1970-01-01 and
// LastDay: past LastDay 18.16's toDate answers 0000-00-00, and a hint
// "toDate(ts) <= 0000-00-00" matched no row, so every range ending on
// 2105-12-30 UTC (hint day 2106-01-01) answered 0 visitors.
func HintDay(t time.Time, days int) string {
	d := t.UTC().AddDate(0, 0, days)
	switch {
	case d.Year() < 1970:
		return "1970-01-01"
	case d.After(LastDay):
		return LastDay.Format(time.DateOnly)
	}
	return d.Format(time.DateOnly)
}

// LastDay is the last date ClickHouse 18.16's date functions know (checked
// on 18.16.1: toDate('2106-01-01') is 0000-00-00). Query ranges end by its
// end (query.resolveRange), so a hint clamped to it is still a superset.
var LastDay = time.Date(2105, 12, 31, 0, 0, 0, 0, time.UTC)

// TSRange is ts in [from, to), plus the same bounds, a day wider on either
// side, on toDate(ts): the sorting key's own expression. 18.16 derives no
// key range from a condition on ts alone and reads whole monthly
// partitions; the extra day keeps the hint a superset whatever the server's
// time zone.
func (a *Args) TSRange(from, to time.Time) string {
	return fmt.Sprintf("toDate(ts) >= toDate(%s) AND toDate(ts) <= toDate(%s) AND ts >= %s AND ts < %s",
		a.Bind(HintDay(from, -1)), a.Bind(HintDay(to, 1)),
		a.Bind(from.UTC()), a.Bind(to.UTC()))
}

// InRange is ts in [from, to) without the key hint, for conditions on rows
// already read.
func (a *Args) InRange(from, to time.Time) string {
	return fmt.Sprintf("ts >= %s AND ts < %s", a.Bind(from.UTC()), a.Bind(to.UTC()))
}
