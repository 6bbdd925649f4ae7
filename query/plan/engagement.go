package plan

import "slices"

// The engagement metrics, scroll_depth and time_on_page, are computed from
// the engagements table as Plausible defines them: per visit and group,
// the deepest scroll (beacons without one left out) and the sum of the
// engaged time; then the average over the visits of the group, rounded,
// the time in whole seconds; null for a group without such visits. A visit
// is a visitor's UTC day there: an engagement carries no visit of its own,
// and turf's visitor ids live for one UTC day.
//
// The engagements table holds the page and hostname of each beacon and
// nothing of its visit, so these metrics go with event:page,
// event:hostname and time dimensions and with event:page and
// event:hostname filters only; and, as in Plausible, with an event:page
// dimension or top-level filter.

// EngagementDim reports whether an engagement statement can group by d.
func EngagementDim(d string) bool { return d == Page || d == Hostname || IsTime(d) }

// IsEngagementAgg reports whether aggregate a comes from the engagements
// table.
func IsEngagementAgg(a string) bool { return Aggregates[a].Engagement }

func engagementInvalid(name string) func(dims []string, filters []Filter) string {
	return func(dims []string, filters []Filter) string {
		top := slices.ContainsFunc(filters, func(f Filter) bool { return f.Dimension == Page })
		if !slices.Contains(dims, Page) && !top {
			return "Metric `" + name + "` can only be queried with event:page filters or dimensions."
		}
		if slices.ContainsFunc(dims, func(d string) bool { return !EngagementDim(d) }) ||
			slices.ContainsFunc(FilterDims(filters), func(d string) bool { return d != Page && d != Hostname }) {
			return "Metric `" + name + "` can only be queried with event:page, event:hostname and time dimensions, and event:page and event:hostname filters."
		}
		return ""
	}
}
