package query

import (
	"context"
	"slices"
	"time"

	"turf/query/plan"
	"turf/query/rollup"
)

// coverage says which UTC days of a range the rollup tables answer, from
// the markers the rollup job writes (rollup.Valid).
type coverage struct {
	days       []time.Time    // built days fully inside the range, ascending
	builds     []uint64       // the build to read for each of them
	edges      []time.Time    // built days the range starts or ends inside
	edgeBuilds []uint64       // the build to read for each of them
	raw        [][2]time.Time // the widened range without days, in whole UTC days
	bare       [][2]time.Time // the same without edges either
	// parts are the edges the range cuts where their build cut them (a
	// range of whole days in the site's time zone): the sums routes read
	// the build's head or tail rows for them (partNos: 1 head, 2 tail).
	parts      []time.Time
	partBuilds []uint64
	partNos    []uint8
	// For the sums routes: the edges that are not parts, and the raw
	// window without the parts either.
	sumEdges      []time.Time
	sumEdgeBuilds []uint64
	sumRaw        [][2]time.Time
}

// cover is what the planner needs to know of it.
func (c *coverage) cover() plan.Cover {
	return plan.Cover{Known: true, Full: len(c.builds)+len(c.partBuilds) > 0, Edges: len(c.edgeBuilds) > 0}
}

// covCache holds the coverage of each range one Run asks about.
type covCache map[[2]int64]*coverage

func (cc covCache) get(ctx context.Context, e *Engine, site string, r Range) (*coverage, error) {
	key := [2]int64{r.Start.Unix(), r.End.Unix()}
	if c, ok := cc[key]; ok {
		return c, nil
	}
	c, err := e.coverageFor(ctx, site, r)
	if err != nil {
		return nil, err
	}
	cc[key] = c
	return c, nil
}

// coverageFor works out which days of r the rollup tables answer: the
// built days fully inside r, and the built days r starts or ends inside
// (edges), which the visits table answers from its event times.
func (e *Engine) coverageFor(ctx context.Context, site string, r Range) (*coverage, error) {
	ws, we := r.widened()
	c := &coverage{}
	var empty []time.Time
	if ws.Before(we) {
		built, err := e.markers.get(ctx, site, ws, we, func() (map[time.Time]rollup.Built, error) {
			return rollup.Valid(ctx, e.conn, e.db, site, ws, we)
		})
		if err != nil {
			return nil, err
		}
		for d := ws; d.Before(we); d = d.Add(24 * time.Hour) {
			b, ok := built[d]
			switch {
			case !ok:
				// No events when the markers were checked: nothing to read
				// raw either (an event since shows once the check is
				// redone, as a late event does).
				empty = append(empty, d)
			case b.Build == 0:
			case !d.Before(r.Start) && !d.Add(24*time.Hour).After(r.End):
				c.days = append(c.days, d)
				c.builds = append(c.builds, b.Build)
			default:
				c.edges = append(c.edges, d)
				c.edgeBuilds = append(c.edgeBuilds, b.Build)
				if part := cutPart(d, b.Cut, r); part > 0 {
					c.parts = append(c.parts, d)
					c.partBuilds = append(c.partBuilds, b.Build)
					c.partNos = append(c.partNos, part)
				} else {
					c.sumEdges = append(c.sumEdges, d)
					c.sumEdgeBuilds = append(c.sumEdgeBuilds, b.Build)
				}
			}
		}
	}
	// The raw windows: the widened range without the full days (and for
	// the sums routes without the parts), and without the edges too;
	// never the empty days.
	c.raw = subtractDays(ws, we, sortedDays(c.days, empty))
	c.sumRaw = subtractDays(ws, we, sortedDays(c.days, c.parts, empty))
	c.bare = subtractDays(ws, we, sortedDays(c.days, c.edges, empty))
	return c, nil
}

// cutPart is the part of an edge day, cut at day+cut, that is exactly the
// range's share of it: the head (1) when the range ends at the cut and
// takes the day from its start, the tail (2) when it starts at the cut and
// takes the day to its end; 0 when neither.
func cutPart(day time.Time, cut time.Duration, r Range) uint8 {
	if cut <= 0 {
		return 0
	}
	at := day.Add(cut)
	switch {
	case r.End.Equal(at) && !r.Start.After(day):
		return 1
	case r.Start.Equal(at) && !r.End.Before(day.Add(24*time.Hour)):
		return 2
	}
	return 0
}

// sortedDays is the given lists of UTC days as one ascending list.
func sortedDays(lists ...[]time.Time) []time.Time {
	out := slices.Concat(lists...)
	slices.SortFunc(out, time.Time.Compare)
	return out
}

// subtractDays returns [from, to) without the given ascending UTC days, as
// intervals.
func subtractDays(from, to time.Time, days []time.Time) [][2]time.Time {
	var out [][2]time.Time
	at := from
	for _, d := range days {
		if at.Before(d) {
			out = append(out, [2]time.Time{at, d})
		}
		at = d.Add(24 * time.Hour)
	}
	if at.Before(to) {
		out = append(out, [2]time.Time{at, to})
	}
	return out
}
