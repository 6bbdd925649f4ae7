package query

import (
	"cmp"
	"slices"

	"turf/query/plan"
)

// effectiveOrder is order_by with the defaults filled in: a time dimension
// ascending and then the first metric descending, otherwise the first
// metric descending; the dimensions ascending
// break every tie so that pages never overlap.
func effectiveOrder(q *Query) []Order {
	out := slices.Clone(q.OrderBy)
	if len(out) == 0 {
		if i := slices.IndexFunc(q.Dimensions, isTimeDim); i >= 0 {
			// Plausible's default: time, then the first metric descending.
			out = append(out, Order{Field: q.Dimensions[i]}, Order{Field: q.Metrics[0], Desc: true})
		} else if len(q.Dimensions) > 0 {
			out = append(out, Order{Field: q.Metrics[0], Desc: true})
		}
	}
	return out
}

func sortRows(rows []Row, q *Query) {
	order := effectiveOrder(q)
	for _, d := range q.Dimensions {
		if !slices.ContainsFunc(order, func(o Order) bool { return o.Field == d }) {
			order = append(order, Order{Field: d})
		}
	}
	slices.SortStableFunc(rows, func(x, y Row) int {
		for _, o := range order {
			var c int
			if i := slices.Index(q.Metrics, o.Field); i >= 0 {
				a, _ := plan.Number(x.Metrics[i])
				b, _ := plan.Number(y.Metrics[i])
				c = cmp.Compare(a, b)
			} else {
				i := slices.Index(q.Dimensions, o.Field)
				c = cmp.Compare(x.Dimensions[i], y.Dimensions[i])
			}
			if o.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
}

func filtersJSON(fs []Filter) []any {
	out := []any{}
	for _, f := range fs {
		out = append(out, filterJSON(f))
	}
	return out
}

func filterJSON(f Filter) any {
	switch f.Op {
	case "and", "or":
		return []any{f.Op, filtersJSON(f.Children)}
	case "not":
		return []any{f.Op, filterJSON(f.Children[0])}
	}
	if !f.CaseSensitive {
		return []any{f.Op, f.Dimension, f.Values, map[string]bool{"case_sensitive": false}}
	}
	return []any{f.Op, f.Dimension, f.Values}
}

func ordersJSON(os []Order) [][]string {
	out := [][]string{}
	for _, o := range os {
		d := "asc"
		if o.Desc {
			d = "desc"
		}
		out = append(out, []string{o.Field, d})
	}
	return out
}
