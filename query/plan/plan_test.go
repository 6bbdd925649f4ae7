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
			if x.Raw == "" && !x.Visit {
				t.Errorf("aggregate %s has no expression on raw events", a)
			}
		}
	}
	for _, d := range Dimensions {
		if x, ok := Dim(d.Name); !ok || x.Name != d.Name {
			t.Errorf("dimension %s cannot be looked up", d.Name)
		}
		if d.Kind == KindVisit && (d.Column == "" || d.VisitsColumn == "") {
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
		{"edges only", Shape{Dims: []string{"visit:source"}, Aggs: []string{AggVisits}}, Cover{Known: true, Edges: true}, Visits},
		{"revenue", Shape{Aggs: []string{AggRevenue}}, full, Raw},
		{"pages", Shape{Dims: []string{Page}, Aggs: []string{AggVisitors}}, full, EventSums},
		{"pages, sums inexact", Shape{Dims: []string{Page}, Aggs: []string{AggVisitors}}, Cover{Known: true, Full: true, NoSums: true}, EventStates},
		{"pages with visits", Shape{Dims: []string{Page}, Aggs: []string{AggVisits}}, full, Raw},
		{"time series", Shape{Dims: []string{"time:day"}, Aggs: []string{AggVisitors}}, full, HourStats},
		{"time series, hours cannot", Shape{Dims: []string{"time:day"}, Aggs: []string{AggVisitors}}, Cover{Known: true, Full: true, NoHours: true}, Raw},
		{"property without none", Shape{Dims: []string{"event:props:plan"}, Filters: []Filter{none}, Aggs: []string{AggEvents}}, full, PropSums},
		{"property", Shape{Dims: []string{"event:props:plan"}, Aggs: []string{AggEvents}}, full, Raw},
	} {
		if got := Decide(c.s, c.c); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
		if c.want != Raw && !Rollups(c.s) {
			t.Errorf("%s: Rollups says no rollup route could answer", c.name)
		}
	}
}

func TestAggsFor(t *testing.T) {
	if got := AggsFor([]string{"bounce_rate", "visits", "visitors"}); !slices.Equal(got, []string{AggBounces, AggVisits, AggVisitors}) {
		t.Errorf("AggsFor: %v", got)
	}
}
