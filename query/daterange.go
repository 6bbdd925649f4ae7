package query

import (
	"strings"
	"time"
)

var datePresets = []string{"day", "24h", "7d", "28d", "30d", "91d", "month", "6mo", "12mo", "year", "all"}

// Range is a resolved date range: [Start, End) as instants, in the site's
// time zone.
type Range struct {
	Start, End time.Time
	// Dates is true when the range is made of whole local days, which is
	// what decides the granularity of "time" and how a comparison shifts.
	Dates bool
}

// dayStart is the first instant of local day y-m-d as Plausible takes it:
// where the day's midnight does not exist (America/Santiago springs from
// 00:00 to 01:00) the day starts at its first instant; where midnight
// happens twice (America/Havana falls back to 00:00), at the later one.
func dayStart(y int, m time.Month, d int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	for i := 0; i < 24*60 && t.Day() != d; i++ {
		t = t.Add(time.Minute) // Go put the missing midnight in the day before
	}
	for _, step := range []time.Duration{time.Hour, 30 * time.Minute} {
		if u := t.Add(step).In(loc); u.Day() == d && u.Hour() == 0 && u.Minute() == 0 {
			return u
		}
	}
	return t
}

// dayEnd is the instant after local day y-m-d's last second, taking the
// first 23:59:59 where the evening happens twice (America/Asuncion falls
// back at midnight), as Plausible's ranges end.
func dayEnd(y int, m time.Month, d int, loc *time.Location) time.Time {
	return time.Date(y, m, d, 23, 59, 59, 0, loc).Add(time.Second)
}

// localDay is the start of t's local day, moved by addDays.
func localDay(t time.Time, loc *time.Location, addDays int) time.Time {
	t = t.In(loc)
	u := time.Date(t.Year(), t.Month(), t.Day()+addDays, 12, 0, 0, 0, time.UTC)
	return dayStart(u.Year(), u.Month(), u.Day(), loc)
}

// localDayEnd is the end of t's local day, moved by addDays.
func localDayEnd(t time.Time, loc *time.Location, addDays int) time.Time {
	t = t.In(loc)
	u := time.Date(t.Year(), t.Month(), t.Day()+addDays, 12, 0, 0, 0, time.UTC)
	return dayEnd(u.Year(), u.Month(), u.Day(), loc)
}

func monthStart(t time.Time, loc *time.Location, addMonths int) time.Time {
	t = t.In(loc)
	u := time.Date(t.Year(), t.Month()+time.Month(addMonths), 1, 12, 0, 0, 0, time.UTC)
	return dayStart(u.Year(), u.Month(), 1, loc)
}

// monthEnd is the end of the last day of t's month moved by addMonths.
func monthEnd(t time.Time, loc *time.Location, addMonths int) time.Time {
	t = t.In(loc)
	u := time.Date(t.Year(), t.Month()+time.Month(addMonths)+1, 0, 12, 0, 0, 0, time.UTC)
	return dayEnd(u.Year(), u.Month(), u.Day(), loc)
}

// resolveRange turns the spec into instants. "Nd" is the N days before
// today (today not included, as Plausible's); month, 6mo, 12mo and year are whole calendar periods
// that end with the current one. first is the earliest event of the site,
// used by "all" (zero when the site has none).
func resolveRange(spec DateRangeSpec, loc *time.Location, now, first time.Time) (Range, error) {
	switch spec.Preset {
	case "":
	case "day":
		return Range{localDay(now, loc, 0), localDayEnd(now, loc, 0), true}, nil
	case "24h":
		end := now.Truncate(time.Second).Add(time.Second)
		return Range{end.Add(-24 * time.Hour), end, false}, nil
	case "7d", "28d", "30d", "91d":
		n := map[string]int{"7d": 7, "28d": 28, "30d": 30, "91d": 91}[spec.Preset]
		return Range{localDay(now, loc, -n), localDayEnd(now, loc, -1), true}, nil
	case "month":
		return Range{monthStart(now, loc, 0), monthEnd(now, loc, 0), true}, nil
	case "6mo":
		return Range{monthStart(now, loc, -5), monthEnd(now, loc, 0), true}, nil
	case "12mo":
		return Range{monthStart(now, loc, -11), monthEnd(now, loc, 0), true}, nil
	case "year":
		y := now.In(loc).Year()
		return Range{dayStart(y, 1, 1, loc), dayEnd(y, 12, 31, loc), true}, nil
	case "all":
		start := localDay(now, loc, 0)
		if !first.IsZero() && first.Before(start) {
			start = localDay(first, loc, 0)
		}
		return Range{start, localDayEnd(now, loc, 0), true}, nil
	default:
		return Range{}, badf("#/date_range: invalid date range %q", spec.Preset)
	}
	s, sDate, err := parseBound(spec.Start, loc)
	if err != nil {
		return Range{}, badf("#/date_range/0: invalid date or date-time %q (use 2024-01-31 or 2024-01-31T10:00:00+01:00)", spec.Start)
	}
	e, eDate, err := parseBound(spec.End, loc)
	if err != nil {
		return Range{}, badf("#/date_range/1: invalid date or date-time %q (use 2024-01-31 or 2024-01-31T10:00:00+01:00)", spec.End)
	}
	if sDate != eDate {
		return Range{}, badf("#/date_range: give both bounds as dates or both as date-times")
	}
	if eDate {
		e = localDayEnd(e, loc, 0) // dates are inclusive
	} else {
		e = e.Add(time.Second) // so is the last second of a date-time range
	}
	if !e.After(s) {
		return Range{}, badf("#/date_range: the start must come before the end")
	}
	if first := time.Date(1971, 1, 1, 0, 0, 0, 0, loc); s.Before(first) || e.After(maxEnd) {
		// The message names exactly the bound applied, in the site's zone:
		// the last whole local day, or second, that ends by maxEnd.
		if eDate {
			last := localDay(maxEnd.Add(-time.Second), loc, 0)
			if !localDay(last, loc, 1).After(maxEnd) {
				last = localDay(last, loc, 1)
			}
			return Range{}, badf("#/date_range: dates must lie between 1971-01-01 and %s in the site's time zone %s (ClickHouse's date functions end with 2105-12-31 UTC)", localDay(last, loc, -1).Format(time.DateOnly), loc)
		}
		return Range{}, badf("#/date_range: date-times must lie between %s and %s (ClickHouse's date functions end with 2105-12-31 UTC)", first.Format(time.RFC3339), maxEnd.Add(-time.Second).In(loc).Format(time.RFC3339))
	}
	return Range{s, e, eDate}, nil
}

// A range must start on 1971-01-01 or later in the site's zone (a day's
// margin from 1970 for any zone) and end (exclusive) by maxEnd. DateTime itself ends 2106-02-07 06:28:15 UTC, but ClickHouse
// 18.16's date functions (toDate, toStartOfDay, in any zone) answer
// 0000-00-00 past 2105-12-31 UTC (checked on 18.16.1), so ranges up to
// then are answered and later ones refused.
var maxEnd = time.Date(2106, 1, 1, 0, 0, 0, 0, time.UTC)

func parseBound(s string, loc *time.Location) (time.Time, bool, error) {
	if len(s) == len("2006-01-02") {
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return t, true, err
		}
		return dayStart(t.Year(), t.Month(), t.Day(), loc), true, nil
	}
	if !strings.Contains(s, "T") {
		return time.Time{}, false, badf("no T")
	}
	t, err := time.Parse(time.RFC3339, s)
	return t.Truncate(time.Second), false, err
}

// comparisonRange is the range a comparison is made against.
func comparisonRange(r Range, mode string, loc *time.Location) Range {
	if mode == "year_over_year" {
		return Range{r.Start.In(loc).AddDate(-1, 0, 0), r.End.In(loc).AddDate(-1, 0, 0), r.Dates}
	}
	if r.Dates {
		s, e := r.Start.In(loc), r.End.In(loc)
		days := 0
		for d := s; d.Before(e); d = time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, loc) {
			days++
		}
		return Range{time.Date(s.Year(), s.Month(), s.Day()-days, 0, 0, 0, 0, loc), s, true}
	}
	d := r.End.Sub(r.Start)
	return Range{r.Start.Add(-d), r.Start, false}
}

// granularity picks the bucket of the "time" dimension as Plausible does,
// by the whole hours, days and weeks between the range's first and last
// second: up to 48 hours by hour, 40 days by day, 52 weeks by week, and
// longer by month.
func granularity(dim string, r Range) string {
	if dim != "time" {
		return strings.TrimPrefix(dim, "time:")
	}
	switch d := r.End.Sub(r.Start) - time.Second; {
	case d < 49*time.Hour:
		return "hour"
	case d < 41*24*time.Hour:
		return "day"
	case d < 53*7*24*time.Hour:
		return "week"
	default:
		return "month"
	}
}

// bucketLabel formats t's bucket as the SQL does: local, zero-padded. A
// week starts on Monday, or on the range's first day (start) when that
// falls inside it, as Plausible's weeks do.
func bucketLabel(t time.Time, gran string, loc *time.Location, start time.Time) string {
	t = t.In(loc)
	switch gran {
	case "hour":
		return t.Format("2006-01-02 15:00:00")
	case "week":
		wd := (int(t.Weekday()) + 6) % 7
		mon := time.Date(t.Year(), t.Month(), t.Day()-wd, 0, 0, 0, 0, loc)
		if s := localDay(start, loc, 0); s.After(mon) {
			mon = s
		}
		return mon.Format("2006-01-02")
	case "month":
		return t.Format("2006-01") + "-01"
	default:
		return t.Format("2006-01-02")
	}
}

// timeLabels lists every bucket of the range in order.
func timeLabels(r Range, gran string, loc *time.Location) []string {
	var out []string
	step := func(t time.Time) time.Time {
		if gran == "hour" {
			return t.Add(time.Hour)
		}
		l := t.In(loc)
		return time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, loc)
	}
	t := r.Start
	if gran == "hour" {
		t = t.Truncate(time.Hour) // whole-hour zones: local and UTC hours coincide
	}
	for ; t.Before(r.End); t = step(t) {
		l := bucketLabel(t, gran, loc, r.Start)
		if len(out) == 0 || out[len(out)-1] != l {
			out = append(out, l)
		}
		if len(out) > 100000 {
			break
		}
	}
	return out
}
