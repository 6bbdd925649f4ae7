// Package geo maps a client address to a country code using a MaxMind DB
// (.mmdb) file.
//
// Two record layouts are understood:
//
//   - the GeoIP2 layout of MaxMind's and DB-IP's Country, City and Enterprise
//     databases, where the code sits at country.iso_code (read with
//     geoip2-golang, which knows which database types carry it);
//   - flat records such as {"country_code":"NL"}, as published by
//     ip-location-db (the project's free default) and others, read with
//     maxminddb-golang directly.
//
// The layout is chosen once, from the database metadata, when the file is
// opened; lookups never guess.
package geo

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"
)

// Layouts of databases that geoip2-golang does not know, named after the
// record path that holds the code. Layout reports them.
const (
	LayoutCountryCode = "country_code"     // {"country_code":"NL"}: ip-location-db, IPinfo Lite
	LayoutISOCode     = "country.iso_code" // GeoIP2-shaped records under a type name geoip2 does not list
)

// flatPaths are tried in order on the first record of an unknown database.
var flatPaths = []struct {
	layout string
	path   []any
}{
	{LayoutCountryCode, []any{"country_code"}},
	{LayoutISOCode, []any{"country", "iso_code"}},
}

// DB answers country lookups. It is safe for concurrent use, except that Close
// must not race with Country: the file is memory-mapped and unmapped by Close.
//
// A nil *DB is valid and knows no countries, so the collector can run without
// a database and call Country unconditionally.
type DB struct {
	layout string

	// Exactly one of these is set.
	geoip2 *geoip2.Reader
	flat   *maxminddb.Reader
	path   []any // where flat records keep the code

	// ipv4Only databases reject IPv6 lookups with an error that is formatted
	// (and so allocated) on every call; checking first keeps misses cheap.
	ipv4Only bool
}

// Open opens the database at path and picks the reader from its metadata.
//
// The whole file is verified before it is used, so a truncated or damaged
// download fails here, at start-up, with a clear error rather than producing
// empty lookups later.
func Open(path string) (*DB, error) {
	mm, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open geo database %q: %w", path, err)
	}
	// Verify insists on a description, which the format treats as optional
	// and ip-location-db leaves out; lookups never read it, so a placeholder
	// lets the structural checks (tree, pointers, data) run on such files.
	if len(mm.Metadata.Description) == 0 {
		mm.Metadata.Description = map[string]string{"en": "(none)"}
	}
	if err := mm.Verify(); err != nil {
		_ = mm.Close()
		return nil, fmt.Errorf("cannot open geo database %q: file is corrupt: %w", path, err)
	}
	dbType := mm.Metadata.DatabaseType
	ipv4Only := mm.Metadata.IPVersion == 4

	// geoip2 is the authority on which database types use its layout; asking
	// it avoids keeping a second list of MaxMind and DB-IP type names here.
	g, err := geoip2.Open(path)
	var unknown geoip2.UnknownDatabaseTypeError
	if errors.As(err, &unknown) {
		if g != nil {
			_ = g.Close() // geoip2 hands back an open reader even on refusal
		}
		d := &DB{flat: mm, ipv4Only: ipv4Only}
		if err := d.detectFlat(); err != nil {
			_ = mm.Close()
			return nil, fmt.Errorf("cannot use geo database %q of type %q: %w", path, dbType, err)
		}
		return d, nil
	}
	_ = mm.Close() // geoip2 maps the file itself from here on
	if err != nil {
		if g != nil {
			_ = g.Close()
		}
		return nil, fmt.Errorf("cannot open geo database %q: %w", path, err)
	}
	// Known types without countries (ASN, ISP, Domain...) are refused by
	// geoip2's Country, which is cheaper to ask than to enumerate.
	if _, err := g.Country(netip.IPv4Unspecified()); err != nil {
		_ = g.Close()
		var invalid geoip2.InvalidMethodError
		if errors.As(err, &invalid) {
			return nil, fmt.Errorf("cannot use geo database %q: type %q has no country data", path, dbType)
		}
		return nil, fmt.Errorf("cannot open geo database %q: test lookup failed: %w", path, err)
	}
	return &DB{layout: dbType, geoip2: g, ipv4Only: ipv4Only}, nil
}

// detectFlat finds which of flatPaths the records use by reading the first
// network that has data. Without it, an ASN or city-only file given by mistake
// would open fine and then silently answer "" for everyone.
func (d *DB) detectFlat() error {
	for res := range d.flat.Networks() {
		if err := res.Err(); err != nil {
			return fmt.Errorf("cannot read first record: %w", err)
		}
		for _, fp := range flatPaths {
			var code string
			if err := res.DecodePath(&code, fp.path...); err == nil && code != "" {
				d.layout, d.path = fp.layout, fp.path
				return nil
			}
		}
		return fmt.Errorf("records have neither country_code nor country.iso_code")
	}
	return errors.New("database has no records")
}

// Country returns the ISO 3166-1 alpha-2 code (upper-case) for addr, or ""
// when the database has no answer, addr is invalid or d is nil.
//
// addr may be an already anonymised address such as 203.0.113.0: lookups
// work on networks, and RIR allocations are far wider than the truncated bits.
func (d *DB) Country(addr netip.Addr) string {
	if d == nil || !addr.IsValid() {
		return ""
	}
	// ::ffff:a.b.c.d from a dual-stack listener is an IPv4 client; look it up
	// as one so it also works with IPv4-only files and trees without aliases.
	addr = addr.Unmap().WithZone("")
	if d.ipv4Only && addr.Is6() {
		return ""
	}
	if d.geoip2 != nil {
		rec, err := d.geoip2.Country(addr)
		if err != nil || rec == nil {
			return ""
		}
		// registered_country fills in where MaxMind leaves country empty
		// (anycast, satellite and some mobile ranges).
		if c := normalize(rec.Country.ISOCode); c != "" {
			return c
		}
		return normalize(rec.RegisteredCountry.ISOCode)
	}
	res := d.flat.Lookup(addr)
	if !res.Found() {
		return ""
	}
	var code string
	if err := res.DecodePath(&code, d.path...); err != nil {
		return ""
	}
	return normalize(code)
}

// Layout names the record layout in use, for the start-up log: the database
// type (e.g. "GeoIP2-Country", "GeoLite2-City") for files geoip2-golang
// knows, otherwise LayoutCountryCode or LayoutISOCode. A nil DB reports "".
func (d *DB) Layout() string {
	if d == nil {
		return ""
	}
	return d.layout
}

// Close unmaps the file. A nil DB is a no-op.
func (d *DB) Close() error {
	if d == nil {
		return nil
	}
	if d.geoip2 != nil {
		return d.geoip2.Close()
	}
	return d.flat.Close()
}

// normalize returns code upper-cased when it is two ASCII letters and ""
// otherwise, so a stray "ZZ-x" or empty value never reaches the stats.
// Already upper-case codes (the norm) are returned without allocating.
func normalize(code string) string {
	if len(code) != 2 {
		return ""
	}
	a, b := code[0], code[1]
	if 'A' <= a && a <= 'Z' && 'A' <= b && b <= 'Z' {
		return code
	}
	a, b = upper(a), upper(b)
	if a == 0 || b == 0 {
		return ""
	}
	return string([]byte{a, b})
}

func upper(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c
	case 'a' <= c && c <= 'z':
		return c - 'a' + 'A'
	}
	return 0
}
