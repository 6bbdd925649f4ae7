package geo

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"turf/internal/citytest"
)

func cityRec(region, city string) mmdbtype.Map {
	m := mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String("NL")},
		"location": mmdbtype.Map{"latitude": mmdbtype.Float64(52.37), "longitude": mmdbtype.Float64(4.89)},
		"postal":   mmdbtype.Map{"code": mmdbtype.String("1012")}}
	if city != "" {
		m["city"] = mmdbtype.Map{"geoname_id": mmdbtype.Uint32(2759794), "names": mmdbtype.Map{"en": mmdbtype.String(city), "nl": mmdbtype.String(city + " (nl)")}}
	}
	if region != "" {
		m["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"iso_code": mmdbtype.String("NH"), "names": mmdbtype.Map{"en": mmdbtype.String(region)}}}
	}
	return m
}

func flatCityRec(region, city string) mmdbtype.Map {
	return mmdbtype.Map{"city": mmdbtype.String(city), "state1": mmdbtype.String(region), "state2": mmdbtype.String("x"),
		"country_code": mmdbtype.String("NL"), "postcode": mmdbtype.String("1012"), "latitude": mmdbtype.Float32(52.37)}
}

func TestCityLayouts(t *testing.T) {
	geoip2City := writeDB(t, mmdbwriter.Options{DatabaseType: "GeoLite2-City"}, map[string]mmdbtype.DataType{
		"203.0.113.0/24":  cityRec("North Holland", "Amsterdam"),
		"198.51.100.0/24": cityRec("Utrecht", ""),     // region only
		"192.0.2.0/24":    cityRec("", ""),            // country only
		"2001:db8::/32":   cityRec("Zeeland", "Goes"), // v6
	})
	dbip := writeDB(t, mmdbwriter.Options{DatabaseType: "DBIP-City-Lite"}, map[string]mmdbtype.DataType{
		"203.0.113.0/24": cityRec("Gelderland", "Arnhem"),
	})
	flat4 := writeDB(t, mmdbwriter.Options{DatabaseType: "city", IPVersion: 4, RecordSize: 24}, map[string]mmdbtype.DataType{
		"203.0.113.0/24":  flatCityRec("North Holland", "Amsterdam"),
		"198.51.100.0/24": flatCityRec("", ""),
	})
	flat6 := writeDB(t, mmdbwriter.Options{DatabaseType: "city"}, map[string]mmdbtype.DataType{
		"2001:db8::/32": flatCityRec("Zeeland", "Goes"),
	})
	tests := []struct {
		name         string
		paths        []string
		addr         string
		region, city string
	}{
		{"geoip2 city", []string{geoip2City}, "203.0.113.0", "North Holland", "Amsterdam"},
		{"geoip2 region only", []string{geoip2City}, "198.51.100.7", "Utrecht", NotSet},
		{"geoip2 country only", []string{geoip2City}, "192.0.2.0", NotSet, NotSet},
		{"geoip2 v6", []string{geoip2City}, "2001:db8:1::", "Zeeland", "Goes"},
		{"geoip2 dual-stack form", []string{geoip2City}, "::ffff:203.0.113.0", "North Holland", "Amsterdam"},
		{"geoip2 miss", []string{geoip2City}, "8.8.8.0", NotSet, NotSet},
		{"db-ip city lite", []string{dbip}, "203.0.113.0", "Gelderland", "Arnhem"},
		{"flat halves, v4", []string{flat4, flat6}, "203.0.113.0", "North Holland", "Amsterdam"},
		{"flat halves, v6 skips the v4 half", []string{flat4, flat6}, "2001:db8:1::", "Zeeland", "Goes"},
		{"flat empty names", []string{flat4, flat6}, "198.51.100.0", NotSet, NotSet},
		{"invalid address", []string{geoip2City}, "", NotSet, NotSet},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := OpenCity(tc.paths...)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			var a netip.Addr
			if tc.addr != "" {
				a = netip.MustParseAddr(tc.addr)
			}
			if r, c := d.Location(a); r != tc.region || c != tc.city {
				t.Errorf("Location(%s) = %q, %q; want %q, %q", tc.addr, r, c, tc.region, tc.city)
			}
		})
	}
	var nilDB *CityDB
	if r, c := nilDB.Location(netip.MustParseAddr("203.0.113.0")); r != NotSet || c != NotSet {
		t.Errorf("nil CityDB: %q %q", r, c)
	}
}

func TestCityRefusesCountryDatabases(t *testing.T) {
	for name, path := range map[string]string{"geoip2 country": geoip2DB(t), "flat country": flatDB(t)} {
		_, err := OpenCity(path)
		if err == nil || !strings.Contains(err.Error(), "--geoip-db") {
			t.Errorf("%s: %v, want a refusal pointing at --geoip-db", name, err)
		}
	}
}

// TestRealCityDatabase reads ip-location-db's GeoLite2 city files (package
// citytest fetches the pinned npm package) with truncated addresses, as
// the collector looks them up.
func TestRealCityDatabase(t *testing.T) {
	d, err := OpenCity(citytest.Paths(t)...)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Layout() != LayoutCityState+", "+LayoutCityState {
		t.Errorf("layout %q", d.Layout())
	}
	tests := []struct{ addr, region, city string }{
		{"145.100.0.0", "North Holland", "Amsterdam"},      // SURF, a /24 as the collector keeps it
		{"81.2.69.0", "England", "Bracknell"},              // MaxMind's own test range
		{"2001:610::", "North Brabant", "Roosendaal"},      // SURF v6, a /48
		{"2a00:1450:4001::", "Hesse", "Frankfurt am Main"}, // Google v6
		{"8.8.8.0", NotSet, NotSet},                        // country only
		{"127.0.0.0", NotSet, NotSet},
	}
	for _, tc := range tests {
		if r, c := d.Location(netip.MustParseAddr(tc.addr)); r != tc.region || c != tc.city {
			t.Errorf("Location(%s) = %q, %q; want %q, %q", tc.addr, r, c, tc.region, tc.city)
		}
	}
}
