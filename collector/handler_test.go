package collector_test

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"turf/collector"
	"turf/collector/sink"
)

// TestHTTPAnswers pins what browsers and mail clients see of /api/event:
// CORS on every answer (full CORS headers only on preflights), the pixel's
// GIF and no-cache headers, and methods that are refused.
func TestHTTPAnswers(t *testing.T) {
	c, snk, set, db := newCollector(t, sink.Config{SyncInterval: time.Second, BatchSize: 100, FlushInterval: 50 * time.Millisecond, QueueSize: 100},
		collector.Config{Sites: []string{"example.com"}, IPv4Prefix: 24, IPv6Prefix: 48})
	const ua = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
	body := `{"name":"pageview","url":"https://example.com/a","domain":"example.com"}`
	pixel := "/api/event?n=pageview&u=https%3A%2F%2Fexample.com%2Fb&d=example.com"
	tests := []struct {
		name, method, uri, body string
		status                  int
		contentType             string
		headers                 map[string]string // "" means: must be absent
		stored                  bool
	}{
		{"post", "POST", "/api/event", body, 202, "text/plain; charset=utf-8", map[string]string{
			"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "", "Access-Control-Max-Age": ""}, true},
		{"preflight", "OPTIONS", "/api/event", "", 204, "", map[string]string{
			"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
			"Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "86400"}, false},
		{"pixel", "GET", pixel, "", 200, "image/gif", map[string]string{
			"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0", "Expires": "0"}, true},
		{"bad body", "POST", "/api/event", `{"name":"pageview"`, 400, "", map[string]string{
			"Access-Control-Allow-Origin": "*", "X-Turf-Reject": "malformed_json"}, false},
		{"put", "PUT", "/api/event", body, 405, "", map[string]string{
			"Access-Control-Allow-Origin": "*", "Allow": "GET, POST, OPTIONS"}, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req fasthttp.Request
			req.Header.SetMethod(tt.method)
			req.SetRequestURI(tt.uri)
			req.Header.SetUserAgent(ua)
			if tt.body != "" {
				req.Header.SetContentType("application/json")
				req.SetBodyString(tt.body)
			}
			var ctx fasthttp.RequestCtx
			ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(198, 51, 100, byte(i+1)), Port: 1234}, nil)
			before := set.GetOrCreateCounter("turf_events_accepted_total").Get()
			if !c.Handle(&ctx) {
				t.Fatal("Handle did not take /api/event")
			}
			r := &ctx.Response
			if r.StatusCode() != tt.status {
				t.Fatalf("status %d, want %d (body %q)", r.StatusCode(), tt.status, r.Body())
			}
			if tt.contentType != "" && string(r.Header.ContentType()) != tt.contentType {
				t.Errorf("Content-Type %q, want %q", r.Header.ContentType(), tt.contentType)
			}
			for k, want := range tt.headers {
				if got := string(r.Header.Peek(k)); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			if tt.method == "GET" && (len(r.Body()) < 6 || string(r.Body()[:6]) != "GIF89a") {
				t.Errorf("pixel body %q is not a GIF", r.Body())
			}
			if got := set.GetOrCreateCounter("turf_events_accepted_total").Get() - before; got != map[bool]uint64{true: 1}[tt.stored] {
				t.Errorf("%d events accepted, want stored=%v", got, tt.stored)
			}
		})
	}
	if err := snk.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	var paths []string
	rows, err := db.Conn.Query(t.Context(), "SELECT pathname FROM "+db.Name+".events ORDER BY pathname")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 || paths[0] != "/a" || paths[1] != "/b" {
		t.Errorf("stored pathnames %q, want [/a /b]", paths)
	}
}
