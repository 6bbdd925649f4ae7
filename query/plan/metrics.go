package plan

import (
	"fmt"
	"math"
	"slices"
)

// Base is the denominator a metric is a share of.
type Base int

const (
	BaseNone       Base = iota
	BaseTotal           // all visitors with the same filters (percentage)
	BaseConversion      // the visitors of the same other dimensions, goal filters left out
)

// Metric is one figure a caller can ask for.
type Metric struct {
	Name string
	// Needs are the aggregates it is computed from.
	Needs []string
	Base  Base
	// Points: its change between ranges is a difference in points, not a
	// percentage.
	Points bool
	// Value computes it from a group's aggregates, its base and the
	// site's currency. Every derived figure is computed here, in one place,
	// from exact integers.
	Value func(a map[string]int64, base int64, cur string) any
	// Invalid, when set, says why a query's dimensions and filters cannot
	// have it ("" when they can).
	Invalid func(dims []string, filters []Filter) string
}

func div(x, y int64) float64 {
	if y == 0 {
		return 0
	}
	return float64(x) / float64(y)
}

func count(agg string) func(map[string]int64, int64, string) any {
	return func(a map[string]int64, _ int64, _ string) any { return a[agg] }
}

// Metrics is the table of every metric, in the order the API lists them.
var Metrics = []Metric{
	{Name: "visitors", Needs: []string{AggVisitors}, Value: count(AggVisitors)},
	{Name: "visits", Needs: []string{AggVisits}, Value: count(AggVisits)},
	{Name: "pageviews", Needs: []string{AggPageviews}, Value: count(AggPageviews)},
	{Name: "views_per_visit", Needs: []string{AggPageviews, AggVisits},
		Value: func(a map[string]int64, _ int64, _ string) any { return Round(div(a[AggPageviews], a[AggVisits]), 2) }},
	{Name: "bounce_rate", Needs: []string{AggBounces, AggVisits}, Points: true,
		Value: func(a map[string]int64, _ int64, _ string) any {
			return int64(math.Round(100 * div(a[AggBounces], a[AggVisits])))
		}},
	{Name: "visit_duration", Needs: []string{AggDuration, AggVisits},
		Value: func(a map[string]int64, _ int64, _ string) any {
			return int64(math.Round(div(a[AggDuration], a[AggVisits])))
		}},
	{Name: "events", Needs: []string{AggEvents}, Value: count(AggEvents)},
	{Name: "percentage", Needs: []string{AggVisitors}, Base: BaseTotal, Points: true,
		Value: func(a map[string]int64, base int64, _ string) any { return Round(100*div(a[AggVisitors], base), 1) },
		Invalid: func(dims []string, _ []Filter) string {
			if slices.Contains(dims, Goal) {
				return "metric `percentage` cannot be queried with the event:goal dimension"
			}
			return ""
		}},
	{Name: "conversion_rate", Needs: []string{AggVisitors}, Base: BaseConversion, Points: true,
		Value: func(a map[string]int64, base int64, _ string) any { return Round(100*div(a[AggVisitors], base), 2) },
		Invalid: func(dims []string, filters []Filter) string {
			if !slices.Contains(dims, Goal) && !Mentions(filters, Goal) {
				return "metric `conversion_rate` can only be queried with event:goal filters or dimensions"
			}
			return ""
		}},
	{Name: "total_revenue", Needs: []string{AggRevenue},
		Value: func(a map[string]int64, _ int64, cur string) any { return NewRevenue(a[AggRevenue], cur) }},
	{Name: "average_revenue", Needs: []string{AggRevenue, AggRevenueN},
		Value: func(a map[string]int64, _ int64, cur string) any {
			if a[AggRevenueN] == 0 {
				return NewRevenue(0, cur)
			}
			return NewRevenue(int64(math.Round(div(a[AggRevenue], a[AggRevenueN]))), cur)
		}},
}

// MetricByName looks a metric up; false for an unknown one.
func MetricByName(name string) (Metric, bool) {
	i := slices.IndexFunc(Metrics, func(m Metric) bool { return m.Name == name })
	if i < 0 {
		return Metric{}, false
	}
	return Metrics[i], true
}

// MustMetric is MetricByName for a validated name.
func MustMetric(name string) Metric {
	m, ok := MetricByName(name)
	if !ok {
		panic("BUG: metric " + name)
	}
	return m
}

// AggsFor lists the aggregates the metrics need, each once, in order.
func AggsFor(metrics []string) []string {
	var out []string
	for _, m := range metrics {
		for _, a := range MustMetric(m).Needs {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// Number is a metric value as a float, for sorting and comparing.
func Number(v any) (float64, bool) {
	switch v := v.(type) {
	case int64:
		return float64(v), true
	case float64:
		return v, true
	case Revenue:
		return v.Value, true
	}
	return 0, false
}

// Change is Plausible's change of a metric between two ranges: percent for
// counts, points for rates.
func (m Metric) Change(cur, prev any) any {
	c, _ := Number(cur)
	p, _ := Number(prev)
	if m.Points {
		return Round(c-p, 1)
	}
	if p == 0 {
		if c == 0 {
			return int64(0)
		}
		return int64(100)
	}
	return int64(math.Round((c - p) / p * 100))
}

// Round rounds x to places decimals.
func Round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}

// Revenue is a money figure as Plausible shows it.
type Revenue struct {
	Value    float64 `json:"value"`
	Currency string  `json:"currency"`
	Short    string  `json:"short"`
	Long     string  `json:"long"`
}

// NewRevenue formats micros of currency cur.
func NewRevenue(micros int64, cur string) Revenue {
	// Whole cents from the integer, half away from zero: rounding
	// micros/1e6 as a float would turn 132.825 into 132.82.
	cents := micros / 10000
	if r := micros % 10000; r >= 5000 {
		cents++
	} else if r <= -5000 {
		cents--
	}
	v := float64(cents) / 100
	short := fmt.Sprintf("%.2f", v)
	if math.Abs(v) >= 1e6 {
		short = fmt.Sprintf("%.1fM", v/1e6)
	} else if math.Abs(v) >= 1e3 {
		short = fmt.Sprintf("%.1fK", v/1e3)
	}
	return Revenue{Value: v, Currency: cur, Short: cur + " " + short, Long: fmt.Sprintf("%s %.2f", cur, v)}
}
