package plan

import (
	"regexp"
	"strconv"
	"strings"
)

// Scroll goals. "Scroll 50% /blog" is completed by a visitor whose
// engagement beacon on /blog reports a scroll depth of at least 50 (and a
// real one: a beacon without a depth completes nothing), as Plausible's
// page scroll goals are (it names them freely; turf's name carries the
// threshold and the page). The page may use Plausible's wildcards: * for
// any characters but /, ** for any characters. A scroll goal has visitors
// but no events: engagement beacons are not events.

// ScrollGoal is a parsed scroll goal.
type ScrollGoal struct {
	Name      string
	Threshold int    // 1..100
	Path      string // as written, maybe with wildcards
}

var scrollGoalRe = regexp.MustCompile(`^Scroll (\d{1,3})% (/\S*)$`)

// ParseScrollGoal reports whether name is a scroll goal and parses it.
func ParseScrollGoal(name string) (ScrollGoal, bool) {
	m := scrollGoalRe.FindStringSubmatch(name)
	if m == nil {
		return ScrollGoal{}, false
	}
	n, _ := strconv.Atoi(m[1])
	if n < 1 || n > 100 {
		return ScrollGoal{}, false
	}
	return ScrollGoal{Name: name, Threshold: n, Path: m[2]}, true
}

// PathRegexp is the goal's page as an anchored RE2 pattern for
// ClickHouse's match().
func (g ScrollGoal) PathRegexp() string {
	var b strings.Builder
	b.WriteString("^")
	p := g.Path
	for len(p) > 0 {
		switch {
		case strings.HasPrefix(p, "**"):
			b.WriteString(".*")
			p = p[2:]
		case p[0] == '*':
			b.WriteString("[^/]*")
			p = p[1:]
		default:
			i := strings.IndexByte(p, '*')
			if i < 0 {
				i = len(p)
			}
			b.WriteString(regexp.QuoteMeta(p[:i]))
			p = p[i:]
		}
	}
	b.WriteString("$")
	return b.String()
}

// ScrollGoals picks the scroll goals out of a site's goals.
func ScrollGoals(goals []string) []ScrollGoal {
	var out []ScrollGoal
	for _, g := range goals {
		if sg, ok := ParseScrollGoal(g); ok {
			out = append(out, sg)
		}
	}
	return out
}
