package privacytest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"turf/collector/spool"
	"turf/internal/chtest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"

// visitors are the full client addresses sent. Every one has a non-zero
// host part, so its truncated form (/24, /48) differs from it.
var visitors = []netip.Addr{
	netip.MustParseAddr("198.51.100.77"),
	netip.MustParseAddr("203.0.113.201"),
	netip.MustParseAddr("192.0.2.45"),
	netip.MustParseAddr("2001:db8:aa:bb:cc:dd:ee:ff"),
	netip.MustParseAddr("2001:db8:1234:5678:9abc:def0:1234:5678"),
	netip.MustParseAddr("2a02:a45e:7c1:1:4d2:91ff:fe3a:88c7"),
}

// TestNoFullIPAtRest runs turf as users run it and searches everything it
// stored and wrote for any full client address.
func TestNoFullIPAtRest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the turf binary")
	}
	db := chtest.New(t)
	db.WrittenElsewhere() // the turf binary below writes the events
	bin := buildTurf(t)
	dataDir := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "turf.log")
	tf := &turfProc{t: t, bin: bin, dsn: db.DSN, dataDir: dataDir, logPath: logPath, listen: freeAddr(t)}
	tf.start()
	link, pixel := tf.newsletter("create", "--url", "https://example.com/huren"), tf.newsletter("pixel")
	tampered := link[:len(link)-1] + map[bool]string{true: "A", false: "B"}[!strings.HasSuffix(link, "A")]

	sent := 0
	sendAll := func(phase string) {
		for i, a := range visitors {
			tf.send(phase, i, a, false)
			tf.send(phase, i, a, true)
			sent += 2
			// Newsletter links and pixels, and a tampered link (a counted
			// reject), from the same addresses.
			tf.follow(link, a, http.StatusFound)
			tf.follow(pixel, a, http.StatusOK)
			tf.follow(tampered, a, http.StatusNotFound)
		}
	}
	waitRows := func(phase string, want uint64) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			n := db.Count(t, "SELECT count() FROM "+db.Name+".events WHERE pathname LIKE ?", "/"+phase+"/%")
			if n == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("phase %s: %d rows landed, want %d; log:\n%s", phase, n, want, tf.log())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	perPhase := uint64(2 * len(visitors))
	// Records in the spool as turf decodes them, taken while events wait
	// there (outage, crash) and searched at the end.
	var spooled [][]byte

	// Normal operation.
	sendAll("normal")
	waitRows("normal", perPhase)

	// A ClickHouse outage: events are accepted meanwhile and wait in turf
	// (in memory, or in the spool once turf has one) until it answers.
	if ch := chtest.Managed(t); ch != nil {
		if err := ch.Pause(); err != nil {
			t.Fatal(err)
		}
		sendAll("outage")
		time.Sleep(3 * time.Second) // flush attempts time out or wait meanwhile
		recs := spoolSnapshot(t, dataDir)
		if hasSpool(dataDir) && len(recs) < int(perPhase) {
			t.Errorf("during the outage the spool holds %d records, want at least %d", len(recs), perPhase)
		}
		spooled = append(spooled, recs...)
		if err := ch.Resume(); err != nil {
			t.Fatal(err)
		}
		waitRows("outage", perPhase)
	} else {
		t.Log("external ClickHouse (TURF_TEST_CLICKHOUSE): the outage phase needs the managed server and is skipped")
	}

	// Salts: read them now, to search the files for them afterwards.
	salts := readSalts(t, db)

	// A crash: kill -9 right after accepting events, then start again. The
	// crashed batch may be lost without a spool; what counts here is that
	// nothing of it is left anywhere in full.
	sendAll("crash")
	tf.kill()
	spooled = append(spooled, spoolSnapshot(t, dataDir)...)
	tf.start()
	sendAll("restarted")
	waitRows("restarted", perPhase)
	if hasSpool(dataDir) {
		waitRows("crash", perPhase) // accepted means spooled: kill -9 loses none
	}
	tf.stop()

	needles := addressNeedles(visitors)
	// 1. Every column of every table of turf's database, read back through
	// SQL so that compression cannot hide anything.
	all := db.Dump(t)
	for _, n := range needles {
		if bytes.Contains(all, n.b) {
			t.Errorf("ClickHouse holds %s", n.what)
		}
	}
	for _, p := range []string{"198.51.100.0/24", "2001:db8:aa::/48"} {
		if !bytes.Contains(all, []byte(p)) {
			t.Errorf("truncated prefix %s not found: the search does not look where the data is", p)
		}
	}
	// 2. Raw, every file turf wrote: its log, and everything under --data-dir
	// (the spool and its dead letters, once turf has them).
	files := map[string][]byte{"log": readFile(t, logPath)}
	if err := filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files[p] = readFile(t, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(files["log"]) == 0 {
		t.Error("turf's log is empty: the search would prove nothing")
	}
	for name, b := range files {
		for _, n := range needles {
			if bytes.Contains(b, n.b) {
				t.Errorf("%s holds %s", name, n.what)
			}
		}
		for _, s := range salts {
			for _, form := range [][]byte{s, []byte(hex.EncodeToString(s)), []byte(base64.StdEncoding.EncodeToString(s)), []byte(base64.RawURLEncoding.EncodeToString(s))} {
				if bytes.Contains(b, form) {
					t.Errorf("%s holds a visitor salt", name)
				}
			}
		}
	}
	// 3. The spool as turf decodes it.
	if len(spooled) > 0 && !bytes.Contains(bytes.Join(spooled, nil), []byte("198.51.100.0/24")) {
		t.Error("no truncated prefix in the decoded spool records: the search does not look where the data is")
	}
	for _, rec := range spooled {
		for _, n := range needles {
			if bytes.Contains(rec, n.b) {
				t.Errorf("a spooled event holds %s", n.what)
			}
		}
	}
	t.Logf("searched %d forms of %d addresses in %d bytes of ClickHouse data, %d files and %d decoded spool records; %d events sent", len(needles), len(visitors), len(all), len(files), len(spooled), sent)
}

func hasSpool(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, "spool"))
	return err == nil
}

// spoolSnapshot copies the spool of a running (or killed) turf and reads
// every record not yet in ClickHouse back with turf's own spool reader.
// The copy leaves the live spool and its lock alone.
func spoolSnapshot(t *testing.T, dataDir string) [][]byte {
	src := filepath.Join(dataDir, "spool")
	if !hasSpool(dataDir) {
		return nil
	}
	dst := filepath.Join(t.TempDir(), "spool")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		if d.Name() == "lock" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatalf("copy spool: %v", err)
	}
	sp, err := spool.Open(dst, spool.Options{})
	if err != nil {
		t.Fatalf("open spool copy: %v", err)
	}
	defer sp.Close()
	var out [][]byte
	for {
		rec, _, _, ok, err := sp.Next()
		if err != nil {
			t.Fatalf("read spool copy: %v", err)
		}
		if !ok {
			return out
		}
		out = append(out, bytes.Clone(rec))
	}
}

type needle struct {
	what string
	b    []byte
}

// addressNeedles are the forms a full address could take at rest: text
// (short and expanded), the number, and the raw 4 or 16 bytes, IPv4 also as
// IPv4-mapped IPv6.
func addressNeedles(addrs []netip.Addr) []needle {
	var out []needle
	for _, a := range addrs {
		add := func(form string, b []byte) { out = append(out, needle{fmt.Sprintf("%s as %s", a, form), b}) }
		add("text", []byte(a.String()))
		b16 := a.As16()
		add("16 bytes", b16[:])
		add("hex", []byte(hex.EncodeToString(b16[:])))
		if a.Is4() {
			b4 := a.As4()
			add("4 bytes", b4[:])
			add("integer", []byte(fmt.Sprint(binary.BigEndian.Uint32(b4[:]))))
			add("little-endian 4 bytes", []byte{b4[3], b4[2], b4[1], b4[0]})
			add("hex", []byte(hex.EncodeToString(b4[:])))
			add("mapped text", []byte("::ffff:"+a.String()))
		} else {
			add("expanded text", []byte(a.StringExpanded()))
			add("integer", []byte(new(big.Int).SetBytes(b16[:]).String()))
		}
	}
	return out
}

func readSalts(t *testing.T, db *chtest.DB) [][]byte {
	rows, err := db.Conn.Query(context.Background(), "SELECT salt FROM "+db.Name+".salts")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, []byte(s))
	}
	if len(out) == 0 {
		t.Fatal("no salts stored")
	}
	return out
}

func readFile(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func buildTurf(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "turf")
	cmd := exec.Command("go", "build", "-o", bin, "turf/cmd/turf")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// turfProc is `turf serve` running as a child process, its output appended
// to one log file across restarts.
type turfProc struct {
	t                                  *testing.T
	bin, dsn, dataDir, logPath, listen string
	cmd                                *exec.Cmd
	done                               chan error
}

func (p *turfProc) start() {
	t := p.t
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(p.bin, "serve",
		"--clickhouse", p.dsn, "--data-dir", p.dataDir, "--listen", p.listen,
		"--site", "example.com", "--trusted-proxy", "10.0.0.0/8",
		"--flush-interval", "200ms", "--test-mode")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	p.done = make(chan error, 1)
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + p.listen + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("turf exited during start-up: %v\n%s", err, p.log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("turf did not become healthy; log:\n%s", p.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill is a crash: SIGKILL, no shutdown code runs.
func (p *turfProc) kill() {
	if p.cmd == nil || p.cmd.ProcessState != nil {
		return
	}
	select {
	case err := <-p.done:
		p.done <- err
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	err := <-p.done
	p.done <- err
}

// stop is an orderly shutdown with the final flush.
func (p *turfProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			p.t.Errorf("turf exited with %v; log:\n%s", err, p.log())
		}
	case <-time.After(60 * time.Second):
		p.t.Fatalf("turf did not stop; log:\n%s", p.log())
	}
}

func (p *turfProc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// send posts one event from addr: directly (the test peer header stands in
// for the TCP peer) or through a trusted proxy's X-Forwarded-For.
func (p *turfProc) send(phase string, i int, addr netip.Addr, viaProxy bool) {
	t := p.t
	how := "direct"
	if viaProxy {
		how = "proxy"
	}
	body := fmt.Sprintf(`{"name":"pageview","url":"https://example.com/%s/%d/%s","domain":"example.com"}`, phase, i, how)
	req, _ := http.NewRequest("POST", "http://"+p.listen+"/api/event", strings.NewReader(body))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("User-Agent", firefox)
	if viaProxy {
		req.Header.Set("X-Turf-Test-Peer", "10.9.8.7")
		req.Header.Set("X-Forwarded-For", addr.String())
	} else {
		req.Header.Set("X-Turf-Test-Peer", addr.String())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("%s event %d (%s): status %d", phase, i, how, resp.StatusCode)
	}
}

// newsletter runs `turf link <sub>` against the running turf's database and
// returns the URL it prints.
func (p *turfProc) newsletter(sub string, args ...string) string {
	p.t.Helper()
	args = append([]string{"link", sub, "--clickhouse", p.dsn, "--data-dir", p.dataDir, "--site", "example.com",
		"--campaign", "nieuwsbrief-2026-12", "--public-url", "http://" + p.listen}, args...)
	out, err := exec.Command(p.bin, args...).Output()
	if err != nil {
		p.t.Fatalf("turf %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// follow requests a newsletter URL from addr, as a mail client would.
func (p *turfProc) follow(u string, addr netip.Addr, want int) {
	p.t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("User-Agent", firefox)
	req.Header.Set("X-Turf-Test-Peer", addr.String())
	resp, err := http.DefaultTransport.RoundTrip(req) // no redirects followed
	if err != nil {
		p.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		p.t.Fatalf("GET %s: status %d, want %d", u, resp.StatusCode, want)
	}
}
