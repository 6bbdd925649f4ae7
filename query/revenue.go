package query

import (
	"fmt"
	"slices"
	"strings"

	"turf/query/plan"
)

// Revenue follows Plausible's rules: a revenue figure is in the currency of
// the revenue goals the query is about, and null where that is not one
// currency. By an event:goal dimension each goal's row is in its own
// goal's currency (null for goals without revenue); with goal filters, the
// filtered goals must share one currency; without either there is no
// revenue goal to speak of. Each null figure is explained in
// meta.metric_warnings. Events with revenue in another currency than their
// goal's are not summed (turf converts no currencies).

// revenueCtx is the revenue currency of one query.
type revenueCtx struct {
	cur     string            // of rows not split by goal; "" none
	byGoal  map[string]string // by an event:goal dimension: goal name -> currency
	warning string            // why revenue is null ("" when it is not)
}

const (
	warnNoRevenueGoals = "no_revenue_goals_matching"
	warnManyCurrencies = "no_single_revenue_currency"
)

var revenueWarnings = map[string]string{
	warnNoRevenueGoals: "Revenue metrics are null as there are no matching revenue goals.",
	warnManyCurrencies: "Revenue metrics are null as there are multiple currencies for the selected event:goals.",
}

func revenueFor(q *Query, goals []plan.GoalDef) revenueCtx {
	if !slices.ContainsFunc(q.Metrics, plan.IsRevenue) {
		return revenueCtx{}
	}
	if slices.Contains(q.Dimensions, plan.Goal) {
		rc := revenueCtx{byGoal: map[string]string{}}
		for _, g := range goals {
			if g.Currency != "" {
				rc.byGoal[g.Name] = g.Currency
			}
		}
		if len(rc.byGoal) == 0 {
			rc.warning = warnNoRevenueGoals
		}
		return rc
	}
	var curs []string
	for _, f := range q.Filters {
		if f.Dimension != plan.Goal || strings.HasSuffix(f.Op, "_not") {
			continue
		}
		matched, _ := plan.MatchGoals(goals, f)
		for _, g := range matched {
			if g.Currency != "" && !slices.Contains(curs, g.Currency) {
				curs = append(curs, g.Currency)
			}
		}
	}
	switch len(curs) {
	case 0:
		return revenueCtx{warning: warnNoRevenueGoals}
	case 1:
		return revenueCtx{cur: curs[0]}
	}
	return revenueCtx{warning: warnManyCurrencies}
}

// currencyOf is the currency of a row's revenue.
func (rc revenueCtx) currencyOf(dims []string, goalAt int) string {
	if rc.byGoal != nil && goalAt >= 0 && goalAt < len(dims) {
		return rc.byGoal[dims[goalAt]]
	}
	return rc.cur
}

// warnings is meta.metric_warnings for the query's revenue metrics.
func (rc revenueCtx) warnings(metrics []string) map[string]any {
	if rc.warning == "" {
		return nil
	}
	out := map[string]any{}
	for _, m := range metrics {
		if plan.IsRevenue(m) {
			out[m] = map[string]string{"code": rc.warning, "warning": revenueWarnings[rc.warning]}
		}
	}
	return out
}

// revenueCurrencySQL is the currency the revenue aggregates sum, as SQL:
// by a goal dimension (column goalCol), each goal's own.
func (b *builder) revenueCurrencySQL() string {
	if i := slices.Index(b.dims, plan.Goal); i >= 0 && b.rev.byGoal != nil {
		var names, curs []string
		for n, c := range b.rev.byGoal {
			names = append(names, n)
			curs = append(curs, c)
		}
		if len(names) == 0 {
			return "''"
		}
		return fmt.Sprintf("transform(d%d, %s, %s, '')", i, b.arg(names), b.arg(curs))
	}
	return b.arg(b.rev.cur)
}
