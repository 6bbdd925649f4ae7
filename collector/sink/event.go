package sink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Event is one enriched, anonymised event as it is stored. Every string must
// be owned by the event (not alias a request buffer): events outlive the
// request that made them.
type Event struct {
	Site            string
	TS              time.Time
	Name            string
	VisitorID       uint64
	Hostname        string
	Pathname        string
	ReferrerHost    string
	ReferrerPath    string
	Source          string
	Channel         string
	UTMSource       string
	UTMMedium       string
	UTMCampaign     string
	UTMContent      string
	UTMTerm         string
	Country         string
	Region          string // "(not set)" when unknown, never finer than the city
	City            string
	Browser         string
	BrowserVersion  string
	OS              string
	OSVersion       string
	Device          string
	IPPrefix        netip.Prefix // the truncated network, e.g. 203.0.113.0/24; never a full address
	PropKeys        []string
	PropValues      []string
	RevenueMicros   int64
	RevenueCurrency string
	Interactive     bool
	// An engagement beacon's fields (sink of schema.Engagements): the
	// scroll depth 0..100, or 255 for none, and the engaged milliseconds.
	ScrollDepth  uint8
	EngagementMS uint32

	// ipPrefixText is IPPrefix as the record holds it, set by decodeEvent:
	// a slice of the record's one string, so the column costs no
	// allocation per row (the handler's side costs none either: encode
	// formats the prefix straight into the record).
	ipPrefixText string
}

// batchColumns holds a batch column by column, in the order of schema.EventColumns:
// the insert then appends one slice per column instead of boxing 28 values
// per row, which was most of what the sink allocated.
type batchColumns struct {
	strs        [24][]string // the String columns, by position in strCols
	ts          []time.Time
	visitorID   []uint64
	propKeys    [][]*string // see ptrs
	propValues  [][]*string
	revenue     []int64
	interactive []uint8
	ptrArena    []*string
}

// The String columns' positions in strs.
const (
	cSite = iota
	cName
	cHostname
	cPathname
	cReferrerHost
	cReferrerPath
	cSource
	cChannel
	cUTMSource
	cUTMMedium
	cUTMCampaign
	cUTMContent
	cUTMTerm
	cCountry
	cRegion
	cCity
	cBrowser
	cBrowserVersion
	cOS
	cOSVersion
	cDevice
	cIPPrefix
	cRevenueCurrency
	cBatchID
)

func newBatchColumns(n int) *batchColumns {
	c := &batchColumns{ts: make([]time.Time, 0, n), visitorID: make([]uint64, 0, n), propKeys: make([][]*string, 0, n),
		propValues: make([][]*string, 0, n), revenue: make([]int64, 0, n), interactive: make([]uint8, 0, n)}
	for i := range c.strs {
		c.strs[i] = make([]string, 0, n)
	}
	return c
}

// reset empties c for the next insert, keeping its slices: a batch's
// columns are some 500 bytes per event, which would otherwise be garbage
// after every insert. The strings they still point to are overwritten by
// the next batch, so at most one batch stays reachable.
func (c *batchColumns) reset() {
	for i := range c.strs {
		c.strs[i] = c.strs[i][:0]
	}
	c.ts, c.visitorID, c.propKeys, c.propValues = c.ts[:0], c.visitorID[:0], c.propKeys[:0], c.propValues[:0]
	c.revenue, c.interactive = c.revenue[:0], c.interactive[:0]
}

func (c *batchColumns) add(e *Event, batchID string) {
	for i, v := range [len(c.strs)]string{e.Site, e.Name, e.Hostname, e.Pathname, e.ReferrerHost, e.ReferrerPath,
		e.Source, e.Channel, e.UTMSource, e.UTMMedium, e.UTMCampaign, e.UTMContent, e.UTMTerm, e.Country,
		e.Region, e.City, e.Browser, e.BrowserVersion, e.OS, e.OSVersion, e.Device, e.ipPrefixText, e.RevenueCurrency, batchID} {
		c.strs[i] = append(c.strs[i], v)
	}
	var interactive uint8
	if e.Interactive {
		interactive = 1
	}
	c.ts = append(c.ts, e.TS)
	c.visitorID = append(c.visitorID, e.VisitorID)
	c.propKeys = append(c.propKeys, c.ptrs(e.PropKeys))
	c.propValues = append(c.propValues, c.ptrs(e.PropValues))
	c.revenue = append(c.revenue, e.RevenueMicros)
	c.interactive = append(c.interactive, interactive)
}

// ptrs points at ss's strings, from chunks shared by the batch. The Array
// columns are appended row by row as pointers (see appendColumn):
// clickhouse-go boxes a string element into an interface, which allocates,
// but not a *string, so a prop costs the insert no allocation per event.
func (c *batchColumns) ptrs(ss []string) []*string {
	if len(ss) == 0 {
		return nil
	}
	if cap(c.ptrArena)-len(c.ptrArena) < len(ss) {
		c.ptrArena = make([]*string, 0, max(1024, len(ss)))
	}
	n := len(c.ptrArena)
	c.ptrArena = c.ptrArena[:n+len(ss)]
	p := c.ptrArena[n : n+len(ss) : n+len(ss)]
	for i := range ss {
		p[i] = &ss[i]
	}
	return p
}

// values lists the columns in the order of schema.EventColumns.
func (c *batchColumns) values() []any {
	s := c.strs
	return []any{s[cSite], c.ts, s[cName], c.visitorID, s[cHostname], s[cPathname], s[cReferrerHost], s[cReferrerPath],
		s[cSource], s[cChannel], s[cUTMSource], s[cUTMMedium], s[cUTMCampaign], s[cUTMContent], s[cUTMTerm], s[cCountry],
		s[cRegion], s[cCity], s[cBrowser], s[cBrowserVersion], s[cOS], s[cOSVersion], s[cDevice], s[cIPPrefix], c.propKeys, c.propValues,
		c.revenue, s[cRevenueCurrency], c.interactive, s[cBatchID]}
}

// Spool records hold one event each, in this binary layout (version 2):
// a version byte, then every field in Event's order, strings and lists as
// uvarint length + bytes, the time as varint seconds + uvarint nanoseconds,
// the visitor id as 8 little-endian bytes; version 2 appends region, city,
// the scroll depth byte and the engaged time as a uvarint. It is private to
// turf: a spool is read by the same build that wrote it, or a later one
// that still knows its version (version 1 records, of builds before region
// and city, decode with those "(not set)").
const (
	recordVersion  = 2
	recordVersion1 = 1
)

func (e *Event) encode(b []byte) []byte {
	b = append(b, recordVersion)
	b = appendString(b, e.Site)
	b = binary.AppendVarint(b, e.TS.Unix())
	b = binary.AppendUvarint(b, uint64(e.TS.Nanosecond()))
	b = appendString(b, e.Name)
	b = binary.LittleEndian.AppendUint64(b, e.VisitorID)
	for _, s := range [...]string{e.Hostname, e.Pathname, e.ReferrerHost, e.ReferrerPath, e.Source, e.Channel,
		e.UTMSource, e.UTMMedium, e.UTMCampaign, e.UTMContent, e.UTMTerm, e.Country, e.Browser,
		e.BrowserVersion, e.OS, e.OSVersion, e.Device} {
		b = appendString(b, s)
	}
	b = appendPrefix(b, e.IPPrefix)
	b = appendStrings(b, e.PropKeys)
	b = appendStrings(b, e.PropValues)
	b = binary.AppendVarint(b, e.RevenueMicros)
	b = appendString(b, e.RevenueCurrency)
	if e.Interactive {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = appendString(b, e.Region)
	b = appendString(b, e.City)
	b = append(b, e.ScrollDepth)
	return binary.AppendUvarint(b, uint64(e.EngagementMS))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendPrefix appends p's text as a string (empty for the zero Prefix)
// without making the string: at most 43 bytes, so its length is one byte.
func appendPrefix(b []byte, p netip.Prefix) []byte {
	at := len(b)
	b = append(b, 0)
	b = p.AppendTo(b)
	b[at] = byte(len(b) - at - 1)
	return b
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

// decodeEvent reads a record written by encode. The strings share one
// allocation (a copy of rec), so rec may be reused afterwards; the prop
// lists come from chunks (nil: a slice of their own).
func decodeEvent(rec []byte, chunks *strChunks) (Event, error) {
	if len(rec) == 0 || rec[0] != recordVersion && rec[0] != recordVersion1 {
		return Event{}, fmt.Errorf("unknown spool record version (first byte %d of %d)", firstByte(rec), len(rec))
	}
	d := decoder{all: string(rec), off: 1}
	var e Event
	e.Site = d.string()
	sec, nsec := d.varint(), d.uvarint()
	e.TS = time.Unix(sec, int64(nsec)).UTC()
	e.Name = d.string()
	e.VisitorID = d.uint64()
	for _, p := range [...]*string{&e.Hostname, &e.Pathname, &e.ReferrerHost, &e.ReferrerPath, &e.Source, &e.Channel,
		&e.UTMSource, &e.UTMMedium, &e.UTMCampaign, &e.UTMContent, &e.UTMTerm, &e.Country, &e.Browser,
		&e.BrowserVersion, &e.OS, &e.OSVersion, &e.Device, &e.ipPrefixText} {
		*p = d.string()
	}
	if e.ipPrefixText != "" {
		if e.IPPrefix, d.err = netip.ParsePrefix(e.ipPrefixText); d.err != nil {
			return Event{}, errors.New("spool record holds an impossible network")
		}
	}
	e.PropKeys, e.PropValues = d.props(chunks)
	e.RevenueMicros = d.varint()
	e.RevenueCurrency = d.string()
	e.Interactive = d.byte() == 1
	if rec[0] == recordVersion1 {
		e.Region, e.City = "(not set)", "(not set)"
	} else {
		e.Region = d.string()
		e.City = d.string()
		e.ScrollDepth = d.byte()
		ms := d.uvarint()
		if ms > 1<<32-1 {
			return Event{}, errors.New("spool record holds an impossible event")
		}
		e.EngagementMS = uint32(ms)
	}
	if d.err != nil {
		return Event{}, d.err
	}
	if d.off != len(d.all) {
		return Event{}, fmt.Errorf("spool record has %d trailing bytes", len(d.all)-d.off)
	}
	if nsec >= 1e9 {
		return Event{}, errors.New("spool record holds an impossible event")
	}
	return e, nil
}

// strChunks hands out string slices from shared chunks: the prop lists of a
// batch's events cost one allocation per thousand strings instead of one
// per event. A chunk is never reused (events keep pointing into it); the
// collector frees it with the last of them.
type strChunks struct{ buf []string }

func (c *strChunks) take(n int) []string {
	if c == nil {
		return make([]string, n)
	}
	if cap(c.buf)-len(c.buf) < n {
		c.buf = make([]string, 0, max(1024, n))
	}
	at := len(c.buf)
	c.buf = c.buf[:at+n]
	return c.buf[at : at+n : at+n]
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

var errShort = errors.New("spool record is truncated")

type decoder struct {
	all string
	off int
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	// binary.Uvarint wants bytes; the header is at most 10 of them.
	var buf [binary.MaxVarintLen64]byte
	n := copy(buf[:], d.all[d.off:])
	v, k := binary.Uvarint(buf[:n])
	if k <= 0 {
		d.err = errShort
		return 0
	}
	d.off += k
	return v
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.all)-d.off) {
		d.err = errShort
		return ""
	}
	s := d.all[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}

// props reads the prop keys and then the values, two lists of one length,
// into one slice.
func (d *decoder) props(chunks *strChunks) (keys, values []string) {
	n := d.uvarint()
	if d.err != nil || n == 0 {
		if d.uvarint() != 0 && d.err == nil {
			d.err = errors.New("spool record holds values without keys")
		}
		return nil, nil
	}
	if n > uint64(len(d.all)-d.off) { // each string takes at least a byte
		d.err = errShort
		return nil, nil
	}
	kv := chunks.take(2 * int(n))
	for i := range n {
		kv[i] = d.string()
	}
	if m := d.uvarint(); m != n && d.err == nil {
		d.err = errors.New("spool record holds props of unequal lengths")
	}
	for i := range n {
		kv[n+i] = d.string()
	}
	return kv[:n:n], kv[n:]
}

func (d *decoder) uint64() uint64 {
	if d.err != nil || len(d.all)-d.off < 8 {
		d.err = errShort
		return 0
	}
	v := binary.LittleEndian.Uint64([]byte(d.all[d.off : d.off+8]))
	d.off += 8
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil || d.off >= len(d.all) {
		d.err = errShort
		return 0
	}
	b := d.all[d.off]
	d.off++
	return b
}

// engagementColumns holds a batch of engagement beacons in the order of
// schema.EngagementColumns.
type engagementColumns struct {
	site, hostname, pathname, batchID []string
	ts                                []time.Time
	visitorID                         []uint64
	scroll                            []uint8
	ms                                []uint32
}

func (c *engagementColumns) add(e *Event, batchID string) {
	c.site = append(c.site, e.Site)
	c.ts = append(c.ts, e.TS)
	c.visitorID = append(c.visitorID, e.VisitorID)
	c.hostname = append(c.hostname, e.Hostname)
	c.pathname = append(c.pathname, e.Pathname)
	c.scroll = append(c.scroll, e.ScrollDepth)
	c.ms = append(c.ms, e.EngagementMS)
	c.batchID = append(c.batchID, batchID)
}

func (c *engagementColumns) values() []any {
	return []any{c.site, c.ts, c.visitorID, c.hostname, c.pathname, c.scroll, c.ms, c.batchID}
}
