package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/valyala/fasthttp"

	"turf/query"
	"turf/query/settings"
	"turf/retention"
	"turf/schema"
)

// The settings page (/settings) and its API (/api/settings): admins add and
// remove sites, set their time zones and retention, goals, users,
// invitations, share links and API keys. Every change is stored in
// ClickHouse (package settings, and the dashboard's own tables) where every
// instance picks it up within Settings.Poll, and is written to the audit
// log with the admin's name. Calls need a session of an admin, the CSRF
// header and this origin, like the page's API calls.

const (
	settingsPath = "/settings"
	settingsAPI  = "/api/settings"
)

// Settings is what the settings page needs from turf serve.
type Settings struct {
	// Flags are serve's flags: what they set wins and is shown as such.
	Flags settings.Flags
	// Retention bounds what admins may choose per site; Default is what a
	// site without its own gets (--retention).
	RetentionDefault, RetentionMin, RetentionMax retention.Period
	// Changed is called after a change, so that this instance applies it
	// at once rather than at its next poll.
	Changed func()
}

// apiError is a refusal the page shows in its own language: Code names the
// text, Detail is the English fallback.
type apiError struct {
	Status int
	Code   string
	Detail string
}

func (e *apiError) Error() string { return e.Detail }

func bad(code, format string, args ...any) error {
	return &apiError{Status: fasthttp.StatusBadRequest, Code: code, Detail: fmt.Sprintf(format, args...)}
}

func (d *Dashboard) serveSettings(ctx *fasthttp.RequestCtx, path string) {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if path == settingsPath {
		p, err := d.session(c, string(ctx.Request.Header.Cookie(cookieName)))
		if err != nil {
			ctx.Redirect("/login?next="+urlQueryEscape(settingsPath), fasthttp.StatusSeeOther)
			return
		}
		if !p.admin || d.settings == nil {
			t := loginText(pageLang(ctx))
			d.render(ctx, fasthttp.StatusForbidden, "message.html", t.with("Message", settingsForbidden[pageLang(ctx)]))
			return
		}
		d.render(ctx, fasthttp.StatusOK, "settings.html", map[string]any{
			"Boot": d.bootJSON(boot{Sites: p.sites, User: p.user, CSRF: p.csrf, Admin: true}),
			"JS":   d.assetURL("settings.js"), "CSS": d.assetURL("app.css"), "Icon": d.assetURL("favicon.svg"), "Lang": pageLang(ctx),
		})
		return
	}
	err := d.settingsCall(c, ctx, strings.TrimPrefix(path, settingsAPI))
	if err == nil {
		return
	}
	var ae *apiError
	var he *query.HTTPError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &he):
		ae = &apiError{Status: he.Status, Code: "http", Detail: he.Msg}
	default:
		d.cfg.Logf("dashboard: settings: %v", err)
		ae = &apiError{Status: fasthttp.StatusInternalServerError, Code: "internal", Detail: "something went wrong on our side; try again in a moment"}
	}
	writeJSON(ctx, ae.Status, map[string]string{"error": ae.Code, "detail": ae.Detail})
}

var settingsForbidden = map[string]string{
	"en": "Only admins may change settings. Ask an admin of this turf.",
	"nl": "Alleen beheerders kunnen instellingen wijzigen. Vraag een beheerder van deze turf.",
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("BUG: " + err.Error())
	}
	securityHeaders(ctx)
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

func (d *Dashboard) settingsCall(c context.Context, ctx *fasthttp.RequestCtx, sub string) error {
	p, err := d.principalOf(c, ctx)
	if err != nil {
		return err
	}
	if p.share != "" || !p.admin || d.settings == nil {
		return &apiError{Status: fasthttp.StatusForbidden, Code: "forbidden", Detail: "only admins may change settings"}
	}
	switch {
	case sub == "" && ctx.IsGet():
		st, err := d.settingsState(c, p)
		if err != nil {
			return err
		}
		writeJSON(ctx, fasthttp.StatusOK, st)
	case sub == "/status" && ctx.IsGet():
		site := string(ctx.QueryArgs().Peek("site"))
		var n uint64
		var last int64
		if err := d.conn.QueryRow(c, "SELECT count(), toInt64(max(ts)) FROM "+schema.Table(d.db, schema.Events)+" WHERE site = @s",
			clickhouse.Named("s", site)).Scan(&n, &last); err != nil {
			return fmt.Errorf("cannot count the events of %s: %w", site, err)
		}
		out := map[string]any{"site": site, "events": n}
		if n > 0 {
			out["last"] = time.Unix(last, 0).UTC()
		}
		writeJSON(ctx, fasthttp.StatusOK, out)
	case sub == "" && ctx.IsPost():
		var a action
		if err := json.Unmarshal(ctx.PostBody(), &a); err != nil {
			return bad("bad_request", "the request is not JSON: %v", err)
		}
		res, err := d.act(c, ctx, p, a)
		if err != nil {
			return err
		}
		if d.settings.Changed != nil {
			d.settings.Changed()
		}
		if res == nil {
			res = map[string]any{}
		}
		res["ok"] = true
		writeJSON(ctx, fasthttp.StatusOK, res)
	default:
		return &apiError{Status: fasthttp.StatusNotFound, Code: "not_found", Detail: "no such settings call"}
	}
	return nil
}

// action is one change, as the page posts it.
type action struct {
	Action    string   `json:"action"`
	Site      string   `json:"site"`
	Timezone  string   `json:"timezone"`
	Retention string   `json:"retention"`
	Goal      string   `json:"goal"`
	Currency  string   `json:"currency"`
	Name      string   `json:"name"`
	Role      string   `json:"role"`
	Sites     []string `json:"sites"`
	ID        string   `json:"id"`
}

type siteView struct {
	settings.Site
	FlagSite      bool `json:"flag_site"`
	FlagTimezone  bool `json:"flag_timezone"`
	FlagRetention bool `json:"flag_retention"`
}

type goalView struct {
	settings.Goal
	Flag bool `json:"flag"`
}

type userView struct {
	Name    string    `json:"name"`
	Role    string    `json:"role"`
	Sites   []string  `json:"sites"`
	Created time.Time `json:"created"`
}

type linkView struct {
	ID      string    `json:"id"`
	Sites   []string  `json:"sites"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

func (d *Dashboard) settingsState(c context.Context, p *principal) (map[string]any, error) {
	snap, err := settings.Load(c, d.conn, d.db)
	if err != nil {
		return nil, err
	}
	eff := snap.Apply(d.settings.Flags)
	var sites []siteView
	for _, name := range eff.Sites {
		v := siteView{Site: settings.Site{Site: name}}
		if s := snap.Site(name); s != nil {
			v.Site = *s
		}
		v.Timezone, v.Retention = eff.Timezones[name], eff.Retention[name]
		v.FlagSite, v.FlagTimezone, v.FlagRetention = eff.ByFlag["site:"+name], eff.ByFlag["timezone:"+name], eff.ByFlag["retention:"+name]
		sites = append(sites, v)
	}
	var goals []goalView
	for _, site := range eff.Sites {
		for _, g := range eff.Goals[site] {
			v := goalView{Goal: settings.Goal{Site: site, Goal: g}, Flag: eff.ByFlag["goal:"+site+":"+g]}
			for _, s := range snap.Goals {
				if s.Site == site && s.Goal == g {
					v.Currency = s.Currency
				}
			}
			goals = append(goals, v)
		}
	}
	us, err := ListUsers(c, d.conn, d.db)
	if err != nil {
		return nil, err
	}
	users := []userView{}
	for _, u := range us {
		users = append(users, userView{Name: u.Name, Role: u.Role, Sites: orNone(u.Sites), Created: u.Created})
	}
	ss, err := ListShares(c, d.conn, d.db)
	if err != nil {
		return nil, err
	}
	shares := []linkView{}
	for _, s := range ss {
		if !s.Revoked {
			shares = append(shares, linkView{ID: s.ID, Sites: []string{s.Site}, Name: s.Name, Created: s.Created})
		}
	}
	ks, err := query.ListKeys(c, d.conn, d.db)
	if err != nil {
		return nil, err
	}
	keys := []linkView{}
	for _, k := range ks {
		if !k.Revoked {
			keys = append(keys, linkView{ID: k.ID, Sites: k.Sites, Name: k.Name, Created: k.Created})
		}
	}
	log, err := settings.RecentAudit(c, d.conn, d.db, 50)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"me": p.user, "sites": orNone(sites), "goals": orNone(goals), "users": users, "shares": shares, "keys": keys, "audit": orNone(log),
		"retention": map[string]string{"default": d.settings.RetentionDefault.String(), "min": d.settings.RetentionMin.String(), "max": d.settings.RetentionMax.String()},
	}, nil
}

func orNone[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
