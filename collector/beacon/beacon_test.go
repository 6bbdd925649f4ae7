package beacon

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// pv is the smallest valid body; tests splice fields into it.
func pv(extra string) string {
	return `{"n":"pageview","u":"https://example.com/a","d":"example.com"` + extra + `}`
}

// want builds the expected Beacon for pv with changes applied.
func want(change func(*Beacon)) Beacon {
	b := Beacon{Name: "pageview", URL: "https://example.com/a", Domains: []string{"example.com"}, Interactive: true}
	if change != nil {
		change(&b)
	}
	return b
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Beacon
	}{
		{"short keys", pv(""), want(nil)},
		{"long keys", `{"name":"pageview","url":"https://example.com/a","domain":"example.com","referrer":"https://t.co/x","props":{"k":"v"},"revenue":{"currency":"EUR","amount":"9.99"},"interactive":true}`,
			want(func(b *Beacon) {
				b.Referrer = "https://t.co/x"
				b.PropKeys, b.PropValues = []string{"k"}, []string{"v"}
				b.RevenueCurrency, b.RevenueMicros = "EUR", 9_990_000
			})},
		{"plausible tracker body", `{"n":"pageview","u":"https://example.com/a?utm_source=nl","d":"example.com","r":null,"h":1,"v":25}`,
			want(func(b *Beacon) { b.URL = "https://example.com/a?utm_source=nl"; b.HashMode = true })},
		{"white space everywhere", " \n{ \"n\" : \"pageview\" ,\t\"u\":\"https://example.com/a\", \"d\" :\"example.com\" }\r\n", want(nil)},
		{"multi domain", pv(`,"d":" Example.com, shop.example.com ,,example.com,EXAMPLE.COM "`),
			want(func(b *Beacon) { b.Domains = []string{"example.com", "shop.example.com"} })},
		{"upper-case scheme and port", `{"n":"x","u":"HTTPS://Example.com:8443/p","d":"example.com"}`,
			want(func(b *Beacon) { b.Name, b.URL = "x", "HTTPS://Example.com:8443/p" })},
		{"ipv6 host", `{"n":"x","u":"http://[2001:db8::1]:80/","d":"example.com"}`,
			want(func(b *Beacon) { b.Name, b.URL = "x", "http://[2001:db8::1]:80/" })},
		{"numeric and bool props", pv(`,"p":{"n":42,"f":-1.50e2,"yes":true,"no":false,"s":"x"}`),
			want(func(b *Beacon) {
				b.PropKeys = []string{"n", "f", "yes", "no", "s"}
				b.PropValues = []string{"42", "-1.50e2", "true", "false", "x"}
			})},
		{"dropped props", pv(`,"p":{"null":null,"empty":"","obj":{"a":[1,{"b":2}]},"arr":[],"":"nokey","k":"v"}`),
			want(func(b *Beacon) { b.PropKeys, b.PropValues = []string{"k"}, []string{"v"} })},
		{"duplicate prop keys: last wins", pv(`,"p":{"k":"1","j":"2","k":"3"}`),
			want(func(b *Beacon) { b.PropKeys, b.PropValues = []string{"k", "j"}, []string{"3", "2"} })},
		{"props as JSON string", pv(`,"p":"{\"k\":\"v\",\"n\":1}"`),
			want(func(b *Beacon) { b.PropKeys, b.PropValues = []string{"k", "n"}, []string{"v", "1"} })},
		{"props null", pv(`,"p":null`), want(nil)},
		{"props empty", pv(`,"p":{}`), want(nil)},
		{"30 props", pv(`,"p":{` + props(30, 1, 1) + `}`), want(func(b *Beacon) {
			for i := range 30 {
				b.PropKeys = append(b.PropKeys, fmt.Sprintf("k%d", i))
				b.PropValues = append(b.PropValues, "v")
			}
		})},
		{"prop at limits", pv(`,"p":{"` + strings.Repeat("k", 300) + `":"` + strings.Repeat("é", 1000) + `"}`),
			want(func(b *Beacon) {
				b.PropKeys, b.PropValues = []string{strings.Repeat("k", 300)}, []string{strings.Repeat("é", 1000)}
			})},
		{"revenue number", pv(`,"$":{"currency":"usd","amount":1322.22}`),
			want(func(b *Beacon) { b.RevenueCurrency, b.RevenueMicros = "USD", 1_322_220_000 })},
		{"revenue string", pv(`,"revenue":{"amount":" 0.1 ","currency":"XOF"}`),
			want(func(b *Beacon) { b.RevenueCurrency, b.RevenueMicros = "XOF", 100_000 })},
		{"revenue as JSON string", pv(`,"$":"{\"currency\":\"EUR\",\"amount\":\"5\"}"`),
			want(func(b *Beacon) { b.RevenueCurrency, b.RevenueMicros = "EUR", 5_000_000 })},
		{"revenue null", pv(`,"$":null`), want(nil)},
		{"revenue empty object", pv(`,"$":{}`), want(nil)},
		{"not interactive", pv(`,"i":false`), want(func(b *Beacon) { b.Interactive = false })},
		{"hash mode number", pv(`,"h":1`), want(func(b *Beacon) { b.HashMode = true })},
		{"hash mode bool", pv(`,"hashMode":true`), want(func(b *Beacon) { b.HashMode = true })},
		{"hash mode off", pv(`,"h":0`), want(func(b *Beacon) {})},
		{"interactive null", pv(`,"interactive":null`), want(nil)},
		{"escapes and unicode", `{"n":"sign\u0020up \"now\"","u":"https://example.com/caf\u00e9/\ud83d\ude00","d":"example.com","r":"https:\/\/t.co\/x"}`,
			want(func(b *Beacon) {
				b.Name, b.URL, b.Referrer = `sign up "now"`, "https://example.com/café/😀", "https://t.co/x"
			})},
		{"unknown fields skipped", pv(`,"x":{"a":[1,2,{"b":"\n"}],"c":null},"y":-0.5e-3,"z":"\u0000"`), want(nil)},
		{"later duplicate wins", `{"n":"a","n":"b","u":"https://example.com/a","d":"example.com"}`,
			want(func(b *Beacon) { b.Name = "b" })},
		{"long referrer is cut", pv(`,"r":"https://t.co/` + strings.Repeat("é", 1100) + `"`),
			want(func(b *Beacon) { b.Referrer = ("https://t.co/" + strings.Repeat("é", 1100))[:1999] })},
		{"name at limit", `{"n":"` + strings.Repeat("n", 120) + `","u":"https://example.com/a","d":"example.com"}`,
			want(func(b *Beacon) { b.Name = strings.Repeat("n", 120) })},
		{"url at limit", `{"n":"pageview","u":"https://example.com/` + strings.Repeat("a", 2000-20) + `","d":"example.com"}`,
			want(func(b *Beacon) { b.URL = "https://example.com/" + strings.Repeat("a", 2000-20) })},
		{"ten domains", pv(`,"d":"` + domains(10) + `"`), want(func(b *Beacon) {
			b.Domains = strings.Split(domains(10), ",")
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			got, err := Parse(body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse:\n got %#v\nwant %#v", got, tt.want)
			}
			// The result must survive fasthttp reusing the buffer.
			for i := range body {
				body[i] = 'X'
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("result aliases the body: %#v", got)
			}
		})
	}
}

func props(n, keyLen, valLen int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d%s":"%s"`, i, strings.Repeat("k", keyLen-1), strings.Repeat("v", valLen))
	}
	return b.String()
}

func domains(n int) string {
	d := make([]string, n)
	for i := range d {
		d[i] = fmt.Sprintf("site%d.example", i)
	}
	return strings.Join(d, ",")
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		reason string
	}{
		{"empty body", ``, "malformed_json"},
		{"not an object", `["pageview"]`, "malformed_json"},
		{"truncated", `{"n":"pageview","u":"https://exa`, "malformed_json"},
		{"trailing garbage", pv("") + `x`, "malformed_json"},
		{"two objects", pv("") + pv(""), "malformed_json"},
		{"trailing comma", `{"n":"pageview",}`, "malformed_json"},
		{"single quotes", `{'n':'pageview'}`, "malformed_json"},
		{"raw newline in string", "{\"n\":\"page\nview\"}", "malformed_json"},
		{"bad escape", `{"n":"\x41"}`, "malformed_json"},
		{"bad number", pv(`,"p":{"k":01}`), "malformed_json"},
		{"bad literal", pv(`,"i":tru`), "malformed_json"},
		{"deep nesting", pv(`,"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40)), "malformed_json"},
		{"name is a number", `{"n":1,"u":"https://example.com/a","d":"example.com"}`, "wrong_type"},
		{"interactive is a string", pv(`,"i":"no"`), "wrong_type"},
		{"hash mode is a string", pv(`,"h":"x"`), "wrong_type"},
		{"missing name", `{"u":"https://example.com/a","d":"example.com"}`, "missing_name"},
		{"empty name", `{"n":"","u":"https://example.com/a","d":"example.com"}`, "missing_name"},
		{"null name", `{"n":null,"u":"https://example.com/a","d":"example.com"}`, "missing_name"},
		{"missing url", `{"n":"pageview","d":"example.com"}`, "missing_url"},
		{"missing domain", `{"n":"pageview","u":"https://example.com/a"}`, "missing_domain"},
		{"blank domain", pv(`,"d":" , "`), "missing_domain"},
		{"relative url", `{"n":"pageview","u":"/a","d":"example.com"}`, "bad_url"},
		{"no host", `{"n":"pageview","u":"https:///a","d":"example.com"}`, "bad_url"},
		{"one slash", `{"n":"pageview","u":"https:/example.com","d":"example.com"}`, "bad_url"},
		{"space in host", `{"n":"pageview","u":"https://exa mple.com/","d":"example.com"}`, "bad_url"},
		{"bad port", `{"n":"pageview","u":"https://example.com:80a/","d":"example.com"}`, "bad_url"},
		{"bad ipv6", `{"n":"pageview","u":"https://[zz::1]/","d":"example.com"}`, "bad_url"},
		{"ftp", `{"n":"pageview","u":"ftp://example.com/a","d":"example.com"}`, "url_scheme"},
		{"javascript", `{"n":"pageview","u":"javascript:alert(1)","d":"example.com"}`, "url_scheme"},
		{"too large", pv(`,"x":"` + strings.Repeat("a", MaxBody) + `"`), "too_large"},
		{"31 props", pv(`,"p":{` + props(31, 1, 1) + `}`), "too_many_props"},
		{"prop key too long", pv(`,"p":{"` + strings.Repeat("k", 301) + `":"v"}`), "prop_too_long"},
		{"prop value too long", pv(`,"p":{"k":"` + strings.Repeat("v", 2001) + `"}`), "prop_too_long"},
		{"props is an array", pv(`,"p":["k","v"]`), "bad_props"},
		{"props string is not an object", pv(`,"p":"k=v"`), "bad_props"},
		{"url too long", `{"n":"pageview","u":"https://example.com/` + strings.Repeat("a", 2000-19) + `","d":"example.com"}`, "url_too_long"},
		{"name too long", `{"n":"` + strings.Repeat("n", 121) + `","u":"https://example.com/a","d":"example.com"}`, "name_too_long"},
		{"domain too long", pv(`,"d":"` + strings.Repeat("d", 254) + `"`), "domain_too_long"},
		{"eleven domains", pv(`,"d":"` + domains(11) + `"`), "too_many_domains"},
		{"invalid utf-8", "{\"n\":\"page\xffview\",\"u\":\"https://example.com/a\",\"d\":\"example.com\"}", "invalid_utf8"},
		{"invalid utf-8 in skipped field", pv(",\"x\":\"\xc3\x28\""), "invalid_utf8"},
		{"lone surrogate", `{"n":"\ud800","u":"https://example.com/a","d":"example.com"}`, "invalid_utf8"},
		{"reversed surrogates", `{"n":"\udc00\ud800","u":"https://example.com/a","d":"example.com"}`, "invalid_utf8"},
		{"escaped newline in name", `{"n":"page\nview","u":"https://example.com/a","d":"example.com"}`, "control_chars"},
		{"NUL in url", `{"n":"pageview","u":"https://example.com/\u0000","d":"example.com"}`, "control_chars"},
		{"tab in domain", pv(`,"d":"example.com\t"`), "control_chars"},
		{"DEL in referrer", pv(`,"r":"https://t.co/\u007f"`), "control_chars"},
		{"C1 in prop value", pv(`,"p":{"k":"a\u0085b"}`), "control_chars"},
		{"control in prop key", pv(`,"p":{"k\u0001":"v"}`), "control_chars"},
		{"RLO in name", `{"n":"gnp.\u202eexe","u":"https://example.com/a","d":"example.com"}`, "bidi_controls"},
		{"raw RLO in name", "{\"n\":\"sign\u202eup\",\"u\":\"https://example.com/a\",\"d\":\"example.com\"}", "bidi_controls"},
		{"LRE in prop value", pv(`,"p":{"k":"a\u202ab"}`), "bidi_controls"},
		{"PDI in prop key", pv(`,"p":{"k\u2069":"v"}`), "bidi_controls"},
		{"isolate in prop value", pv(`,"p":{"k":"\u2066x"}`), "bidi_controls"},
		{"RLM in name", `{"n":"a\u200fb","u":"https://example.com/a","d":"example.com"}`, "bidi_controls"},
		{"LRM in name", `{"n":"a\u200eb","u":"https://example.com/a","d":"example.com"}`, "bidi_controls"},
		{"Arabic letter mark in prop", pv(`,"p":{"k":"a\u061cb"}`), "bidi_controls"},
		{"raw C1 byte", "{\"n\":\"a\xc2\x9fb\",\"u\":\"https://example.com/a\",\"d\":\"example.com\"}", "control_chars"},
		{"revenue without currency", pv(`,"$":{"amount":"1"}`), "bad_revenue"},
		{"revenue without amount", pv(`,"$":{"currency":"EUR"}`), "bad_revenue"},
		{"revenue bad currency", pv(`,"$":{"currency":"EURO","amount":"1"}`), "bad_revenue"},
		{"revenue currency digits", pv(`,"$":{"currency":"E1R","amount":"1"}`), "bad_revenue"},
		{"revenue comma decimal", pv(`,"$":{"currency":"EUR","amount":"9,99"}`), "bad_revenue"},
		{"revenue amount bool", pv(`,"$":{"currency":"EUR","amount":true}`), "bad_revenue"},
		{"revenue overflow", pv(`,"$":{"currency":"EUR","amount":"9300000000000"}`), "bad_revenue"},
		{"revenue is a number", pv(`,"$":12`), "bad_revenue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse([]byte(tt.body))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse = %#v, %v; want *Error %s", b, err, tt.reason)
			}
			if e.Reason != tt.reason {
				t.Errorf("reason %q (%s), want %q", e.Reason, e.Msg, tt.reason)
			}
			wantStatus := 400
			if tt.reason == "too_large" {
				wantStatus = 413
			}
			if e.Status != wantStatus {
				t.Errorf("status %d, want %d", e.Status, wantStatus)
			}
			if !reflect.DeepEqual(b, Beacon{}) {
				t.Errorf("non-zero Beacon with an error: %#v", b)
			}
		})
	}
}

func TestParseMicros(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"9.99", 9_990_000, true},
		{"0.1", 100_000, true},
		{"1322.22", 1_322_220_000, true},
		{"-3", -3_000_000, true},
		{"0", 0, true},
		{"-0", 0, true},
		{"000.000", 0, true},
		{"0.05", 50_000, true},
		{"1.5e2", 150_000_000, true},
		{"15E-1", 1_500_000, true},
		{"1e-6", 1, true},
		{"1e-7", 0, true},
		{"0.0000005", 1, true}, // half rounds away from zero
		{"0.00000049", 0, true},
		{"-0.0000005", -1, true},
		{"1.2345678", 1_234_568, true},
		{"0.1234564999", 123_456, true},
		{".5", 500_000, true},
		{"5.", 5_000_000, true},
		{"9223372.036854", 9_223_372_036_854, true},
		{"9223372036854.775807", 9_223_372_036_854_775_807, true},
		{"9223372036854.7758075", 0, false}, // rounding overflows
		{"9223372036854.775808", 0, false},
		{"1e13", 0, false},
		{"1e-1000", 0, true},
		{"1e999999999", 0, false},
		{"", 0, false},
		{"-", 0, false},
		{".", 0, false},
		{"1e", 0, false},
		{"1e+", 0, false},
		{"+1", 0, false},
		{"1,5", 0, false},
		{"1.2.3", 0, false},
		{"0x10", 0, false},
		{"NaN", 0, false},
		{"Infinity", 0, false},
		{strings.Repeat("1", 65), 0, false},
	}
	for _, tt := range tests {
		got, ok := parseMicros([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseMicros(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		name   string
		query  string
		want   Beacon
		reason string
	}{
		{name: "short", query: "n=pageview&u=https%3A%2F%2Fexample.com%2Fa&d=example.com", want: want(nil)},
		{name: "long", query: "name=pageview&url=https://example.com/a&domain=Example.com,b.example&referrer=https://t.co/x&interactive=false",
			want: want(func(b *Beacon) {
				b.Domains, b.Referrer, b.Interactive = []string{"example.com", "b.example"}, "https://t.co/x", false
			})},
		{name: "props and revenue", query: "n=pageview&u=https://example.com/a&d=example.com&i=1&" +
			url.Values{"p": {`{"k":"v","n":2}`}, "$": {`{"currency":"eur","amount":2.5}`}}.Encode(),
			want: want(func(b *Beacon) {
				b.PropKeys, b.PropValues = []string{"k", "n"}, []string{"v", "2"}
				b.RevenueCurrency, b.RevenueMicros = "EUR", 2_500_000
			})},
		{name: "missing name", query: "u=https://example.com/a&d=example.com", reason: "missing_name"},
		{name: "missing domain", query: "n=pageview&u=https://example.com/a", reason: "missing_domain"},
		{name: "bad url", query: "n=pageview&u=example.com&d=example.com", reason: "bad_url"},
		{name: "control chars", query: "n=page%0Aview&u=https://example.com/a&d=example.com", reason: "control_chars"},
		{name: "invalid utf-8", query: "n=page%FFview&u=https://example.com/a&d=example.com", reason: "invalid_utf8"},
		{name: "bad props", query: "n=pageview&u=https://example.com/a&d=example.com&p=k%3Dv", reason: "bad_props"},
		{name: "malformed props", query: "n=pageview&u=https://example.com/a&d=example.com&p=%7B", reason: "malformed_json"},
		{name: "bad interactive", query: "n=pageview&u=https://example.com/a&d=example.com&i=no", reason: "wrong_type"},
		{name: "too large", query: "n=pageview&u=https://example.com/a&d=example.com&r=" + strings.Repeat("a", MaxBody+1), reason: "too_large"},
		{name: "name too long", query: "n=" + strings.Repeat("n", 121) + "&u=https://example.com/a&d=example.com", reason: "name_too_long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseQuery(q.Get)
			if tt.reason != "" {
				var e *Error
				if !errors.As(err, &e) || e.Reason != tt.reason {
					t.Fatalf("ParseQuery = %v, want reason %q", err, tt.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseQuery:\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

// TestParseQueryCopies guards the promise that get may return strings over a
// reused buffer, as an unsafe []byte-to-string view of fasthttp's args does.
func TestParseQueryCopies(t *testing.T) {
	buf := []byte("pageview")
	get := func(key string) string {
		switch key {
		case "n":
			return string(buf) // stands in for an aliasing view; the check below mutates buf
		case "u":
			return "https://example.com/a"
		case "d":
			return "example.com"
		}
		return ""
	}
	b, err := ParseQuery(get)
	if err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXXXXX")
	if b.Name != "pageview" {
		t.Errorf("Name = %q", b.Name)
	}
}

var sampleBody = []byte(`{"n":"pageview","u":"https://example.com/blog/post-1?utm_source=newsletter&utm_medium=email","d":"example.com","r":"https://www.google.com/","p":{"author":"ana","words":1200,"logged_in":false},"h":0}`)

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct {
		name string
		body []byte
	}{
		{"pageview", []byte(pv(`,"r":"https://www.google.com/"`))},
		{"props", sampleBody},
		{"revenue", []byte(pv(`,"n":"Purchase","$":{"currency":"EUR","amount":"49.90"},"p":{"plan":"pro"}`))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.body)))
			for b.Loop() {
				if _, err := Parse(bc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("reject", func(b *testing.B) {
		body := []byte(`{"n":"pageview","u":"ftp://example.com/","d":"example.com"}`)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Parse(body); err == nil {
				b.Fatal("accepted")
			}
		}
	})
}

func BenchmarkParsePage(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePage("https://Example.com/blog/post-1?utm_source=newsletter&utm_medium=email&utm_campaign=spring+sale", false); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBidiOnlyControls: text in right-to-left scripts and typographic
// punctuation next to the controls' encodings are kept.
func TestBidiOnlyControls(t *testing.T) {
	for _, name := range []string{"تسجيل", "עברית", "a…b", "a–b", "“q”", "a\u2060b", "\u061b"} {
		if _, err := Parse([]byte(`{"n":"` + name + `","u":"https://example.com/a","d":"example.com"}`)); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
}
