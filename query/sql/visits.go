package sql

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"turf/query/plan"
	"turf/schema"
)

// VisitGap is the longest pause inside one visit, in seconds.
const VisitGap = 30 * 60

// Visits is the one definition of a visit in SQL. A visitor id lives for
// one UTC day; a visit is a run of one visitor's events of that day with no
// pause longer than VisitGap. Its start and duration are its first and
// last event's times, its visit dimensions its first event's values
// (exit_page: its last), and it bounces when it has exactly one page view
// and no other interactive event.
//
// The visits are made without lambdas that capture the event array
// (ClickHouse copies a captured array for every element, which makes that
// quadratic in a visitor's events of the day): each event gets its visit's
// number by a running sum over the sorted times, and the visits are a
// GROUP BY.
type Visits struct {
	DB, Site string
	// Dims are the visit dimensions the rows carry, as plan.VisitAlias
	// columns.
	Dims []string
	// Cols are further events columns the caller reads of each event
	// (EventRows).
	Cols []string
	// Window restricts ts to the events read: whole UTC days, so that
	// visits are whole.
	Window string
	// From and To are the range: p_pageviews and p_events count the
	// visit's events inside it, and a visit without any is left out.
	From, To time.Time
	// Times: the rows carry v_event_times and v_pageview_times (the
	// rollup build stores them).
	Times bool
	// Machines: machine events are part of the visits too; without it
	// they are left out before visits are made, so a scanner's click
	// starts no visit (plan.HumanEvents).
	Machines bool
}

// cols is the tuple the events are gathered in: ts first (the sort key),
// then every column the visit or the caller reads.
func (v Visits) cols() []string {
	cols := []string{"ts", "name", "interactive"}
	var add func(string)
	add = func(c string) {
		if c == "referrer" {
			add("referrer_host")
			add("referrer_path")
			return
		}
		if !slices.Contains(cols, c) {
			cols = append(cols, c)
		}
	}
	for _, d := range v.Dims {
		x, ok := plan.Dim(d)
		if !ok || x.Kind != plan.KindVisit {
			panic("BUG: not a visit dimension: " + d)
		}
		add(x.Column)
	}
	for _, c := range v.Cols {
		add(c)
	}
	return cols
}

// dimExpr is a visit dimension's value, over the visit's events (i is an
// event's position in the visitor's day).
func dimExpr(d string) string {
	x, _ := plan.Dim(d)
	switch {
	case x.Last:
		return fmt.Sprintf("argMax(%s, i)", x.Column)
	case d == plan.Referrer:
		// Host and path without a trailing slash, as Plausible stores a
		// referrer: "facebook.com", not "facebook.com/".
		return "argMin(if(referrer_host = '', 'Direct / None', concat(referrer_host, replaceRegexpOne(referrer_path, '/+$', ''))), i)"
	default:
		return fmt.Sprintf("argMin(%s, i)", x.Column)
	}
}

// rows is Rows, and with events a v_events column too: the visit's events
// as tuples of the returned columns.
func (v Visits) rows(a *Args, events bool) (string, []string) {
	cols := v.cols()
	inRange := a.InRange(v.From, v.To)
	var sb strings.Builder
	sb.WriteString("SELECT visitor_id, min(ts) AS v_start, toInt64(max(ts) - min(ts)) AS v_duration, ")
	// The bounce rule, written once.
	sb.WriteString("toUInt8(countIf(name = 'pageview') = 1 AND countIf(name != 'pageview' AND interactive = 1) = 0) AS v_bounce, ")
	fmt.Fprintf(&sb, "toUInt64(countIf(name = 'pageview' AND %s)) AS p_pageviews, toUInt64(countIf(%s)) AS p_events", inRange, inRange)
	if v.Times {
		sb.WriteString(", arraySort(groupArray(ts)) AS v_event_times, arraySort(groupArrayIf(ts, name = 'pageview')) AS v_pageview_times")
	}
	if events {
		sb.WriteString(", groupArray(e) AS v_events")
	}
	for _, d := range v.Dims {
		fmt.Fprintf(&sb, ", %s AS %s", dimExpr(d), plan.VisitAlias(d))
	}
	sb.WriteString("\nFROM (\nSELECT visitor_id, day, vno, i, e")
	for i, c := range cols {
		fmt.Fprintf(&sb, ", tupleElement(e, %d) AS %s", i+1, c)
	}
	fmt.Fprintf(&sb, "\nFROM (\nSELECT visitor_id, day, evs, arrayCumSum(arrayMap((t, p) -> t - p > %d, arrayMap(x -> x.1, evs), arrayPushFront(arrayPopBack(arrayMap(x -> x.1, evs)), toDateTime(0)))) AS vnos", VisitGap)
	human := plan.HumanEvents
	if v.Machines {
		human = "1"
	}
	fmt.Fprintf(&sb, "\nFROM (\nSELECT visitor_id, toDate(ts, 'UTC') AS day, arraySort(x -> x.1, groupArray((%s))) AS evs\nFROM %s\nWHERE site = %s AND (%s) AND %s\nGROUP BY visitor_id, day\n)\n)",
		strings.Join(cols, ", "), schema.Table(v.DB, schema.Events), a.Bind(v.Site), v.Window, human)
	sb.WriteString("\nARRAY JOIN evs AS e, vnos AS vno, arrayEnumerate(evs) AS i\n)\nGROUP BY visitor_id, day, vno\nHAVING p_events > 0")
	return sb.String(), cols
}

// Rows is one row per visit with an event inside the range: visitor_id,
// v_start, v_duration, v_bounce, p_pageviews and p_events (its events
// inside the range), and a v_* column per dimension.
func (v Visits) Rows(a *Args) string {
	s, _ := v.rows(a, false)
	return s
}

// EventRows is one row per event of those visits: visitor_id, the event's
// own Cols (and ts, name, interactive), and its visit's v_start,
// v_duration, v_bounce and v_* dimensions.
func (v Visits) EventRows(a *Args) string {
	inner, cols := v.rows(a, true)
	var sb strings.Builder
	sb.WriteString("SELECT visitor_id")
	for i, c := range cols {
		fmt.Fprintf(&sb, ", tupleElement(ev, %d) AS %s", i+1, c)
	}
	sb.WriteString(", v_start, v_duration, v_bounce")
	for _, d := range v.Dims {
		sb.WriteString(", " + plan.VisitAlias(d))
	}
	fmt.Fprintf(&sb, "\nFROM (%s)\nARRAY JOIN v_events AS ev", inner)
	return sb.String()
}
