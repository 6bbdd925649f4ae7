// Package clientip finds the visitor's address and anonymises it. The full
// address it returns must only ever be used, in memory, for the visitor hash
// and then dropped: nothing else in turf sees it.
package clientip

import (
	"fmt"
	"net/netip"
	"strings"
)

// Resolver decides which address is the client's.
type Resolver struct {
	trusted []netip.Prefix
}

// ParsePrefixes parses CIDRs (or single addresses) of trusted proxies.
func ParsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, c := range cidrs {
		for _, part := range strings.Split(c, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if !strings.Contains(part, "/") {
				a, err := netip.ParseAddr(part)
				if err != nil {
					return nil, fmt.Errorf("invalid trusted proxy %q: %w", part, err)
				}
				out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
				continue
			}
			p, err := netip.ParsePrefix(part)
			if err != nil {
				return nil, fmt.Errorf("invalid trusted proxy CIDR %q: %w", part, err)
			}
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
		}
	}
	return out, nil
}

// NewResolver trusts proxy headers only from peers inside trusted.
func NewResolver(trusted []netip.Prefix) *Resolver { return &Resolver{trusted: trusted} }

func (r *Resolver) isTrusted(a netip.Addr) bool {
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Client returns the client address. Headers are believed only when the TCP
// peer is a trusted proxy; X-Forwarded-For is walked from the right, skipping
// trusted proxies, so a client cannot forge its address by sending its own
// header through the proxy. Addresses are returned unmapped (an IPv4-mapped
// IPv6 address is an IPv4 address).
func (r *Resolver) Client(peer netip.Addr, xff, xRealIP string) netip.Addr {
	peer = peer.Unmap()
	if len(r.trusted) == 0 || !r.isTrusted(peer) {
		return peer
	}
	if xff != "" {
		last := peer
		for xff != "" {
			i := strings.LastIndexByte(xff, ',')
			part := strings.TrimSpace(xff[i+1:])
			if i < 0 {
				xff = ""
			} else {
				xff = xff[:i]
			}
			a, err := parseHeaderAddr(part)
			if err != nil {
				// A garbled hop: the last address we could verify is the best answer.
				return last
			}
			if !r.isTrusted(a) {
				return a
			}
			last = a
		}
		return last
	}
	if xRealIP != "" {
		if a, err := parseHeaderAddr(strings.TrimSpace(xRealIP)); err == nil {
			return a
		}
	}
	return peer
}

// parseHeaderAddr accepts "1.2.3.4", "1.2.3.4:5678", "[::1]:80" and "::1".
// netip's errors keep their input, which would make every caller's header
// string escape to the heap (an allocation per request behind a proxy), so
// a plain IPv4 address is parsed here and anything else from a copy.
func parseHeaderAddr(s string) (netip.Addr, error) {
	if a, ok := plainIPv4(s); ok {
		return a, nil
	}
	c := strings.Clone(s)
	if a, err := netip.ParseAddr(c); err == nil {
		return a.Unmap().WithZone(""), nil
	}
	ap, err := netip.ParseAddrPort(c)
	if err != nil {
		// Deliberately no address in the message: it may be a full client IP.
		return netip.Addr{}, fmt.Errorf("not an IP address")
	}
	return ap.Addr().Unmap().WithZone(""), nil
}

// plainIPv4 parses the dotted form netip.ParseAddr accepts for IPv4: four
// fields of 0-255 without leading zeros. Anything else is left to netip.
func plainIPv4(s string) (netip.Addr, bool) {
	var b [4]byte
	field, n, digits := 0, 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 || field == 4 {
				return netip.Addr{}, false
			}
			b[field] = byte(n)
			field, n, digits = field+1, 0, 0
			continue
		}
		c := s[i]
		if c < '0' || c > '9' || (digits > 0 && n == 0) {
			return netip.Addr{}, false // not a digit, or after a leading zero
		}
		n, digits = n*10+int(c-'0'), digits+1
		if n > 255 {
			return netip.Addr{}, false
		}
	}
	if field != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(b), true
}

// Truncate masks an address to its network prefix: v4Bits for IPv4 (and
// IPv4-mapped IPv6), v6Bits for IPv6.
func Truncate(a netip.Addr, v4Bits, v6Bits int) netip.Prefix {
	a = a.Unmap().WithZone("")
	bits := v6Bits
	if a.Is4() {
		bits = v4Bits
	}
	p, err := a.Prefix(bits)
	if err != nil {
		// Only an invalid address or out-of-range bits get here; config
		// validation rules out the latter.
		return netip.Prefix{}
	}
	return p
}

// ValidateBits checks the configured prefix lengths against the values turf
// documents (see README, "Truncation strength").
func ValidateBits(v4, v6 int) error {
	switch v4 {
	case 16, 24:
	default:
		return fmt.Errorf("--ipv4-prefix must be 16 or 24, not %d", v4)
	}
	switch v6 {
	case 32, 48, 64:
	default:
		return fmt.Errorf("--ipv6-prefix must be 32, 48 or 64, not %d", v6)
	}
	return nil
}
