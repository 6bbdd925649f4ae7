package useragent

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected columns of testdata/useragents.txt")

const golden = "testdata/useragents.txt"

// TestGolden runs every case of testdata/useragents.txt. With -update it
// rewrites the expected columns from what Classify returns, so a change of
// rules or of the crawler list shows up as a reviewable diff of that file.
func TestGolden(t *testing.T) {
	data, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cases := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			out.WriteString(line + "\n")
			continue
		}
		cases++
		f := strings.Split(line, "\t")
		ua := dash(f[0])
		got := Classify(ua)
		gotLine := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%v", f[0], undash(got.Browser), undash(got.BrowserVersion),
			undash(got.OS), undash(got.OSVersion), undash(got.Device), got.Bot)
		out.WriteString(gotLine + "\n")
		if *update {
			continue
		}
		if len(f) != 7 {
			t.Errorf("%s:%d: want 7 tab-separated fields, have %d", golden, n, len(f))
			continue
		}
		if gotLine != line {
			t.Errorf("%s:%d: Classify(%q)\n got %s\nwant %s", golden, n, ua,
				strings.Join(strings.Split(gotLine, "\t")[1:], " | "), strings.Join(f[1:], " | "))
		}
	}
	if cases < 40 {
		t.Errorf("only %d cases in %s", cases, golden)
	}
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func dash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

func undash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Every literal of the crawler list must match a User-Agent that contains it
// where its anchors allow.
func TestCrawlerSetMatchesItsPatterns(t *testing.T) {
	for _, l := range crawlers.lits {
		ua := "Mozilla/5.0 (compatible; " + l.s + ")"
		switch {
		case l.begin && l.end:
			ua = l.s
		case l.begin:
			ua = l.s + " (x)"
		case l.end:
			ua = "Mozilla/5.0 (x) " + l.s
		}
		if !crawlers.match(ua) {
			t.Errorf("pattern %+v does not match %q", l, ua)
		}
	}
	if len(crawlers.lits) < 1000 || len(crawlers.res) > 20 {
		t.Errorf("%d literals and %d regexps: has the generator stopped reducing patterns?", len(crawlers.lits), len(crawlers.res))
	}
}

// Browsers must not trip the crawler list: a false positive there silently
// drops real visitors.
func TestBrowsersAreNotCrawlers(t *testing.T) {
	data, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		f := strings.Split(strings.TrimSpace(line), "\t")
		if len(f) == 7 && f[6] == "false" && crawlers.match(f[0]) {
			t.Errorf("browser matches the crawler list: %q", f[0])
		}
	}
}

func TestClassifyCached(t *testing.T) {
	ua := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	want := Classify(ua)
	if n := testing.AllocsPerRun(100, func() { Classify(ua) }); n != 0 {
		t.Errorf("cached Classify allocates %v times", n)
	}
	// The result must not depend on the caller's buffer: change it after
	// the call, as a reused request buffer would.
	buf := []byte(strings.Replace(ua, "Chrome/120", "Chrome/121", 1))
	first := Classify(string(buf))
	copy(buf, "XXXXXXXXXXXXXXXXXXXX")
	if got := Classify(strings.Replace(ua, "Chrome/120", "Chrome/121", 1)); got != first || got.BrowserVersion != "121" {
		t.Errorf("cached result changed: %+v, first %+v", got, first)
	}
	if got := Classify(ua); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestCacheBounded(t *testing.T) {
	c := newCache()
	for i := range shards * shardCap * 2 {
		c.put(fmt.Sprintf("ua %d", i), Info{})
	}
	for i := range c.shards {
		if n := len(c.shards[i].m); n > shardCap {
			t.Fatalf("shard %d holds %d entries", i, n)
		}
	}
	c.put(strings.Repeat("x", maxCached+1), Info{})
	if _, ok := c.get(strings.Repeat("x", maxCached+1)); ok {
		t.Error("over-long User-Agent was cached")
	}
}

var sink Info

func BenchmarkClassify(b *testing.B) {
	benches := []struct{ name, ua string }{
		{"chrome", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"},
		{"iphone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1"},
		{"googlebot", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; +http://www.google.com/bot.html) Chrome/120.0.6099.71 Safari/537.36"},
		{"ahrefs", "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)"},
	}
	for _, bb := range benches {
		b.Run(bb.name+"/cached", func(b *testing.B) {
			Classify(bb.ua)
			b.ReportAllocs()
			for b.Loop() {
				sink = Classify(bb.ua)
			}
		})
		b.Run(bb.name+"/uncached", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink = classify(bb.ua)
			}
		})
	}
	// The crawler list alone, on a browser (the worst case: no early exit).
	b.Run("crawlerlist/chrome", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if crawlers.match(benches[0].ua) {
				b.Fatal("browser matched")
			}
		}
	})
}

func FuzzClassify(f *testing.F) {
	f.Add("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36")
	f.Add("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1")
	f.Add("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
	f.Add("Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36")
	f.Add("curl/8.4.0")
	f.Add("")
	f.Add("Mozilla/5.0 (")
	f.Fuzz(func(t *testing.T, ua string) {
		info := Classify(ua)
		switch info.Device {
		case Desktop, Mobile, Tablet:
		default:
			t.Fatalf("device %q", info.Device)
		}
		if got := Classify(ua); got != info {
			t.Fatalf("second call gave %+v, first %+v", got, info)
		}
		if len(info.BrowserVersion) > 8 {
			t.Fatalf("browser version %q", info.BrowserVersion)
		}
	})
}

// Run with -race: the cache and the parser pool are shared by all requests.
func TestClassifyConcurrent(t *testing.T) {
	done := make(chan bool)
	for g := range 4 {
		go func() {
			for i := range 2000 {
				ua := fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36", 100+(i*(g+1))%50)
				if info := Classify(ua); info.Browser != "Chrome" || info.Bot {
					t.Errorf("Classify(%q) = %+v", ua, info)
					break
				}
			}
			done <- true
		}()
	}
	for range 4 {
		<-done
	}
}

// ClassifyBytes answers like Classify, and a cached User-Agent costs it no
// allocation (the header's bytes are looked up, not copied).
func TestClassifyBytes(t *testing.T) {
	ua := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	b := []byte(ua)
	if got, want := ClassifyBytes(b), Classify(ua); got != want {
		t.Fatalf("ClassifyBytes = %+v, Classify = %+v", got, want)
	}
	b[0] = 'X' // the cache must not alias the caller's bytes
	if got := Classify(ua); got.Browser != "Chrome" {
		t.Fatalf("the cached entry changed with the caller's buffer: %+v", got)
	}
	b[0] = 'M'
	if n := testing.AllocsPerRun(100, func() { ClassifyBytes(b) }); n != 0 {
		t.Errorf("a cache hit allocates %.0f times", n)
	}
}
