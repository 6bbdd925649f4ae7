package query_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"turf/collector/beacon"
	"turf/collector/referrer"
	"turf/collector/useragent"
	"turf/internal/turftest"
	"turf/query"
	"turf/query/synth"
)

// TestOracleThroughCollector sends the oracle's synthetic traffic through
// the real collector over HTTP into a real ClickHouse, and checks every
// answer of the query API against figures computed in Go from the
// generator's own visits. The collector makes the visitor ids (a salted hash
// of site, address and User-Agent per UTC day), so every generated person
// has an address and User-Agent pair of its own; sources, channels, browsers,
// systems, devices and countries are what the generator says, which the
// first part of the test checks against the classifiers directly.
func TestOracleThroughCollector(t *testing.T) {
	cfg := query.OracleConfig
	visits := synth.Generate(cfg)
	events := synth.Events(visits)

	// The generator's truth is what the collector's classifiers say.
	pairs := map[[2]string]int{}
	for _, e := range events {
		ua := useragent.Classify(e.UserAgent)
		if got := [5]string{ua.Browser, ua.BrowserVersion, ua.OS, ua.OSVersion, ua.Device}; got != [5]string{e.Browser, e.BrowserVersion, e.OS, e.OSVersion, e.Device} || ua.Bot {
			t.Fatalf("User-Agent %q classifies as %v (bot %v), the generator says %s %s %s %s %s", e.UserAgent, got, ua.Bot, e.Browser, e.BrowserVersion, e.OS, e.OSVersion, e.Device)
		}
		page, err := beacon.ParsePage(e.URL, false)
		if err != nil {
			t.Fatalf("%s: %v", e.URL, err)
		}
		c := page.Campaign
		r := referrer.Classify(e.Referrer, page.Host, referrer.Campaign{Source: c.Source, Medium: c.Medium, Campaign: c.Campaign, Content: c.Content, Term: c.Term, ClickID: c.ClickID})
		if got := [4]string{r.Source, r.Channel, r.Host, r.Path}; got != [4]string{e.Source, e.Channel, e.ReferrerHost, e.ReferrerPath} {
			t.Fatalf("referrer %q on %s classifies as %q, the generator says %q %q %q %q", e.Referrer, e.URL, got, e.Source, e.Channel, e.ReferrerHost, e.ReferrerPath)
		}
		if got := [5]string{c.Source, c.Medium, c.Campaign, c.Content, c.Term}; got != [5]string{e.UTMSource, e.UTMMedium, e.UTMCampaign, e.UTMContent, e.UTMTerm} {
			t.Fatalf("campaign of %s is %q, the generator says %q %q %q %q %q", e.URL, got, e.UTMSource, e.UTMMedium, e.UTMCampaign, e.UTMContent, e.UTMTerm)
		}
		if page.Host != e.Hostname || page.Path != e.Pathname {
			t.Fatalf("page %s is %s %s, the generator says %s %s", e.URL, page.Host, page.Path, e.Hostname, e.Pathname)
		}
		// One address and User-Agent pair per person and site.
		k := [2]string{e.Site + " " + e.IP, e.UserAgent}
		if p, ok := pairs[k]; ok && p != e.Person {
			t.Fatalf("persons %d and %d share address and User-Agent %v", p, e.Person, k)
		}
		pairs[k] = e.Person
	}

	srv := turftest.StartWith(t, turftest.Options{GeoIPDB: writeGeoDB(t, cfg.Persons), GeoIPCityDB: []string{writeCityDB(t, cfg.Persons)}}, cfg.Sites...)
	// In time order, so that each day's salt is only needed while that day's
	// events are sent; a few senders at once. The engagement beacons go
	// with them, as the tracker sends them.
	slices.SortStableFunc(events, func(a, b synth.Event) int { return a.TS.Compare(b.TS) })
	for _, g := range synth.Engagements(visits) {
		events = append(events, synth.Event{Site: g.Site, Name: beacon.Engagement, TS: g.TS, URL: g.URL, IP: g.IP, UserAgent: g.UserAgent,
			Interactive: 1, PropsKeys: []string{"sd", "e"}, PropsValues: []string{fmt.Sprint(g.ScrollDepth), fmt.Sprint(g.EngagementMS)}})
	}
	nEvents := len(events) - len(synth.Engagements(visits))
	slices.SortStableFunc(events, func(a, b synth.Event) int { return a.TS.Compare(b.TS) })
	jobs := make(chan synth.Event)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for e := range jobs {
				if err := send(client, srv.URL, e); err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
				}
			}
		}()
	}
	for _, e := range events {
		jobs <- e
	}
	close(jobs)
	wg.Wait()
	if failed != nil {
		t.Fatal(failed)
	}
	srv.Flush(t)
	if got := len(srv.Events(t, "")); got != nEvents {
		t.Fatalf("%d events stored, %d sent", got, nEvents)
	}
	query.RunOracle(t, srv.Conn, srv.DB, visits)
}

// send posts one event as the tracker would, with the test-mode headers
// for its time and address.
func send(client *http.Client, base string, e synth.Event) error {
	body := map[string]any{"name": e.Name, "url": e.URL, "domain": e.Site}
	if e.Name == beacon.Engagement {
		// Carried in the props by the loop above: the tracker's sd and e.
		// A scroll depth of 255 is a beacon without one.
		if e.PropsValues[0] != "255" {
			body["sd"] = json.Number(e.PropsValues[0])
		}
		body["e"] = json.Number(e.PropsValues[1])
		e.PropsKeys = nil
	}
	if e.Referrer != "" {
		body["referrer"] = e.Referrer
	}
	if len(e.PropsKeys) > 0 {
		props := map[string]string{}
		for i, k := range e.PropsKeys {
			props[k] = e.PropsValues[i]
		}
		body["props"] = props
	}
	if e.RevenueMicros != 0 {
		body["revenue"] = map[string]string{"currency": e.RevenueCurrency, "amount": fmt.Sprintf("%d.%06d", e.RevenueMicros/1e6, e.RevenueMicros%1e6)}
	}
	if e.Interactive == 0 {
		body["interactive"] = false
	}
	b, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", base+"/api/event", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", e.UserAgent)
	req.Header.Set("X-Turf-Test-Time", e.TS.UTC().Format(time.RFC3339))
	req.Header.Set("X-Turf-Test-Peer", e.IP)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("event %s %s: status %d (%s)", e.Name, e.URL, resp.StatusCode, resp.Header.Get("X-Turf-Reject"))
	}
	return nil
}

// writeGeoDB maps each person's /24 to the generator's country for it.
func writeGeoDB(t *testing.T, persons int) string {
	t.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-Country", IPVersion: 6, RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for p := range persons {
		c := synth.PersonCountry(p)
		if c == "" {
			continue
		}
		_, n, err := net.ParseCIDR(synth.PersonIP(p) + "/24")
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Insert(n, mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(c)}}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "country.mmdb")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeCityDB maps each person's /24 to the generator's region and city for
// it, in the GeoLite2-City layout.
func writeCityDB(t *testing.T, persons int) string {
	t.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-City", IPVersion: 6, RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for p := range persons {
		region, city := synth.PersonPlace(p)
		rec := mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String("NL")}}
		if region != "" {
			rec["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(region)}}}
		}
		if city != "" {
			rec["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(city)}}
		}
		_, n, err := net.ParseCIDR(synth.PersonIP(p) + "/24")
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Insert(n, rec); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "city.mmdb")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
