package plan

import (
	"slices"
	"testing"
)

// Every metric needs aggregates the vocabulary defines, and has a value.
func TestVocabulary(t *testing.T) {
	for _, m := range Metrics {
		if m.Value == nil || len(m.Needs) == 0 {
			t.Errorf("metric %s: no value or no aggregates", m.Name)
		}
		for _, a := range m.Needs {
			x, ok := Aggregates[a]
			if !ok || x.Name != a {
				t.Errorf("metric %s needs unknown aggregate %s", m.Name, a)
			}
			if x.Raw == "" && !x.Visit && !x.Engagement {
				t.Errorf("aggregate %s has no expression on raw events", a)
			}
			// The engagement aggregates come from the engagements table
			// only: no rollup route may claim them.
			if x.Engagement && (x.Raw != "" || x.Visit || x.VisitStats != "" || x.EventStats != "" || x.EventProps != "" || x.Hours) {
				t.Errorf("engagement aggregate %s claims an events expression", a)
			}
		}
	}
	for _, d := range Dimensions {
		if x, ok := Dim(d.Name); !ok || x.Name != d.Name {
			t.Errorf("dimension %s cannot be looked up", d.Name)
		}
		if d.Kind == KindVisit && (d.Column == "" || d.VisitsColumn == "" && !d.Live) {
			t.Errorf("visit dimension %s has no column", d.Name)
		}
	}
	if _, ok := Dim("event:props:plan"); !ok {
		t.Error("a property dimension is not valid")
	}
	if _, ok := Dim("event:props:"); ok {
		t.Error("an empty property key is valid")
	}
}

// Decide takes the fastest exact route for each shape and coverage.
func TestDecide(t *testing.T) {
	none := Filter{Op: "is_not", Dimension: "event:props:plan", Values: []string{"(none)"}}
	full := Cover{Known: true, Full: true}
	email := Filter{Op: "is", Dimension: "visit:channel", Values: []string{"Email"}, CaseSensitive: true}
	for _, c := range []struct {
		name string
		s    Shape
		c    Cover
		want Route
	}{
		{"unknown coverage", Shape{Aggs: []string{AggVisitors}}, Cover{}, Raw},
		{"nothing built", Shape{Aggs: []string{AggVisitors}}, Cover{Known: true}, Raw},
		{"visit totals", Shape{Aggs: []string{AggVisitors, AggBounces}}, full, VisitStats},
		{"visit totals, sums inexact", Shape{Aggs: []string{AggVisitors, AggBounces}}, Cover{Known: true, Full: true, NoSums: true}, Visits},
		{"two visit dimensions", Shape{Dims: []string{"visit:source", "visit:country"}, Aggs: []string{AggVisits}}, full, Visits},
		{"campaigns of one channel", Shape{Dims: []string{"visit:utm_campaign"}, Filters: []Filter{email, {Op: "is_not", Dimension: "visit:utm_campaign", Values: []string{""}, CaseSensitive: true}}, Aggs: []string{AggVisits}}, full, VisitStats},
		{"campaigns of one channel, sums inexact", Shape{Dims: []string{"visit:utm_campaign"}, Filters: []Filter{email}, Aggs: []string{AggVisits}}, Cover{Known: true, Full: true, NoSums: true}, Visits},
		{"campaigns of two channels", Shape{Dims: []string{"visit:utm_campaign"}, Filters: []Filter{{Op: "is", Dimension: "visit:channel", Values: []string{"Email", "Direct"}, CaseSensitive: true}}, Aggs: []string{AggVisits}}, full, Visits},
		{"campaigns of one channel in any case", Shape{Dims: []string{"visit:utm_campaign"}, Filters: []Filter{{Op: "is", Dimension: "visit:channel", Values: []string{"email"}}}, Aggs: []string{AggVisits}}, full, Visits},
		{"campaigns of one channel and country", Shape{Dims: []string{"visit:utm_campaign"}, Filters: []Filter{email, {Op: "is", Dimension: "visit:country", Values: []string{"NL"}, CaseSensitive: true}}, Aggs: []string{AggVisits}}, full, Visits},
		{"sources of one channel (no such rows)", Shape{Dims: []string{"visit:source"}, Filters: []Filter{email}, Aggs: []string{AggVisits}}, full, Visits},
		{"one campaign of one channel", Shape{Filters: []Filter{email, {Op: "is", Dimension: "visit:utm_campaign", Values: []string{"nov"}, CaseSensitive: true}}, Aggs: []string{AggVisits}}, full, VisitStats},
		{"edges only", Shape{Dims: []string{"visit:source"}, Aggs: []string{AggVisits}}, Cover{Known: true, Edges: true}, Visits},
		{"revenue", Shape{Aggs: []string{AggRevenue}}, full, Raw},
		{"pages", Shape{Dims: []string{Page}, Aggs: []string{AggVisitors}}, full, EventSums},
		{"pages, sums inexact", Shape{Dims: []string{Page}, Aggs: []string{AggVisitors}}, Cover{Known: true, Full: true, NoSums: true}, EventStates},
		{"pages with visits", Shape{Dims: []string{Page}, Aggs: []string{AggVisits}}, full, Raw},
		{"time series", Shape{Dims: []string{"time:day"}, Aggs: []string{AggVisitors}}, full, HourStats},
		{"time series, hours cannot", Shape{Dims: []string{"time:day"}, Aggs: []string{AggVisitors}}, Cover{Known: true, Full: true, NoHours: true}, Raw},
		{"property without none", Shape{Dims: []string{"event:props:plan"}, Filters: []Filter{none}, Aggs: []string{AggEvents}}, full, PropSums},
		{"property", Shape{Dims: []string{"event:props:plan"}, Aggs: []string{AggEvents}}, full, Raw},
		{"property and name", Shape{Dims: []string{"event:props:plan", Name}, Filters: []Filter{none, {Op: "is", Dimension: Name, Values: []string{"Signup"}}}, Aggs: []string{AggVisitors, AggEvents}}, full, PropSums},
		{"name and property", Shape{Dims: []string{Name, "event:props:plan"}, Filters: []Filter{none}, Aggs: []string{AggEvents}}, full, PropSums},
		{"property and page", Shape{Dims: []string{"event:props:plan", Page}, Filters: []Filter{none}, Aggs: []string{AggEvents}}, full, Raw},
		{"two properties", Shape{Dims: []string{"event:props:plan", "event:props:tier"}, Filters: []Filter{none}, Aggs: []string{AggEvents}}, full, Raw},
		{"machines without none", Shape{Dims: []string{MachineDim}, Filters: []Filter{{Op: "is_not", Dimension: MachineDim, Values: []string{"(none)"}}}, Aggs: []string{AggEvents}, Machines: true}, full, Raw},
		{"machines by property and name", Shape{Dims: []string{"event:props:plan", Name}, Filters: []Filter{none, {Op: "is_not", Dimension: MachineDim, Values: []string{"(none)"}}}, Aggs: []string{AggEvents}, Machines: true}, full, PropSums},
		{"machines by property, sums inexact", Shape{Dims: []string{"event:props:plan"}, Filters: []Filter{none, {Op: "is_not", Dimension: MachineDim, Values: []string{"(none)"}}}, Aggs: []string{AggEvents}, Machines: true}, Cover{Known: true, Full: true, NoSums: true}, Raw},
		{"machines and people by property", Shape{Dims: []string{"event:props:plan"}, Filters: []Filter{none}, Aggs: []string{AggEvents}, Machines: true}, full, Raw},
		{"one machine by property", Shape{Dims: []string{"event:props:plan"}, Filters: []Filter{none, {Op: "is", Dimension: MachineDim, Values: []string{"apple"}}}, Aggs: []string{AggEvents}, Machines: true}, full, Raw},
		{"visit totals with machines", Shape{Aggs: []string{AggVisitors}, Machines: true}, full, Raw},
	} {
		if got := Decide(c.s, c.c); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
		if c.want != Raw && !Rollups(c.s) {
			t.Errorf("%s: Rollups says no rollup route could answer", c.name)
		}
	}
}

// Only a query that names the machine prop reads machine events.
func TestWantsMachines(t *testing.T) {
	for _, c := range []struct {
		dims    []string
		filters []Filter
		want    bool
	}{
		{nil, nil, false},
		{[]string{"event:props:campaign"}, nil, false},
		{[]string{MachineDim}, nil, true},
		{nil, []Filter{{Op: "not", Children: []Filter{{Op: "is", Dimension: MachineDim, Values: []string{"apple-mpp"}}}}}, true},
	} {
		if got := WantsMachines(c.dims, c.filters); got != c.want {
			t.Errorf("WantsMachines(%v, %v) = %v", c.dims, c.filters, got)
		}
		if got := Rollups(Shape{Dims: c.dims, Filters: c.filters, Aggs: []string{AggEvents}, Machines: c.want}); got && c.want {
			t.Errorf("Rollups(%v) with machines", c.dims)
		}
	}
}

func TestAggsFor(t *testing.T) {
	if got := AggsFor([]string{"bounce_rate", "visits", "visitors"}); !slices.Equal(got, []string{AggBounces, AggVisits, AggVisitors}) {
		t.Errorf("AggsFor: %v", got)
	}
}
