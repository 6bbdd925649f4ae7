package collector

import (
	"slices"
	"testing"
)

// A page cannot mark its own events as a machine's: only the collector's
// link detection sets the prop the query side leaves out of every count.
func TestWithoutMachine(t *testing.T) {
	for _, c := range []struct{ keys, vals, wantK, wantV []string }{
		{[]string{"plan", "machine", "x"}, []string{"pro", "apple-mpp", "1"}, []string{"plan", "x"}, []string{"pro", "1"}},
		{[]string{"machine"}, []string{"head"}, []string{}, []string{}},
		{[]string{"plan"}, []string{"pro"}, []string{"plan"}, []string{"pro"}},
		{nil, nil, nil, nil},
	} {
		k, v := withoutMachine(c.keys, c.vals)
		if !slices.Equal(k, c.wantK) || !slices.Equal(v, c.wantV) {
			t.Errorf("withoutMachine(%q, %q) = %q, %q; want %q, %q", c.keys, c.vals, k, v, c.wantK, c.wantV)
		}
	}
}
