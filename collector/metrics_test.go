package collector_test

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"turf/internal/turftest"
)

// /metrics is not public: on the main address it answers only with the
// --metrics-token (404 without it or with a wrong one); the
// --metrics-listen address serves it without a token, and nothing else.
func TestMetricsNotPublic(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	srv := turftest.StartWith(t, turftest.Options{MetricsListen: metricsAddr}, "example.com")
	get := func(url, auth string) int {
		req, _ := http.NewRequest("GET", url, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		name, url, auth string
		want            int
	}{
		{"main, no token", srv.URL + "/metrics", "", 404},
		{"main, wrong token", srv.URL + "/metrics", "Bearer nope", 404},
		{"main, token", srv.URL + "/metrics", "Bearer " + turftest.MetricsToken, 200},
		{"metrics listener", "http://" + srv.App.MetricsAddr() + "/metrics", "", 200},
		{"metrics listener, other path", "http://" + srv.App.MetricsAddr() + "/healthz", "", 404},
	} {
		if got := get(c.url, c.auth); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	// The query lanes' counters are served with the rest (query/limits.go).
	m := srv.Metrics(t)
	for _, l := range []string{"key", "staff", "share"} {
		for _, name := range []string{"slots", "in_use", "waiting", "admitted_total", "refused_total", "wait_seconds_total"} {
			if s := "turf_query_lane_" + name + `{lane="` + l + `"} `; !strings.Contains(m, s) {
				t.Errorf("/metrics lacks %s", s)
			}
		}
	}
}
