package referrer

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode"
)

var update = flag.Bool("update", false, "rewrite the expected columns of testdata/referrers.txt")

const golden = "testdata/referrers.txt"

// TestGolden runs every case of testdata/referrers.txt. With -update it
// rewrites the expected columns from what Classify returns, so a change of
// rules shows up as a reviewable diff of that file.
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
		f := strings.Split(line, "\t")
		if len(f) != 6 {
			t.Fatalf("%s:%d: want 6 tab-separated fields, have %d", golden, n, len(f))
		}
		cases++
		ref, page := dash(f[0]), dash(f[1])
		c, err := parseCampaign(dash(f[2]))
		if err != nil {
			t.Fatalf("%s:%d: %v", golden, n, err)
		}
		got := Classify(ref, page, c)
		want := Result{Source: f[3], Channel: f[4], Host: dash(f[5])}
		if got.Source != want.Source || got.Channel != want.Channel || got.Host != want.Host {
			if !*update {
				t.Errorf("%s:%d: Classify(%q, %q, %+v)\n got source=%q channel=%q host=%q\nwant source=%q channel=%q host=%q",
					golden, n, ref, page, c, got.Source, got.Channel, got.Host, want.Source, want.Channel, want.Host)
			}
		}
		fmt.Fprintf(&out, "%s\t%s\t%s\t%s\t%s\t%s\n", f[0], f[1], f[2], got.Source, got.Channel, undash(got.Host))
	}
	if cases < 60 {
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

func parseCampaign(q string) (Campaign, error) {
	v, err := url.ParseQuery(q)
	if err != nil {
		return Campaign{}, fmt.Errorf("bad campaign %q: %w", q, err)
	}
	return Campaign{
		Source: v.Get("utm_source"), Medium: v.Get("utm_medium"), Campaign: v.Get("utm_campaign"),
		Content: v.Get("utm_content"), Term: v.Get("utm_term"), ClickID: v.Get("click"),
	}, nil
}

func TestPath(t *testing.T) {
	tests := []struct{ ref, path string }{
		{"https://t.co/AbC?x=1#y", "/AbC"},
		{"https://example.org", "/"},
		{"https://example.org?q=1", "/"},
		{"https://example.org/a/b/", "/a/b/"},
		{"https://example.org/" + strings.Repeat("é", 400), "/" + strings.Repeat("é", 249)},
		{"https://example.com/self", ""},
		{"garbage", ""},
	}
	for _, tt := range tests {
		got := Classify(tt.ref, "example.com", Campaign{}).Path
		if got != tt.path {
			t.Errorf("Classify(%q).Path = %q, want %q", tt.ref, got, tt.path)
		}
		if len(got) > MaxPath {
			t.Errorf("Classify(%q).Path is %d bytes", tt.ref, len(got))
		}
	}
}

func TestClassifyDoesNotAllocate(t *testing.T) {
	c := Campaign{Source: "Newsletter", Medium: "Email", Campaign: "spring-sale"}
	for _, ref := range []string{"https://l.facebook.com/l.php?u=x", "https://www.google.co.uk/", "https://blog.example.org/post"} {
		if n := testing.AllocsPerRun(100, func() { Classify(ref, "example.com", Campaign{}) }); n != 0 {
			t.Errorf("Classify(%q) allocates %v times", ref, n)
		}
		if n := testing.AllocsPerRun(100, func() { Classify(ref, "example.com", c) }); n != 0 {
			t.Errorf("Classify(%q, campaign) allocates %v times", ref, n)
		}
	}
}

var sink Result

func BenchmarkClassify(b *testing.B) {
	benches := []struct {
		name, ref string
		c         Campaign
	}{
		{"direct", "", Campaign{}},
		{"facebook", "https://l.facebook.com/l.php?u=https%3A%2F%2Fexample.com%2F&h=AT0abc", Campaign{}},
		{"google-cctld", "https://www.google.co.uk/", Campaign{}},
		{"unknown", "https://blog.someone.example.org/2024/01/a-post", Campaign{}},
		{"self", "https://www.example.com/pricing", Campaign{}},
		{"utm", "https://t.co/abc", Campaign{Source: "Newsletter", Medium: "email", Campaign: "spring"}},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink = Classify(bb.ref, "example.com", bb.c)
			}
		})
	}
}

func FuzzClassify(f *testing.F) {
	f.Add("https://l.facebook.com/l.php?u=x", "example.com", "", "", "")
	f.Add("android-app://com.google.android.gm", "example.com", "", "", "")
	f.Add("https://WWW.Google.CO.UK./x?y#z", "www.example.com:443", "fb_ads", "CPC", "cross-network")
	f.Add("http://[::1]:80/", "[::1]", "newsletter", "e-mail", "shop")
	f.Add("garbage", "", "x (twitter)", "", "")
	f.Fuzz(func(t *testing.T, ref, page, source, medium, campaign string) {
		r := Classify(ref, page, Campaign{Source: source, Medium: medium, Campaign: campaign})
		if !slices.Contains(Channels, r.Channel) {
			t.Fatalf("unknown channel %q", r.Channel)
		}
		if strings.IndexFunc(r.Host, unicode.IsUpper) >= 0 {
			t.Fatalf("host %q has upper case", r.Host)
		}
		if strings.HasPrefix(r.Host, "www.") {
			t.Fatalf("host %q starts with www.", r.Host)
		}
		if len(r.Path) > MaxPath {
			t.Fatalf("path is %d bytes", len(r.Path))
		}
		if r.Source == "" {
			t.Fatal("empty source")
		}
		if (r.Host == "") != (r.Path == "") {
			t.Fatalf("host %q and path %q disagree", r.Host, r.Path)
		}
		if r.Channel == Direct && r.Source != DirectNone {
			t.Fatalf("direct visit with source %q", r.Source)
		}
	})
}
