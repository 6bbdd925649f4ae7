package dashboard

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"path"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

//go:embed assets
var assetFS embed.FS

//go:embed templates/*.html
var templateFS embed.FS

const assetPrefix = "/assets/"

// asset is an embedded file with its precompressed form; its URL carries a
// hash of its content so browsers may cache it for good.
type asset struct {
	body, gz []byte
	ctype    string
	hash     string
}

func loadAssets() (map[string]*asset, error) {
	out := map[string]*asset{}
	err := fs.WalkDir(assetFS, "assets", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		var gz bytes.Buffer
		w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		w.Write(b)
		w.Close()
		h := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		out[strings.TrimPrefix(p, "assets/")] = &asset{body: b, gz: gz.Bytes(), ctype: ct, hash: hex.EncodeToString(h[:6])}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("BUG: cannot read embedded assets: %w", err)
	}
	return out, nil
}

func (d *Dashboard) assetURL(name string) string {
	a, ok := d.assets[name]
	if !ok {
		panic("BUG: no embedded asset " + name)
	}
	return assetPrefix + name + "?v=" + a.hash
}

func (d *Dashboard) serveAsset(ctx *fasthttp.RequestCtx, name string) {
	a, ok := d.assets[name]
	if !ok || !(ctx.IsGet() || ctx.IsHead()) {
		ctx.Error("not found", fasthttp.StatusNotFound)
		return
	}
	h := &ctx.Response.Header
	h.Set("X-Content-Type-Options", "nosniff")
	if string(ctx.QueryArgs().Peek("v")) == a.hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	h.Set("Vary", "Accept-Encoding")
	ctx.SetContentType(a.ctype)
	if ctx.Request.Header.HasAcceptEncoding("gzip") {
		h.Set("Content-Encoding", "gzip")
		ctx.SetBody(a.gz)
		return
	}
	ctx.SetBody(a.body)
}

var templates = template.Must(template.New("").ParseFS(templateFS, "templates/*.html"))

// boot is what the page needs before its first API call, handed over in
// the HTML so that loading the dashboard costs no extra round trip.
type boot struct {
	Sites []string `json:"sites"`
	User  string   `json:"user,omitempty"`
	CSRF  string   `json:"csrf,omitempty"`
	Share string   `json:"share,omitempty"`
	// Admin shows the link to the settings page.
	Admin bool `json:"admin,omitempty"`
}

func (d *Dashboard) bootJSON(b boot) template.JS {
	// encoding/json escapes <, > and &, so the JSON cannot close the
	// script element it sits in.
	j, err := json.Marshal(b)
	if err != nil {
		panic("BUG: " + err.Error())
	}
	return template.JS(j)
}

func (d *Dashboard) renderApp(ctx *fasthttp.RequestCtx, b boot) {
	d.render(ctx, fasthttp.StatusOK, "app.html", map[string]any{
		"Boot": d.bootJSON(b), "JS": d.assetURL("app.js"), "I18N": d.assetURL("i18n.js"), "CSS": d.assetURL("app.css"), "Icon": d.assetURL("favicon.svg"),
		"Newsletters": d.assetURL("newsletters.js"), "NewslettersCSS": d.assetURL("newsletters.css"),
		"Lang": pageLang(ctx),
	})
}

func (d *Dashboard) render(ctx *fasthttp.RequestCtx, status int, name string, data any) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
		d.cfg.Logf("dashboard: %v", err)
		ctx.Error("internal error", fasthttp.StatusInternalServerError)
		return
	}
	securityHeaders(ctx)
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.SetBody(buf.Bytes())
}

func (d *Dashboard) serveIndex(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Error("use GET", fasthttp.StatusMethodNotAllowed)
		return
	}
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := d.session(c, string(ctx.Request.Header.Cookie(cookieName)))
	if err != nil {
		if !errors.Is(err, errNoSession) {
			d.cfg.Logf("dashboard: %v", err)
		}
		next := string(ctx.RequestURI())
		ctx.Redirect("/login?next="+urlQueryEscape(next), fasthttp.StatusSeeOther)
		return
	}
	if len(p.sites) == 0 {
		if p.admin && d.settings != nil {
			// A fresh turf: nothing to show before a site is added.
			ctx.Redirect(settingsPath, fasthttp.StatusSeeOther)
			return
		}
		d.render(ctx, fasthttp.StatusOK, "message.html", loginText(pageLang(ctx)).with("Message", noSiteYet[pageLang(ctx)]))
		return
	}
	d.renderApp(ctx, boot{Sites: p.sites, User: p.user, CSRF: p.csrf, Admin: p.admin && d.settings != nil})
}

func (d *Dashboard) serveShare(ctx *fasthttp.RequestCtx, token string) {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := d.share(c, token)
	if err != nil {
		if !errors.Is(err, errBadShare) {
			d.cfg.Logf("dashboard: %v", err)
		}
		d.render(ctx, fasthttp.StatusNotFound, "message.html", loginText(pageLang(ctx)).with("Message", loginText(pageLang(ctx))["ShareGone"]))
		return
	}
	d.renderApp(ctx, boot{Sites: p.sites, Share: token})
}

// pageLang picks Dutch or English from ?lang= or Accept-Language; the
// dashboard itself then lets people switch.
func pageLang(ctx *fasthttp.RequestCtx) string {
	if l := string(ctx.QueryArgs().Peek("lang")); l == "nl" || l == "en" {
		return l
	}
	for _, part := range strings.Split(string(ctx.Request.Header.Peek("Accept-Language")), ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		tag = strings.ToLower(tag)
		if strings.HasPrefix(tag, "nl") {
			return "nl"
		}
		if strings.HasPrefix(tag, "en") {
			return "en"
		}
	}
	return "en"
}

type texts map[string]string

func (t texts) with(k, v string) texts {
	out := texts{}
	for a, b := range t {
		out[a] = b
	}
	out[k] = v
	return out
}

var loginTexts = map[string]texts{
	"en": {"Lang": "en", "Title": "Log in", "User": "User name", "Password": "Password", "Submit": "Log in",
		"Bad": "Wrong user name or password.", "Limited": "Too many attempts. Wait a minute and try again.",
		"Cross":     "This log-in form was sent from another site; open turf's own page and try again.",
		"Failed":    "Something went wrong on our side. Try again in a moment.",
		"ShareGone": "This share link does not exist or was revoked.", "Plain": "This connection is not encrypted (HTTP): your password travels readable. Ask for an HTTPS address."},
	"nl": {"Lang": "nl", "Title": "Inloggen", "User": "Gebruikersnaam", "Password": "Wachtwoord", "Submit": "Inloggen",
		"Bad": "Onjuiste gebruikersnaam of wachtwoord.", "Limited": "Te veel pogingen. Wacht een minuut en probeer het opnieuw.",
		"Cross":     "Dit inlogformulier kwam van een andere site; open de pagina van turf zelf en probeer opnieuw.",
		"Failed":    "Er ging bij ons iets mis. Probeer het zo opnieuw.",
		"ShareGone": "Deze deellink bestaat niet of is ingetrokken.", "Plain": "Deze verbinding is niet versleuteld (HTTP): je wachtwoord gaat leesbaar over het netwerk. Vraag om een HTTPS-adres."},
}

var noSiteYet = map[string]string{
	"en": "There is no site to show you yet. Ask an admin of this turf to add one, or to give you access.",
	"nl": "Er is nog geen site om je te laten zien. Vraag een beheerder van deze turf er een toe te voegen of je toegang te geven.",
}

func loginText(lang string) texts { return loginTexts[lang] }

// safeNext keeps redirects after log-in on this site: a local path only.
func safeNext(n string) string {
	if !strings.HasPrefix(n, "/") || strings.HasPrefix(n, "//") || strings.HasPrefix(n, "/\\") || strings.ContainsAny(n, "\r\n") {
		return "/"
	}
	return n
}

func (d *Dashboard) serveLogin(ctx *fasthttp.RequestCtx) {
	lang := pageLang(ctx)
	t := loginText(lang).with("Icon", d.assetURL("favicon.svg")).with("CSS", d.assetURL("app.css"))
	if !d.secure(ctx) && !isLoopback(string(ctx.Host())) {
		t = t.with("Warn", t["Plain"])
	}
	if ctx.IsGet() || ctx.IsHead() {
		if string(ctx.QueryArgs().Peek("done")) == "1" {
			t = t.with("Info", passwordTexts[lang]["Done"])
		}
		d.render(ctx, fasthttp.StatusOK, "login.html", t.with("Next", safeNext(string(ctx.QueryArgs().Peek("next")))))
		return
	}
	if !ctx.IsPost() {
		ctx.Error("use GET or POST", fasthttp.StatusMethodNotAllowed)
		return
	}
	args := ctx.PostArgs()
	name := strings.TrimSpace(string(args.Peek("username")))
	next := safeNext(string(args.Peek("next")))
	t = t.with("Next", next).with("Name", name)
	// A log-in posted from another site could log the victim in as the
	// attacker (login CSRF); browsers always send Origin on form POSTs.
	if o := ctx.Request.Header.Peek("Origin"); len(o) == 0 || !sameOrigin(ctx) {
		d.render(ctx, fasthttp.StatusForbidden, "login.html", t.with("Error", t["Cross"]))
		return
	}
	// See loginPrefix for the throttling scheme.
	now := d.cfg.Now()
	user, prefix := strings.ToLower(name), loginPrefix(d.clientAddr(ctx))
	known := d.known.has(user, prefix)
	if !d.byNet.Allow(prefix, now) || !known && !d.byUser.Has(user, now) {
		ctx.Response.Header.Set("Retry-After", "60")
		d.render(ctx, fasthttp.StatusTooManyRequests, "login.html", t.with("Error", t["Limited"]))
		return
	}
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, exp, err := d.login(c, name, string(args.Peek("password")))
	if errors.Is(err, errBadLogin) {
		if !known {
			d.byUser.Allow(user, now)
		}
		// 200, not 401: the form is simply shown again, and 401 would need
		// a WWW-Authenticate challenge this page does not use.
		d.render(ctx, fasthttp.StatusOK, "login.html", t.with("Error", t["Bad"]))
		return
	}
	if errors.Is(err, errLoginBusy) {
		ctx.Response.Header.Set("Retry-After", "5")
		d.render(ctx, fasthttp.StatusServiceUnavailable, "login.html", t.with("Error", t["Limited"]))
		return
	}
	if err != nil {
		d.cfg.Logf("dashboard: log-in: %v", err)
		d.render(ctx, fasthttp.StatusInternalServerError, "login.html", t.with("Error", t["Failed"]))
		return
	}
	d.known.add(user, prefix)
	d.setCookie(ctx, tok, exp)
	securityHeaders(ctx)
	ctx.Redirect(next, fasthttp.StatusSeeOther)
}

func isLoopback(host string) bool {
	h := host
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		h = host[:i]
	}
	return h == "localhost" || strings.HasPrefix(h, "127.") || h == "[::1]"
}

// setCookie sets the session cookie: HttpOnly so no script reads it,
// SameSite=Strict so no other site's page makes the browser send it, Secure
// over HTTPS. An empty token clears it.
func (d *Dashboard) setCookie(ctx *fasthttp.RequestCtx, tok string, exp time.Time) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(cookieName)
	c.SetValue(tok)
	c.SetPath("/")
	c.SetHTTPOnly(true)
	c.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	c.SetSecure(d.secure(ctx))
	if tok == "" {
		c.SetExpire(fasthttp.CookieExpireDelete)
	} else {
		c.SetExpire(exp)
	}
	ctx.Response.Header.SetCookie(c)
}

func (d *Dashboard) serveLogout(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		ctx.Error("use POST", fasthttp.StatusMethodNotAllowed)
		return
	}
	tok := string(ctx.Request.Header.Cookie(cookieName))
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Only the page may log its user out: a forged cross-site POST could
	// otherwise end sessions at will.
	if p, err := d.session(c, tok); err == nil {
		if !sameToken(string(ctx.PostArgs().Peek("csrf")), p.csrf) || !sameOrigin(ctx) {
			ctx.Error("forbidden", fasthttp.StatusForbidden)
			return
		}
		if err := d.logout(c, tok); err != nil {
			d.cfg.Logf("dashboard: log-out: %v", err)
			ctx.Error("internal error", fasthttp.StatusInternalServerError)
			return
		}
	}
	d.setCookie(ctx, "", time.Time{})
	securityHeaders(ctx)
	ctx.Redirect("/login", fasthttp.StatusSeeOther)
}

func urlQueryEscape(s string) string {
	var a fasthttp.Args
	a.Set("x", s)
	return strings.TrimPrefix(a.String(), "x=")
}
