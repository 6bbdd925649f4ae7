package dashboard

import (
	"context"
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"turf/query/settings"
	"turf/retention"
)

func settingsConfig() Config {
	return Config{Settings: &Settings{Flags: settings.Flags{Sites: []string{"a.example"}},
		RetentionDefault: retention.DefaultPeriod, RetentionMin: retention.Period{Months: 1}, RetentionMax: retention.DefaultPeriod}}
}

var sameOriginHdr = map[string]string{"Origin": "http://turf.test"}

// TestSetupLink: with no user the setup link makes the first admin and logs
// them in; it is refused from another origin, and dead once any account
// exists, however that account was made.
func TestSetupLink(t *testing.T) {
	e := newEnv(t, settingsConfig())
	ctx := context.Background()
	path, err := e.d.PrepareSetup(ctx)
	if err != nil || !strings.HasPrefix(path, setupPrefix) || len(path) < len(setupPrefix)+30 {
		t.Fatalf("PrepareSetup = %q, %v", path, err)
	}
	if c, _ := e.do(req{uri: path}); c.Response.StatusCode() != 200 || !strings.Contains(string(c.Response.Body()), `name="repeat"`) {
		t.Fatalf("setup page: %d %s", c.Response.StatusCode(), c.Response.Body())
	}
	if c, _ := e.do(req{uri: setupPrefix + "guessed"}); c.Response.StatusCode() != 404 {
		t.Errorf("a guessed setup link: %d", c.Response.StatusCode())
	}
	form := "username=root&password=a+good+password&repeat=a+good+password"
	for name, r := range map[string]req{
		"no Origin":     {method: "POST", uri: path, body: form},
		"other origin":  {method: "POST", uri: path, body: form, hdr: map[string]string{"Origin": "https://evil.example"}},
		"mismatch":      {method: "POST", uri: path, body: "username=root&password=a+good+password&repeat=another+one", hdr: sameOriginHdr},
		"short":         {method: "POST", uri: path, body: "username=root&password=short&repeat=short", hdr: sameOriginHdr},
		"bad user name": {method: "POST", uri: path, body: "username=r+oot&password=a+good+password&repeat=a+good+password", hdr: sameOriginHdr},
	} {
		c, _ := e.do(r)
		if len(c.Response.Header.PeekCookie(cookieName)) > 0 || !strings.Contains(string(c.Response.Body()), `class="error"`) {
			t.Errorf("%s: %d %s", name, c.Response.StatusCode(), c.Response.Body())
		}
	}
	if users, _ := ListUsers(ctx, e.db.Conn, e.db.Name); len(users) != 0 {
		t.Fatalf("refused forms made users: %+v", users)
	}
	c, _ := e.do(req{method: "POST", uri: path, body: form, hdr: sameOriginHdr})
	if c.Response.StatusCode() != 303 || string(c.Response.Header.Peek("Location")) != "http://turf.test/settings" || len(c.Response.Header.PeekCookie(cookieName)) == 0 {
		t.Fatalf("setup: %d %s", c.Response.StatusCode(), c.Response.Header.Peek("Location"))
	}
	users, err := ListUsers(ctx, e.db.Conn, e.db.Name)
	if err != nil || len(users) != 1 || users[0].Name != "root" || users[0].Role != RoleAdmin {
		t.Fatalf("users after setup: %+v, %v", users, err)
	}
	for _, r := range []req{{uri: path}, {method: "POST", uri: path, body: "username=evil&password=a+good+password&repeat=a+good+password", hdr: sameOriginHdr}} {
		if c, _ := e.do(r); c.Response.StatusCode() != 404 {
			t.Errorf("%s of the used link: %d", r.method, c.Response.StatusCode())
		}
	}
	if p, err := e.d.PrepareSetup(ctx); p != "" || err != nil {
		t.Errorf("PrepareSetup with a user: %q, %v", p, err)
	}

	// A link made while no user existed dies when `turf user add` makes one.
	e2 := newEnv(t, settingsConfig())
	path, _ = e2.d.PrepareSetup(ctx)
	e2.addUser("alice")
	if c, _ := e2.do(req{uri: path}); c.Response.StatusCode() != 404 {
		t.Errorf("setup link after turf user add: %d", c.Response.StatusCode())
	}
}

// settingsCall posts one action as the settings page does.
func (e *env) settingsCall(tok, csrf string, a map[string]any) (int, map[string]any) {
	e.t.Helper()
	b, _ := json.Marshal(a)
	method := "POST"
	if a == nil {
		method, b = "GET", nil
	}
	c, _ := e.do(req{method: method, uri: settingsAPI, body: string(b), cookie: tok,
		hdr: map[string]string{"X-Turf-CSRF": csrf, "Origin": "http://turf.test", "Content-Type": "application/json"}})
	var out map[string]any
	if err := json.Unmarshal(c.Response.Body(), &out); err != nil {
		e.t.Fatalf("%s %v: %d %s", method, a, c.Response.StatusCode(), c.Response.Body())
	}
	return c.Response.StatusCode(), out
}

func TestSettingsAPI(t *testing.T) {
	e := newEnv(t, settingsConfig())
	ctx := context.Background()
	e.addUser("alice")
	e.addUser("vic", "a.example")
	tok, csrf := e.login("alice")
	vtok, vcsrf := e.login("vic")

	// Only admins, with their CSRF token.
	if code, out := e.settingsCall(vtok, vcsrf, nil); code != 403 || out["error"] != "forbidden" {
		t.Errorf("viewer reading settings: %d %v", code, out)
	}
	if c, _ := e.do(req{uri: settingsPath, cookie: vtok}); c.Response.StatusCode() != 403 {
		t.Errorf("viewer's settings page: %d", c.Response.StatusCode())
	}
	if code, _ := e.settingsCall(tok, "wrong", nil); code != 403 {
		t.Errorf("wrong CSRF token: %d", code)
	}
	if c, _ := e.do(req{uri: settingsPath, cookie: tok}); c.Response.StatusCode() != 200 || !strings.Contains(string(c.Response.Body()), "settings.js") {
		t.Errorf("admin's settings page: %d", c.Response.StatusCode())
	}

	for _, c := range []struct {
		action map[string]any
		code   int
		err    string
	}{
		{map[string]any{"action": "site.add", "site": "https://B.Example/", "timezone": "Europe/Amsterdam"}, 200, ""},
		{map[string]any{"action": "site.add", "site": "b.example"}, 400, "site_exists"},
		{map[string]any{"action": "site.add", "site": "not a site"}, 400, "bad_site"},
		{map[string]any{"action": "site.add", "site": "c.example", "timezone": "Mars/Olympus"}, 400, "bad_timezone"},
		{map[string]any{"action": "site.remove", "site": "a.example"}, 400, "flag_site"},
		{map[string]any{"action": "goal.add", "site": "b.example", "goal": "Visit /thanks", "currency": "eur"}, 400, "bad_goal"}, // only custom events have revenue
		{map[string]any{"action": "goal.add", "site": "b.example", "goal": "Visit /thanks"}, 200, ""},
		{map[string]any{"action": "goal.add", "site": "b.example", "goal": "Purchase", "currency": "eur"}, 200, ""},
		{map[string]any{"action": "goal.add", "site": "b.example", "goal": "Visit /blog/*"}, 200, ""},
		{map[string]any{"action": "goal.add", "site": "b.example", "goal": "Visit thanks"}, 400, "bad_goal"},
		{map[string]any{"action": "goal.add", "site": "nope.example", "goal": "Signup"}, 400, "no_site"},
		{map[string]any{"action": "goal.remove", "site": "b.example", "goal": "Visit /blog/*"}, 200, ""},
		{map[string]any{"action": "site.retention", "site": "b.example", "retention": "40mo"}, 400, "bad_retention"},
		{map[string]any{"action": "site.retention", "site": "b.example", "retention": "6mo"}, 200, ""},
		{map[string]any{"action": "user.invite", "name": "bob", "role": "viewer"}, 400, "no_sites"},
		{map[string]any{"action": "user.invite", "name": "vic", "role": "viewer", "sites": []string{"b.example"}}, 400, "user_exists"},
		{map[string]any{"action": "user.delete", "name": "alice"}, 400, "self_delete"},
		{map[string]any{"action": "key.create", "name": "none"}, 400, "no_sites"},
		{map[string]any{"action": "nonsense"}, 400, "bad_request"},
	} {
		code, out := e.settingsCall(tok, csrf, c.action)
		if code != c.code || c.err != "" && out["error"] != c.err {
			t.Errorf("%v: %d %v, want %d %s", c.action, code, out, c.code, c.err)
		}
	}
	snap, err := settings.Load(ctx, e.db.Conn, e.db.Name)
	if err != nil {
		t.Fatal(err)
	}
	if b := snap.Site("b.example"); b == nil || b.Timezone != "Europe/Amsterdam" || b.Retention != "6mo" {
		t.Errorf("b.example stored as %+v", b)
	}
	if want := []settings.Goal{{Site: "b.example", Goal: "Purchase", Currency: "EUR"}, {Site: "b.example", Goal: "Visit /thanks"}}; len(snap.Goals) != 2 ||
		!slices.Contains(snap.Goals, want[0]) || !slices.Contains(snap.Goals, want[1]) {
		t.Errorf("goals stored as %+v", snap.Goals)
	}

	// An invitation for a viewer of b.example: the link works once, and
	// the viewer then sees b.example only.
	code, out := e.settingsCall(tok, csrf, map[string]any{"action": "user.invite", "name": "bea", "role": "viewer", "sites": []string{"b.example"}})
	link, _ := out["link"].(string)
	if code != 200 || !strings.HasPrefix(link, "http://turf.test"+invitePrefix) {
		t.Fatalf("invite: %d %v", code, out)
	}
	u, _ := url.Parse(link)
	if c, _ := e.do(req{uri: u.Path}); c.Response.StatusCode() != 200 || !strings.Contains(string(c.Response.Body()), `value="bea" readonly`) {
		t.Fatalf("invitation page: %d %s", c.Response.StatusCode(), c.Response.Body())
	}
	c, _ := e.do(req{method: "POST", uri: u.Path, body: "username=mallory&password=a+good+password&repeat=a+good+password", hdr: sameOriginHdr})
	if c.Response.StatusCode() != 303 {
		t.Fatalf("accepting the invitation: %d %s", c.Response.StatusCode(), c.Response.Body())
	}
	if c, _ := e.do(req{method: "POST", uri: u.Path, body: "password=another+password&repeat=another+password", hdr: sameOriginHdr}); c.Response.StatusCode() != 404 {
		t.Errorf("the invitation used twice: %d", c.Response.StatusCode())
	}
	btok, _ := e.login("bea") // the name in the link, not the one posted
	page, _ := e.do(req{uri: "/", cookie: btok})
	if m := regexp.MustCompile(`"sites":\[([^\]]*)\]`).FindSubmatch(page.Response.Body()); m == nil || string(m[1]) != `"b.example"` {
		t.Errorf("bea's dashboard lists sites %s", m)
	}
	if u, _ := loadUser(ctx, e.db.Conn, e.db.Name, "mallory"); u != nil {
		t.Error("the posted user name made an account")
	}

	// Share links and keys: made once, listed, revoked.
	_, out = e.settingsCall(tok, csrf, map[string]any{"action": "share.create", "site": "b.example", "name": "board"})
	shareURL, _ := out["url"].(string)
	shareID, _ := out["id"].(string)
	if !strings.HasPrefix(shareURL, "http://turf.test/share/"+shareID+"-") {
		t.Fatalf("share link %v", out)
	}
	_, out = e.settingsCall(tok, csrf, map[string]any{"action": "key.create", "sites": []string{"b.example"}, "name": "etl"})
	key, _ := out["key"].(string)
	keyID, _ := out["id"].(string)
	if !strings.HasPrefix(key, "turf_"+keyID+"_") {
		t.Fatalf("key %v", out)
	}
	_, st := e.settingsCall(tok, csrf, nil)
	if len(st["shares"].([]any)) != 1 || len(st["keys"].([]any)) != 1 || strings.Contains(mustJSON(st), key) || strings.Contains(mustJSON(st), shareURL) {
		t.Errorf("listing after creation: %s", mustJSON(st))
	}
	share := strings.TrimPrefix(shareURL, "http://turf.test/share/")
	if c, _ := e.do(req{uri: "/share/" + share}); c.Response.StatusCode() != 200 {
		t.Errorf("share link before revoking: %d", c.Response.StatusCode())
	}
	for _, a := range []map[string]any{{"action": "share.revoke", "id": shareID}, {"action": "key.revoke", "id": keyID}} {
		if code, out := e.settingsCall(tok, csrf, a); code != 200 {
			t.Errorf("%v: %d %v", a, code, out)
		}
	}
	if c, _ := e.do(req{uri: "/share/" + share}); c.Response.StatusCode() != 404 {
		t.Errorf("share link after revoking: %d", c.Response.StatusCode())
	}
	if _, st = e.settingsCall(tok, csrf, nil); len(st["shares"].([]any)) != 0 || len(st["keys"].([]any)) != 0 {
		t.Errorf("revoked links still listed: %v %v", st["shares"], st["keys"])
	}

	// Every change is in the log, with who made it.
	log, err := settings.RecentAudit(ctx, e.db.Conn, e.db.Name, 100)
	if err != nil {
		t.Fatal(err)
	}
	var byAlice []string
	for _, en := range log {
		if en.Actor == "alice" {
			byAlice = append(byAlice, en.Action)
		}
	}
	for _, want := range []string{"site.add", "goal.add", "goal.remove", "site.retention", "user.invite", "share.create", "share.revoke", "key.create", "key.revoke"} {
		if !slices.Contains(byAlice, want) {
			t.Errorf("no %s by alice in the audit log %v", want, byAlice)
		}
	}
	if slices.ContainsFunc(log, func(en settings.Entry) bool { return en.Actor == "bea" && en.Action == "user.invite.used" }) == false {
		t.Error("the invitation's use is not logged")
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestFormsShowNoErrorUntilOneHappens: the log-in, setup and invitation
// pages open without an error message (their texts once had a key named
// like the template's error slot).
func TestFormsShowNoErrorUntilOneHappens(t *testing.T) {
	e := newEnv(t, settingsConfig())
	path, err := e.d.PrepareSetup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"en", "nl"} {
		for _, uri := range []string{"/login?lang=" + lang, path + "?lang=" + lang} {
			c, _ := e.do(req{uri: uri})
			if c.Response.StatusCode() != 200 || strings.Contains(string(c.Response.Body()), `class="error"`) {
				t.Errorf("GET %s: %d with an error: %s", uri, c.Response.StatusCode(), c.Response.Body())
			}
		}
	}
}

// TestNoSiteYet: an admin of a turf without sites is sent to the settings,
// a viewer is told to ask an admin.
func TestNoSiteYet(t *testing.T) {
	cfg := settingsConfig()
	cfg.Sites = []string{}
	e := newEnv(t, cfg)
	e.addUser("root")
	e.addUser("vic", "gone.example")
	for _, c := range []struct{ user, location, text string }{
		{"root", "http://turf.test/settings", ""},
		{"vic", "", "Ask an admin"},
	} {
		l, _ := e.do(req{method: "POST", uri: "/login", body: "username=" + c.user + "&password=a+good+password&next=/", hdr: sameOriginHdr})
		var ck fasthttp.Cookie
		if err := ck.Parse(string(l.Response.Header.PeekCookie(cookieName))); err != nil {
			t.Fatal(err)
		}
		page, _ := e.do(req{uri: "/", cookie: string(ck.Value())})
		if got := string(page.Response.Header.Peek("Location")); got != c.location || !strings.Contains(string(page.Response.Body()), c.text) {
			t.Errorf("%s: %d to %q: %s", c.user, page.Response.StatusCode(), got, page.Response.Body())
		}
	}
}
