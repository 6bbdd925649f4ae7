// Package plan is the query side's vocabulary and its planner.
//
// The vocabulary is three tables: Aggregates (the integer columns a
// statement returns, with their expression on raw events, on visits and on
// each rollup table), Metrics (what a caller asks for: the aggregates each
// needs, how its value is formed and compared, when it is invalid) and
// Dimensions (what a caller groups and filters by: the events column it
// reads, how it reads on visits and rollup tables). Validation, the planner,
// the SQL builders and the answer's formatting all read these tables, so a
// new metric is one entry in Metrics (and its aggregates) plus its oracle.
//
// The planner is Decide: from a validated query's shape and what the rollup
// tables cover of its range, the one Route that answers it exactly.
//
// The package is pure: no ClickHouse, no HTTP.
package plan

import (
	"regexp"
	"slices"
	"strings"
)

// Aggregate names: the Int64 columns a statement can return.
const (
	AggVisitors  = "visitors"
	AggVisits    = "visits"
	AggBounces   = "bounces"
	AggDuration  = "duration"
	AggPageviews = "pageviews"
	AggEvents    = "events"
	AggRevenue   = "revenue"
	AggRevenueN  = "revenue_n"
	// From the engagements table (engagement.go): per visit and group,
	// the deepest scroll and the engaged time, added up.
	AggScrollSum     = "scroll_sum"
	AggScrollVisits  = "scroll_visits"
	AggEngagedMS     = "engaged_ms"
	AggEngagedVisits = "engaged_visits"
	// AggEntryBounces and AggEntryVisits are not statements' columns: the
	// run sets them to the bounces and visits of the visits that entered on
	// the page a top-level event:page filter names, which bounce_rate is
	// then over.
	AggEntryBounces = "entry_bounces"
	AggEntryVisits  = "entry_visits"
	// AggEntryDuration and AggEntryDurationVisits likewise hold, by an
	// event:page dimension, the duration and visits of the visits that
	// entered on each page, which visit_duration is then over.
	AggEntryDuration       = "entry_duration"
	AggEntryDurationVisits = "entry_duration_visits"
)

// Aggregate is one integer column and how each table family makes it. An
// empty expression means the family cannot make it.
type Aggregate struct {
	Name string
	// Visit: the aggregate needs visits reconstructed.
	Visit bool
	// Raw is its expression on raw events; %[1]s is the bound currency.
	Raw string
	// PerVisit is the column a per-visit row carries for it ("" for the
	// visitors and visits, which the visit rows themselves are).
	PerVisit string
	// OverVisits adds the per-visit rows up.
	OverVisits string
	// VisitStats, EventStats, EventProps: the column of that rollup table
	// whose per-day values add up to it.
	VisitStats, EventStats, EventProps string
	// EventStates is its expression over event_stats' uniq states (st) and
	// per-row counts (p_<name>).
	EventStates string
	// States is its expression on raw events as event_stats' states path
	// reads them.
	States string
	// Hours: hour_stats holds it.
	Hours bool
	// Engagement: it is read from the engagements table, by its own
	// statement, never from the events (engagement.go).
	Engagement bool
}

// Aggregates is the table of every aggregate, by name.
var Aggregates = map[string]Aggregate{
	AggVisitors: {Name: AggVisitors, Raw: "uniqExact(visitor_id)", OverVisits: "uniqExact(visitor_id)",
		VisitStats: "visitors", EventStats: "uniq", EventProps: "uniq",
		EventStates: "uniqExactMerge(st)", States: "uniqExactState(visitor_id) AS st", Hours: true},
	AggVisits: {Name: AggVisits, Visit: true, OverVisits: "count()", VisitStats: "visits"},
	AggBounces: {Name: AggBounces, Visit: true, PerVisit: "v_bounce", OverVisits: "sum(v_bounce)",
		VisitStats: "bounces"},
	AggDuration: {Name: AggDuration, Visit: true, PerVisit: "v_duration", OverVisits: "sum(v_duration)",
		VisitStats: "duration"},
	AggPageviews: {Name: AggPageviews, Raw: "countIf(name = 'pageview')", PerVisit: "p_pageviews", OverVisits: "sum(p_pageviews)",
		VisitStats: "pageviews", EventStats: "pageviews",
		EventStates: "sum(p_pageviews)", States: "toUInt64(countIf(name = 'pageview')) AS p_pageviews", Hours: true},
	AggEvents: {Name: AggEvents, Raw: "count()", PerVisit: "p_events", OverVisits: "sum(p_events)",
		VisitStats: "events", EventStats: "events", EventProps: "events",
		EventStates: "sum(p_events)", States: "toUInt64(count()) AS p_events", Hours: true},
	AggRevenue:  {Name: AggRevenue, Raw: "sumIf(revenue_micros, revenue_currency = %[1]s)"},
	AggRevenueN: {Name: AggRevenueN, Raw: "countIf(revenue_micros != 0 AND revenue_currency = %[1]s)"},

	AggScrollSum:     {Name: AggScrollSum, Engagement: true},
	AggScrollVisits:  {Name: AggScrollVisits, Engagement: true},
	AggEngagedMS:     {Name: AggEngagedMS, Engagement: true},
	AggEngagedVisits: {Name: AggEngagedVisits, Engagement: true},
}

// IsVisitAgg reports whether aggregate a needs visits reconstructed.
func IsVisitAgg(a string) bool { return Aggregates[a].Visit }

// Dimension kinds.
type Kind int

const (
	KindEvent Kind = iota // a column of the event itself
	KindGoal              // the goal an event completes
	KindVisit             // a property of the event's visit
	KindTime              // a time bucket
	KindProp              // a custom property (event:props:<key>)
)

// Dimension is one thing to group or filter by.
type Dimension struct {
	Name string
	Kind Kind
	// Column is the events column it reads (for a visit dimension, of the
	// visit's first event; of its last for exit_page); "referrer" stands
	// for referrer_host and referrer_path.
	Column string
	// Last: a visit dimension that takes its visit's last event.
	Last bool
	// VisitsColumn is its column in the visits table and its dim value in
	// visit_stats.
	VisitsColumn string
	// EventStats: event_stats is keyed by it.
	EventStats bool
	// Filter: it may be filtered by.
	Filter bool
	// Live: a visit dimension the rollup tables do not hold (its queries
	// read the raw events).
	Live bool
	// Blank is what an empty value reads as, in answers and in filters
	// (Plausible's "(not set)"; "Direct / None" for a source); "" keeps it
	// empty.
	Blank string
}

// NotSet is Plausible's label of a value the visit did not have.
const NotSet = "(not set)"

// blanks are the visit dimensions whose empty value has a label.
var blanks = map[string]string{
	"visit:source": "Direct / None", "visit:utm_source": NotSet, "visit:utm_medium": NotSet,
	"visit:utm_campaign": NotSet, "visit:utm_content": NotSet, "visit:utm_term": NotSet,
	"visit:device": NotSet, "visit:browser": NotSet, "visit:browser_version": NotSet,
	"visit:os": NotSet, "visit:os_version": NotSet,
}

// Well-known dimension names.
const (
	Page     = "event:page"
	Hostname = "event:hostname"
	Name     = "event:name"
	Goal     = "event:goal"
	Props    = "event:props:"
	Referrer = "visit:referrer"
)

func visitDim(name, col string) Dimension {
	short := strings.TrimPrefix(name, "visit:")
	return Dimension{Name: name, Kind: KindVisit, Column: col, VisitsColumn: short, Filter: true, Last: name == "visit:exit_page", Blank: blanks[name]}
}

// liveVisitDim is a visit dimension read from the raw events only.
func liveVisitDim(name, col string) Dimension {
	d := visitDim(name, col)
	d.Live, d.Last, d.VisitsColumn = true, name == "visit:exit_page_hostname", ""
	return d
}

// Dimensions is the table of every fixed dimension, in the order the
// visits table's columns are listed; event:props:<key> is checked by Dim.
var Dimensions = []Dimension{
	{Name: Page, Kind: KindEvent, Column: "pathname", EventStats: true, Filter: true},
	{Name: Hostname, Kind: KindEvent, Column: "hostname", EventStats: true, Filter: true},
	{Name: Name, Kind: KindEvent, Column: "name", EventStats: true, Filter: true},
	{Name: Goal, Kind: KindGoal, EventStats: true, Filter: true},
	visitDim("visit:entry_page", "pathname"), visitDim("visit:exit_page", "pathname"),
	visitDim("visit:source", "source"), visitDim(Referrer, "referrer"),
	visitDim("visit:channel", "channel"), visitDim("visit:utm_source", "utm_source"),
	visitDim("visit:utm_medium", "utm_medium"), visitDim("visit:utm_campaign", "utm_campaign"),
	visitDim("visit:utm_content", "utm_content"), visitDim("visit:utm_term", "utm_term"),
	visitDim("visit:country", "country"), visitDim("visit:region", "region"), visitDim("visit:city", "city"),
	visitDim("visit:device", "device"),
	visitDim("visit:browser", "browser"), visitDim("visit:browser_version", "browser_version"),
	visitDim("visit:os", "os"), visitDim("visit:os_version", "os_version"),
	liveVisitDim("visit:entry_page_hostname", "hostname"), liveVisitDim("visit:exit_page_hostname", "hostname"),
	{Name: "time", Kind: KindTime}, {Name: "time:hour", Kind: KindTime}, {Name: "time:day", Kind: KindTime},
	{Name: "time:week", Kind: KindTime}, {Name: "time:month", Kind: KindTime},
}

var byName = func() map[string]Dimension {
	m := map[string]Dimension{}
	for _, d := range Dimensions {
		m[d.Name] = d
	}
	return m
}()

var propKey = regexp.MustCompile(`^[^\x00-\x1f]{1,300}$`)

// Dim looks a dimension up by name; false for an unknown one.
func Dim(name string) (Dimension, bool) {
	if k, ok := strings.CutPrefix(name, Props); ok {
		return Dimension{Name: name, Kind: KindProp, Filter: true}, propKey.MatchString(k)
	}
	d, ok := byName[name]
	return d, ok
}

// KindOf is the kind of a valid dimension.
func KindOf(name string) Kind {
	d, ok := Dim(name)
	if !ok {
		panic("BUG: dimension not in the vocabulary: " + name)
	}
	return d.Kind
}

// IsTime reports whether d is a time dimension.
func IsTime(d string) bool { return d == "time" || strings.HasPrefix(d, "time:") }

// IsVisit reports whether d is a visit dimension.
func IsVisit(d string) bool { x, ok := byName[d]; return ok && x.Kind == KindVisit }

// VisitDims lists the visit dimensions the visits table holds, in its
// order.
func VisitDims() []string {
	var out []string
	for _, d := range Dimensions {
		if d.Kind == KindVisit && !d.Live {
			out = append(out, d.Name)
		}
	}
	return out
}

// VisitAlias is the column name a visit dimension has in per-event and
// per-visit rows.
func VisitAlias(dim string) string { return "v_" + strings.TrimPrefix(dim, "visit:") }

// UsesVisit reports whether a query needs visits reconstructed.
func UsesVisit(dims []string, filters []Filter, aggs []string) bool {
	return slices.ContainsFunc(aggs, IsVisitAgg) || slices.ContainsFunc(dims, IsVisit) ||
		slices.ContainsFunc(FilterDims(filters), IsVisit)
}

// LeafOps are the comparison operators of a leaf filter; each has its
// negation with the suffix _not.
var LeafOps = []string{"is", "is_not", "contains", "contains_not", "matches", "matches_not"}
