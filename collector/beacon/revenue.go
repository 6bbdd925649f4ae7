package beacon

import "math"

// parseMicros converts a decimal amount such as "9.99", "-3", "1.5e2" or
// "0.0000005" to millionths, exactly: digits are shifted, never put through
// a float, and the seventh fractional digit rounds half away from zero.
// It accepts the JSON number grammar, and also ".5" and "5." as people type
// them into string amounts. Amounts beyond int64 micros (about 9.2e12) fail.
func parseMicros(num []byte) (int64, bool) {
	if len(num) == 0 || len(num) > maxRevenueLen {
		return 0, false
	}
	i := 0
	neg := num[0] == '-'
	if neg {
		i++
	}
	// Significant digits without the point, and where the point sits.
	var digits [maxRevenueLen]byte
	nd, point, seenDigit := 0, 0, false
	for ; i < len(num) && '0' <= num[i] && num[i] <= '9'; i++ {
		seenDigit = true
		if nd == 0 && num[i] == '0' {
			continue // leading zeros move nothing
		}
		digits[nd] = num[i]
		nd++
		point++
	}
	if i < len(num) && num[i] == '.' {
		i++
		for ; i < len(num) && '0' <= num[i] && num[i] <= '9'; i++ {
			seenDigit = true
			if nd == 0 && num[i] == '0' {
				point-- // 0.05: the point is left of the first significant digit
				continue
			}
			digits[nd] = num[i]
			nd++
		}
	}
	if !seenDigit {
		return 0, false
	}
	if i < len(num) && (num[i] == 'e' || num[i] == 'E') {
		i++
		expNeg := false
		if i < len(num) && (num[i] == '+' || num[i] == '-') {
			expNeg = num[i] == '-'
			i++
		}
		exp, expDigits := 0, 0
		for ; i < len(num) && '0' <= num[i] && num[i] <= '9'; i++ {
			if exp < 1000 {
				exp = exp*10 + int(num[i]-'0')
			}
			expDigits++
		}
		if expDigits == 0 {
			return 0, false
		}
		if expNeg {
			exp = -exp
		}
		point += exp
	}
	if i != len(num) {
		return 0, false
	}
	if nd == 0 {
		return 0, true
	}

	// micros are the digits left of point+6; the next one rounds.
	cut := point + 6
	if cut < 0 {
		return 0, true
	}
	var m uint64
	for k := 0; k < cut; k++ {
		d := uint64(0)
		if k < nd {
			d = uint64(digits[k] - '0')
		}
		if m > (math.MaxInt64-d)/10 {
			return 0, false
		}
		m = m*10 + d
	}
	if cut < nd && digits[cut] >= '5' {
		if m == math.MaxInt64 {
			return 0, false
		}
		m++
	}
	if neg {
		return -int64(m), true
	}
	return int64(m), true
}
