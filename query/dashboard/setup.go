package dashboard

import (
	"context"
	"crypto/subtle"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"turf/query/settings"
)

// The first account. A fresh turf has no user, and no default password and
// no open registration either: `turf serve` prints a one-time setup link
// instead (PrepareSetup). Its token is random, lives in this process's
// memory only (as a hash), and works while no user exists; the first
// account made through it, or any account made another way (turf user add,
// another instance's link), ends it.
//
// Invitations and password resets are one-time links too, made by admins
// on the settings page and stored (dashboard_invites), so any instance
// honours them.

const (
	setupPrefix  = "/setup/"
	invitePrefix = "/invite/"
)

type setupLink struct {
	mu   sync.Mutex
	hash string // "" when there is no live setup link
}

// PrepareSetup makes the setup link when no user exists and returns its
// path (/setup/TOKEN); "" when users exist.
func (d *Dashboard) PrepareSetup(ctx context.Context) (string, error) {
	users, err := ListUsers(ctx, d.conn, d.db)
	if err != nil {
		return "", err
	}
	if len(users) > 0 {
		return "", nil
	}
	tok, err := randomToken(24)
	if err != nil {
		return "", err
	}
	d.setup.mu.Lock()
	d.setup.hash = hashToken(tok)
	d.setup.mu.Unlock()
	return setupPrefix + tok, nil
}

var passwordTexts = map[string]texts{
	"en": {"Lang": "en", "SetupTitle": "Make the first account", "SetupIntro": "This link works once: the account you make here is turf's first admin. Afterwards, admins invite colleagues from Settings.",
		"InviteTitle": "Choose your password", "InviteIntro": "You were invited to turf's dashboard. Choose a password to finish your account.",
		"ResetTitle": "Choose a new password", "ResetIntro": "Choose a new password for your account.",
		"User": "User name", "Password": "Password (at least 10 characters)", "Repeat": "Password again", "Submit": "Save and continue",
		"Gone":     "This link has been used or has expired. Ask an admin for a new one.",
		"Mismatch": "The two passwords differ.", "Short": "A password must be 10 to 72 bytes long.",
		"BadName": "A user name has letters, digits and . _ @ - (at most 64).", "Taken": "That user name is taken.",
		"Cross":  "This form was sent from another site; open turf's own page and try again.",
		"Failed": "Something went wrong on our side. Try again in a moment.", "Done": "Your password is set. Log in with it now."},
	"nl": {"Lang": "nl", "SetupTitle": "Maak het eerste account", "SetupIntro": "Deze link werkt één keer: het account dat je hier maakt is de eerste beheerder van turf. Daarna nodigen beheerders collega's uit via Instellingen.",
		"InviteTitle": "Kies je wachtwoord", "InviteIntro": "Je bent uitgenodigd voor het turf-dashboard. Kies een wachtwoord om je account af te maken.",
		"ResetTitle": "Kies een nieuw wachtwoord", "ResetIntro": "Kies een nieuw wachtwoord voor je account.",
		"User": "Gebruikersnaam", "Password": "Wachtwoord (minstens 10 tekens)", "Repeat": "Wachtwoord nogmaals", "Submit": "Opslaan en verder",
		"Gone":     "Deze link is al gebruikt of verlopen. Vraag een beheerder om een nieuwe.",
		"Mismatch": "De twee wachtwoorden verschillen.", "Short": "Een wachtwoord is 10 tot 72 bytes lang.",
		"BadName": "Een gebruikersnaam bestaat uit letters, cijfers en . _ @ - (hoogstens 64).", "Taken": "Die gebruikersnaam is al in gebruik.",
		"Cross":  "Dit formulier kwam van een andere site; open de pagina van turf zelf en probeer opnieuw.",
		"Failed": "Er ging bij ons iets mis. Probeer het zo opnieuw.", "Done": "Je wachtwoord is ingesteld. Log er nu mee in."},
}

func (d *Dashboard) passwordPage(ctx *fasthttp.RequestCtx, kind string) texts {
	t := passwordTexts[pageLang(ctx)].with("Icon", d.assetURL("favicon.svg")).with("CSS", d.assetURL("app.css")).with("Action", string(ctx.Path()))
	switch kind {
	case "setup":
		t = t.with("Title", t["SetupTitle"]).with("Intro", t["SetupIntro"]).with("AskName", "1")
	case InviteNew:
		t = t.with("Title", t["InviteTitle"]).with("Intro", t["InviteIntro"])
	default:
		t = t.with("Title", t["ResetTitle"]).with("Intro", t["ResetIntro"])
	}
	return t
}

// readPasswordForm checks the posted form; it returns the text of what is
// wrong, or "".
func readPasswordForm(ctx *fasthttp.RequestCtx, t texts, askName bool) (name, password, problem string) {
	if o := ctx.Request.Header.Peek("Origin"); len(o) == 0 || !sameOrigin(ctx) {
		return "", "", t["Cross"]
	}
	args := ctx.PostArgs()
	name = strings.TrimSpace(string(args.Peek("username")))
	password = string(args.Peek("password"))
	switch {
	case askName && !userNameRe.MatchString(name):
		return name, "", t["BadName"]
	case password != string(args.Peek("repeat")):
		return name, "", t["Mismatch"]
	case checkPassword(password) != nil:
		return name, "", t["Short"]
	}
	return name, password, ""
}

func (d *Dashboard) serveSetup(ctx *fasthttp.RequestCtx, token string) {
	t := d.passwordPage(ctx, "setup")
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d.setup.mu.Lock()
	defer d.setup.mu.Unlock()
	live := d.setup.hash != "" && subtle.ConstantTimeCompare([]byte(d.setup.hash), []byte(hashToken(token))) == 1
	if live {
		// Dead as soon as any account exists, however it was made.
		users, err := ListUsers(c, d.conn, d.db)
		if err != nil {
			d.cfg.Logf("dashboard: setup: %v", err)
			d.render(ctx, fasthttp.StatusInternalServerError, "message.html", t.with("Message", t["Failed"]))
			return
		}
		if len(users) > 0 {
			d.setup.hash, live = "", false
		}
	}
	if !live {
		d.render(ctx, fasthttp.StatusNotFound, "message.html", t.with("Message", t["Gone"]))
		return
	}
	if ctx.IsGet() || ctx.IsHead() {
		d.render(ctx, fasthttp.StatusOK, "password.html", t)
		return
	}
	if !ctx.IsPost() {
		ctx.Error("use GET or POST", fasthttp.StatusMethodNotAllowed)
		return
	}
	name, password, problem := readPasswordForm(ctx, t, true)
	if problem != "" {
		d.render(ctx, fasthttp.StatusOK, "password.html", t.with("Error", problem).with("Name", name))
		return
	}
	if err := CreateUser(c, d.conn, d.db, name, password, RoleAdmin, nil); err != nil {
		d.cfg.Logf("dashboard: setup: %v", err)
		d.render(ctx, fasthttp.StatusInternalServerError, "password.html", t.with("Error", t["Failed"]).with("Name", name))
		return
	}
	d.setup.hash = ""
	d.audit(c, name, "user.add", name, "first admin, through the setup link")
	tok, exp, err := d.startSession(c, name)
	if err != nil {
		d.cfg.Logf("dashboard: setup: %v", err)
		ctx.Redirect("/login", fasthttp.StatusSeeOther)
		return
	}
	d.setCookie(ctx, tok, exp)
	securityHeaders(ctx)
	ctx.Redirect(settingsPath, fasthttp.StatusSeeOther)
}

func (d *Dashboard) serveInvite(ctx *fasthttp.RequestCtx, token string) {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	inv, err := loadInvite(c, d.conn, d.db, token, d.cfg.Now())
	if err != nil {
		d.cfg.Logf("dashboard: invitation: %v", err)
		t := passwordTexts[pageLang(ctx)].with("Icon", d.assetURL("favicon.svg")).with("CSS", d.assetURL("app.css"))
		d.render(ctx, fasthttp.StatusInternalServerError, "message.html", t.with("Message", t["Failed"]))
		return
	}
	kind := InviteReset
	if inv != nil {
		kind = inv.Kind
	}
	t := d.passwordPage(ctx, kind)
	if inv == nil {
		d.render(ctx, fasthttp.StatusNotFound, "message.html", t.with("Message", t["Gone"]))
		return
	}
	t = t.with("Name", inv.User).with("Fixed", "1")
	if ctx.IsGet() || ctx.IsHead() {
		d.render(ctx, fasthttp.StatusOK, "password.html", t)
		return
	}
	if !ctx.IsPost() {
		ctx.Error("use GET or POST", fasthttp.StatusMethodNotAllowed)
		return
	}
	_, password, problem := readPasswordForm(ctx, t, false)
	if problem != "" {
		d.render(ctx, fasthttp.StatusOK, "password.html", t.with("Error", problem))
		return
	}
	// Used first: a link that fails half-way is asked for again, rather
	// than one that works twice.
	inv.Used = true
	err = writeInvite(c, d.conn, d.db, *inv)
	if err == nil {
		if inv.Kind == InviteNew {
			var old *User
			if old, err = loadUser(c, d.conn, d.db, inv.User); err == nil && old != nil && !old.Deleted {
				err = errTaken
			} else if err == nil {
				err = CreateUser(c, d.conn, d.db, inv.User, password, inv.Role, inv.Sites)
			}
		} else {
			err = SetPassword(c, d.conn, d.db, inv.User, password)
		}
	}
	if errors.Is(err, errTaken) {
		d.render(ctx, fasthttp.StatusConflict, "message.html", t.with("Message", t["Taken"]))
		return
	}
	if err != nil {
		d.cfg.Logf("dashboard: invitation: %v", err)
		d.render(ctx, fasthttp.StatusInternalServerError, "message.html", t.with("Message", t["Failed"]))
		return
	}
	d.audit(c, inv.User, "user."+inv.Kind+".used", inv.User, "link made by "+inv.CreatedBy)
	securityHeaders(ctx)
	ctx.Redirect("/login?next=/&done=1&lang="+t["Lang"], fasthttp.StatusSeeOther)
}

var errTaken = errors.New("user name taken")

// audit logs a change; a failure to log is logged, and does not undo the
// change it describes.
func (d *Dashboard) audit(c context.Context, actor, action, target, detail string) {
	if err := settings.Audit(c, d.conn, d.db, settings.Entry{Actor: actor, Action: action, Target: target, Detail: detail}); err != nil {
		d.cfg.Logf("dashboard: %v", err)
	}
}
