package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"turf/internal/chtest"
	"turf/internal/turftest"
	"turf/query"
	"turf/query/settings"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// TestSettingsReachARunningTurf: settings stored by another instance (here:
// written straight into ClickHouse) reach a running turf within seconds:
// the collector accepts a new site's events, the engine uses its time zone
// and goals, and a flag's time zone still wins.
func TestSettingsReachARunningTurf(t *testing.T) {
	s := turftest.StartWith(t, turftest.Options{Query: query.Config{Sites: map[string]query.SiteConfig{"a.example": {Timezone: "Europe/Amsterdam"}}}}, "a.example")
	ctx := context.Background()
	key, _, err := query.CreateKey(ctx, s.Conn, s.DB, []string{"a.example", "b.example"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	event := func(site, name string) int {
		t.Helper()
		body := `{"name":"` + name + `","url":"https://` + site + `/","domain":"` + site + `"}`
		req, _ := http.NewRequest("POST", s.URL+"/api/event", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	ask := func(site string, dims ...string) query.Response {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"site_id": site, "metrics": []string{"visitors"}, "date_range": "day", "dimensions": dims})
		req, _ := http.NewRequest("POST", s.URL+"/api/v2/query", strings.NewReader(string(b)))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var r query.Response
		if resp.StatusCode != 200 || json.Unmarshal(raw, &r) != nil {
			t.Fatalf("query %s: %d %s", site, resp.StatusCode, raw)
		}
		return r
	}
	if c := event("b.example", "pageview"); c != http.StatusBadRequest {
		t.Fatalf("event of a site not yet added: %d", c)
	}
	for _, x := range []settings.Site{{Site: "b.example", Timezone: "Asia/Tokyo"}, {Site: "a.example", Timezone: "Asia/Tokyo"}} {
		if err := settings.PutSite(ctx, s.Conn, s.DB, x); err != nil {
			t.Fatal(err)
		}
	}
	if err := settings.PutGoal(ctx, s.Conn, s.DB, settings.Goal{Site: "b.example", Goal: "Signup"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for event("b.example", "pageview") != http.StatusAccepted {
		if time.Now().After(deadline) {
			t.Fatal("the collector did not learn b.example within 10s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for ask("b.example").Query["timezone"] != "Asia/Tokyo" {
		if time.Now().After(deadline) {
			t.Fatal("the engine did not learn b.example's time zone within 10s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if tz := ask("a.example").Query["timezone"]; tz != "Europe/Amsterdam" {
		t.Errorf("a.example's time zone is %v: the flag should win over the stored Asia/Tokyo", tz)
	}
	if c := event("b.example", "Signup"); c != http.StatusAccepted {
		t.Fatalf("Signup event: %d", c)
	}
	s.Flush(t)
	r := ask("b.example", "event:goal")
	if len(r.Results) != 1 || len(r.Results[0].Dimensions) != 1 || r.Results[0].Dimensions[0] != "Signup" {
		t.Errorf("goals of b.example: %+v, want the stored goal Signup", r.Results)
	}
}
