package collector_test

import (
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"turf/internal/turftest"
)

const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"

type reply struct {
	status int
	header http.Header
	body   string
}

// send makes one event request for path, as a POST or as the GET pixel, with
// extra request headers.
func send(t *testing.T, srv *turftest.Server, pixel bool, path string, hdr map[string]string) reply {
	t.Helper()
	u := "https://example.com" + path
	var req *http.Request
	if pixel {
		q := url.Values{"n": {"pageview"}, "u": {u}, "d": {"example.com"}}
		req, _ = http.NewRequest("GET", srv.URL+"/api/event?"+q.Encode(), nil)
	} else {
		req, _ = http.NewRequest("POST", srv.URL+"/api/event", strings.NewReader(`{"name":"pageview","url":"`+u+`","domain":"example.com"}`))
		req.Header.Set("Content-Type", "text/plain")
	}
	req.Header.Set("User-Agent", firefox)
	req.Header.Set("X-Turf-Test-Peer", "198.51.100.7")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, string(b)}
}

// TestOptOutSignals: a request carrying an honoured opt-out signal gets
// byte for byte the answer a stored event gets (so a page cannot tell
// whether it was counted) and leaves no row; a signal the operator chose not
// to honour changes nothing.
func TestOptOutSignals(t *testing.T) {
	for _, c := range []struct {
		name   string
		opts   turftest.Options
		hdr    map[string]string
		stored bool
	}{
		{"GPC honoured by default", turftest.Options{}, map[string]string{"Sec-GPC": "1"}, false},
		{"DNT with --honour-dnt", turftest.Options{HonourDNT: true}, map[string]string{"DNT": "1"}, false},
		{"both signals", turftest.Options{HonourDNT: true}, map[string]string{"DNT": "1", "Sec-GPC": "1"}, false},
		{"DNT without --honour-dnt", turftest.Options{}, map[string]string{"DNT": "1"}, true},
		{"GPC with --honour-gpc=false", turftest.Options{DisableGPC: true}, map[string]string{"Sec-GPC": "1"}, true},
		{"Sec-GPC: 0", turftest.Options{}, map[string]string{"Sec-GPC": "0"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := turftest.StartWith(t, c.opts, "example.com")
			for _, pixel := range []bool{false, true} {
				kind := "post"
				if pixel {
					kind = "pixel"
				}
				plain := send(t, srv, pixel, "/stored-"+kind, nil)
				signalled := send(t, srv, pixel, "/signalled-"+kind, c.hdr)
				if plain.status/100 != 2 {
					t.Fatalf("%s: plain event got %d %q", kind, plain.status, plain.body)
				}
				if signalled.status != plain.status || signalled.body != plain.body || !reflect.DeepEqual(signalled.header, plain.header) {
					t.Errorf("%s: answers differ:\nplain     %d %v %q\nsignalled %d %v %q", kind,
						plain.status, plain.header, plain.body, signalled.status, signalled.header, signalled.body)
				}
			}
			rows := srv.Events(t, "")
			got := map[string]bool{}
			for _, r := range rows {
				got[r["pathname"]] = true
			}
			for _, kind := range []string{"post", "pixel"} {
				if !got["/stored-"+kind] {
					t.Errorf("%s: the plain event was not stored", kind)
				}
				if got["/signalled-"+kind] != c.stored {
					t.Errorf("%s: event with %v stored = %v, want %v", kind, c.hdr, got["/signalled-"+kind], c.stored)
				}
			}
			// Not stored, only counted.
			m := srv.Metrics(t)
			wantCount := "turf_events_opted_out_total 2\n"
			if c.stored {
				wantCount = "turf_events_opted_out_total 0\n"
			}
			if !strings.Contains(string(m), wantCount) {
				t.Errorf("metrics lack %q", wantCount)
			}
			if want := 2 + map[bool]int{true: 2}[c.stored]; len(rows) != want {
				t.Errorf("%d rows, want %d", len(rows), want)
			}
		})
	}
}
