// Command load drives POST /api/event on a local turf for a bounded time and
// prints accepted events/s and latency percentiles; with --clickhouse it then
// waits for the rows to land and prints how many did.
//
// It refuses any target that is not a loopback address: load tests here must
// only ever hit this machine.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"turf/schema"
)

func main() {
	target := flag.String("url", "http://127.0.0.1:8080/api/event", "collector endpoint (loopback only)")
	dur := flag.Duration("duration", 10*time.Second, "how long to send (at most 2m)")
	conc := flag.Int("concurrency", 64, "concurrent requests in flight")
	newConn := flag.Bool("new-conn", false, "open a new connection for every request instead of keep-alive")
	site := flag.String("site", "example.com", "domain to send")
	dsn := flag.String("clickhouse", "", "DSN of turf's database: count landed rows afterwards")
	maxEvents := flag.Int64("max-events", 20_000_000, "stop after this many requests")
	flag.Parse()
	if *dur > 2*time.Minute {
		fail("--duration is capped at 2m")
	}
	u, err := url.Parse(*target)
	if err != nil {
		fail("bad --url: %v", err)
	}
	host, _, _ := net.SplitHostPort(u.Host)
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		fail("refusing to load %s: only loopback targets are allowed", u.Host)
	}

	client := &fasthttp.HostClient{Addr: u.Host, MaxConns: *conc, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	uas := []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
	}
	refs := []string{"https://t.co/abc", "https://www.google.nl/", "", "https://www.linkedin.com/feed/", "https://www.facebook.com/"}

	var sent, accepted, other atomic.Int64
	lat := make([][]time.Duration, *conc)
	deadline := time.Now().Add(*dur)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			mine := make([]time.Duration, 0, 1<<16)
			for i := 0; time.Now().Before(deadline); i++ {
				n := sent.Add(1)
				if n > *maxEvents {
					break
				}
				req.Reset()
				req.SetRequestURI(*target)
				req.Header.SetMethod("POST")
				req.Header.SetContentType("text/plain")
				req.Header.SetUserAgent(uas[int(n)%len(uas)])
				// Vary the visitor: turf must trust 127.0.0.1 as a proxy for this.
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.%d.%d", 100+n%4, 1+n%250))
				if *newConn {
					req.SetConnectionClose()
				}
				req.SetBodyString(fmt.Sprintf(`{"name":"pageview","url":"https://%s/page/%d?utm_source=load","domain":%q,"referrer":%q}`, *site, n%500, *site, refs[int(n)%len(refs)]))
				t0 := time.Now()
				err := client.Do(req, resp)
				d := time.Since(t0)
				if err == nil && resp.StatusCode() == fasthttp.StatusAccepted {
					accepted.Add(1)
				} else {
					other.Add(1)
				}
				mine = append(mine, d)
			}
			lat[w] = mine
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(float64(len(all))*p))]
	}
	mode := "keep-alive"
	if *newConn {
		mode = "new connection per request"
	}
	fmt.Printf("mode:        %s, %d concurrent, %s\n", mode, *conc, elapsed.Round(time.Millisecond))
	fmt.Printf("accepted:    %d (%.0f events/s)\n", accepted.Load(), float64(accepted.Load())/elapsed.Seconds())
	fmt.Printf("not 202:     %d\n", other.Load())
	fmt.Printf("latency:     p50 %s  p99 %s  max %s\n", pct(0.50), pct(0.99), pct(1))
	if *dsn != "" {
		landed(*dsn, *site, accepted.Load())
	}
}

// landed waits until the row count stops growing and prints it.
func landed(dsn, site string, want int64) {
	conn, db, err := schema.Open(dsn)
	if err != nil {
		fail("%v", err)
	}
	defer conn.Close()
	var last uint64
	stable := 0
	for stable < 3 {
		time.Sleep(time.Second)
		var n uint64
		if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+schema.Table(db, schema.Events)+" WHERE site = ? AND utm_source = 'load'", site).Scan(&n); err != nil {
			fail("count rows: %v", err)
		}
		if n == last {
			stable++
		} else {
			stable = 0
		}
		last = n
	}
	fmt.Printf("landed:      %d rows in ClickHouse (accepted %d, difference %d)\n", last, want, int64(last)-want)
}

func fail(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "load: "+f+"\n", a...)
	os.Exit(1)
}
