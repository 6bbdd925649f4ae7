package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"turf/internal/chtest"
	"turf/internal/linksign"
	"turf/internal/turftest"
	"turf/query"
	"turf/schema"
)

const (
	chromeUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	appleUA  = "Mozilla/5.0"
	gmailUA  = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
	ppUA     = "Mozilla/5.0 (compatible; Proofpoint URL Defense)"
	// The reader's full address: its last byte must never be stored.
	readerIP = "198.51.100.77"
)

// TestNewsletterEndToEnd makes a link and a pixel with the CLI's code path
// against a running turf on a real ClickHouse, follows them as people and
// as machines, pauses ClickHouse, and looks at what was stored.
func TestNewsletterEndToEnd(t *testing.T) {
	s := turftest.Start(t, "example.com")
	dsn := "clickhouse://" + chtest.Server(t) + "/" + s.DB
	cli := func(args ...string) (string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		if err := runLink(append(args, "--clickhouse", dsn, "--public-url", s.URL+"/"), &out, &errb); err != nil {
			t.Fatalf("turf link %v: %v", args, err)
		}
		return strings.TrimSpace(out.String()), errb.String()
	}
	link, warn := cli("create", "--site", "example.com", "--campaign", "nieuwsbrief-2026-12", "--url", "https://example.com/huren?email=jan%40example.nl&mc_eid=rcpt4711x")
	if !strings.Contains(warn, "email") || !strings.Contains(warn, "mc_eid") {
		t.Errorf("no warning about the recipient parameters: %q", warn)
	}
	pixel, _ := cli("pixel", "--site", "example.com", "--campaign", "nieuwsbrief-2026-12")
	if !strings.HasPrefix(link, s.URL+"/l/") || !strings.HasPrefix(pixel, s.URL+"/o/") || !strings.HasSuffix(pixel, ".gif") {
		t.Fatalf("link %q, pixel %q", link, pixel)
	}
	share, _ := cli("create", "--site", "example.com", "--campaign", "nieuwsbrief-2026-12", "--url", "https://www.facebook.com/woningcorporatie")

	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	type result struct {
		status   int
		location string
		body     []byte
		hdr      http.Header
		took     time.Duration
	}
	var requests int
	statuses := map[int]int{}
	do := func(method, u, ua string, hdr ...string) result {
		t.Helper()
		req, _ := http.NewRequest(method, u, nil)
		req.Header.Set("User-Agent", ua)
		req.Header.Set("X-Turf-Test-Peer", readerIP)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, u, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		requests++
		statuses[resp.StatusCode]++
		return result{resp.StatusCode, resp.Header.Get("Location"), b, resp.Header, time.Since(start)}
	}
	want := "https://example.com/huren?utm_source=newsletter&utm_medium=email&utm_campaign=nieuwsbrief-2026-12"

	// A person clicks; a newsletter tool appended a recipient id, which is ignored.
	r := do("GET", link+"?email=jan%40example.nl&uid=rcpt4711x", chromeUA)
	if r.status != http.StatusFound || r.location != want {
		t.Fatalf("human click: %d, Location %q; want 302 %q", r.status, r.location, want)
	}
	// Tampered and forged links: 404 and never a Location.
	tampered := link[:len(link)-3] + flip(link[len(link)-3:])
	forged := s.URL + linksign.Path(linksign.Sign(&linksign.Key{9}, linksign.Link{Kind: linksign.Click, Site: "example.com", Campaign: "x", URL: "https://evil.example/"}), linksign.Click)
	for _, u := range []string{tampered, forged, s.URL + "/l/", s.URL + "/l/garbage"} {
		r := do("GET", u, chromeUA)
		if r.status != http.StatusNotFound || r.location != "" {
			t.Errorf("GET %s: %d, Location %q; want 404 and none", u, r.status, r.location)
		}
	}
	// A pixel given a click token (and back) is no link either.
	if r := do("GET", s.URL+"/o/"+strings.TrimPrefix(link, s.URL+"/l/")+".gif", chromeUA); r.status != http.StatusNotFound {
		t.Errorf("click token as pixel: %d", r.status)
	}
	// Machines: the redirect still works for scanners.
	for _, m := range []struct{ method, ua string }{{"GET", ppUA}, {"HEAD", chromeUA}} {
		r := do(m.method, link, m.ua)
		if r.status != http.StatusFound || r.location != want {
			t.Errorf("%s %s: %d %q", m.method, m.ua, r.status, r.location)
		}
	}
	// Opens: Apple's and Gmail's proxies, and a person.
	for _, ua := range []string{appleUA, gmailUA, chromeUA} {
		r := do("GET", pixel, ua)
		if r.status != http.StatusOK || r.hdr.Get("Content-Type") != "image/gif" || !bytes.HasPrefix(r.body, []byte("GIF89a")) || !strings.Contains(r.hdr.Get("Cache-Control"), "no-cache") {
			t.Errorf("pixel for %q: %d %s %q", ua, r.status, r.hdr.Get("Content-Type"), r.hdr.Get("Cache-Control"))
		}
	}
	// The person's page view after the click, and a share from that page.
	pv := `{"name":"pageview","url":"` + want + `","domain":"example.com"}`
	if r := post(t, s.URL+"/api/event", pv); r != http.StatusAccepted {
		t.Fatalf("pageview: %d", r)
	}
	out := `{"name":"Outbound Link: Click","url":"` + want + `","domain":"example.com","props":{"url":"https://www.facebook.com/sharer/sharer.php?u=https%3A%2F%2Fexample.com%2Fhuren"}}`
	if r := post(t, s.URL+"/api/event", out); r != http.StatusAccepted {
		t.Fatalf("outbound: %d", r)
	}
	if r := do("GET", share, chromeUA); r.status != http.StatusFound || r.location != "https://www.facebook.com/woningcorporatie" {
		t.Errorf("link to another site changed: %d %q", r.status, r.location)
	}

	// ClickHouse paused: the redirect still answers at once; the event lands after.
	if srv := chtest.Managed(t); srv != nil {
		s.Flush(t)
		if err := srv.Pause(); err != nil {
			t.Fatal(err)
		}
		r := do("GET", link, chromeUA)
		if err := srv.Resume(); err != nil {
			t.Fatal(err)
		}
		if r.status != http.StatusFound || r.location != want || r.took > time.Second {
			t.Errorf("click with ClickHouse paused: %d %q in %s", r.status, r.location, r.took)
		}
		t.Logf("click with ClickHouse paused answered %d in %s", r.status, r.took.Round(time.Millisecond))
	} else {
		t.Log("external ClickHouse (TURF_TEST_CLICKHOUSE): the pause step is skipped")
	}

	// What landed.
	count := func(where string) uint64 {
		t.Helper()
		s.Flush(t)
		var n uint64
		q := "SELECT count() FROM " + schema.Table(s.DB, schema.Events) + " WHERE " + where
		if err := s.Conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	human, machine := "NOT has(props_keys, 'machine')", "has(props_keys, 'machine')"
	clickH := count("name = 'Newsletter Click' AND " + human + " AND has(props_values, 'https://example.com/huren')")
	clickM := count("name = 'Newsletter Click' AND " + machine)
	openH := count("name = 'Newsletter Open' AND " + human)
	openM := count("name = 'Newsletter Open' AND " + machine)
	wantClickH := uint64(2)
	if chtest.Managed(t) == nil {
		wantClickH = 1
	}
	if clickH != wantClickH || clickM != 2 || openH != 1 || openM != 2 {
		t.Errorf("clicks human/machine %d/%d (want %d/2), opens %d/%d (want 1/2)", clickH, clickM, wantClickH, openH, openM)
	}
	for _, m := range []string{"proofpoint", "head", "apple-mpp", "gmail-proxy"} {
		if n := count("props_values[indexOf(props_keys, 'machine')] = '" + m + "'"); n != 1 {
			t.Errorf("machine %s: %d events, want 1", m, n)
		}
	}
	if n := count("name = 'Newsletter Click' AND props_values[indexOf(props_keys, 'campaign')] = 'nieuwsbrief-2026-12' AND channel = 'Email'"); n < 3 {
		t.Errorf("clicks with campaign prop in Email: %d", n)
	}
	if n := count("name = 'Newsletter Click' AND " + human + " AND hostname = 'example.com' AND pathname = '/huren'"); n != wantClickH {
		t.Errorf("human clicks stored on the destination page /huren: %d, want %d", n, wantClickH)
	}
	if n := count("name = 'Newsletter Open' AND pathname = '/o/'"); n != 3 {
		t.Errorf("opens stored on /o/: %d, want 3", n)
	}
	if n := count("name = 'pageview' AND channel = 'Email' AND source = 'Newsletter' AND utm_campaign = 'nieuwsbrief-2026-12'"); n != 1 {
		t.Errorf("follow-up page view in the Email channel: %d, want 1", n)
	}
	if n := count("name = 'Outbound Link: Click' AND props_values[indexOf(props_keys, 'network')] = 'Facebook' AND props_values[indexOf(props_keys, 'share')] = 'example.com/huren'"); n != 1 {
		t.Errorf("outbound share to Facebook: %d, want 1", n)
	}
	var total uint64
	_ = s.Conn.QueryRow(context.Background(), "SELECT count() FROM "+schema.Table(s.DB, schema.Events)).Scan(&total)

	// No recipient id, no full address, anywhere in the database.
	dump := (&chtest.DB{Conn: s.Conn, Name: s.DB}).Dump(t)
	for _, secret := range []string{readerIP, "jan@example.nl", "jan%40example.nl", "rcpt4711x", "mc_eid", "uid="} {
		if bytes.Contains(dump, []byte(secret)) {
			t.Errorf("the database holds %q", secret)
		}
	}

	// The Stats API: people only (machines filtered by their prop), and the
	// breakdowns by network and share.
	tok, _, err := query.CreateKey(context.Background(), s.Conn, s.DB, []string{"example.com"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	api := func(body string) string {
		t.Helper()
		req, _ := http.NewRequest("POST", s.URL+"/api/v2/query", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", body, resp.StatusCode, b)
		}
		var v struct{ Results []json.RawMessage }
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return compact(v.Results)
	}
	people := api(`{"site_id":"example.com","metrics":["visitors","events"],"date_range":"day","filters":[["is","event:name",["Newsletter Open"]],["is","event:props:machine",["(none)"]]]}`)
	machines := api(`{"site_id":"example.com","metrics":["events"],"date_range":"day","dimensions":["event:props:machine"],"filters":[["is_not","event:props:machine",["(none)"]]]}`)
	networks := api(`{"site_id":"example.com","metrics":["events"],"date_range":"day","dimensions":["event:props:network","event:props:share"],"filters":[["is","event:name",["Outbound Link: Click"]]]}`)
	entries := api(`{"site_id":"example.com","metrics":["visits"],"date_range":"day","dimensions":["visit:entry_page"],"filters":[["is","visit:channel",["Email"]]]}`)
	if !strings.Contains(entries, `"/huren"`) {
		t.Errorf("entry pages of Email visits: %s, want /huren among them", entries)
	}
	t.Logf("API: Email visits by entry page %s", entries)
	t.Logf("API: human opens %s; machine events %s; outbound by network/share %s", people, machines, networks)
	if !strings.Contains(networks, `"Facebook","example.com/huren"`) {
		t.Errorf("breakdown by network/share: %s", networks)
	}
	if !strings.Contains(machines, `"apple-mpp"`) || !strings.Contains(machines, `"proofpoint"`) {
		t.Errorf("breakdown by machine: %s", machines)
	}
	t.Logf("end to end: %d requests, statuses %v; %d events stored: clicks human %d / machine %d, opens human %d / machine %d",
		requests, statuses, total, clickH, clickM, openH, openM)
}

func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

func post(t *testing.T, u, body string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", chromeUA)
	req.Header.Set("X-Turf-Test-Peer", readerIP)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func compact(v []json.RawMessage) string {
	var b bytes.Buffer
	for _, m := range v {
		_ = json.Compact(&b, m)
		b.WriteByte(' ')
	}
	return b.String()
}
