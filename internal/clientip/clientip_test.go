package clientip

import (
	"net/netip"
	"testing"
)

func TestTruncate(t *testing.T) {
	tests := []struct {
		in     string
		v4, v6 int
		want   string
	}{
		{"203.0.113.77", 24, 48, "203.0.113.0/24"},
		{"203.0.113.77", 16, 48, "203.0.0.0/16"},
		{"::ffff:203.0.113.77", 24, 48, "203.0.113.0/24"},
		{"2001:db8:abcd:1234:5678::1", 24, 48, "2001:db8:abcd::/48"},
		{"2001:db8:abcd:1234:5678::1", 24, 64, "2001:db8:abcd:1234::/64"},
		{"2001:db8:abcd:1234:5678::1", 24, 32, "2001:db8::/32"},
		{"fe80::1%eth0", 24, 48, "fe80::/48"},
		{"10.1.2.3", 24, 48, "10.1.2.0/24"},
	}
	for _, tt := range tests {
		got := Truncate(netip.MustParseAddr(tt.in), tt.v4, tt.v6)
		if got.String() != tt.want {
			t.Errorf("Truncate(%s, %d, %d) = %s, want %s", tt.in, tt.v4, tt.v6, got, tt.want)
		}
	}
	if p := Truncate(netip.Addr{}, 24, 48); p.IsValid() {
		t.Errorf("invalid address gave %v", p)
	}
}

func TestClient(t *testing.T) {
	trusted, err := ParsePrefixes([]string{"10.0.0.0/8, 192.0.2.1", "::ffff:172.16.0.0/108"})
	if err != nil {
		t.Fatal(err)
	}
	r := NewResolver(trusted)
	none := NewResolver(nil)
	tests := []struct {
		name      string
		r         *Resolver
		peer      string
		xff, real string
		want      string
	}{
		{"no proxies configured ignores headers", none, "198.51.100.7", "1.2.3.4", "5.6.7.8", "198.51.100.7"},
		{"untrusted peer ignores headers", r, "198.51.100.7", "1.2.3.4", "", "198.51.100.7"},
		{"trusted peer, one hop", r, "10.0.0.5", "198.51.100.9", "", "198.51.100.9"},
		{"forged leftmost entry is skipped", r, "10.0.0.5", "6.6.6.6, 198.51.100.9", "", "198.51.100.9"},
		{"chain of trusted proxies", r, "10.0.0.5", "198.51.100.9, 10.9.9.9, 192.0.2.1", "", "198.51.100.9"},
		{"all trusted gives leftmost", r, "10.0.0.5", "10.1.1.1, 10.2.2.2", "", "10.1.1.1"},
		{"garbage hop stops at last verified", r, "10.0.0.5", "198.51.100.9, nonsense", "", "10.0.0.5"},
		{"x-real-ip when no xff", r, "10.0.0.5", "", "198.51.100.10", "198.51.100.10"},
		{"bad x-real-ip falls back to peer", r, "10.0.0.5", "", "nope", "10.0.0.5"},
		{"port in xff", r, "10.0.0.5", "198.51.100.9:4711", "", "198.51.100.9"},
		{"ipv6 with port", r, "10.0.0.5", "[2001:db8::7]:443", "", "2001:db8::7"},
		{"mapped peer counts as v4", r, "::ffff:10.0.0.5", "2001:db8::7", "", "2001:db8::7"},
		{"mapped trusted cidr", r, "172.16.0.9", "198.51.100.9", "", "198.51.100.9"},
		{"mapped client is unmapped", r, "10.0.0.5", "::ffff:198.51.100.9", "", "198.51.100.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.r.Client(netip.MustParseAddr(tt.peer), tt.xff, tt.real)
			if got.String() != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParsePrefixesErrors(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "not-an-ip", "1.2.3.4/x"} {
		if _, err := ParsePrefixes([]string{bad}); err == nil {
			t.Errorf("ParsePrefixes(%q) accepted", bad)
		}
	}
}

func TestValidateBits(t *testing.T) {
	for _, ok := range [][2]int{{24, 48}, {16, 32}, {24, 64}} {
		if err := ValidateBits(ok[0], ok[1]); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
	for _, bad := range [][2]int{{32, 48}, {24, 128}, {8, 48}, {24, 56}} {
		if err := ValidateBits(bad[0], bad[1]); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// The IPv4 fast path answers exactly as netip does, for every input that
// reaches it, and an address behind a trusted proxy costs no allocation.
func TestParseHeaderAddr(t *testing.T) {
	for _, s := range []string{"203.0.113.7", "0.0.0.0", "255.255.255.255", "1.2.3.4", "10.0.0.1",
		"256.1.1.1", "1.2.3", "1.2.3.4.5", "1.2.3.4.", ".1.2.3.4", "1..2.3", "01.2.3.4", "1.2.3.04", "00.0.0.0",
		"1.2.3.a", "", "1.2.3.4:80", "::1", "[::1]:80", "::ffff:1.2.3.4", "1.2.3.4 ", "1.2.3.1000", "999.0.0.0"} {
		got, gotErr := parseHeaderAddr(s)
		want, wantErr := netip.ParseAddr(s)
		if wantErr != nil {
			ap, err := netip.ParseAddrPort(s)
			want, wantErr = ap.Addr(), err
		}
		want = want.Unmap().WithZone("")
		if (gotErr != nil) != (wantErr != nil) || (gotErr == nil && got != want) {
			t.Errorf("parseHeaderAddr(%q) = %v, %v; netip gives %v, %v", s, got, gotErr, want, wantErr)
		}
	}
	r := NewResolver([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	peer := netip.MustParseAddr("127.0.0.1")
	if n := testing.AllocsPerRun(100, func() { r.Client(peer, "198.51.100.7, 203.0.113.9", "") }); n != 0 {
		t.Errorf("a client behind a trusted proxy costs %.0f allocations", n)
	}
}
