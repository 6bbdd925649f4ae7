package beacon

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that Parse never panics and that whatever it accepts
// keeps every promise of the Beacon doc comments. The corpus it found is
// kept in testdata/fuzz/FuzzParse and replays with a plain `go test`.
//
//	go test ./collector/beacon/ -run '^$' -fuzz FuzzParse -fuzztime 60s
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		pv(""),
		string(sampleBody),
		`{"name":"pageview","url":"https://example.com/a?utm_source=nl","domain":"example.com","referrer":"https://t.co/x","props":{"k":"v"},"revenue":{"currency":"EUR","amount":"9.99"},"interactive":true}`,
		pv(`,"d":"a.com, B.com,a.com"`),
		pv(`,"p":"{\"k\":1}","$":"{\"currency\":\"usd\",\"amount\":1e-7}"`),
		pv(`,"p":{"k":null,"o":{},"a":[1],"t":true,"n":-0.5E+3}`),
		`{"n":"\ud83d\ude00\u00e9\/","u":"http://[::1]:80/p?q#f","d":"x"}`,
		`{"n":"a","u":"https://x.y","d":"x","x":[[[{"a":"\u0000"}]]]}`,
		`{"n":"a\u0085","u":"ftp://x","d":""}`,
		"{\"n\":\"\xff\"}",
		`[]`, ``, `{`, `{"n":`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := Parse(body)
		if err != nil {
			e, ok := err.(*Error)
			if !ok || e.Reason == "" || (e.Status != 400 && e.Status != 413) {
				t.Fatalf("error %#v is not a proper *Error", err)
			}
			if !reflect.DeepEqual(b, Beacon{}) {
				t.Fatalf("non-zero Beacon with error %v", err)
			}
			return
		}
		if len(body) > MaxBody {
			t.Fatalf("accepted %d bytes", len(body))
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		checkBeacon(t, b)

		// Nothing may alias body: scribble over it and compare with a copy.
		saved := cloneBeacon(b)
		for i := range body {
			body[i] ^= 0xff
		}
		if !reflect.DeepEqual(b, saved) {
			t.Fatalf("result changed with the body: %#v", b)
		}

		for _, frag := range []bool{false, true} {
			pg, err := ParsePage(b.URL, frag)
			if err != nil {
				t.Fatalf("accepted URL %q fails ParsePage: %v", b.URL, err)
			}
			assertText(t, "host", pg.Host, 0)
			assertText(t, "path", pg.Path, MaxPath)
			c := pg.Campaign
			for _, v := range []string{c.Source, c.Medium, c.Campaign, c.Content, c.Term} {
				assertText(t, "campaign", v, MaxCampaign)
			}
		}
	})
}

func checkBeacon(t *testing.T, b Beacon) {
	t.Helper()
	if b.Name == "" || b.URL == "" {
		t.Fatalf("empty name or url: %#v", b)
	}
	assertText(t, "name", b.Name, MaxName)
	assertText(t, "url", b.URL, MaxURL)
	assertText(t, "referrer", b.Referrer, MaxReferrer)
	if len(b.Domains) == 0 || len(b.Domains) > MaxDomains {
		t.Fatalf("%d domains", len(b.Domains))
	}
	for i, d := range b.Domains {
		assertText(t, "domain", d, MaxDomain)
		if d == "" || d != strings.ToLower(d) || d != strings.TrimSpace(d) || strings.Contains(d, ",") || slices.Contains(b.Domains[:i], d) {
			t.Fatalf("bad domain %q in %q", d, b.Domains)
		}
	}
	if len(b.PropKeys) != len(b.PropValues) || len(b.PropKeys) > MaxProps {
		t.Fatalf("%d prop keys, %d values", len(b.PropKeys), len(b.PropValues))
	}
	for i, k := range b.PropKeys {
		assertText(t, "prop key", k, MaxPropKey)
		assertText(t, "prop value", b.PropValues[i], MaxPropValue)
		if k == "" || b.PropValues[i] == "" || slices.Contains(b.PropKeys[:i], k) {
			t.Fatalf("bad prop %q=%q", k, b.PropValues[i])
		}
	}
	switch c := b.RevenueCurrency; {
	case c == "":
		if b.RevenueMicros != 0 {
			t.Fatalf("revenue %d without currency", b.RevenueMicros)
		}
	case len(c) != 3 || strings.ToUpper(c) != c || strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "":
		t.Fatalf("bad currency %q", c)
	}
}

func assertText(t *testing.T, field, s string, max int) {
	t.Helper()
	if max > 0 && len(s) > max {
		t.Fatalf("%s is %d bytes, over %d", field, len(s), max)
	}
	if !utf8.ValidString(s) {
		t.Fatalf("%s %q is not UTF-8", field, s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			t.Fatalf("%s %q has control character %U", field, s, r)
		}
	}
}

func cloneBeacon(b Beacon) Beacon {
	c := b
	c.Name, c.URL, c.Referrer = strings.Clone(b.Name), strings.Clone(b.URL), strings.Clone(b.Referrer)
	c.Domains = cloneStrings(b.Domains)
	c.PropKeys, c.PropValues = cloneStrings(b.PropKeys), cloneStrings(b.PropValues)
	return c
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strings.Clone(v)
	}
	return out
}
