package sink

import (
	"encoding/binary"
	"errors"
	"fmt"
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
	Browser         string
	BrowserVersion  string
	OS              string
	OSVersion       string
	Device          string
	IPPrefix        string // the truncated network, e.g. "203.0.113.0/24"; never a full address
	PropKeys        []string
	PropValues      []string
	RevenueMicros   int64
	RevenueCurrency string
	Interactive     bool
}

// batchColumns holds a batch column by column, in the order of schema.EventColumns:
// the insert then appends one slice per column instead of boxing 28 values
// per row, which was most of what the sink allocated.
type batchColumns struct {
	strs        [22][]string // the String columns, by position in strCols
	ts          []time.Time
	visitorID   []uint64
	propKeys    [][]string
	propValues  [][]string
	revenue     []int64
	interactive []uint8
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
	c := &batchColumns{ts: make([]time.Time, 0, n), visitorID: make([]uint64, 0, n), propKeys: make([][]string, 0, n),
		propValues: make([][]string, 0, n), revenue: make([]int64, 0, n), interactive: make([]uint8, 0, n)}
	for i := range c.strs {
		c.strs[i] = make([]string, 0, n)
	}
	return c
}

func (c *batchColumns) add(e *Event, batchID string) {
	for i, v := range [len(c.strs)]string{e.Site, e.Name, e.Hostname, e.Pathname, e.ReferrerHost, e.ReferrerPath,
		e.Source, e.Channel, e.UTMSource, e.UTMMedium, e.UTMCampaign, e.UTMContent, e.UTMTerm, e.Country,
		e.Browser, e.BrowserVersion, e.OS, e.OSVersion, e.Device, e.IPPrefix, e.RevenueCurrency, batchID} {
		c.strs[i] = append(c.strs[i], v)
	}
	keys, values := e.PropKeys, e.PropValues
	if keys == nil {
		keys, values = []string{}, []string{}
	}
	var interactive uint8
	if e.Interactive {
		interactive = 1
	}
	c.ts = append(c.ts, e.TS)
	c.visitorID = append(c.visitorID, e.VisitorID)
	c.propKeys = append(c.propKeys, keys)
	c.propValues = append(c.propValues, values)
	c.revenue = append(c.revenue, e.RevenueMicros)
	c.interactive = append(c.interactive, interactive)
}

// values lists the columns in the order of schema.EventColumns.
func (c *batchColumns) values() []any {
	s := c.strs
	return []any{s[cSite], c.ts, s[cName], c.visitorID, s[cHostname], s[cPathname], s[cReferrerHost], s[cReferrerPath],
		s[cSource], s[cChannel], s[cUTMSource], s[cUTMMedium], s[cUTMCampaign], s[cUTMContent], s[cUTMTerm], s[cCountry],
		s[cBrowser], s[cBrowserVersion], s[cOS], s[cOSVersion], s[cDevice], s[cIPPrefix], c.propKeys, c.propValues,
		c.revenue, s[cRevenueCurrency], c.interactive, s[cBatchID]}
}

// Spool records hold one event each, in this binary layout (version 1):
// a version byte, then every field in Event's order, strings and lists as
// uvarint length + bytes, the time as varint seconds + uvarint nanoseconds,
// the visitor id as 8 little-endian bytes. It is private to turf: a spool is
// read by the same build that wrote it, or a later one that still knows
// version 1.
const recordVersion = 1

func (e *Event) encode(b []byte) []byte {
	b = append(b, recordVersion)
	b = appendString(b, e.Site)
	b = binary.AppendVarint(b, e.TS.Unix())
	b = binary.AppendUvarint(b, uint64(e.TS.Nanosecond()))
	b = appendString(b, e.Name)
	b = binary.LittleEndian.AppendUint64(b, e.VisitorID)
	for _, s := range [...]string{e.Hostname, e.Pathname, e.ReferrerHost, e.ReferrerPath, e.Source, e.Channel,
		e.UTMSource, e.UTMMedium, e.UTMCampaign, e.UTMContent, e.UTMTerm, e.Country, e.Browser,
		e.BrowserVersion, e.OS, e.OSVersion, e.Device, e.IPPrefix} {
		b = appendString(b, s)
	}
	b = appendStrings(b, e.PropKeys)
	b = appendStrings(b, e.PropValues)
	b = binary.AppendVarint(b, e.RevenueMicros)
	b = appendString(b, e.RevenueCurrency)
	if e.Interactive {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

// decodeEvent reads a record written by encode. The strings share one
// allocation (a copy of rec), so rec may be reused afterwards.
func decodeEvent(rec []byte) (Event, error) {
	if len(rec) == 0 || rec[0] != recordVersion {
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
		&e.BrowserVersion, &e.OS, &e.OSVersion, &e.Device, &e.IPPrefix} {
		*p = d.string()
	}
	e.PropKeys = d.strings()
	e.PropValues = d.strings()
	e.RevenueMicros = d.varint()
	e.RevenueCurrency = d.string()
	e.Interactive = d.byte() == 1
	if d.err != nil {
		return Event{}, d.err
	}
	if d.off != len(d.all) {
		return Event{}, fmt.Errorf("spool record has %d trailing bytes", len(d.all)-d.off)
	}
	if nsec >= 1e9 || len(e.PropKeys) != len(e.PropValues) {
		return Event{}, errors.New("spool record holds an impossible event")
	}
	return e, nil
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

func (d *decoder) strings() []string {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.all)-d.off) { // each string takes at least a byte
		d.err = errShort
		return nil
	}
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.string()
	}
	return ss
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
