package linksign

import (
	"slices"
	"strings"
	"testing"
)

func TestSignVerify(t *testing.T) {
	k1, k2 := &Key{1}, &Key{2}
	l := Link{Kind: Click, Site: "example.com", Campaign: "nieuwsbrief-2026-12", URL: "https://example.com/huren?a=1&b=2"}
	tok := Sign(k1, l)
	if got, ok := Verify([]*Key{k2, k1}, tok, Click); !ok || got != l {
		t.Fatalf("Verify = %+v, %v; want %+v", got, ok, l)
	}
	if _, ok := Verify([]*Key{k1}, tok, Open); ok {
		t.Error("a click token verified as a pixel")
	}
	if _, ok := Verify([]*Key{k2}, tok, Click); ok {
		t.Error("verified with the wrong key")
	}
	if _, ok := Verify(nil, tok, Click); ok {
		t.Error("verified without keys")
	}
	// Every single-character change of the token is refused, including a
	// change of the padding bits of the last character.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
	for i := range tok {
		for _, c := range []byte(alphabet) {
			if c == tok[i] {
				continue
			}
			b := []byte(tok)
			b[i] = c
			if _, ok := Verify([]*Key{k1}, string(b), Click); ok {
				t.Errorf("tampered token (byte %d -> %c) verified", i, c)
			}
		}
	}
	// A forged destination under a copied MAC.
	evil := Sign(k2, Link{Kind: Click, Site: "example.com", Campaign: "x", URL: "https://evil.example/"})
	p, _, _ := strings.Cut(evil, ".")
	_, m, _ := strings.Cut(tok, ".")
	if _, ok := Verify([]*Key{k1}, p+"."+m, Click); ok {
		t.Error("forged payload verified")
	}
	o := Link{Kind: Open, Site: "example.com", Campaign: "c"}
	if got, ok := Verify([]*Key{k1}, Sign(k1, o), Open); !ok || got != o {
		t.Errorf("pixel: %+v, %v", got, ok)
	}
}

func TestTokenOf(t *testing.T) {
	for _, c := range []struct {
		path, tok string
		k         Kind
		ok        bool
	}{
		{"/l/abc.def", "abc.def", Click, true},
		{"/o/abc.def.gif", "abc.def", Open, true},
		{"/o/abc.def", "", 0, false},
		{"/api/event", "", 0, false},
	} {
		tok, k, ok := TokenOf(c.path)
		if tok != c.tok || k != c.k || ok != c.ok {
			t.Errorf("TokenOf(%q) = %q, %c, %v", c.path, tok, k, ok)
		}
	}
}

func TestClean(t *testing.T) {
	for _, c := range []struct {
		in, want string
		dropped  []string
	}{
		{"https://example.com/huren", "https://example.com/huren", nil},
		{"https://example.com/huren?email=jan%40example.nl&wijk=noord", "https://example.com/huren?wijk=noord", []string{"email"}},
		{"https://example.com/?mc_cid=abc&mc_eid=123456&e=x", "https://example.com/?mc_cid=abc", []string{"mc_eid", "e"}},
		{"https://example.com/?uid=7&subscriber=9&recipient=3&contact_id=5&_hsenc=p2&mkt_tok=z#top", "https://example.com/#top", []string{"uid", "subscriber", "recipient", "contact_id", "_hsenc", "mkt_tok"}},
		{"https://example.com/?who=jan@example.nl&utm_content=a", "https://example.com/?utm_content=a", []string{"who"}},
	} {
		got, dropped, err := Clean(c.in)
		if err != nil || got != c.want || !slices.Equal(dropped, c.dropped) {
			t.Errorf("Clean(%q) = %q, %v, %v; want %q, %v", c.in, got, dropped, err, c.want, c.dropped)
		}
	}
	for _, bad := range []string{"javascript:alert(1)", "/huren", "https://user:pw@example.com/", "ftp://example.com/", ""} {
		if _, _, err := Clean(bad); err == nil {
			t.Errorf("Clean(%q) accepted", bad)
		}
	}
	if err := CheckCampaign("jan@example.nl"); err == nil {
		t.Error("an e-mail address accepted as campaign")
	}
}

func TestDestination(t *testing.T) {
	sites := map[string]bool{"example.com": true}
	utm := "utm_source=newsletter&utm_medium=email&utm_campaign=nieuwsbrief-2026-12"
	for _, c := range []struct{ in, want string }{
		{"https://example.com/huren", "https://example.com/huren?" + utm},
		{"https://www.example.com/huren?wijk=noord#kaart", "https://www.example.com/huren?wijk=noord&" + utm + "#kaart"},
		{"https://example.com/huren?utm_source=x", "https://example.com/huren?utm_source=x"},
		{"https://elsewhere.example/", "https://elsewhere.example/"},
	} {
		if got := Destination(Link{Kind: Click, Campaign: "nieuwsbrief-2026-12", URL: c.in}, sites); got != c.want {
			t.Errorf("Destination(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
