package dashboard

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"turf/query"
	"turf/query/settings"
	"turf/retention"
)

// The changes an admin makes on the settings page, one action each; see
// settings.go for the page and who may call it.

// act makes one change and logs it; it returns what the page shows once
// (a link, a key).
func (d *Dashboard) act(c context.Context, ctx *fasthttp.RequestCtx, p *principal, a action) (map[string]any, error) {
	snap, err := settings.Load(c, d.conn, d.db)
	if err != nil {
		return nil, err
	}
	flags := d.settings.Flags
	eff := snap.Apply(flags)
	known := func(site string) error {
		if !slices.Contains(eff.Sites, site) {
			return bad("no_site", "there is no site %q", site)
		}
		return nil
	}
	origin := "http://"
	if d.secure(ctx) {
		origin = "https://"
	}
	origin += string(ctx.Host())
	var out map[string]any
	target, detail := a.Site, ""
	switch a.Action {
	case "site.add":
		site, err := settings.NormalizeSite(a.Site)
		if err != nil {
			return nil, bad("bad_site", "%v", err)
		}
		if slices.Contains(eff.Sites, site) {
			return nil, bad("site_exists", "%s is already a site", site)
		}
		if err := settings.CheckTimezone(a.Timezone); err != nil {
			return nil, bad("bad_timezone", "%v", err)
		}
		if err := settings.PutSite(c, d.conn, d.db, settings.Site{Site: site, Timezone: a.Timezone}); err != nil {
			return nil, err
		}
		target, detail = site, a.Timezone
		out = map[string]any{"site": site}
	case "site.remove":
		if err := known(a.Site); err != nil {
			return nil, err
		}
		if eff.ByFlag["site:"+a.Site] {
			return nil, bad("flag_site", "%s is set by --site; remove the flag and restart turf to remove it", a.Site)
		}
		if err := settings.DeleteSite(c, d.conn, d.db, *snap.Site(a.Site)); err != nil {
			return nil, err
		}
	case "site.timezone", "site.retention":
		if err := known(a.Site); err != nil {
			return nil, err
		}
		x := settings.Site{Site: a.Site}
		if s := snap.Site(a.Site); s != nil {
			x = *s
		}
		if a.Action == "site.timezone" {
			if err := settings.CheckTimezone(a.Timezone); err != nil {
				return nil, bad("bad_timezone", "%v", err)
			}
			x.Timezone, detail = a.Timezone, a.Timezone
		} else {
			if err := d.checkRetention(a.Retention); err != nil {
				return nil, err
			}
			x.Retention, detail = a.Retention, a.Retention
		}
		if err := settings.PutSite(c, d.conn, d.db, x); err != nil {
			return nil, err
		}
	case "goal.add", "goal.remove":
		if err := known(a.Site); err != nil {
			return nil, err
		}
		goal, cur, err := settings.CheckGoal(a.Goal, a.Currency)
		if err != nil {
			return nil, bad("bad_goal", "%v", err)
		}
		exists := slices.Contains(eff.Goals[a.Site], goal)
		if a.Action == "goal.add" {
			if exists {
				return nil, bad("goal_exists", "%s already has the goal %q", a.Site, goal)
			}
			err = settings.PutGoal(c, d.conn, d.db, settings.Goal{Site: a.Site, Goal: goal, Currency: cur})
		} else {
			if eff.ByFlag["goal:"+a.Site+":"+goal] {
				return nil, bad("flag_goal", "the goal %q is set by --goal; remove the flag to remove it", goal)
			}
			err = settings.DeleteGoal(c, d.conn, d.db, settings.Goal{Site: a.Site, Goal: goal})
		}
		if err != nil {
			return nil, err
		}
		detail = strings.TrimSpace(goal + " " + cur)
	case "user.invite", "user.reset":
		invite := Invite{Kind: InviteReset, User: strings.TrimSpace(a.Name), CreatedBy: p.user}
		u, err := loadUser(c, d.conn, d.db, invite.User)
		if err != nil {
			return nil, err
		}
		exists := u != nil && !u.Deleted
		if a.Action == "user.invite" {
			if exists {
				return nil, bad("user_exists", "there is already a user %q", invite.User)
			}
			if err := checkRole(a.Role); err != nil {
				return nil, bad("bad_role", "%v", err)
			}
			for _, s := range a.Sites {
				if err := known(s); err != nil {
					return nil, err
				}
			}
			if a.Role == RoleViewer && len(a.Sites) == 0 {
				return nil, bad("no_sites", "choose the sites a viewer may see")
			}
			invite.Kind, invite.Role, invite.Sites = InviteNew, a.Role, a.Sites
			detail = a.Role + " " + strings.Join(a.Sites, ",")
		} else if !exists {
			return nil, bad("no_user", "there is no user %q", invite.User)
		}
		tok, err := CreateInvite(c, d.conn, d.db, invite)
		if err != nil {
			return nil, bad("bad_user", "%v", err)
		}
		target = invite.User
		out = map[string]any{"link": origin + invitePrefix + tok, "expires": time.Now().Add(InviteTTL).UTC().Truncate(time.Second)}
	case "user.delete":
		if a.Name == p.user {
			return nil, bad("self_delete", "you cannot delete your own account")
		}
		if err := DeleteUser(c, d.conn, d.db, a.Name); err != nil {
			return nil, bad("no_user", "%v", err)
		}
		target = a.Name
	case "share.create":
		if err := known(a.Site); err != nil {
			return nil, err
		}
		tok, s, err := CreateShare(c, d.conn, d.db, a.Site, a.Name)
		if err != nil {
			return nil, err
		}
		target, detail = s.ID, a.Site+" "+a.Name
		out = map[string]any{"id": s.ID, "url": origin + "/share/" + tok}
	case "share.revoke":
		if err := RevokeShare(c, d.conn, d.db, a.ID); err != nil {
			return nil, bad("not_found", "%v", err)
		}
		d.auth.mu.Lock()
		clear(d.auth.m) // revoked here: at once here, elsewhere within AuthCacheTTL
		d.auth.mu.Unlock()
		target = a.ID
	case "key.create":
		for _, s := range a.Sites {
			if err := known(s); err != nil {
				return nil, err
			}
		}
		if len(a.Sites) == 0 {
			return nil, bad("no_sites", "choose the sites the key may read")
		}
		key, k, err := query.CreateKey(c, d.conn, d.db, a.Sites, a.Name)
		if err != nil {
			return nil, err
		}
		target, detail = k.ID, strings.Join(a.Sites, ",")+" "+a.Name
		out = map[string]any{"id": k.ID, "key": key}
	case "key.revoke":
		if err := query.RevokeKey(c, d.conn, d.db, a.ID); err != nil {
			return nil, bad("not_found", "%v", err)
		}
		target = a.ID
	default:
		return nil, bad("bad_request", "unknown action %q", a.Action)
	}
	d.audit(c, p.user, a.Action, target, strings.TrimSpace(detail))
	return out, nil
}

// checkRetention accepts "" (the default) and periods within the bounds.
func (d *Dashboard) checkRetention(s string) error {
	if s == "" {
		return nil
	}
	per, err := retention.ParsePeriod(s)
	if err != nil {
		return bad("bad_retention", "%v", err)
	}
	now := time.Now()
	lo, hi := d.settings.RetentionMin, d.settings.RetentionMax
	if per.Cutoff(now).After(lo.Cutoff(now)) || per.Cutoff(now).Before(hi.Cutoff(now)) {
		return bad("bad_retention", "a site's retention must be between %s and %s (--retention-min, --retention-max)", lo, hi)
	}
	return nil
}
