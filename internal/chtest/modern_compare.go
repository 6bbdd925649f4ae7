package chtest

// How two answers, both as TabSeparated text, are judged the same.

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// sameAnswer compares two TabSeparated answers: in order when the statement
// orders its rows, as multisets otherwise (the row order of an unordered
// result is the server's business). Numbers may differ by float rounding.
func sameAnswer(a, b []byte, ordered bool) bool {
	if bytes.Equal(a, b) {
		return true
	}
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	if len(la) != len(lb) {
		return false
	}
	if !ordered {
		slices.Sort(la)
		slices.Sort(lb)
	}
	for i := range la {
		if !sameLine(la[i], lb[i]) {
			return false
		}
	}
	return true
}

func sameLine(a, b string) bool {
	if a == b {
		return true
	}
	fa, fb := strings.Split(a, "\t"), strings.Split(b, "\t")
	if len(fa) != len(fb) {
		return false
	}
	for i := range fa {
		if fa[i] != fb[i] && !closeFloats(fa[i], fb[i]) {
			return false
		}
	}
	return true
}

func closeFloats(a, b string) bool {
	x, err1 := strconv.ParseFloat(a, 64)
	y, err2 := strconv.ParseFloat(b, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	d := x - y
	if d < 0 {
		d = -d
	}
	return d <= 1e-9*max(1, x, -x, y, -y)
}

func clip(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "…\n"
	}
	return s
}

// firstDifference shows the first row, in sorted order, where two answers
// part.
func firstDifference(a, b []byte, version string) string {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	slices.Sort(la)
	slices.Sort(lb)
	for i := 0; i < max(len(la), len(lb)); i++ {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if !sameLine(x, y) {
			return fmt.Sprintf("%d vs %d rows; first difference (sorted row %d):\n-- 18.16: %s\n-- %s: %s", len(la)-1, len(lb)-1, i, clip(x), version, clip(y))
		}
	}
	return ""
}
