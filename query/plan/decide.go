package plan

import (
	"slices"
	"strings"
)

// Route is the one way a statement answers a query: which tables it reads
// and how it adds them up. Each has its own builder file in package query
// (route_<name>.go).
type Route int

const (
	// Raw rebuilds everything from the events table.
	Raw Route = iota
	// Visits reads a row per visit from the visits table for the built
	// days, rebuilt from the events for the rest.
	Visits
	// VisitStats adds up visit_stats' per-day counts (one visit dimension
	// at most), checking that each group is one row per day.
	VisitStats
	// EventStates merges event_stats' uniq states.
	EventStates
	// EventSums adds up event_stats' per-day counts, checked like
	// VisitStats.
	EventSums
	// HourStats answers an unfiltered time series from hour_stats.
	HourStats
	// PropSums adds up event_props' per-day counts, checked.
	PropSums
	NumRoutes
)

var routeNames = [NumRoutes]string{"raw", "visits", "visit_stats", "event_stats_states", "event_stats_sums", "hour_stats", "event_props"}

func (r Route) String() string { return routeNames[r] }

// Checked reports whether the route's sums must be checked for groups that
// span several rows on one day.
func (r Route) Checked() bool { return r == VisitStats || r == EventSums || r == PropSums }

// Shape is what the planner looks at: the dimensions, filters and
// aggregates of one statement.
type Shape struct {
	Dims    []string
	Filters []Filter
	Aggs    []string
	// Machines: the statement reads machine events too (WantsMachines of
	// the query it serves, so a share's base reads the same events).
	Machines bool
}

// Cover is what the rollup tables answer of a statement's range, and what
// an earlier attempt ruled out.
type Cover struct {
	// Known: the coverage was looked up (only when Rollups says so).
	Known bool
	// Full: some days lie wholly inside the range and are built.
	Full bool
	// Edges: the range starts or ends inside a built day.
	Edges bool
	// NoSums: a checked route found a group spanning several rows.
	NoSums bool
	// NoHours: hour_stats could not answer (a bucket splits a day).
	NoHours bool
}

// Family is which rollup family could answer a shape exactly.
type family int

const (
	famNone family = iota
	famVisits
	famEvents
)

// familyOf picks the rollup family that answers the shape exactly:
//
//   - visits: visit dimensions and filters only (every event of a visit
//     carries its visit's values, so an event matches exactly when its visit
//     does), and aggregates visit_stats holds (so no revenue).
//   - event_stats: event:page, event:hostname, event:name and event:goal
//     dimensions and filters only (each a function of the key), with the
//     aggregates event_stats holds.
//
// Time dimensions, props and revenue always read the raw events.
func familyOf(s Shape) family {
	all := func(ds []string, f func(Dimension) bool) bool {
		return !slices.ContainsFunc(ds, func(d string) bool { x, ok := Dim(d); return !ok || !f(x) })
	}
	aggs := func(has func(Aggregate) string) bool {
		return !slices.ContainsFunc(s.Aggs, func(a string) bool { return has(Aggregates[a]) == "" })
	}
	leaves := FilterDims(s.Filters)
	isVisit := func(d Dimension) bool { return d.Kind == KindVisit && !d.Live }
	isStat := func(d Dimension) bool { return d.EventStats }
	if all(s.Dims, isVisit) && all(leaves, isVisit) && aggs(func(a Aggregate) string { return a.VisitStats }) {
		return famVisits
	}
	if all(s.Dims, isStat) && all(leaves, isStat) && aggs(func(a Aggregate) string { return a.EventStats }) {
		return famEvents
	}
	return famNone
}

// hoursShape: one time dimension, no filters, aggregates hour_stats holds.
func hoursShape(s Shape) bool {
	return len(s.Filters) == 0 && len(s.Dims) == 1 && IsTime(s.Dims[0]) &&
		!slices.ContainsFunc(s.Aggs, func(a string) bool { return !Aggregates[a].Hours })
}

// propsShape reports whether event_props answers the shape: one property
// dimension (and event:name besides, if any: the rows are per name),
// without the events that lack the property (a filter is_not "(none)" on
// it: event_props holds only events that have it), filters on the event
// name and the property only, and aggregates event_props holds.
//
// A shape that reads machine events qualifies with one more filter, a
// top-level is_not "(none)" on MachineDim: machine events only, which
// event_props holds apart (MachineOnly).
func propsShape(s Shape) bool {
	p := PropsDim(s)
	if p == "" || p == MachineDim {
		return false
	}
	if slices.ContainsFunc(s.Aggs, func(a string) bool { return Aggregates[a].EventProps == "" }) {
		return false
	}
	fs := s.Filters
	if s.Machines {
		i, ok := MachineOnly(s.Filters)
		if !ok {
			return false
		}
		fs = slices.Delete(slices.Clone(fs), i, i+1)
	}
	if slices.ContainsFunc(FilterDims(fs), func(d string) bool { return d != Name && d != p }) {
		return false
	}
	return slices.ContainsFunc(s.Filters, func(f Filter) bool {
		return f.Op == "is_not" && f.Dimension == p && slices.ContainsFunc(f.Values, func(v string) bool { return strings.EqualFold(v, "(none)") })
	})
}

// MachineOnly is the index of the top-level filter that keeps machine
// events only (is_not "(none)" on MachineDim), if there is one.
func MachineOnly(fs []Filter) (int, bool) {
	i := slices.IndexFunc(fs, func(f Filter) bool {
		return f.Op == "is_not" && f.Dimension == MachineDim && len(f.Values) == 1 && strings.EqualFold(f.Values[0], "(none)")
	})
	return i, i >= 0
}

// PropsDim is the shape's one property dimension when its dimensions are
// that alone or with event:name, else "".
func PropsDim(s Shape) string {
	var p string
	for _, d := range s.Dims {
		switch {
		case strings.HasPrefix(d, Props) && p == "":
			p = d
		case d != Name || len(s.Dims) > 2:
			return ""
		}
	}
	return p
}

// StatsDim is the one visit dimension a shape groups or filters by ("" for
// none), when there is at most one: visit_stats holds one per row.
func StatsDim(s Shape) (string, bool) {
	if len(s.Dims) > 1 {
		return "", false
	}
	d := ""
	for _, x := range append(slices.Clone(s.Dims), FilterDims(s.Filters)...) {
		if d != "" && x != d {
			return "", false
		}
		d = x
	}
	return d, true
}

// Rollups reports whether some rollup route could answer the shape, so
// that its range's coverage is worth looking up.
func Rollups(s Shape) bool {
	if s.Machines {
		return propsShape(s) // the rollup tables hold no other machine events
	}
	return hoursShape(s) || propsShape(s) || familyOf(s) != famNone
}

// Decide is the planner: the route that answers the shape exactly over the
// coverage, the fastest first. A checked route that finds inexact sums, or
// hour_stats that cannot cut the buckets, is decided again with NoSums or
// NoHours set.
func Decide(s Shape, c Cover) Route {
	if !c.Known || s.Machines && !propsShape(s) {
		return Raw // the rollup tables hold no other machine events
	}
	if hoursShape(s) && !c.NoHours {
		return HourStats
	}
	sums := c.Full && !c.NoSums
	if sums && propsShape(s) {
		return PropSums
	}
	if s.Machines {
		return Raw
	}
	switch familyOf(s) {
	case famVisits:
		if _, one := StatsDim(s); one && sums {
			return VisitStats
		}
		if _, _, ok := StatsWithin(s); ok && sums {
			return VisitStats
		}
		if c.Full || c.Edges {
			return Visits
		}
	case famEvents:
		if sums {
			return EventSums
		}
		if c.Full {
			return EventStates
		}
	}
	return Raw
}
