package sink

import "time"

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

// columns is the explicit column list of the insert (18.16 needs one), in
// the order append passes the values.
const columns = "site, ts, name, visitor_id, hostname, pathname, referrer_host, referrer_path, source, channel, " +
	"utm_source, utm_medium, utm_campaign, utm_content, utm_term, country, browser, browser_version, os, os_version, " +
	"device, ip_prefix, props_keys, props_values, revenue_micros, revenue_currency, interactive, batch_id"

type appender interface{ Append(v ...any) error }

func (e *Event) append(b appender, batchID string) error {
	var interactive uint8
	if e.Interactive {
		interactive = 1
	}
	keys, values := e.PropKeys, e.PropValues
	if keys == nil {
		keys, values = []string{}, []string{}
	}
	return b.Append(e.Site, e.TS, e.Name, e.VisitorID, e.Hostname, e.Pathname, e.ReferrerHost, e.ReferrerPath,
		e.Source, e.Channel, e.UTMSource, e.UTMMedium, e.UTMCampaign, e.UTMContent, e.UTMTerm, e.Country,
		e.Browser, e.BrowserVersion, e.OS, e.OSVersion, e.Device, e.IPPrefix, keys, values,
		e.RevenueMicros, e.RevenueCurrency, interactive, batchID)
}
