package plan

import (
	"regexp"
	"testing"
)

func TestParseGoal(t *testing.T) {
	for _, c := range []struct {
		in   string
		want GoalDef
		bad  bool
	}{
		{in: "Signup", want: GoalDef{Name: "Signup", Event: "Signup"}},
		{in: "Purchase;currency=usd", want: GoalDef{Name: "Purchase", Event: "Purchase", Currency: "USD"}},
		{in: "Visit /blog**", want: GoalDef{Name: "Visit /blog**", Page: "/blog**"}},
		{in: "Visit blog", bad: true},
		{in: "Visit /x;currency=EUR", bad: true},
		{in: "Purchase;currency=EURO", bad: true},
		{in: "Purchase;colour=red", bad: true},
		{in: "", bad: true},
	} {
		g, err := ParseGoal(c.in)
		if c.bad != (err != nil) || !c.bad && g != c.want {
			t.Errorf("ParseGoal(%q) = %+v, %v", c.in, g, err)
		}
	}
}

// Plausible's wildcards: * within one path segment, ** across them.
func TestPageRegexp(t *testing.T) {
	for _, c := range []struct {
		page, path string
		match      bool
	}{
		{"/blog**", "/blog", true}, {"/blog**", "/blog/a/b", true}, {"/blog**", "/blo", false},
		{"/**register", "/en/register", true}, {"/**register", "/123/it/register", true}, {"/**register", "/register/x", false},
		{"/**/post", "/blog/something/post", true}, {"/**/post", "/post", false},
		{"/blog/*", "/blog/a", true}, {"/blog/*", "/blog/a/b", false},
		{"/a.b", "/aXb", false}, {"/a+b", "/a+b", true},
	} {
		re := regexp.MustCompile(GoalDef{Page: c.page}.PageRegexp())
		if got := re.MatchString(c.path); got != c.match {
			t.Errorf("%s matches %s: %v, want %v", c.page, c.path, got, c.match)
		}
	}
}

func TestMatchGoals(t *testing.T) {
	goals := []GoalDef{{Name: "Signup", Event: "Signup"}, {Name: "Visit /a", Page: "/a"}}
	if gs, missing := MatchGoals(goals, Filter{Op: "is", Values: []string{"signup"}, CaseSensitive: true}); missing != "signup" || len(gs) != 0 {
		t.Errorf("case-sensitive is: %v %q", gs, missing)
	}
	if gs, missing := MatchGoals(goals, Filter{Op: "is", Values: []string{"signup"}, CaseSensitive: false}); missing != "" || len(gs) != 1 {
		t.Errorf("case-insensitive is: %v %q", gs, missing)
	}
	if gs, _ := MatchGoals(goals, Filter{Op: "contains_not", Values: []string{"Visit"}, CaseSensitive: true}); len(gs) != 1 || gs[0].Name != "Visit /a" {
		t.Errorf("contains (negated by the caller): %v", gs)
	}
}

// Revenue reads as Plausible's: symbol, cents, one decimal short, half to
// even.
func TestNewRevenue(t *testing.T) {
	for _, c := range []struct {
		milli       int64
		cur         string
		short, long string
	}{
		{67066, "USD", "$67.1", "$67.07"},
		{50450, "USD", "$50.4", "$50.45"},
		{100000, "EUR", "€100.0", "€100.00"},
		{1234500, "GBP", "£1.2K", "£1234.50"},
		{2500000000, "CHF", "CHF 2.5M", "CHF 2500000.00"},
		{-50450, "USD", "$-50.4", "$-50.45"},
	} {
		r := NewRevenue(c.milli, c.cur)
		if r.Short != c.short || r.Long != c.long || r.Value != float64(c.milli)/1000 || r.Currency != c.cur {
			t.Errorf("NewRevenue(%d, %s) = %+v, want %s %s", c.milli, c.cur, r, c.short, c.long)
		}
	}
}
