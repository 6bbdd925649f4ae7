package collector_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"turf/internal/chtest"
	"turf/internal/turftest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

type uaCase struct {
	ua                        string
	browser, version, os, dev string
	bot                       bool
}

var uas = []uaCase{
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", "Chrome", "120", "Windows", "Desktop", false},
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1", "Safari", "17", "iOS", "Mobile", false},
	{"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "Firefox", "121", "Linux", "Desktop", false},
	{"Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1", "Safari", "16", "iPadOS", "Tablet", false},
	{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "", "", "", "", true},
	{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36", "Chrome", "120", "Android", "Mobile", false},
	{"curl/8.4.0", "", "", "", "", true},
}

type refCase struct {
	referrer, query string
	source, channel string
	host            string
}

var refs = []refCase{
	{"https://t.co/AbCdEf123", "", "Twitter", "Organic Social", "t.co"},
	{"https://www.facebook.com/", "", "Facebook", "Organic Social", "facebook.com"},
	{"https://www.linkedin.com/feed/", "", "LinkedIn", "Organic Social", "linkedin.com"},
	{"https://www.google.nl/", "", "Google", "Organic Search", "google.nl"},
	{"", "", "Direct / None", "Direct", ""},
	{"https://example.com/elsewhere", "", "Direct / None", "Direct", ""}, // the site itself is no source
	{"", "?utm_source=newsletter&utm_medium=email&utm_campaign=nov", "Newsletter", "Email", ""},
	{"https://t.co/x", "?utm_source=fb&utm_medium=cpc", "Facebook", "Paid Social", "t.co"},
	{"https://www.google.com/", "?gclid=Cj0KCQ123", "Google", "Paid Search", "google.com"},
}

// clientAddr is the i-th visitor's full address; its truncated form always
// differs from it (no host part is zero).
func clientAddr(i int) netip.Addr {
	if i%3 == 0 {
		return netip.MustParseAddr(fmt.Sprintf("2001:db8:%x:%x::%x", 0x100+i%5, i+1, i+1))
	}
	return netip.AddrFrom4([4]byte{198, 51, byte(100 + i%4), byte(1 + i%250)})
}

func writeGeoDB(t *testing.T) string {
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-Country", IPVersion: 6, RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	add := func(cidr, iso string) {
		_, n, _ := net.ParseCIDR(cidr)
		rec := mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(iso)}}
		if err := w.Insert(n, rec); err != nil {
			t.Fatal(err)
		}
	}
	add("198.51.100.0/23", "NL")
	add("198.51.102.0/23", "BE")
	add("2001:db8:100::/46", "DE")
	path := filepath.Join(t.TempDir(), "country.mmdb")
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func expectedCountry(a netip.Addr) string {
	if a.Is6() {
		if a.As16()[5] <= 0x03 { // 2001:db8:100..103
			return "DE"
		}
		return ""
	}
	if a.As4()[2] < 102 {
		return "NL"
	}
	return "BE"
}

// TestThousandEvents sends 1,000 events through HTTP and checks exactly what
// landed, and that no full client address is anywhere in the database.
func TestThousandEvents(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	srv := turftest.StartWith(t, turftest.Options{TrustedProxies: trusted, GeoIPDB: writeGeoDB(t)}, "example.com", "example.org")

	type want struct {
		site, prefix, country string
		ua                    uaCase
		ref                   refCase
		addr                  netip.Addr
	}
	wants := map[string]want{} // by pathname
	var sentAddrs []netip.Addr
	bots, unknown := 0, 0
	client := &http.Client{}
	for i := range 1000 {
		ua, ref := uas[i%len(uas)], refs[i%len(refs)]
		addr := clientAddr(i)
		sentAddrs = append(sentAddrs, addr)
		domain, site := "example.com", "example.com"
		if i%5 == 1 {
			domain, site = "example.org", "example.org"
		}
		if i%13 == 0 {
			domain = "not-configured.example"
		}
		path := fmt.Sprintf("/p/%d", i)
		body := fmt.Sprintf(`{"name":"pageview","url":"https://%s%s%s","domain":%q,"referrer":%q}`, site, path, ref.query, domain, ref.referrer)
		if ref.referrer == "https://example.com/elsewhere" {
			body = strings.Replace(body, "example.com/elsewhere", site+"/elsewhere", 1)
		}
		req, _ := http.NewRequest("POST", srv.URL+"/api/event", strings.NewReader(body))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("User-Agent", ua.ua)
		if i%2 == 0 {
			// Through a trusted proxy: the peer is the proxy, the client is in XFF.
			req.Header.Set("X-Turf-Test-Peer", "10.1.2.3")
			req.Header.Set("X-Forwarded-For", "192.0.2.99, "+addr.String())
		} else {
			req.Header.Set("X-Turf-Test-Peer", addr.String())
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch {
		case ua.bot:
			bots++
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("bot event: status %d, want 202 like any other", resp.StatusCode)
			}
		case i%13 == 0:
			unknown++
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("unknown site: status %d, want 400", resp.StatusCode)
			}
		default:
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("event %d: status %d", i, resp.StatusCode)
			}
			bits := 24
			if addr.Is6() {
				bits = 48
			}
			p, _ := addr.Prefix(bits)
			wants[path] = want{site: site, prefix: p.String(), country: expectedCountry(addr), ua: ua, ref: ref, addr: addr}
		}
	}
	rows := srv.Events(t, "")
	if len(rows) != len(wants) {
		t.Fatalf("%d rows landed, want %d (bots %d and unknown sites %d dropped)", len(rows), len(wants), bots, unknown)
	}
	for _, r := range rows {
		w, ok := wants[r["pathname"]]
		if !ok {
			t.Fatalf("unexpected row %v", r)
		}
		delete(wants, r["pathname"])
		check := func(col, want string) {
			if r[col] != want {
				t.Errorf("%s: %s = %q, want %q", r["pathname"], col, r[col], want)
			}
		}
		check("site", w.site)
		check("hostname", w.site)
		check("name", "pageview")
		check("ip_prefix", w.prefix)
		check("country", w.country)
		check("browser", w.ua.browser)
		check("browser_version", w.ua.version)
		check("os", w.ua.os)
		check("device", w.ua.dev)
		check("source", w.ref.source)
		check("channel", w.ref.channel)
		check("referrer_host", w.ref.host)
		if strings.Contains(w.ref.query, "utm_medium=email") {
			check("utm_source", "newsletter")
			check("utm_medium", "email")
			check("utm_campaign", "nov")
		}
	}
	if len(wants) != 0 {
		t.Errorf("%d events never landed", len(wants))
	}
	// Same visitor, same day, same site: same id; the id differs by site.
	n := chtestCount(t, srv, "SELECT uniqExact(visitor_id) FROM "+srv.DB+".events")
	if n < 100 {
		t.Errorf("only %d distinct visitor ids for hundreds of distinct visitors", n)
	}
	assertNoFullIP(t, srv, sentAddrs)
}

func chtestCount(t *testing.T, srv *turftest.Server, q string) uint64 {
	var n uint64
	if err := srv.Conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// assertNoFullIP reads every column of every table of the database back as
// text and as raw bytes, and fails on any full address in text form, as its
// integer or as its 16-byte / 4-byte value.
func assertNoFullIP(t *testing.T, srv *turftest.Server, addrs []netip.Addr) {
	t.Helper()
	var needles [][]byte
	for _, a := range addrs {
		needles = append(needles, []byte(a.String()))
		if a.Is4() {
			b := a.As4()
			needles = append(needles, []byte(fmt.Sprint(binary.BigEndian.Uint32(b[:]))))
			needles = append(needles, b[:])
		} else {
			b := a.As16()
			needles = append(needles, b[:])
		}
	}
	all := bytes.NewBuffer((&chtest.DB{Conn: srv.Conn, Name: srv.DB}).Dump(t))
	for i, nd := range needles {
		if bytes.Contains(all.Bytes(), nd) {
			t.Errorf("full client address #%d (%q) found at rest in ClickHouse", i/3, nd)
		}
	}
	// Prove the search can find what it looks for: the prefixes are there.
	if !bytes.Contains(all.Bytes(), []byte("198.51.100.0/24")) {
		t.Error("search found no truncated prefix either: it is not searching")
	}
}
