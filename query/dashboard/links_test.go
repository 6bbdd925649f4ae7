package dashboard

import (
	"context"
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"turf/internal/linksign"
)

// TestLinkPage: staff make links and pixels on /links, signed with the key
// shared through ClickHouse (so the collector, which loads the same key,
// verifies them); bad input, a missing CSRF token, another origin, a site
// the user may not read and a visitor without a session get nothing.
func TestLinkPage(t *testing.T) {
	e := newEnv(t, Config{PublicURL: "https://stats.example.org/"})
	e.addUser("ann", "a.example")
	cookie, csrf := e.login("ann")
	origin := map[string]string{"Origin": "http://turf.test"}
	post := func(form url.Values, hdr map[string]string) (int, string) {
		c, ok := e.do(req{method: "POST", uri: "/links?lang=en", body: form.Encode(), cookie: cookie, hdr: hdr})
		if !ok {
			t.Fatal("Handle did not answer /links")
		}
		return c.Response.StatusCode(), string(c.Response.Body())
	}
	made := regexp.MustCompile(`id="made" readonly value="([^"]+)"`)
	form := func(kind, site, campaign, dest string) url.Values {
		return url.Values{"csrf": {csrf}, "kind": {kind}, "site": {site}, "campaign": {campaign}, "url": {dest}}
	}

	// The collector's view: the keys as another instance loads them.
	keys := linksign.NewKeys(e.db.Conn, e.db.Name, time.Now)
	verify := func(u string, k linksign.Kind) linksign.Link {
		t.Helper()
		rest, ok := strings.CutPrefix(u, "https://stats.example.org/")
		if !ok {
			t.Fatalf("link %q is not on the public URL", u)
		}
		tok, kind, ok := linksign.TokenOf("/" + rest)
		if !ok || kind != k {
			t.Fatalf("link %q: not a %c path", u, k)
		}
		if err := keys.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		l, ok := linksign.Verify(keys.Verifiers(), tok, k)
		if !ok {
			t.Fatalf("link %q does not verify with the shared key", u)
		}
		return l
	}

	code, page := post(form("link", "a.example", "nieuwsbrief-2026-12", "https://a.example/huren?mc_eid=abc123&x=1"), origin)
	m := made.FindStringSubmatch(page)
	if code != 200 || m == nil {
		t.Fatalf("making a link: %d %s", code, page)
	}
	if l := verify(html.UnescapeString(m[1]), linksign.Click); l.Campaign != "nieuwsbrief-2026-12" || l.URL != "https://a.example/huren?x=1" || l.Site != "a.example" {
		t.Errorf("link stands for %+v", l)
	}
	if !strings.Contains(page, "mc_eid") || !strings.Contains(page, "Copy") {
		t.Error("the page does not warn about the dropped recipient parameter or has no copy button")
	}

	// A pixel, on the Dutch page, with the HTML to paste.
	c, _ := e.do(req{method: "POST", uri: "/links?lang=nl", body: form("pixel", "a.example", "nieuwsbrief-2026-12", "").Encode(), cookie: cookie, hdr: origin})
	page = string(c.Response.Body())
	m = made.FindStringSubmatch(page)
	if c.Response.StatusCode() != 200 || m == nil || !strings.Contains(page, "Kopiëren") || !strings.Contains(page, "&lt;img src=") {
		t.Fatalf("making a pixel: %d %s", c.Response.StatusCode(), page)
	}
	if l := verify(html.UnescapeString(m[1]), linksign.Open); l.URL != "" || l.Campaign != "nieuwsbrief-2026-12" {
		t.Errorf("pixel stands for %+v", l)
	}

	for _, c := range []struct {
		name string
		form url.Values
		hdr  map[string]string
		code int
		want string
	}{
		{"site not the user's", form("link", "b.example", "x", "https://b.example/"), origin, 400, "Choose one of your sites."},
		{"e-mail address as campaign", form("link", "a.example", "ann@example.com", "https://a.example/"), origin, 400, "not an e-mail address"},
		{"relative URL", form("link", "a.example", "x", "/huren"), origin, 400, "absolute http(s) address"},
		{"unknown kind", form("both", "a.example", "x", "https://a.example/"), origin, 400, "Choose a tracking link"},
		{"no CSRF token", url.Values{"kind": {"link"}, "site": {"a.example"}, "campaign": {"x"}, "url": {"https://a.example/"}}, origin, 403, "forbidden"},
		{"another origin", form("link", "a.example", "x", "https://a.example/"), map[string]string{"Origin": "https://evil.example"}, 403, "forbidden"},
	} {
		code, page := post(c.form, c.hdr)
		if code != c.code || !strings.Contains(page, c.want) || made.MatchString(page) {
			t.Errorf("%s: %d, made=%v, %.300s", c.name, code, made.MatchString(page), page)
		}
	}

	// Without a session: to the log-in, nothing made.
	c, _ = e.do(req{method: "POST", uri: "/links", body: form("link", "a.example", "x", "https://a.example/").Encode(), hdr: origin})
	if c.Response.StatusCode() != 303 || !strings.Contains(string(c.Response.Header.Peek("Location")), "/login?next=") {
		t.Errorf("without a session: %d %s", c.Response.StatusCode(), c.Response.Header.Peek("Location"))
	}
	// The form itself, in both languages.
	for lang, want := range map[string]string{"en": "Newsletter links", "nl": "Nieuwsbrieflinks"} {
		c, _ = e.do(req{uri: "/links?lang=" + lang, cookie: cookie})
		if c.Response.StatusCode() != 200 || !strings.Contains(string(c.Response.Body()), want) || !strings.Contains(string(c.Response.Body()), `name="csrf" value="`+csrf+`"`) {
			t.Errorf("GET /links?lang=%s: %d %.300s", lang, c.Response.StatusCode(), c.Response.Body())
		}
	}
}
