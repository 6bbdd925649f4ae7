// Command attack replays the attacks of issue 14 against running turf
// binaries and prints what each answered, so a fix is shown on the real
// server and a regression is seen the same way.
//
// It starts one ClickHouse under -data-dir and, for each binary given
// (-turf, and -turf-old for the figures before a fix), migrates one
// database with that binary, fills it once with -events events today,
// creates a user, a share link and a key with the binary's own CLI, runs
// `turf serve` on a free loopback port and then:
//
//	a. share flood: six parallel share-link queries, three visit/page
//	   dimensions each and a case-insensitive matches_not of -regexes
//	   regular expressions (once with 200, once with the allowed 20), while
//	   a logged-in staff member asks for today's visitors: the staff
//	   latency and the share answers' status codes;
//	b. log-in storm: 6 addresses x 10 user names, 60 attempts, the six in
//	   one /24 and then in six, while beacons are timed one after another:
//	   the beacon's median latency before and during, and the log-in
//	   status codes;
//	c. remote lockout: carol logs in from her network, 14 wrong tries for
//	   carol from another, then her password from her network;
//	d. malformed requests (body over the limit, GARBAGE, Content-Length: -5,
//	   bad chunking, one carrying a planted key and session cookie) from
//	   127.0.5.99, then the server's log searched for the address, the key
//	   and the cookie;
//	e. a share token sent as a session cookie, on a cold cache first;
//	f. the smaller ones: /metrics without a token, unknown keys, a query
//	   past max_query_size, a bidi override in an event name, a range
//	   ending 2105-12-30.
//
// Every request goes to 127.0.0.0/8 only (client addresses 127.0.x.y are
// bound on the client side); counts are fixed and every call has a
// timeout, so a run is bounded (about two minutes a binary on two cores).
//
//	go build -o /tmp/turf ./cmd/turf
//	go run ./bench/attack -turf /tmp/turf -turf-old /tmp/turf-old
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"turf/internal/chserver"
	"turf/query/synth"
	"turf/schema"
)

const (
	site          = "example.com"
	staffUser     = "comms"
	carol         = "carol"
	password      = "a good password 14"
	metricsToken  = "attack-metrics-token"
	plantedKey    = "turf_PLANTEDKEY0123456789abcdef"
	plantedCookie = "PLANTEDCOOKIE0123456789abcdef"
	attacker      = "127.0.5.99"
)

func main() {
	bin := flag.String("turf", "", "turf binary to attack (required)")
	old := flag.String("turf-old", "", "another turf binary, e.g. built before a fix, attacked first for the figures before")
	dataDir := flag.String("data-dir", "/tmp/turf-attack", "where ClickHouse and the servers keep their files")
	events := flag.Int("events", 1_500_000, "events today in the attacked database (at most 5,000,000)")
	flag.Parse()
	if *bin == "" {
		log.Fatal("-turf is required")
	}
	if *events > 5_000_000 {
		log.Fatal("-events is capped at 5,000,000")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := chserver.Start(ctx, filepath.Join(*dataDir, "clickhouse"))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Stop()
	bins := [][2]string{{"new", *bin}}
	if *old != "" {
		bins = [][2]string{{"old", *old}, {"new", *bin}}
	}
	for i, b := range bins {
		if ctx.Err() != nil {
			break
		}
		if err := attack(ctx, srv, b[0], b[1], filepath.Join(*dataDir, b[0]), *events, i == 0); err != nil {
			log.Printf("%s (%s): %v", b[0], b[1], err)
		}
	}
}

// target is one running turf.
type target struct {
	label, base, logPath string
	share, key           string
}

func attack(ctx context.Context, srv *chserver.Server, label, bin, dir string, events int, fill bool) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// One database for every binary: the newer binary migrates it further.
	dsn := srv.DSN("attack14")
	cli := func(stdin string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "TURF_CLICKHOUSE="+dsn, "TURF_DATA_DIR="+dir)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("%s %v: %w: %s", bin, args, err, out)
		}
		return string(out), nil
	}
	if _, err := cli("", "migrate"); err != nil {
		return err
	}
	if fill {
		if err := fillEvents(ctx, dsn, events); err != nil {
			return err
		}
		for _, u := range []string{staffUser, carol} {
			if _, err := cli(password+"\n", "user", "add", "--name", u, "--password-stdin"); err != nil {
				return err
			}
		}
	}
	out, err := cli("", "share", "create", "--site", site, "--name", "attack "+label)
	if err != nil {
		return err
	}
	share := regexp.MustCompile(`/share/([A-Za-z0-9_\-]+)`).FindStringSubmatch(out)
	out, err = cli("", "key", "create", "--site", site)
	if err != nil {
		return err
	}
	key := regexp.MustCompile(`turf_[A-Za-z0-9_\-]+`).FindString(out)
	if share == nil || key == "" {
		return fmt.Errorf("no share link or key in the CLI's output")
	}

	port, err := chserver.FreePort()
	if err != nil {
		return err
	}
	t := &target{label: label, base: "http://127.0.0.1:" + strconv.Itoa(port), logPath: filepath.Join(dir, "turf.log"), share: share[1], key: key}
	logf, err := os.Create(t.logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := []string{"serve", "--listen", "127.0.0.1:" + strconv.Itoa(port), "--site", site}
	if help, _ := exec.Command(bin, "serve", "-h").CombinedOutput(); bytes.Contains(help, []byte("-metrics-token")) {
		args = append(args, "--metrics-token", metricsToken)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "TURF_CLICKHOUSE="+dsn, "TURF_DATA_DIR="+dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			_ = cmd.Process.Kill()
		}
	}()
	if err := waitUp(t.base); err != nil {
		return err
	}
	fmt.Printf("\n=== %s: %s on %s (pid %d), %d events today\n", label, bin, t.base, cmd.Process.Pid, events)
	for _, step := range []func(*target) error{shareFlood, loginStorm, lockout, malformed, shareAsSession, smaller} {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := step(t); err != nil {
			fmt.Printf("  error: %v\n", err)
		}
	}
	return nil
}

// fillEvents writes about n events of today (UTC) for site, in chunks.
func fillEvents(ctx context.Context, dsn string, n int) error {
	conn, db, err := schema.Open(dsn)
	if err != nil {
		return err
	}
	defer conn.Close()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	start := time.Now()
	total := 0
	for seed := uint64(1); total < n; seed++ {
		evs := synth.Events(synth.Generate(synth.Config{Seed: seed, Sites: []string{site}, Start: today, Days: 1, Persons: 5000, VisitsPerDay: 40000}))
		if total+len(evs) > n {
			evs = evs[:n-total]
		}
		if err := synth.Insert(ctx, conn, db, evs); err != nil {
			return err
		}
		total += len(evs)
	}
	fmt.Printf("filled %s with %d events of %s in %.1fs\n", db, total, today.Format(time.DateOnly), time.Since(start).Seconds())
	return nil
}

func waitUp(base string) error {
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if code, _, _, err := do(nil, "GET", base+"/login", nil, ""); err == nil && code == 200 {
			return nil
		}
	}
	return fmt.Errorf("turf did not answer on %s", base)
}

// clients are HTTP clients by source address (127.x.y.z), so the server
// sees each as a peer of its own.
var (
	clientsMu sync.Mutex
	clients   = map[string]*fasthttp.Client{}
)

func client(from string) *fasthttp.Client {
	clientsMu.Lock()
	defer clientsMu.Unlock()
	if from == "" {
		from = "127.0.0.1"
	}
	if c, ok := clients[from]; ok {
		return c
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c := &fasthttp.Client{Dial: func(addr string) (net.Conn, error) { return d.Dial("tcp4", addr) }, MaxConnsPerHost: 64, ReadTimeout: 70 * time.Second}
	clients[from] = c
	return c
}

// do sends one request from address from (nil hdr: none) and returns the
// status, the body, Retry-After and the time it took.
func do(hdr map[string]string, method, url string, body []byte, from string) (int, []byte, time.Duration, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(url)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if body != nil {
		req.SetBody(body)
	}
	start := time.Now()
	err := client(from).DoTimeout(req, resp, 70*time.Second)
	took := time.Since(start)
	if err != nil {
		return 0, nil, took, err
	}
	return resp.StatusCode(), bytes.Clone(resp.Body()), took, nil
}

// login posts the log-in form from address from and returns the status and
// the session cookie.
func login(t *target, from, user, pw string) (int, string) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod("POST")
	req.SetRequestURI(t.base + "/login")
	req.Header.Set("Origin", t.base)
	req.Header.SetContentType("application/x-www-form-urlencoded")
	req.SetBodyString("username=" + user + "&password=" + strings.ReplaceAll(pw, " ", "+") + "&next=/")
	if err := client(from).DoTimeout(req, resp, 30*time.Second); err != nil {
		return 0, ""
	}
	var ck fasthttp.Cookie
	if v := resp.Header.PeekCookie("turf_session"); v != nil && ck.Parse(string(v)) == nil {
		return resp.StatusCode(), string(ck.Value())
	}
	return resp.StatusCode(), ""
}

// csrf is the dashboard's CSRF token of a session (query/dashboard).
func csrf(session string) string {
	m := hmac.New(sha256.New, []byte(session))
	m.Write([]byte("turf dashboard csrf"))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

func codes(cs []int) string {
	slices.Sort(cs)
	var parts []string
	for i := 0; i < len(cs); {
		j := i
		for j < len(cs) && cs[j] == cs[i] {
			j++
		}
		parts = append(parts, fmt.Sprintf("%d×%d", cs[i], j-i))
		i = j
	}
	return strings.Join(parts, " ")
}

func shareFlood(t *target) error {
	code, session := login(t, "127.0.3.10", staffUser, password)
	if session == "" {
		return fmt.Errorf("staff log-in: %d", code)
	}
	staffHdr := map[string]string{"Cookie": "turf_session=" + session, "X-Turf-CSRF": csrf(session), "Content-Type": "application/json"}
	staffBody := []byte(`{"site_id":"` + site + `","metrics":["visitors"],"date_range":"day"}`)
	code, _, alone, err := do(staffHdr, "POST", t.base+"/api/v2/query", staffBody, "127.0.3.10")
	if err != nil || code != 200 {
		return fmt.Errorf("staff query alone: %d %v", code, err)
	}
	for _, n := range []int{200, 20} {
		regexes := make([]string, n)
		for i := range regexes {
			regexes[i] = fmt.Sprintf("^/(blog|docs)/[a-z]+-%d(/|$)", i)
		}
		q, _ := json.Marshal(map[string]any{"site_id": site, "metrics": []string{"visitors", "pageviews"}, "date_range": "day",
			"dimensions": []string{"visit:source", "visit:entry_page", "event:page"},
			"filters":    [][]any{{"matches_not", "event:page", regexes, map[string]any{"case_sensitive": false}}}})
		shareHdr := map[string]string{"X-Turf-Share": t.share, "Content-Type": "application/json"}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var got []int
		var took []string
		start := time.Now()
		for range 6 {
			wg.Go(func() {
				code, body, d, err := do(shareHdr, "POST", t.base+"/api/v2/query", q, "127.0.4.10")
				mu.Lock()
				defer mu.Unlock()
				got = append(got, code)
				took = append(took, fmt.Sprintf("%d in %.1fs", code, d.Seconds()))
				if err != nil || code != 200 && len(got) == 1 {
					fmt.Printf("    a share answer: %d %v %.120s\n", code, err, body)
				}
			})
		}
		time.Sleep(time.Second)
		code, _, d, err := do(staffHdr, "POST", t.base+"/api/v2/query", staffBody, "127.0.3.10")
		wg.Wait()
		fmt.Printf("  a. share flood, 6 × (3 dimensions, matches_not of %d case-insensitive regexes): staff visitors query %.0f ms (alone %.0f ms) answered %d %v; share queries: %s (%s); all done in %.1fs\n",
			n, d.Seconds()*1000, alone.Seconds()*1000, code, errOrNil(err), codes(got), strings.Join(took, ", "), time.Since(start).Seconds())
	}
	return nil
}

func errOrNil(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// beacon sends one pageview and returns how long it took.
func beacon(t *target, n int) (time.Duration, int) {
	hdr := map[string]string{"Content-Type": "text/plain", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}
	body := fmt.Sprintf(`{"name":"pageview","url":"https://%s/attack/%d","domain":%q}`, site, n%50, site)
	code, _, d, _ := do(hdr, "POST", t.base+"/api/event", []byte(body), "127.0.7.7")
	return d, code
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// loginStorm sends 60 wrong log-ins, 6 addresses × 10 user names, twice:
// the 6 addresses in one /24 (throttled as one network), then in six /24s
// (each network within its budget: only the global bcrypt cap bounds the
// work), timing beacons one after another before and during each.
func loginStorm(t *target) error {
	for i, layout := range []struct {
		name string
		addr func(a int) string
	}{
		{"6 addresses of 127.0.20.0/24", func(a int) string { return fmt.Sprintf("127.0.20.%d", 10+a) }},
		{"6 addresses in 6 /24s", func(a int) string { return fmt.Sprintf("127.0.%d.10", 30+a) }},
	} {
		var before []time.Duration
		for i := range 200 {
			d, _ := beacon(t, i)
			before = append(before, d)
			time.Sleep(5 * time.Millisecond)
		}
		stop := make(chan struct{})
		var during []time.Duration
		var beacons sync.WaitGroup
		beacons.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				d, _ := beacon(t, i)
				during = append(during, d)
				time.Sleep(5 * time.Millisecond)
			}
		})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var got []int
		start := time.Now()
		for a := range 6 {
			wg.Go(func() {
				for u := range 10 {
					code, _ := login(t, layout.addr(a), fmt.Sprintf("user%d_%d", i, u), "wrong password")
					mu.Lock()
					got = append(got, code)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		storm := time.Since(start)
		close(stop)
		beacons.Wait()
		fmt.Printf("  b. log-in storm, %s × 10 names: beacon median %.2f ms before, %.2f ms during (%d beacons in %.1fs); log-ins answered %s\n",
			layout.name, median(before).Seconds()*1000, median(during).Seconds()*1000, len(during), storm.Seconds(), codes(got))
	}
	return nil
}

func lockout(t *target) error {
	first, _ := login(t, "127.0.9.10", carol, password)
	var wrong []int
	for i := range 14 {
		code, _ := login(t, attacker, carol, fmt.Sprintf("guess %d", i))
		wrong = append(wrong, code)
	}
	home, _ := login(t, "127.0.9.10", carol, password)
	lease, _ := login(t, "127.0.9.99", carol, password)
	fmt.Printf("  c. remote lockout: carol from 127.0.9.10 first: %d; 14 wrong tries from %s: %s; carol's password then from 127.0.9.10: %d, from 127.0.9.99 (same /24): %d\n",
		first, attacker, codes(wrong), home, lease)
	return nil
}

// raw sends bytes on a new connection from addr and reads the answer for a
// moment.
func raw(t *target, from string, data []byte) string {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp4", strings.TrimPrefix(t.base, "http://"))
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write(data); err != nil {
		return "write: " + err.Error()
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && line == "" {
		return "no answer (" + err.Error() + ")"
	}
	return strings.TrimSpace(line)
}

func malformed(t *target) error {
	host := strings.TrimPrefix(t.base, "http://")
	creds := "Authorization: Bearer " + plantedKey + "\r\nCookie: turf_session=" + plantedCookie + "\r\n"
	big := bytes.Repeat([]byte("x"), 2<<20)
	cases := []struct {
		name string
		data []byte
	}{
		{"body over the limit", append([]byte("POST /api/event HTTP/1.1\r\nHost: "+host+"\r\nContent-Type: text/plain\r\nContent-Length: "+strconv.Itoa(len(big))+"\r\n\r\n"), big...)},
		{"GARBAGE", []byte("GARBAGE\r\n\r\n")},
		{"Content-Length: -5", []byte("POST /api/event HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: -5\r\n\r\nhello")},
		{"bad chunked", []byte("POST /api/event HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")},
		{"malformed with key and cookie", []byte("POST /api/v2/query HTTP/1.1\r\nHost: " + host + "\r\n" + creds + "Content-Length: -5\r\n\r\n")},
		{"bad chunked with key and cookie", []byte("POST /api/v2/query HTTP/1.1\r\nHost: " + host + "\r\n" + creds + "Transfer-Encoding: chunked\r\n\r\nzz\r\n")},
	}
	var answers []string
	for _, c := range cases {
		answers = append(answers, c.name+": "+raw(t, attacker, c.data))
	}
	time.Sleep(500 * time.Millisecond) // the server's log lines
	log, err := os.ReadFile(t.logPath)
	if err != nil {
		return err
	}
	fmt.Printf("  d. malformed requests from %s: %s\n", attacker, strings.Join(answers, "; "))
	fmt.Printf("     log (%d lines): %d lines with the address, %d with the planted key, %d with the planted cookie\n",
		bytes.Count(log, []byte("\n")), countLines(log, attacker), countLines(log, plantedKey), countLines(log, plantedCookie))
	for _, l := range strings.Split(string(log), "\n") {
		if strings.Contains(l, attacker) || strings.Contains(l, plantedKey) || strings.Contains(l, plantedCookie) {
			fmt.Printf("     e.g. %.200s\n", l)
			break
		}
	}
	return nil
}

func countLines(log []byte, s string) int {
	n := 0
	for _, l := range bytes.Split(log, []byte("\n")) {
		if bytes.Contains(l, []byte(s)) {
			n++
		}
	}
	return n
}

func shareAsSession(t *target) error {
	body := []byte(`{"site_id":"` + site + `","metrics":["visitors"],"date_range":"day"}`)
	asSession := map[string]string{"Cookie": "turf_session=" + t.share, "X-Turf-CSRF": csrf(t.share), "Content-Type": "application/json"}
	// First as a session, while the cache knows nothing of it, then as
	// what it is.
	cold, _, _, _ := do(asSession, "POST", t.base+"/api/v2/query", body, "")
	page, _, _, _ := do(nil, "GET", t.base+"/share/"+t.share, nil, "")
	shared, _, _, _ := do(map[string]string{"X-Turf-Share": t.share, "Content-Type": "application/json"}, "POST", t.base+"/api/v2/query", body, "")
	warm, _, _, _ := do(asSession, "POST", t.base+"/api/v2/query", body, "")
	fmt.Printf("  e. share token as a session cookie (cold cache): %d; then its share page %d and a share query %d; as a session again (warm cache): %d\n", cold, page, shared, warm)
	return nil
}

func smaller(t *target) error {
	m, _, _, _ := do(nil, "GET", t.base+"/metrics", nil, "")
	mt, mbody, _, _ := do(map[string]string{"Authorization": "Bearer " + metricsToken}, "GET", t.base+"/metrics", nil, "")
	var lanes []string
	for _, l := range strings.Split(string(mbody), "\n") {
		if strings.HasPrefix(l, "turf_query_lane_") && (strings.Contains(l, "refused") || strings.Contains(l, "admitted")) {
			lanes = append(lanes, l)
		}
	}
	fmt.Printf("  f. /metrics without a token: %d; with --metrics-token: %d; lane counters: %s\n", m, mt, strings.Join(lanes, ", "))

	// The real key is used once first: known keys are served from the
	// cache while uncached lookups are limited (a key never seen waits,
	// like the made-up ones, until the flood's budget refills).
	key := map[string]string{"Authorization": "Bearer " + t.key, "Content-Type": "application/json"}
	warm, _, _, _ := do(key, "POST", t.base+"/api/v2/query", []byte(`{"site_id":"`+site+`","metrics":["visitors"],"date_range":"day"}`), "127.0.12.1")
	var unknown []int
	for i := range 100 {
		code, _, _, _ := do(map[string]string{"Authorization": fmt.Sprintf("Bearer turf_%08x_%064x", i, i), "Content-Type": "application/json"}, "POST", t.base+"/api/v2/query",
			[]byte(`{"site_id":"`+site+`","metrics":["visitors"],"date_range":"day"}`), "127.0.11.1")
		unknown = append(unknown, code)
	}
	after, _, _, _ := do(key, "POST", t.base+"/api/v2/query", []byte(`{"site_id":"`+site+`","metrics":["visitors"],"date_range":"day"}`), "127.0.12.1")
	fmt.Printf("     100 made-up keys: %s; the real key before them %d, right after %d\n", codes(unknown), warm, after)
	// 1000 values of 300 bytes: within the request's validation limits,
	// past ClickHouse's max_query_size of 256 KiB once written as SQL.
	vals := make([]string, 1000)
	for i := range vals {
		vals[i] = "/" + strings.Repeat("x", 300) + strconv.Itoa(i)
	}
	big, _ := json.Marshal(map[string]any{"site_id": site, "metrics": []string{"visitors"}, "date_range": "day",
		"filters": []any{[]any{"is", "event:page", []string{"/"}}, []any{"or", []any{[]any{"is", "event:name", []string{"pageview"}}, []any{"is_not", "event:page", vals}}}}})
	code, b, _, _ := do(key, "POST", t.base+"/api/v2/query", big, "127.0.12.1")
	fmt.Printf("     query of %d KB past max_query_size: %d %.140s\n", len(big)/1024, code, b)

	bidi := fmt.Sprintf(`{"name":"sign\u202Epu","url":"https://%s/","domain":%q}`, site, site)
	bcode, _, _, _ := do(map[string]string{"Content-Type": "text/plain", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}, "POST", t.base+"/api/event", []byte(bidi), "127.0.7.8")
	fmt.Printf("     event name with U+202E: %d\n", bcode)

	for _, end := range []string{"2040-12-31", "2105-12-30"} {
		start := time.Now().UTC().AddDate(0, 0, -3).Format(time.DateOnly)
		code, b, _, _ := do(key, "POST", t.base+"/api/v2/query", []byte(`{"site_id":"`+site+`","metrics":["visitors"],"date_range":["`+start+`","`+end+`"]}`), "127.0.12.1")
		fmt.Printf("     visitors %s..%s: %d %.60s\n", start, end, code, b)
	}
	return nil
}
