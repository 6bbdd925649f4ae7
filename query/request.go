package query

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"turf/query/plan"
)

// Request is the body of POST /api/v2/query, in Plausible's Stats API v2
// shape. Fields are kept as raw JSON so that every type error can name the
// offending field.
type Request struct {
	SiteID     json.RawMessage `json:"site_id"`
	Metrics    json.RawMessage `json:"metrics"`
	DateRange  json.RawMessage `json:"date_range"`
	Dimensions json.RawMessage `json:"dimensions"`
	Filters    json.RawMessage `json:"filters"`
	OrderBy    json.RawMessage `json:"order_by"`
	Include    json.RawMessage `json:"include"`
	Pagination json.RawMessage `json:"pagination"`
	// Timezone is accepted because the answer echoes it (a client may post
	// the echoed query back); it must name the site's own zone.
	Timezone json.RawMessage `json:"timezone"`
}

// Query is a validated request: every metric, dimension and operator is
// one of the vocabulary's (package plan), so the SQL builder only ever
// copies identifiers from its own tables.
type Query struct {
	Site       string
	Metrics    []string
	DateRange  DateRangeSpec
	Dimensions []string
	Filters    []Filter // implicitly and-ed
	OrderBy    []Order
	TimeLabels bool
	TotalRows  bool
	Comparison string // "", "previous_period" or "year_over_year"
	// Timezone, when given, must be the site's zone (checked by Run).
	Timezone string
	Limit    int
	Offset   int
}

// Filter is one node of the filter tree (plan.Filter).
type Filter = plan.Filter

// Order is one order_by entry.
type Order struct {
	Field string // a metric or a dimension of the query
	Desc  bool
}

// DateRangeSpec is the date_range as given: a preset or two strings.
type DateRangeSpec struct {
	Preset     string
	Start, End string
}

// BadRequest is a client error: it becomes a 400 with its message.
type BadRequest struct{ Msg string }

func (e *BadRequest) Error() string { return e.Msg }

func badf(format string, args ...any) error {
	return &BadRequest{Msg: fmt.Sprintf(format, args...)}
}

func validDimension(d string) bool { _, ok := plan.Dim(d); return ok }

// MaxFilterDepth and MaxFilterValues bound the SQL a request can produce.
const (
	MaxFilterDepth  = 8
	MaxFilterValues = 1000
	MaxFilterNodes  = 100
	MaxLimit        = 10000
)

// ParseRequest decodes and validates a query body.
func ParseRequest(body []byte) (*Query, error) {
	var r Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field") {
			return nil, badf("Invalid request body: %s", strings.TrimPrefix(err.Error(), "json: "))
		}
		return nil, badf("Invalid request body: expected a JSON object (%v)", err)
	}
	return r.Validate()
}

// Validate checks every field and returns the query turf understood.
func (r *Request) Validate() (*Query, error) {
	q := &Query{Limit: MaxLimit}
	if len(r.SiteID) == 0 {
		return nil, badf("#/site_id: is required")
	}
	if err := json.Unmarshal(r.SiteID, &q.Site); err != nil || q.Site == "" {
		return nil, badf("#/site_id: must be a non-empty string")
	}
	if len(r.Timezone) > 0 {
		if err := json.Unmarshal(r.Timezone, &q.Timezone); err != nil {
			return nil, badf("#/timezone: must be a string")
		}
	}
	if err := r.parseMetrics(q); err != nil {
		return nil, err
	}
	if err := parseDateRange(r.DateRange, &q.DateRange); err != nil {
		return nil, err
	}
	if err := r.parseDimensions(q); err != nil {
		return nil, err
	}
	if err := r.parseFilters(q); err != nil {
		return nil, err
	}
	if err := r.parseOrderBy(q); err != nil {
		return nil, err
	}
	if err := r.parseInclude(q); err != nil {
		return nil, err
	}
	if err := r.parsePagination(q); err != nil {
		return nil, err
	}
	if msg := plan.SessionMetricsError(q.Metrics, q.Dimensions); msg != "" {
		return nil, badf("%s", msg)
	}
	for _, m := range q.Metrics {
		if inv := plan.MustMetric(m).Invalid; inv != nil {
			if msg := inv(q.Dimensions, q.Filters); msg != "" {
				return nil, badf("%s", msg)
			}
		}
	}
	return q, nil
}

func (r *Request) parseMetrics(q *Query) error {
	if len(r.Metrics) == 0 {
		return badf("#/metrics: is required")
	}
	if err := json.Unmarshal(r.Metrics, &q.Metrics); err != nil || len(q.Metrics) == 0 {
		return badf("#/metrics: must be a non-empty array of strings")
	}
	for i, m := range q.Metrics {
		if _, ok := plan.MetricByName(m); !ok {
			return badf("#/metrics/%d: Invalid metric %q", i, m)
		}
		if slices.Contains(q.Metrics[:i], m) {
			return badf("#/metrics: Expected items to be unique but they were not.")
		}
	}
	return nil
}

func (r *Request) parseDimensions(q *Query) error {
	if len(r.Dimensions) > 0 {
		if err := json.Unmarshal(r.Dimensions, &q.Dimensions); err != nil {
			return badf("#/dimensions: must be an array of strings")
		}
	}
	nTime := 0
	for i, d := range q.Dimensions {
		if !validDimension(d) {
			return badf("#/dimensions/%d: Invalid dimension %q", i, d)
		}
		if slices.Contains(q.Dimensions[:i], d) {
			return badf("#/dimensions/%d: dimension %q is listed twice", i, d)
		}
		if isTimeDim(d) {
			nTime++
		}
	}
	if nTime > 1 {
		return badf("#/dimensions: only one time dimension is allowed")
	}
	return nil
}

func (r *Request) parseFilters(q *Query) error {
	if len(r.Filters) == 0 {
		return nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(r.Filters, &raw); err != nil {
		return badf("#/filters: must be an array of filters")
	}
	nodes := 0
	for i, f := range raw {
		ff, err := parseFilter(f, fmt.Sprintf("#/filters/%d", i), 1, &nodes)
		if err != nil {
			return err
		}
		q.Filters = append(q.Filters, ff)
	}
	return nil
}

func isTimeDim(d string) bool { return plan.IsTime(d) }

func parseDateRange(raw json.RawMessage, out *DateRangeSpec) error {
	if len(raw) == 0 {
		return badf("#/date_range: is required")
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if !slices.Contains(datePresets, s) {
			return badf("#/date_range: Invalid date range %q", s)
		}
		out.Preset = s
		return nil
	}
	var pair []string
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		return badf("#/date_range: must be a preset string or an array of two dates or date-times")
	}
	out.Start, out.End = pair[0], pair[1]
	return nil
}

func parseFilter(raw json.RawMessage, path string, depth int, nodes *int) (Filter, error) {
	*nodes++
	if depth > MaxFilterDepth || *nodes > MaxFilterNodes {
		return Filter{}, badf("%s: filters are nested too deeply or are too many", path)
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil || len(parts) < 2 {
		return Filter{}, badf("%s: invalid filter: expected [operator, dimension, values] or [and|or, [filters]] or [not, filter]", path)
	}
	var op string
	if err := json.Unmarshal(parts[0], &op); err != nil {
		return Filter{}, badf("%s/0: operator must be a string", path)
	}
	switch op {
	case "and", "or":
		if len(parts) != 2 {
			return Filter{}, badf("%s: %q takes exactly one array of filters", path, op)
		}
		var kids []json.RawMessage
		if err := json.Unmarshal(parts[1], &kids); err != nil || len(kids) == 0 {
			return Filter{}, badf("%s/1: %q takes a non-empty array of filters", path, op)
		}
		f := Filter{Op: op}
		for i, k := range kids {
			c, err := parseFilter(k, fmt.Sprintf("%s/1/%d", path, i), depth+1, nodes)
			if err != nil {
				return Filter{}, err
			}
			f.Children = append(f.Children, c)
		}
		return f, nil
	case "not":
		if len(parts) != 2 {
			return Filter{}, badf("%s: \"not\" takes exactly one filter", path)
		}
		c, err := parseFilter(parts[1], path+"/1", depth+1, nodes)
		if err != nil {
			return Filter{}, err
		}
		return Filter{Op: op, Children: []Filter{c}}, nil
	}
	return parseLeaf(op, parts, path)
}

// parseLeaf parses [op, dimension, values(, modifiers)].
func parseLeaf(op string, parts []json.RawMessage, path string) (Filter, error) {
	if !slices.Contains(plan.LeafOps, op) {
		return Filter{}, badf("%s/0: unknown filter operator %q", path, op)
	}
	if len(parts) < 3 || len(parts) > 4 {
		return Filter{}, badf("%s: invalid filter: expected [%q, dimension, [values]]", path, op)
	}
	f := Filter{Op: op, CaseSensitive: true}
	if err := json.Unmarshal(parts[1], &f.Dimension); err != nil {
		return Filter{}, badf("%s/1: dimension must be a string", path)
	}
	if x, ok := plan.Dim(f.Dimension); !ok || !x.Filter {
		return Filter{}, badf("%s/1: Invalid filter dimension %q", path, f.Dimension)
	}
	if err := json.Unmarshal(parts[2], &f.Values); err != nil || len(f.Values) == 0 {
		return Filter{}, badf("%s/2: filter values must be a non-empty array of strings", path)
	}
	if len(f.Values) > MaxFilterValues {
		return Filter{}, badf("%s/2: at most %d filter values", path, MaxFilterValues)
	}
	if len(parts) == 4 {
		var mod map[string]json.RawMessage
		if err := json.Unmarshal(parts[3], &mod); err != nil {
			return Filter{}, badf("%s/3: filter modifiers must be an object", path)
		}
		for k, v := range mod {
			if k != "case_sensitive" {
				return Filter{}, badf("%s/3: unknown filter modifier %q", path, k)
			}
			if err := json.Unmarshal(v, &f.CaseSensitive); err != nil {
				return Filter{}, badf("%s/3/case_sensitive: must be a boolean", path)
			}
		}
	}
	if f.Dimension == "visit:country" && (op == "is" || op == "is_not") {
		for _, v := range f.Values {
			if !isCountryCode(v, f.CaseSensitive) {
				return Filter{}, badf("Invalid visit:country filter, visit:country needs to be a valid 2-letter country code.")
			}
		}
	}
	if op == "matches" || op == "matches_not" {
		for i, v := range f.Values {
			if _, err := regexp.Compile(v); err != nil {
				return Filter{}, badf("%s/2/%d: invalid regular expression %q", path, i, v)
			}
		}
	}
	return f, nil
}

func (r *Request) parseOrderBy(q *Query) error {
	if len(r.OrderBy) == 0 {
		return nil
	}
	var raw [][]string
	if err := json.Unmarshal(r.OrderBy, &raw); err != nil {
		return badf("#/order_by: must be an array of [field, \"asc\"|\"desc\"] pairs")
	}
	for i, o := range raw {
		if len(o) != 2 {
			return badf("#/order_by/%d: must be a [field, \"asc\"|\"desc\"] pair", i)
		}
		if !slices.Contains(q.Metrics, o[0]) && !slices.Contains(q.Dimensions, o[0]) {
			return badf("#/order_by/%d: invalid order_by entry %q: it is neither a metric nor a dimension of this query", i, o[0])
		}
		if o[1] != "asc" && o[1] != "desc" {
			return badf("#/order_by/%d/1: direction must be \"asc\" or \"desc\"", i)
		}
		q.OrderBy = append(q.OrderBy, Order{Field: o[0], Desc: o[1] == "desc"})
	}
	return nil
}

func (r *Request) parseInclude(q *Query) error {
	if len(r.Include) == 0 {
		return nil
	}
	var inc map[string]json.RawMessage
	if err := json.Unmarshal(r.Include, &inc); err != nil {
		return badf("#/include: must be an object")
	}
	for k, v := range inc {
		switch k {
		case "time_labels", "total_rows":
			var b bool
			if err := json.Unmarshal(v, &b); err != nil {
				return badf("#/include/%s: must be a boolean", k)
			}
			if k == "time_labels" {
				q.TimeLabels = b
			} else {
				q.TotalRows = b
			}
		case "comparisons":
			var c struct {
				Mode string `json:"mode"`
			}
			if err := json.Unmarshal(v, &c); err != nil || (c.Mode != "previous_period" && c.Mode != "year_over_year") {
				return badf("#/include/comparisons: must be {\"mode\": \"previous_period\" | \"year_over_year\"}")
			}
			q.Comparison = c.Mode
		default:
			return badf("#/include: unknown key %q", k)
		}
	}
	if q.TimeLabels && !slices.ContainsFunc(q.Dimensions, isTimeDim) {
		return badf("#/include/time_labels: requires a time dimension")
	}
	return nil
}

func (r *Request) parsePagination(q *Query) error {
	if len(r.Pagination) == 0 {
		return nil
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(r.Pagination, &p); err != nil {
		return badf("#/pagination: must be an object")
	}
	for k, v := range p {
		var n int
		if err := json.Unmarshal(v, &n); err != nil {
			return badf("#/pagination/%s: must be an integer", k)
		}
		switch k {
		case "limit":
			if n < 1 || n > MaxLimit {
				return badf("#/pagination/limit: must be between 1 and %d", MaxLimit)
			}
			q.Limit = n
		case "offset":
			if n < 0 {
				return badf("#/pagination/offset: must not be negative")
			}
			q.Offset = n
		default:
			return badf("#/pagination: unknown key %q", k)
		}
	}
	return nil
}

// isCountryCode: two letters, as ISO 3166 alpha-2 codes are, upper-case
// (as the collector stores them) unless the filter ignores case.
func isCountryCode(v string, caseSensitive bool) bool {
	if !caseSensitive {
		v = strings.ToUpper(v)
	}
	return len(v) == 2 && v[0] >= 'A' && v[0] <= 'Z' && v[1] >= 'A' && v[1] <= 'Z'
}
