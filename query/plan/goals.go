package plan

import (
	"fmt"
	"regexp"
	"strings"
)

// GoalDef is one goal of a site, as Plausible defines them: a custom event
// name, or page views of a path pattern ("Visit /blog**"), optionally with
// the currency its revenue is reported in.
type GoalDef struct {
	// Name is how the goal is shown and filtered by: the event name, or
	// "Visit " and the page pattern.
	Name string
	// Event is the custom event's name; "" for a page goal.
	Event string
	// Page is a page goal's path pattern: "*" matches within one path
	// segment, "**" across segments, everything else itself.
	Page string
	// Currency is the ISO 4217 code revenue of the goal is summed in; ""
	// when the goal has no revenue.
	Currency string
}

// ParseGoal reads a goal in the --goal flag's syntax: "Signup",
// "Visit /blog**", optionally followed by ";currency=EUR".
func ParseGoal(s string) (GoalDef, error) {
	s = strings.TrimSpace(s)
	name, opts, _ := strings.Cut(s, ";")
	name = strings.TrimSpace(name)
	var g GoalDef
	if p, ok := strings.CutPrefix(name, "Visit "); ok {
		p = strings.TrimSpace(p)
		if !strings.HasPrefix(p, "/") {
			return GoalDef{}, fmt.Errorf("goal %q: a page goal's path starts with /", s)
		}
		g = GoalDef{Name: "Visit " + p, Page: p}
	} else {
		if name == "" || len(name) > 120 {
			return GoalDef{}, fmt.Errorf("goal %q: an event name of 1 to 120 characters, or \"Visit /path\"", s)
		}
		g = GoalDef{Name: name, Event: name}
	}
	if opts != "" {
		k, v, _ := strings.Cut(strings.TrimSpace(opts), "=")
		v = strings.ToUpper(strings.TrimSpace(v))
		if strings.TrimSpace(k) != "currency" || !regexp.MustCompile(`^[A-Z]{3}$`).MatchString(v) {
			return GoalDef{}, fmt.Errorf("goal %q: after ; only currency=<ISO 4217 code>, e.g. currency=EUR", s)
		}
		if g.Event == "" {
			return GoalDef{}, fmt.Errorf("goal %q: only custom event goals have revenue", s)
		}
		g.Currency = v
	}
	return g, nil
}

// String is the goal in the flag's syntax.
func (g GoalDef) String() string {
	if g.Currency != "" {
		return g.Name + ";currency=" + g.Currency
	}
	return g.Name
}

// PageRegexp is a page goal's pattern as an anchored regular expression
// (RE2, as ClickHouse's match reads it).
func (g GoalDef) PageRegexp() string {
	var sb strings.Builder
	sb.WriteString("^")
	for i := 0; i < len(g.Page); {
		switch {
		case strings.HasPrefix(g.Page[i:], "**"):
			sb.WriteString(".*")
			i += 2
		case g.Page[i] == '*':
			sb.WriteString("[^/]*")
			i++
		default:
			j := i
			for j < len(g.Page) && g.Page[j] != '*' {
				j++
			}
			sb.WriteString(regexp.QuoteMeta(g.Page[i:j]))
			i = j
		}
	}
	sb.WriteString("$")
	return sb.String()
}

// GoalError is Plausible's message for a goal filter naming a goal the
// site has not configured.
func GoalError(name string) string {
	return fmt.Sprintf("Invalid filters. The goal `%s` is not configured for this site. Find out how to configure goals here: https://plausible.io/docs/stats-api#filtering-by-goals", name)
}

// MatchGoals lists the goals a leaf filter on event:goal selects, by
// comparing the goals' names as the operator does (the _not suffix
// ignored: the caller negates). For "is", a value that names no goal is
// returned as missing.
func MatchGoals(goals []GoalDef, f Filter) (out []GoalDef, missing string) {
	eq := func(a, b string) bool {
		if f.CaseSensitive {
			return a == b
		}
		return strings.EqualFold(a, b)
	}
	op := strings.TrimSuffix(f.Op, "_not")
	if op == "is" {
		for _, v := range f.Values {
			found := false
			for _, g := range goals {
				if eq(g.Name, v) {
					found = true
					out = appendGoal(out, g)
				}
			}
			if !found && missing == "" {
				missing = v
			}
		}
		return out, missing
	}
	for _, g := range goals {
		for _, v := range f.Values {
			hit := false
			switch op {
			case "contains":
				if f.CaseSensitive {
					hit = strings.Contains(g.Name, v)
				} else {
					hit = strings.Contains(strings.ToLower(g.Name), strings.ToLower(v))
				}
			case "matches":
				re := v
				if !f.CaseSensitive {
					re = "(?i)" + re
				}
				if r, err := regexp.Compile(re); err == nil {
					hit = r.MatchString(g.Name)
				}
			}
			if hit {
				out = appendGoal(out, g)
				break
			}
		}
	}
	return out, ""
}

func appendGoal(gs []GoalDef, g GoalDef) []GoalDef {
	for _, x := range gs {
		if x.Name == g.Name {
			return gs
		}
	}
	return append(gs, g)
}
