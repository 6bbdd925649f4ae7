package beacon

import (
	"errors"
	"net/url"
	"testing"
)

// The rules of Plausible's ingestion (lib/plausible/ingestion/request.ex,
// put_engagement_fields) for the "sd" and "e" fields of an engagement.
func TestParseEngagement(t *testing.T) {
	eng := func(extra string) string {
		return `{"n":"engagement","u":"https://example.com/a","d":"example.com"` + extra + `}`
	}
	tests := []struct {
		name   string
		body   string
		sd     uint8
		ms     uint32
		reject bool
	}{
		{"tracker beacon", eng(`,"sd":42,"e":1234,"p":{},"v":25`), 42, 1234, false},
		{"scroll only", eng(`,"sd":0`), 0, 0, false},
		{"time only", eng(`,"e":5000`), NoScrollDepth, 5000, false},
		{"integer strings", eng(`,"sd":"55","e":"700"`), 55, 700, false},
		{"scroll above 100 is 100", eng(`,"sd":130,"e":1`), 100, 1, false},
		{"negative scroll is missing", eng(`,"sd":-1,"e":10`), NoScrollDepth, 10, false},
		{"fractional scroll is missing", eng(`,"sd":12.5,"e":10`), NoScrollDepth, 10, false},
		{"word scroll is missing", eng(`,"sd":"a lot","e":10`), NoScrollDepth, 10, false},
		{"negative time is missing", eng(`,"sd":10,"e":-5`), 10, 0, false},
		{"30 days or more is missing", eng(`,"sd":10,"e":2592000000`), 10, 0, false},
		{"just under 30 days", eng(`,"e":2591999999`), NoScrollDepth, 2591999999, false},
		{"neither", eng(``), 0, 0, true},
		{"both unreadable", eng(`,"sd":null,"e":{"x":1}`), 0, 0, true},
		{"scroll missing, time zero", eng(`,"e":0`), 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Parse([]byte(tc.body))
			if tc.reject {
				var be *Error
				if !errors.As(err, &be) || be.Reason != "bad_engagement" || be.Status != 400 {
					t.Fatalf("got %+v, %v; want bad_engagement", b, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Name != Engagement || b.ScrollDepth != tc.sd || b.EngagementMS != tc.ms {
				t.Errorf("got name %q sd %d e %d, want sd %d e %d", b.Name, b.ScrollDepth, b.EngagementMS, tc.sd, tc.ms)
			}
		})
	}
	// Other events ignore the fields.
	b, err := Parse([]byte(pv(`,"sd":50,"e":100`)))
	if err != nil || b.ScrollDepth != 0 || b.EngagementMS != 0 {
		t.Errorf("pageview with sd/e: %+v %v", b, err)
	}
	// The pixel form reads them from the query.
	q := url.Values{"n": {"engagement"}, "u": {"https://example.com/a"}, "d": {"example.com"}, "sd": {"77"}, "e": {"3000"}}
	b, err = ParseQuery(q.Get)
	if err != nil || b.ScrollDepth != 77 || b.EngagementMS != 3000 {
		t.Errorf("pixel engagement: %+v %v", b, err)
	}
}
