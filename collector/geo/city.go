package geo

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"
)

// NotSet is the region and city of an address no city database places,
// as Plausible labels it.
const NotSet = "(not set)"

// Layouts of city databases, as CityDB.Layout names them.
const (
	// LayoutCityState is ip-location-db's flat city records:
	// {"city":"Amsterdam","state1":"North Holland","country_code":"NL",...}.
	LayoutCityState = "city/state1"
)

// CityDB answers region and city lookups from one or more city .mmdb files:
// MaxMind's GeoIP2/GeoLite2 City and DB-IP's City Lite (the GeoIP2 layout:
// city.names.en and subdivisions[0].names.en), or ip-location-db's flat
// city files, which come as an IPv4 and an IPv6 half. Only the names of the
// region and the city are read, never a postcode or coordinates: turf
// stores nothing finer than a city.
//
// A nil *CityDB is valid and places nobody: Location answers NotSet.
type CityDB struct {
	files []*cityFile
}

type cityFile struct {
	path     string
	layout   string
	geoip2   *geoip2.Reader
	flat     *maxminddb.Reader
	ipv4Only bool
}

// OpenCity opens the city databases at paths (in lookup order) and checks
// that each has city records.
func OpenCity(paths ...string) (*CityDB, error) {
	db := &CityDB{}
	for _, p := range paths {
		f, err := openCityFile(p)
		if err != nil {
			db.Close()
			return nil, err
		}
		db.files = append(db.files, f)
	}
	if len(db.files) == 0 {
		return nil, errors.New("BUG: OpenCity without a path")
	}
	return db, nil
}

func openCityFile(path string) (*cityFile, error) {
	mm, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open city database %q: %w", path, err)
	}
	if len(mm.Metadata.Description) == 0 {
		mm.Metadata.Description = map[string]string{"en": "(none)"}
	}
	if err := mm.Verify(); err != nil {
		_ = mm.Close()
		return nil, fmt.Errorf("cannot open city database %q: file is corrupt: %w", path, err)
	}
	f := &cityFile{path: path, ipv4Only: mm.Metadata.IPVersion == 4}
	dbType := mm.Metadata.DatabaseType
	g, err := geoip2.Open(path)
	var unknown geoip2.UnknownDatabaseTypeError
	if errors.As(err, &unknown) {
		if g != nil {
			_ = g.Close()
		}
		f.flat = mm
		if err := f.detectFlat(); err != nil {
			_ = mm.Close()
			return nil, fmt.Errorf("cannot use city database %q of type %q: %w", path, dbType, err)
		}
		return f, nil
	}
	_ = mm.Close()
	if err != nil {
		if g != nil {
			_ = g.Close()
		}
		return nil, fmt.Errorf("cannot open city database %q: %w", path, err)
	}
	// A Country database given by mistake would open and place nobody;
	// every MaxMind and DB-IP type with cities says so in its name.
	if !strings.Contains(dbType, "City") && !strings.Contains(dbType, "Enterprise") {
		_ = g.Close()
		return nil, fmt.Errorf("cannot use city database %q: type %q has no city data (pass a Country database with --geoip-db)", path, dbType)
	}
	if _, err := g.City(netip.IPv4Unspecified()); err != nil {
		_ = g.Close()
		var invalid geoip2.InvalidMethodError
		if errors.As(err, &invalid) {
			return nil, fmt.Errorf("cannot use city database %q: type %q has no city data (pass a Country database with --geoip-db)", path, dbType)
		}
		return nil, fmt.Errorf("cannot open city database %q: test lookup failed: %w", path, err)
	}
	f.geoip2, f.layout = g, dbType
	return f, nil
}

// detectFlat checks that the first record has a city field.
func (f *cityFile) detectFlat() error {
	for res := range f.flat.Networks() {
		if err := res.Err(); err != nil {
			return fmt.Errorf("cannot read first record: %w", err)
		}
		var rec map[string]any
		if err := res.Decode(&rec); err != nil {
			return fmt.Errorf("cannot read first record: %w", err)
		}
		if _, ok := rec["city"]; !ok {
			return errors.New("records have no city field (a country database? pass it with --geoip-db)")
		}
		f.layout = LayoutCityState
		return nil
	}
	return errors.New("database has no records")
}

// Location returns the region and city names (English) of addr's network,
// NotSet for each the databases do not know. addr may be a truncated
// address, as the collector passes it.
func (d *CityDB) Location(addr netip.Addr) (region, city string) {
	region, city = NotSet, NotSet
	if d == nil || !addr.IsValid() {
		return
	}
	addr = addr.Unmap().WithZone("")
	for _, f := range d.files {
		if f.ipv4Only && addr.Is6() {
			continue
		}
		r, c, found := f.lookup(addr)
		if !found {
			continue
		}
		if r = clean(r); r != "" {
			region = r
		}
		if c = clean(c); c != "" {
			city = c
		}
		return
	}
	return
}

func (f *cityFile) lookup(addr netip.Addr) (region, city string, found bool) {
	if f.geoip2 != nil {
		rec, err := f.geoip2.City(addr)
		if err != nil || rec == nil || !rec.HasData() {
			return "", "", false
		}
		if len(rec.Subdivisions) > 0 {
			region = rec.Subdivisions[0].Names.English
		}
		return region, rec.City.Names.English, true
	}
	res := f.flat.Lookup(addr)
	if !res.Found() {
		return "", "", false
	}
	_ = res.DecodePath(&city, "city")
	_ = res.DecodePath(&region, "state1")
	return region, city, true
}

// clean drops names that are too long or carry control characters: a
// damaged file must not put garbage in the stats.
func clean(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 200 || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return ""
	}
	return s
}

// Layout names the layouts in use, for the start-up log.
func (d *CityDB) Layout() string {
	if d == nil {
		return ""
	}
	var out []string
	for _, f := range d.files {
		out = append(out, f.layout)
	}
	return strings.Join(out, ", ")
}

// Close unmaps the files. A nil CityDB is a no-op.
func (d *CityDB) Close() error {
	if d == nil {
		return nil
	}
	var errs []error
	for _, f := range d.files {
		if f.geoip2 != nil {
			errs = append(errs, f.geoip2.Close())
		} else if f.flat != nil {
			errs = append(errs, f.flat.Close())
		}
	}
	return errors.Join(errs...)
}
