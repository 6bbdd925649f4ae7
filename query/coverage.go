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
}

// cover is what the planner needs to know of it.
func (c *coverage) cover() plan.Cover {
	return plan.Cover{Known: true, Full: len(c.builds) > 0, Edges: len(c.edgeBuilds) > 0}
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
	if ws.Before(we) {
		built, err := e.markers.get(ctx, site, ws, we, func() (map[time.Time]uint64, error) {
			return rollup.Valid(ctx, e.conn, e.db, site, ws, we)
		})
		if err != nil {
			return nil, err
		}
		for d := ws; d.Before(we); d = d.Add(24 * time.Hour) {
			id, ok := built[d]
			switch {
			case !ok:
			case !d.Before(r.Start) && !d.Add(24*time.Hour).After(r.End):
				c.days = append(c.days, d)
				c.builds = append(c.builds, id)
			default:
				c.edges = append(c.edges, d)
				c.edgeBuilds = append(c.edgeBuilds, id)
			}
		}
	}
	// The raw windows: the widened range without the full days, and
	// without the edges too.
	c.raw = subtractDays(ws, we, c.days)
	both := append(slices.Clone(c.days), c.edges...)
	slices.SortFunc(both, time.Time.Compare)
	c.bare = subtractDays(ws, we, both)
	return c, nil
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
