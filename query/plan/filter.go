package plan

import (
	"slices"
	"strings"
)

// Filter is one node of the filter tree: a leaf (Op is one of the leaf
// operators of Ops) or a combination (and, or, not).
type Filter struct {
	Op            string
	Dimension     string
	Values        []string
	CaseSensitive bool
	Children      []Filter
}

// FilterDims lists the dimensions of every leaf filter, in tree order.
func FilterDims(fs []Filter) []string {
	var out []string
	for _, f := range fs {
		if f.Dimension != "" {
			out = append(out, f.Dimension)
		}
		out = append(out, FilterDims(f.Children)...)
	}
	return out
}

// Mentions reports whether any leaf of fs filters by dimension d.
func Mentions(fs []Filter, d string) bool { return slices.Contains(FilterDims(fs), d) }

// WithoutGoals drops every top-level filter that mentions event:goal.
func WithoutGoals(fs []Filter) []Filter {
	var out []Filter
	for _, f := range fs {
		if !Mentions([]Filter{f}, Goal) {
			out = append(out, f)
		}
	}
	return out
}

// WithoutGoalsAndProps drops every top-level filter that mentions
// event:goal or a custom property: the conversion rates are shares of the
// visitors the query would count without them (Plausible's rule).
func WithoutGoalsAndProps(fs []Filter) []Filter {
	var out []Filter
	for _, f := range fs {
		if !slices.ContainsFunc(FilterDims([]Filter{f}), func(d string) bool { return d == Goal || strings.HasPrefix(d, Props) }) {
			out = append(out, f)
		}
	}
	return out
}
