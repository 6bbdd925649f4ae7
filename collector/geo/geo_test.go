package geo

import (
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// record builders for the two layouts.

func geoip2Rec(country, registered string) mmdbtype.Map {
	m := mmdbtype.Map{}
	if country != "" {
		m["country"] = mmdbtype.Map{
			"iso_code":   mmdbtype.String(country),
			"geoname_id": mmdbtype.Uint32(1),
			"names":      mmdbtype.Map{"en": mmdbtype.String("Somewhere")},
		}
	}
	if registered != "" {
		m["registered_country"] = mmdbtype.Map{"iso_code": mmdbtype.String(registered)}
	}
	return m
}

func flatRec(code string) mmdbtype.Map {
	return mmdbtype.Map{"country_code": mmdbtype.String(code)}
}

// writeDB builds a small .mmdb in a temp dir. Documentation ranges
// (192.0.2.0/24, 203.0.113.0/24, 2001:db8::/32) keep the fixtures obviously
// fake, so reserved networks have to be allowed.
func writeDB(t testing.TB, opts mmdbwriter.Options, recs map[string]mmdbtype.DataType) string {
	t.Helper()
	opts.IncludeReservedNetworks = true
	if opts.Description == nil {
		opts.Description = map[string]string{"en": "turf test fixture"}
	}
	tree, err := mmdbwriter.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range recs {
		_, network, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(network, rec); err != nil {
			t.Fatalf("insert %s: %v", cidr, err)
		}
	}
	path := filepath.Join(t.TempDir(), "test.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func geoip2DB(t testing.TB) string {
	return writeDB(t, mmdbwriter.Options{DatabaseType: "GeoIP2-Country"}, map[string]mmdbtype.DataType{
		"203.0.113.0/24":  geoip2Rec("DE", "DE"),
		"198.51.100.0/24": geoip2Rec("", "FR"), // only registered_country, like anycast ranges
		"192.0.2.0/25":    geoip2Rec("nl", ""), // lower-case in the file
		"192.0.2.128/25":  geoip2Rec("XYZ", ""),
		"2001:db8:1::/48": geoip2Rec("JP", "JP"),
	})
}

func flatDB(t testing.TB) string {
	return writeDB(t, mmdbwriter.Options{DatabaseType: "geo-whois-asn-country"}, map[string]mmdbtype.DataType{
		"203.0.113.0/24":  flatRec("NL"),
		"198.51.100.0/24": flatRec("us"),
		"2001:db8:1::/48": flatRec("SE"),
	})
}

func TestCountry(t *testing.T) {
	dbs := map[string]struct {
		path   string
		layout string
	}{
		"geoip2": {geoip2DB(t), "GeoIP2-Country"},
		"flat":   {flatDB(t), LayoutCountryCode},
		"flat-ipv4-only": {writeDB(t, mmdbwriter.Options{DatabaseType: "x", IPVersion: 4, RecordSize: 24},
			map[string]mmdbtype.DataType{"203.0.113.0/24": flatRec("NL")}), LayoutCountryCode},
		"iso-code-under-unknown-type": {writeDB(t, mmdbwriter.Options{DatabaseType: "Acme-Country"},
			map[string]mmdbtype.DataType{"203.0.113.0/24": geoip2Rec("NL", "")}), LayoutISOCode},
	}
	tests := []struct {
		db   string
		addr string
		want string
	}{
		{"geoip2", "203.0.113.0", "DE"}, // truncated, as the collector passes it
		{"geoip2", "203.0.113.77", "DE"},
		{"geoip2", "::ffff:203.0.113.0", "DE"},
		{"geoip2", "198.51.100.0", "FR"}, // registered_country fallback
		{"geoip2", "192.0.2.1", "NL"},    // upper-cased
		{"geoip2", "192.0.2.200", ""},    // not a 2-letter code
		{"geoip2", "2001:db8:1::", "JP"},
		{"geoip2", "2001:db8:1:ffff::1", "JP"},
		{"geoip2", "2001:db8:2::", ""},
		{"geoip2", "8.8.8.0", ""},
		{"geoip2", "fe80::1%eth0", ""},

		{"flat", "203.0.113.0", "NL"},
		{"flat", "::ffff:203.0.113.0", "NL"},
		{"flat", "198.51.100.9", "US"},
		{"flat", "2001:db8:1::", "SE"},
		{"flat", "2001:db8:1::%eth0", "SE"},
		{"flat", "2001:db8:2::", ""},
		{"flat", "10.0.0.0", ""},
		{"flat", "::", ""},

		{"flat-ipv4-only", "203.0.113.0", "NL"},
		{"flat-ipv4-only", "::ffff:203.0.113.0", "NL"},
		{"flat-ipv4-only", "2001:db8:1::", ""},

		{"iso-code-under-unknown-type", "203.0.113.0", "NL"},
	}
	opened := map[string]*DB{}
	for name, db := range dbs {
		d, err := Open(db.path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() {
			if err := d.Close(); err != nil {
				t.Error(err)
			}
		})
		if got := d.Layout(); got != db.layout {
			t.Errorf("%s: Layout() = %q, want %q", name, got, db.layout)
		}
		opened[name] = d
	}
	for _, tt := range tests {
		got := opened[tt.db].Country(netip.MustParseAddr(tt.addr))
		if got != tt.want {
			t.Errorf("%s: Country(%s) = %q, want %q", tt.db, tt.addr, got, tt.want)
		}
	}
	for name, d := range opened {
		if got := d.Country(netip.Addr{}); got != "" {
			t.Errorf("%s: Country(zero Addr) = %q, want empty", name, got)
		}
	}
}

func TestNilDB(t *testing.T) {
	var d *DB
	if got := d.Country(netip.MustParseAddr("203.0.113.0")); got != "" {
		t.Errorf("Country = %q", got)
	}
	if got := d.Layout(); got != "" {
		t.Errorf("Layout = %q", got)
	}
	if err := d.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(flatDB(t))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Overwrite the middle of the search tree: metadata still parses, so only
	// verification can tell.
	damaged := append([]byte(nil), good...)
	for i := 64; i < 256 && i < len(damaged); i++ {
		damaged[i] = 0xff
	}

	tests := []struct {
		name    string
		path    string
		wantMsg string
		wantIs  error
	}{
		{"missing", filepath.Join(dir, "nope.mmdb"), "nope.mmdb", fs.ErrNotExist},
		{"empty", write("empty.mmdb", nil), "empty", nil},
		{"not an mmdb", write("garbage.mmdb", []byte(strings.Repeat("this is not a database\n", 100))), "garbage.mmdb", nil},
		{"truncated", write("truncated.mmdb", good[:len(good)/2]), "truncated.mmdb", nil},
		{"damaged", write("damaged.mmdb", damaged), "corrupt", nil},
		{"asn database", writeDB(t, mmdbwriter.Options{DatabaseType: "GeoLite2-ASN"}, map[string]mmdbtype.DataType{
			"203.0.113.0/24": mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(64496)},
		}), "has no country data", nil},
		{"flat without country", writeDB(t, mmdbwriter.Options{DatabaseType: "asn"}, map[string]mmdbtype.DataType{
			"203.0.113.0/24": mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(64496)},
		}), "neither country_code nor country.iso_code", nil},
		{"no records", writeDB(t, mmdbwriter.Options{DatabaseType: "empty"}, nil), "no records", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Open(tt.path)
			if err == nil {
				d.Close()
				t.Fatal("Open succeeded")
			}
			if d != nil {
				t.Error("Open returned a DB with an error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "cannot ") || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("error %q: want prefix %q and %q in it", msg, "cannot ", tt.wantMsg)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q is not %v", msg, tt.wantIs)
			}
		})
	}
}

func TestConcurrent(t *testing.T) {
	for _, path := range []string{geoip2DB(t), flatDB(t)} {
		d, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		addr := netip.MustParseAddr("203.0.113.0")
		want := d.Country(addr)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 1000 {
					if got := d.Country(addr); got != want {
						t.Errorf("Country = %q, want %q", got, want)
						return
					}
				}
			})
		}
		wg.Wait()
		d.Close()
	}
}

// TestRealDatabase checks a downloaded database, e.g. the one
// deploy/fetch-geoip.sh installs:
//
//	TURF_GEOIP_DB=data/geo/country.mmdb go test ./collector/geo/ -run Real -v
func TestRealDatabase(t *testing.T) {
	path := os.Getenv("TURF_GEOIP_DB")
	if path == "" {
		t.Skip("TURF_GEOIP_DB is not set; the generated-database tests cover the code")
	}
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	t.Logf("layout %q", d.Layout())

	europe := map[string]bool{
		"AT": true, "BE": true, "CH": true, "CZ": true, "DE": true, "DK": true, "ES": true, "FI": true,
		"FR": true, "GB": true, "IE": true, "IT": true, "NL": true, "NO": true, "PL": true, "PT": true, "SE": true,
	}
	tests := []struct {
		addr string
		ok   func(string) bool
		want string
	}{
		{"8.8.8.0", func(c string) bool { return c == "US" }, "US"},                     // Google DNS, truncated
		{"::ffff:8.8.8.0", func(c string) bool { return c == "US" }, "US"},              // same, dual-stack form
		{"2001:4860:4860::", func(c string) bool { return c == "US" }, "US"},            // Google DNS v6
		{"193.0.0.0", func(c string) bool { return europe[c] }, "a European code"},      // RIPE NCC, Amsterdam
		{"2001:67c:2e8::", func(c string) bool { return europe[c] }, "a European code"}, // RIPE NCC
		{"127.0.0.1", func(c string) bool { return c == "" }, `""`},
	}
	for _, tt := range tests {
		got := d.Country(netip.MustParseAddr(tt.addr))
		t.Logf("%s -> %q", tt.addr, got)
		if !tt.ok(got) {
			t.Errorf("Country(%s) = %q, want %s", tt.addr, got, tt.want)
		}
	}
}

func BenchmarkCountry(b *testing.B) {
	for _, bc := range []struct {
		name, path string
		addr       netip.Addr
	}{
		{"geoip2/v4", geoip2DB(b), netip.MustParseAddr("203.0.113.0")},
		{"geoip2/v6", geoip2DB(b), netip.MustParseAddr("2001:db8:1::")},
		{"flat/v4", flatDB(b), netip.MustParseAddr("203.0.113.0")},
		{"flat/v6", flatDB(b), netip.MustParseAddr("2001:db8:1::")},
		{"flat/miss", flatDB(b), netip.MustParseAddr("8.8.8.0")},
		{"real", os.Getenv("TURF_GEOIP_DB"), netip.MustParseAddr("8.8.8.0")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if bc.path == "" {
				b.Skip("TURF_GEOIP_DB is not set")
			}
			d, err := Open(bc.path)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			b.ReportAllocs()
			for b.Loop() {
				d.Country(bc.addr)
			}
		})
	}
}
