package retention

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Period is how long data is kept, in calendar months and days: "13 months"
// must mean the same day of the month 13 months ago, which no fixed
// time.Duration can say.
type Period struct {
	Months int
	Days   int
}

// DefaultPeriod is 13 months: the CNIL's limit for the trackers of audience
// measurement that is exempt from consent (see docs/privacy.md).
var DefaultPeriod = Period{Months: 13}

// ParsePeriod reads "13mo", "25mo", "400d", "2y", "1y6mo" or "8w".
func ParsePeriod(s string) (Period, error) {
	orig := s
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return Period{}, errors.New("empty retention period: use e.g. 13mo, 400d or 2y")
	}
	var p Period
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 {
			return Period{}, fmt.Errorf("invalid retention period %q: use e.g. 13mo, 400d or 2y", orig)
		}
		n, err := strconv.Atoi(s[:i])
		if err != nil || n > 1200 {
			return Period{}, fmt.Errorf("invalid retention period %q: number out of range", orig)
		}
		s = s[i:]
		unit := ""
		for _, u := range []string{"mo", "y", "w", "d"} {
			if strings.HasPrefix(s, u) {
				unit = u
				break
			}
		}
		switch unit {
		case "y":
			p.Months += 12 * n
		case "mo":
			p.Months += n
		case "w":
			p.Days += 7 * n
		case "d":
			p.Days += n
		default:
			return Period{}, fmt.Errorf("invalid retention period %q: units are y, mo, w and d (m alone is ambiguous)", orig)
		}
		s = s[len(unit):]
	}
	if p.IsZero() {
		return Period{}, fmt.Errorf("invalid retention period %q: keep data for at least one day", orig)
	}
	return p, nil
}

// IsZero reports an unset period.
func (p Period) IsZero() bool { return p.Months == 0 && p.Days == 0 }

func (p Period) String() string {
	switch {
	case p.IsZero():
		return "0d"
	case p.Days == 0:
		return strconv.Itoa(p.Months) + "mo"
	case p.Months == 0:
		return strconv.Itoa(p.Days) + "d"
	}
	return fmt.Sprintf("%dmo%dd", p.Months, p.Days)
}

// Cutoff is the first moment still kept at now: the start of the UTC day
// that lies the period before now. Whole days keep Date and DateTime columns
// in step.
func (p Period) Cutoff(now time.Time) time.Time {
	y, m, d := now.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, -p.Months, -p.Days)
}

// longer reports whether p keeps data longer than q (at now).
func (p Period) longer(q Period, now time.Time) bool { return p.Cutoff(now).Before(q.Cutoff(now)) }

// Set and the flag.Value methods let a Period be a flag.
func (p *Period) Set(s string) error {
	v, err := ParsePeriod(s)
	if err != nil {
		return err
	}
	*p = v
	return nil
}
