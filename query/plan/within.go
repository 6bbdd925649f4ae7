package plan

import (
	"slices"
	"strings"
)

// Rows "within": visit_stats holds, besides each visit dimension's rows,
// the rows of some dimension within each value of another, so that a
// query grouping by the one and filtering the other to one value is still
// per-day counts (O(days × values)), not a row per visit. Each pair costs
// rows per day and pair of values, so only the pairs the dashboard asks
// for are built: the Newsletters panel's visits of the Email channel per
// campaign.
//
// A within row has dim WithinKey(Dim, Within, value of Within) and the
// value of Dim.
type WithinPair struct{ Dim, Within string }

// WithinPairs are the pairs the rollup job builds (query/rollup) and the
// planner reads. Adding one needs a new rollup format (rollup.Format), so
// that older builds, which lack its rows, are built again first.
var WithinPairs = []WithinPair{{"visit:utm_campaign", "visit:channel"}}

// WithinKey is the visit_stats dim of dim's rows within value of within.
func WithinKey(dim, within, value string) string { return dim + "|" + within + "=" + value }

// StatsWithin is the within key that answers the shape from visit_stats,
// and the index of the filter it stands for: the shape groups by a pair's
// Dim (or not at all, with filters on it), one top-level filter picks one
// value of the pair's Within, case-sensitively, and every other filter is
// on Dim alone.
func StatsWithin(s Shape) (key string, filter int, ok bool) {
	if len(s.Dims) > 1 {
		return "", 0, false
	}
	for _, p := range WithinPairs {
		if len(s.Dims) == 1 && s.Dims[0] != p.Dim {
			continue
		}
		filter = slices.IndexFunc(s.Filters, func(f Filter) bool {
			return f.Op == "is" && f.Dimension == p.Within && len(f.Values) == 1 && f.CaseSensitive
		})
		if filter < 0 {
			continue
		}
		rest := slices.Delete(slices.Clone(s.Filters), filter, filter+1)
		if slices.ContainsFunc(FilterDims(rest), func(d string) bool { return d != p.Dim }) {
			continue
		}
		return WithinKey(p.Dim, p.Within, s.Filters[filter].Values[0]), filter, true
	}
	return "", 0, false
}

// WithinPairOf is the pair of a within key.
func WithinPairOf(key string) WithinPair {
	for _, p := range WithinPairs {
		if strings.HasPrefix(key, p.Dim+"|"+p.Within+"=") {
			return p
		}
	}
	panic("BUG: not a within key: " + key)
}
