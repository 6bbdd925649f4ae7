package collector_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"turf/internal/citytest"
	"turf/internal/turftest"
)

func sendBeacon(t *testing.T, srv *turftest.Server, body, peer, at string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+"/api/event", strings.NewReader(body))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("User-Agent", uas[0].ua)
	req.Header.Set("X-Turf-Test-Peer", peer)
	if at != "" {
		req.Header.Set("X-Turf-Test-Time", at)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Engagement beacons as Plausible's tracker sends them land in the
// engagements table, with the visitor id of the page view they follow,
// and never in the events table: they are no events, page views or
// interactions.
func TestEngagementBeaconsAreNotEvents(t *testing.T) {
	srv := turftest.Start(t, "example.com")
	const peer = "198.51.100.23"
	pv := `{"n":"pageview","u":"https://example.com/blog/post","d":"example.com","r":null,"v":25}`
	for i, c := range []struct {
		body   string
		status int
	}{
		{pv, 202},
		{`{"n":"engagement","sd":35,"d":"example.com","u":"https://example.com/blog/post","p":{},"e":4210,"v":25}`, 202},
		{`{"n":"engagement","sd":"80","d":"example.com","u":"https://example.com/blog/post","e":"1000"}`, 202},
		{`{"n":"engagement","sd":null,"d":"example.com","u":"https://example.com/blog/post"}`, 400}, // neither field
		{`{"n":"engagement","sd":40,"d":"not-a-site.example","u":"https://example.com/x","e":1}`, 400},
	} {
		if got := sendBeacon(t, srv, c.body, peer, ""); got != c.status {
			t.Errorf("beacon %d: status %d, want %d", i, got, c.status)
		}
	}
	evs := srv.Events(t, "")
	if len(evs) != 1 || evs[0]["name"] != "pageview" {
		t.Fatalf("events table: %v, want the page view only", evs)
	}
	rows, err := srv.Conn.Query(t.Context(), "SELECT site, hostname, pathname, scroll_depth, engagement_ms, toString(visitor_id) FROM "+srv.DB+".engagements ORDER BY engagement_ms DESC")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var site, host, path, vid string
		var sd uint8
		var ms uint32
		if err := rows.Scan(&site, &host, &path, &sd, &ms, &vid); err != nil {
			t.Fatal(err)
		}
		if vid != evs[0]["visitor_id"] {
			t.Errorf("engagement visitor %s, page view's %s", vid, evs[0]["visitor_id"])
		}
		got = append(got, fmt.Sprintf("%s %s %s %d %d", site, host, path, sd, ms))
	}
	want := "example.com example.com /blog/post 35 4210|example.com example.com /blog/post 80 1000"
	if strings.Join(got, "|") != want {
		t.Errorf("engagements:\n got %s\nwant %s", strings.Join(got, "|"), want)
	}
	m := srv.Metrics(t)
	for _, line := range []string{"turf_engagements_accepted_total 2", "turf_events_accepted_total 1", `turf_events_inserted_total{table="engagements"} 2`} {
		if !strings.Contains(m, line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
}

// With a real city database the events carry the region and city of the
// visitor's truncated network; without one both are "(not set)".
func TestRegionAndCity(t *testing.T) {
	city := turftest.StartWith(t, turftest.Options{GeoIPCityDB: citytest.Paths(t)}, "example.com")
	plain := turftest.Start(t, "example.com")
	for _, c := range []struct {
		peer, region, city string
	}{
		{"145.100.0.77", "North Holland", "Amsterdam"},
		{"2001:610:0:800d::1", "North Brabant", "Roosendaal"},
		{"8.8.8.8", "(not set)", "(not set)"}, // the database knows the country only
	} {
		for _, srv := range []*turftest.Server{city, plain} {
			path := "/from/" + strings.ReplaceAll(c.peer, ":", "_")
			body := `{"n":"pageview","u":"https://example.com` + path + `","d":"example.com"}`
			if got := sendBeacon(t, srv, body, c.peer, ""); got != 202 {
				t.Fatalf("status %d", got)
			}
			evs := srv.Events(t, "pathname = ?", path)
			wantR, wantC := c.region, c.city
			if srv == plain {
				wantR, wantC = "(not set)", "(not set)"
			}
			if len(evs) != 1 || evs[0]["region"] != wantR || evs[0]["city"] != wantC {
				t.Errorf("%s: %v, want region %q city %q", c.peer, evs, wantR, wantC)
			}
		}
	}
}
