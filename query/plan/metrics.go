package plan

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Base is the denominator a metric is a share of.
type Base int

const (
	BaseNone          Base = iota
	BaseTotal              // all visitors with the same filters (percentage)
	BaseConversion         // the visitors of the same other dimensions, goal and property filters left out (group_conversion_rate)
	BaseAllConverting      // all visitors, goal and property filters left out (conversion_rate)
)

// Metric is one figure a caller can ask for.
type Metric struct {
	Name string
	// Needs are the aggregates it is computed from.
	Needs []string
	Base  Base
	// Points: its change between ranges is a difference in points, not a
	// percentage (see Change).
	Points bool
	// Value computes it from a group's aggregates, its base and the
	// revenue currency ("" when the query has none: revenue is null). Every derived figure is computed here, in one place,
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

// SessionMetricsError is Plausible's refusal of visit metrics by the
// dimensions of single events (a visit has many names and properties): ""
// when the query is fine.
func SessionMetricsError(metrics, dims []string) string {
	var ms, ds []string
	for _, m := range metrics {
		if m == "bounce_rate" || m == "visit_duration" {
			ms = append(ms, "`"+m+"`")
		}
	}
	for _, d := range dims {
		if d == Name || strings.HasPrefix(d, Props) {
			ds = append(ds, "`"+d+"`")
		}
	}
	if len(ms) == 0 || len(ds) == 0 {
		return ""
	}
	return fmt.Sprintf("Session metric(s) %s cannot be queried along with event dimension(s) %s", strings.Join(ms, ", "), strings.Join(ds, ", "))
}

// needsGoal: a conversion rate needs a goal to convert to.
func needsGoal(name string) func([]string, []Filter) string {
	return func(dims []string, filters []Filter) string {
		if !slices.Contains(dims, Goal) && !Mentions(filters, Goal) {
			return "Metric `" + name + "` can only be queried with event:goal filters or dimensions."
		}
		return ""
	}
}

// Metrics is the table of every metric, in the order the API lists them.
var Metrics = []Metric{
	{Name: "visitors", Needs: []string{AggVisitors}, Value: count(AggVisitors)},
	{Name: "visits", Needs: []string{AggVisits}, Value: count(AggVisits)},
	{Name: "pageviews", Needs: []string{AggPageviews}, Value: count(AggPageviews)},
	{Name: "views_per_visit", Needs: []string{AggPageviews, AggVisits},
		Invalid: func(dims []string, filters []Filter) string {
			if Mentions(filters, Page) {
				return "Metric `views_per_visit` cannot be queried with a filter on `event:page`."
			}
			if len(dims) > 0 {
				return "Metric `views_per_visit` cannot be queried with `dimensions`."
			}
			return ""
		},
		Value: func(a map[string]int64, _ int64, _ string) any { return Round(div(a[AggPageviews], a[AggVisits]), 2) }},
	{Name: "bounce_rate", Needs: []string{AggBounces, AggVisits}, Points: true,
		Value: func(a map[string]int64, _ int64, _ string) any {
			if v, ok := a[AggEntryVisits]; ok {
				return int64(math.Round(100 * div(a[AggEntryBounces], v)))
			}
			return int64(math.Round(100 * div(a[AggBounces], a[AggVisits])))
		}},
	{Name: "visit_duration", Needs: []string{AggDuration, AggVisits},
		Value: func(a map[string]int64, _ int64, _ string) any {
			if v, ok := a[AggEntryDurationVisits]; ok {
				return int64(math.Round(div(a[AggEntryDuration], v)))
			}
			return int64(math.Round(div(a[AggDuration], a[AggVisits])))
		}},
	{Name: "events", Needs: []string{AggEvents}, Value: count(AggEvents)},
	{Name: "percentage", Needs: []string{AggVisitors}, Base: BaseTotal,
		Value: func(a map[string]int64, base int64, _ string) any { return Round(100*div(a[AggVisitors], base), 1) },
		Invalid: func(dims []string, _ []Filter) string {
			if slices.Contains(dims, Goal) {
				return "metric `percentage` cannot be queried with the event:goal dimension"
			}
			return ""
		}},
	{Name: "conversion_rate", Needs: []string{AggVisitors}, Base: BaseAllConverting, Points: true,
		Value:   func(a map[string]int64, base int64, _ string) any { return Round(100*div(a[AggVisitors], base), 2) },
		Invalid: needsGoal("conversion_rate")},
	{Name: "group_conversion_rate", Needs: []string{AggVisitors}, Base: BaseConversion, Points: true,
		Value:   func(a map[string]int64, base int64, _ string) any { return Round(100*div(a[AggVisitors], base), 2) },
		Invalid: needsGoal("group_conversion_rate")},
	{Name: "scroll_depth", Needs: []string{AggScrollSum, AggScrollVisits}, Invalid: engagementInvalid("scroll_depth"),
		Value: func(a map[string]int64, _ int64, _ string) any {
			if a[AggScrollVisits] == 0 {
				return nil
			}
			return int64(math.Round(div(a[AggScrollSum], a[AggScrollVisits])))
		}},
	{Name: "time_on_page", Needs: []string{AggEngagedMS, AggEngagedVisits}, Invalid: engagementInvalid("time_on_page"),
		Value: func(a map[string]int64, _ int64, _ string) any {
			if a[AggEngagedVisits] == 0 {
				return nil
			}
			return int64(math.Round(div(a[AggEngagedMS], a[AggEngagedVisits]) / 1000))
		}},
	{Name: "total_revenue", Needs: []string{AggRevenue},
		Value: func(a map[string]int64, _ int64, cur string) any {
			if cur == "" {
				return nil // no revenue goal in one currency: no figure
			}
			return NewRevenue(a[AggRevenue]/1000, cur)
		}},
	{Name: "average_revenue", Needs: []string{AggRevenue, AggRevenueN},
		Value: func(a map[string]int64, _ int64, cur string) any {
			if cur == "" {
				return nil
			}
			if a[AggRevenueN] == 0 {
				return NewRevenue(0, cur)
			}
			// Thousandths, cut off as Plausible's decimal average is.
			return NewRevenue(a[AggRevenue]/a[AggRevenueN]/1000, cur)
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

// Change is Plausible's change of a metric between two ranges: the
// difference in points for the conversion rates (to one decimal) and for
// bounce_rate (none when the earlier range had no bounce rate), the
// change in percent for everything else, percentage included.
func (m Metric) Change(cur, prev any) any {
	c, okc := Number(cur)
	p, okp := Number(prev)
	if !okc || !okp { // none in one range (e.g. no scroll depth or time on page)
		return nil
	}
	if m.Name == "bounce_rate" {
		if p <= 0 {
			return nil
		}
		return int64(math.Round(c - p))
	}
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

// IsRevenue reports whether metric m is a money figure.
func IsRevenue(m string) bool { return m == "total_revenue" || m == "average_revenue" }

// currencySymbols are the symbols Plausible's (CLDR English) money format
// puts before an amount; other currencies get their code and a space.
var currencySymbols = map[string]string{"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "CNY": "CN¥", "CAD": "CA$", "AUD": "A$"}

// NewRevenue formats milli thousandths of currency cur: the long form with
// cents, the short one with one decimal (K and M above a thousand), both
// rounded half to even from the exact integer, as Plausible's are.
func NewRevenue(milli int64, cur string) Revenue {
	sym, ok := currencySymbols[cur]
	if !ok {
		sym = cur + " "
	}
	short := decimalString(milli, 100, 1)
	switch a := abs(milli); {
	case a >= 1e9:
		short = decimalString(milli, 100_000_000, 1) + "M"
	case a >= 1e6:
		short = decimalString(milli, 100_000, 1) + "K"
	}
	return Revenue{Value: float64(milli) / 1000, Currency: cur, Short: sym + short, Long: sym + decimalString(milli, 10, 2)}
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// decimalString is milli divided by unit, rounded half to even, written
// with places decimals (unit is 10^(3-places) of the figure's scale).
func decimalString(milli, unit int64, places int) string {
	q, r := milli/unit, milli%unit
	if r < 0 {
		r = -r
	}
	if 2*r > unit || 2*r == unit && q%2 != 0 {
		if milli < 0 {
			q--
		} else {
			q++
		}
	}
	neg := q < 0
	if neg {
		q = -q
	}
	p := int64(math.Pow10(places))
	s := fmt.Sprintf("%d.%0*d", q/p, places, q%p)
	if neg {
		s = "-" + s
	}
	return s
}
