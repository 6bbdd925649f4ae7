package dashboard

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/crypto/bcrypt"

	"turf/internal/chtest"
	"turf/query"
)

func TestMain(m *testing.M) {
	bcryptCost = bcrypt.MinCost // the cost is bcrypt's business; tests need speed
	chtest.Main(m)
}

// fakeEngine answers every query with the site it was asked about, so tests
// see which queries got through.
type fakeEngine struct{ ran []string }

func (f *fakeEngine) Run(_ context.Context, q *query.Query) (*query.Response, error) {
	f.ran = append(f.ran, q.Site)
	return &query.Response{Results: []query.Row{{Metrics: []any{int64(7)}, Dimensions: []string{}}}, Meta: map[string]any{}, Query: map[string]any{"site_id": q.Site}}, nil
}

func (f *fakeEngine) Realtime(context.Context, string) (int64, error) { return 3, nil }

type env struct {
	t   *testing.T
	d   *Dashboard
	eng *fakeEngine
	db  *chtest.DB
	// skew moves the dashboard's clock ahead of the real one, which the
	// stored rows use.
	skew time.Duration
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	db := chtest.New(t)
	e := &env{t: t, eng: &fakeEngine{}, db: db}
	if cfg.Sites == nil {
		cfg.Sites = []string{"a.example", "b.example"}
	}
	cfg.Now = func() time.Time { return time.Now().Add(e.skew) }
	cfg.Logf = t.Logf
	d, err := New(cfg, db.Conn, db.Name, e.eng)
	if err != nil {
		t.Fatal(err)
	}
	e.d = d
	return e
}

// req is one request through Handle.
type req struct {
	method, uri, body string
	hdr               map[string]string
	cookie            string
}

func (e *env) do(r req) (*fasthttp.RequestCtx, bool) {
	var c fasthttp.RequestCtx
	if r.method == "" {
		r.method = "GET"
	}
	c.Request.Header.SetMethod(r.method)
	c.Request.SetRequestURI(r.uri)
	c.Request.Header.SetHost("turf.test")
	for k, v := range r.hdr {
		c.Request.Header.Set(k, v)
	}
	if r.cookie != "" {
		c.Request.Header.SetCookie(cookieName, r.cookie)
	}
	if r.body != "" {
		c.Request.SetBodyString(r.body)
		if r.method == "POST" && !strings.HasPrefix(r.uri, "/api/") {
			c.Request.Header.SetContentType("application/x-www-form-urlencoded")
		}
	}
	ok := e.d.Handle(&c)
	return &c, ok
}

func (e *env) addUser(name string, sites ...string) {
	e.t.Helper()
	if err := AddUser(context.Background(), e.db.Conn, e.db.Name, name, "a good password", sites); err != nil {
		e.t.Fatal(err)
	}
}

// login logs in and returns the cookie's value and the page's CSRF token.
func (e *env) login(name string) (string, string) {
	e.t.Helper()
	c, _ := e.do(req{method: "POST", uri: "/login", body: "username=" + name + "&password=a+good+password&next=/", hdr: map[string]string{"Origin": "http://turf.test"}})
	if c.Response.StatusCode() != 303 {
		e.t.Fatalf("log-in: %d %s", c.Response.StatusCode(), c.Response.Body())
	}
	tok := string(c.Response.Header.PeekCookie(cookieName))
	var ck fasthttp.Cookie
	if err := ck.Parse(tok); err != nil {
		e.t.Fatal(err)
	}
	page, _ := e.do(req{uri: "/", cookie: string(ck.Value())})
	m := regexp.MustCompile(`"csrf":"([0-9a-f]+)"`).FindSubmatch(page.Response.Body())
	if page.Response.StatusCode() != 200 || m == nil {
		e.t.Fatalf("dashboard page: %d %s", page.Response.StatusCode(), page.Response.Body())
	}
	return string(ck.Value()), string(m[1])
}

const body = `{"site_id":"a.example","metrics":["visitors"],"date_range":"7d"}`

func TestLogin(t *testing.T) {
	e := newEnv(t, Config{})
	e.addUser("alice")
	c, _ := e.do(req{uri: "/?period=7d"})
	if c.Response.StatusCode() != 303 || !strings.HasSuffix(string(c.Response.Header.Peek("Location")), "/login?next=%2F%3Fperiod%3D7d") {
		t.Errorf("not logged in: %d %s", c.Response.StatusCode(), c.Response.Header.Peek("Location"))
	}
	form := "username=alice&password=a+good+password&next=/%3Fperiod%3D7d"
	for name, hdr := range map[string]map[string]string{
		"no Origin":      nil,
		"another origin": {"Origin": "https://evil.example"},
		"null origin":    {"Origin": "null"},
	} {
		if c, _ := e.do(req{method: "POST", uri: "/login", body: form, hdr: hdr}); c.Response.StatusCode() != 403 || len(c.Response.Header.PeekCookie(cookieName)) > 0 {
			t.Errorf("%s: %d", name, c.Response.StatusCode())
		}
	}
	same := map[string]string{"Origin": "http://turf.test"}
	for _, f := range []string{"username=alice&password=wrong+password", "username=bob&password=a+good+password"} {
		c, _ := e.do(req{method: "POST", uri: "/login", body: f, hdr: same})
		if len(c.Response.Header.PeekCookie(cookieName)) > 0 || !strings.Contains(string(c.Response.Body()), "Wrong user name or password") {
			t.Errorf("%s: %d %s", f, c.Response.StatusCode(), c.Response.Body())
		}
	}
	c, _ = e.do(req{method: "POST", uri: "/login", body: form, hdr: map[string]string{"Origin": "https://turf.test", "X-Forwarded-Proto": "https"}})
	if c.Response.StatusCode() != 303 || !strings.HasSuffix(string(c.Response.Header.Peek("Location")), "turf.test/?period=7d") {
		t.Fatalf("log-in: %d %s", c.Response.StatusCode(), c.Response.Header.Peek("Location"))
	}
	ck := string(c.Response.Header.PeekCookie(cookieName))
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "secure", "path=/"} {
		if !strings.Contains(strings.ToLower(ck), strings.ToLower(want)) {
			t.Errorf("cookie %q lacks %s", ck, want)
		}
	}
	// An open redirect is refused.
	c, _ = e.do(req{method: "POST", uri: "/login", body: "username=alice&password=a+good+password&next=//evil.example/", hdr: same})
	if string(c.Response.Header.Peek("Location")) != "http://turf.test/" {
		t.Errorf("next=//evil.example went to %s", c.Response.Header.Peek("Location"))
	}
}

func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t, Config{LoginRate: 1, LoginBurst: 3})
	e.addUser("alice")
	same := map[string]string{"Origin": "http://turf.test"}
	codes := []int{}
	for range 5 {
		c, _ := e.do(req{method: "POST", uri: "/login", body: "username=alice&password=wrong+password", hdr: same})
		codes = append(codes, c.Response.StatusCode())
	}
	if codes[2] != 200 || codes[3] != 429 || codes[4] != 429 {
		t.Errorf("codes %v, want 3 tries then 429", codes)
	}
	// Even the right password waits.
	c, _ := e.do(req{method: "POST", uri: "/login", body: "username=alice&password=a+good+password", hdr: same})
	if c.Response.StatusCode() != 429 {
		t.Errorf("right password while limited: %d", c.Response.StatusCode())
	}
	e.skew += 2 * time.Minute
	e.login("alice")
}

func TestAPIWithSession(t *testing.T) {
	e := newEnv(t, Config{})
	e.addUser("alice", "a.example")
	tok, csrf := e.login("alice")

	// Not ours: Bearer calls and calls without a session go to the API.
	if _, ok := e.do(req{method: "POST", uri: queryPath, body: body, hdr: map[string]string{"Authorization": "Bearer x"}, cookie: tok}); ok {
		t.Error("took a Bearer call")
	}
	if _, ok := e.do(req{method: "POST", uri: queryPath, body: body}); ok {
		t.Error("took an anonymous call")
	}
	cases := []struct {
		name   string
		hdr    map[string]string
		cookie string
		body   string
		code   int
	}{
		{"no CSRF header", nil, tok, body, 403},
		{"wrong CSRF header", map[string]string{csrfHeader: strings.Repeat("0", 32)}, tok, body, 403},
		{"cross-site origin", map[string]string{csrfHeader: csrf, "Origin": "https://evil.example"}, tok, body, 403},
		{"unknown session", map[string]string{csrfHeader: csrf}, "nonsense", body, 401},
		{"site not allowed", map[string]string{csrfHeader: csrf}, tok, strings.Replace(body, "a.example", "b.example", 1), 403},
		{"invalid query", map[string]string{csrfHeader: csrf}, tok, `{"site_id":"a.example"}`, 400},
		{"allowed", map[string]string{csrfHeader: csrf, "Origin": "http://turf.test"}, tok, body, 200},
	}
	for _, c := range cases {
		r, ok := e.do(req{method: "POST", uri: queryPath, body: c.body, hdr: c.hdr, cookie: c.cookie})
		if !ok || r.Response.StatusCode() != c.code {
			t.Errorf("%s: %v %d %s, want %d", c.name, ok, r.Response.StatusCode(), r.Response.Body(), c.code)
		}
	}
	if len(e.eng.ran) != 1 || e.eng.ran[0] != "a.example" {
		t.Errorf("engine ran %v", e.eng.ran)
	}
	r, _ := e.do(req{uri: realtimePath + "?site_id=a.example", hdr: map[string]string{csrfHeader: csrf}, cookie: tok})
	if r.Response.StatusCode() != 200 || string(r.Response.Body()) != "3" {
		t.Errorf("realtime: %d %s", r.Response.StatusCode(), r.Response.Body())
	}

	// Log-out needs the token too, then the session is gone.
	if r, _ := e.do(req{method: "POST", uri: "/logout", body: "csrf=x", cookie: tok}); r.Response.StatusCode() != 403 {
		t.Errorf("log-out without token: %d", r.Response.StatusCode())
	}
	if r, _ := e.do(req{method: "POST", uri: "/logout", body: "csrf=" + csrf, cookie: tok}); r.Response.StatusCode() != 303 {
		t.Errorf("log-out: %d", r.Response.StatusCode())
	}
	if r, _ := e.do(req{method: "POST", uri: queryPath, body: body, hdr: map[string]string{csrfHeader: csrf}, cookie: tok}); r.Response.StatusCode() != 401 {
		t.Errorf("after log-out: %d", r.Response.StatusCode())
	}
}

func TestPasswordChangeAndDeleteEndSessions(t *testing.T) {
	e := newEnv(t, Config{AuthCacheTTL: time.Nanosecond})
	e.addUser("alice")
	ctx := context.Background()
	tok, csrf := e.login("alice")
	call := func() int {
		r, _ := e.do(req{method: "POST", uri: queryPath, body: body, hdr: map[string]string{csrfHeader: csrf}, cookie: tok})
		return r.Response.StatusCode()
	}
	if c := call(); c != 200 {
		t.Fatalf("logged in: %d", c)
	}
	time.Sleep(1100 * time.Millisecond) // sessions_after has whole seconds
	if err := SetPassword(ctx, e.db.Conn, e.db.Name, "alice", "another password"); err != nil {
		t.Fatal(err)
	}
	if c := call(); c != 401 {
		t.Errorf("after a new password: %d", c)
	}
	if err := SetPassword(ctx, e.db.Conn, e.db.Name, "alice", "short"); err != ErrBadPassword {
		t.Errorf("short password: %v", err)
	}
	e.addUser("bob")
	tok, csrf = e.login("bob")
	if err := DeleteUser(ctx, e.db.Conn, e.db.Name, "bob"); err != nil {
		t.Fatal(err)
	}
	if c := call(); c != 401 {
		t.Errorf("after deletion: %d", c)
	}
	users, err := ListUsers(ctx, e.db.Conn, e.db.Name)
	if err != nil || len(users) != 1 || users[0].Name != "alice" {
		t.Errorf("users %+v %v", users, err)
	}
}

func TestShareLinks(t *testing.T) {
	e := newEnv(t, Config{AuthCacheTTL: time.Nanosecond})
	ctx := context.Background()
	tok, s, err := CreateShare(ctx, e.db.Conn, e.db.Name, "b.example", "press")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := e.do(req{uri: "/share/" + tok})
	var b boot
	m := regexp.MustCompile(`(?s)<script id="boot" type="application/json">(.*?)</script>`).FindSubmatch(page.Response.Body())
	if page.Response.StatusCode() != 200 || m == nil || json.Unmarshal(m[1], &b) != nil || b.Share != tok || len(b.Sites) != 1 || b.Sites[0] != "b.example" || b.CSRF != "" {
		t.Fatalf("share page: %d %s", page.Response.StatusCode(), page.Response.Body())
	}
	if rp := string(page.Response.Header.Peek("Referrer-Policy")); rp != "same-origin" {
		t.Errorf("a share page must not leak its URL: Referrer-Policy %q", rp)
	}
	q := func(site string) int {
		r, _ := e.do(req{method: "POST", uri: queryPath, body: strings.Replace(body, "a.example", site, 1), hdr: map[string]string{shareHeader: tok}})
		return r.Response.StatusCode()
	}
	if c := q("b.example"); c != 200 {
		t.Errorf("shared site: %d", c)
	}
	if c := q("a.example"); c != 403 {
		t.Errorf("another site: %d", c)
	}
	if r, _ := e.do(req{uri: "/share/" + s.ID + "-forged"}); r.Response.StatusCode() != 404 {
		t.Errorf("forged token: %d", r.Response.StatusCode())
	}
	if err := RevokeShare(ctx, e.db.Conn, e.db.Name, s.ID); err != nil {
		t.Fatal(err)
	}
	if c := q("b.example"); c != 401 {
		t.Errorf("revoked: %d", c)
	}
	if r, _ := e.do(req{uri: "/share/" + tok}); r.Response.StatusCode() != 404 {
		t.Errorf("revoked page: %d", r.Response.StatusCode())
	}
	ls, err := ListShares(ctx, e.db.Conn, e.db.Name)
	if err != nil || len(ls) != 1 || !ls[0].Revoked || ls[0].Name != "press" {
		t.Errorf("shares %+v %v", ls, err)
	}
}

func TestPagesAndAssets(t *testing.T) {
	e := newEnv(t, Config{})
	e.addUser("alice")
	tok, _ := e.login("alice")
	page, _ := e.do(req{uri: "/", cookie: tok})
	csp := string(page.Response.Header.Peek("Content-Security-Policy"))
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q", csp)
	}
	m := regexp.MustCompile(`src="(/assets/app\.js\?v=[0-9a-f]+)"`).FindSubmatch(page.Response.Body())
	if m == nil {
		t.Fatalf("no script in %s", page.Response.Body())
	}
	a, _ := e.do(req{uri: string(m[1]), hdr: map[string]string{"Accept-Encoding": "gzip"}})
	if a.Response.StatusCode() != 200 || string(a.Response.Header.Peek("Content-Encoding")) != "gzip" ||
		!strings.Contains(string(a.Response.Header.Peek("Cache-Control")), "immutable") {
		t.Errorf("asset: %d %s", a.Response.StatusCode(), a.Response.Header.String())
	}
	if _, ok := e.do(req{uri: "/api/event"}); ok {
		t.Error("took a path that is not the dashboard's")
	}
}

func TestCSRFTokenIsPerSession(t *testing.T) {
	a, b := csrfToken("one"), csrfToken("two")
	if a == b || len(a) != 32 || sameToken("", "") || !sameToken(a, csrfToken("one")) {
		t.Errorf("tokens %s %s", a, b)
	}
	for in, want := range map[string]string{"/x?y=1": "/x?y=1", "//evil": "/", "https://evil": "/", `/\evil`: "/", "": "/"} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q", in, got)
		}
	}
}
