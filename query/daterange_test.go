package query

import (
	"strings"
	"testing"
	"time"
)

// The bound and its message agree at both edges, in UTC and in zones on
// either side of it: every range the message allows is answered, the day
// after is refused with that message.
func TestDateRangeEdges(t *testing.T) {
	la, kiri := mustLoc("America/Los_Angeles"), mustLoc("Pacific/Kiritimati")
	for _, c := range []struct {
		loc        *time.Location
		start, end string
		wantErr    string // "" means allowed
	}{
		{time.UTC, "2105-12-01", "2105-12-30", ""},
		{time.UTC, "2105-12-01", "2105-12-31", ""},
		{time.UTC, "2105-12-01", "2106-01-01", "between 1971-01-01 and 2105-12-31"},
		{la, "2105-12-01", "2105-12-30", ""},
		{la, "2105-12-01", "2105-12-31", "between 1971-01-01 and 2105-12-30"},
		{kiri, "2105-12-01", "2105-12-31", ""},
		{kiri, "2105-12-01", "2106-01-01", "between 1971-01-01 and 2105-12-31"},
		{time.UTC, "1971-01-01", "1971-01-31", ""},
		{time.UTC, "1970-12-31", "1971-01-31", "between 1971-01-01 and 2105-12-31"},
		{kiri, "1971-01-01", "1971-01-31", ""},
		{time.UTC, "2105-12-31T00:00:00Z", "2105-12-31T23:59:59Z", ""},
		{time.UTC, "2105-12-31T00:00:00Z", "2106-01-01T00:00:00Z", "and 2105-12-31T23:59:59Z"},
	} {
		_, err := resolveRange(DateRangeSpec{Start: c.start, End: c.end}, c.loc, time.Now(), time.Time{})
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s %s..%s: %v, want allowed", c.loc, c.start, c.end, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s %s..%s: %v, want an error saying %q", c.loc, c.start, c.end, err, c.wantErr)
		}
	}
}
