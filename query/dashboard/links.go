package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"turf/internal/linksign"
)

// The link page (/links): staff make newsletter tracking links and open
// pixels in the browser, signed exactly as `turf link create|pixel` signs
// them (internal/linksign, the key shared through ClickHouse), so a link
// made here works on every turf instance. It is a plain HTML form: GET
// shows it, POST (session cookie, the session's CSRF token as a form field,
// same origin) makes the link and shows it with a copy button. Share links
// never reach it: making links is for staff.

const linksPath = "/links"

// linkForm is what the page shows: the form's values and, after a POST,
// the link made or the error.
type linkForm struct {
	Site, Campaign, URL, Kind string
	Made, Pixel               string // the URL made; for a pixel also the <img> to paste
	Dropped, Error            string
}

// serveLinks answers GET and POST /links.
func (d *Dashboard) serveLinks(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() && !ctx.IsPost() {
		ctx.Error("use GET or POST", fasthttp.StatusMethodNotAllowed)
		return
	}
	c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	p, err := d.session(c, string(ctx.Request.Header.Cookie(cookieName)))
	if err != nil {
		if !errors.Is(err, errNoSession) {
			d.cfg.Logf("dashboard: %v", err)
		}
		ctx.Redirect("/login?next="+urlQueryEscape(string(ctx.RequestURI())), fasthttp.StatusSeeOther)
		return
	}
	lang := pageLang(ctx)
	tx := linkText(lang)
	f := linkForm{Site: p.sites[0], Kind: "link"}
	status := fasthttp.StatusOK
	if ctx.IsPost() {
		args := ctx.PostArgs()
		if !sameToken(string(args.Peek("csrf")), p.csrf) || !sameOrigin(ctx) {
			ctx.Error("forbidden", fasthttp.StatusForbidden)
			return
		}
		f = linkForm{Site: string(args.Peek("site")), Campaign: strings.TrimSpace(string(args.Peek("campaign"))),
			URL: strings.TrimSpace(string(args.Peek("url"))), Kind: string(args.Peek("kind"))}
		if status, err = d.makeLink(c, ctx, p, &f, tx); err != nil {
			d.cfg.Logf("dashboard: making a link: %v", err)
		}
	}
	d.render(ctx, status, "links.html", map[string]any{
		"T": tx, "Lang": lang, "CSRF": p.csrf, "Sites": p.sites, "F": f, "User": p.user,
		"CSS": d.assetURL("app.css"), "LinksCSS": d.assetURL("links.css"), "JS": d.assetURL("links.js"), "Icon": d.assetURL("favicon.svg"),
	})
}

// makeLink checks the form and fills in the link made, or the error to
// show and its status. The returned error is only for the log (ClickHouse
// could not give the key); bad input is f.Error alone.
func (d *Dashboard) makeLink(c context.Context, ctx *fasthttp.RequestCtx, p *principal, f *linkForm, tx texts) (int, error) {
	kind := linksign.Click
	switch f.Kind {
	case "link":
	case "pixel":
		kind = linksign.Open
	default:
		f.Kind, f.Error = "link", tx["BadKind"]
		return fasthttp.StatusBadRequest, nil
	}
	if !slices.Contains(p.sites, f.Site) {
		f.Error = tx["BadSite"]
		return fasthttp.StatusBadRequest, nil
	}
	if err := linksign.CheckCampaign(f.Campaign); err != nil {
		f.Error = tx["BadCampaign"]
		return fasthttp.StatusBadRequest, nil
	}
	l := linksign.Link{Kind: kind, Site: f.Site, Campaign: f.Campaign}
	if kind == linksign.Click {
		clean, dropped, err := linksign.Clean(f.URL)
		if err != nil {
			f.Error = tx["BadURL"]
			return fasthttp.StatusBadRequest, nil
		}
		l.URL, f.URL = clean, clean
		if len(dropped) > 0 {
			f.Dropped = fmt.Sprintf(tx["Dropped"], strings.Join(dropped, ", "))
		}
	}
	// Synced on every use: the key may have been made by another instance
	// or by `turf link` since this one last looked.
	if err := d.links.Sync(c); err != nil {
		f.Error = tx["NoKey"]
		return fasthttp.StatusServiceUnavailable, err
	}
	key, err := d.links.Signer()
	if err != nil {
		f.Error = tx["NoKey"]
		return fasthttp.StatusServiceUnavailable, err
	}
	f.Made = d.publicURL(ctx) + linksign.Path(linksign.Sign(key, l), kind)
	if kind == linksign.Open {
		f.Pixel = `<img src="` + f.Made + `" width="1" height="1" alt="" style="display:block;border:0">`
	}
	return fasthttp.StatusOK, nil
}

// publicURL is where mail clients reach turf: Config.PublicURL, or this
// page's own origin (the dashboard and the collector share a listener).
func (d *Dashboard) publicURL(ctx *fasthttp.RequestCtx) string {
	if d.cfg.PublicURL != "" {
		return strings.TrimSuffix(d.cfg.PublicURL, "/")
	}
	scheme := "http"
	if ctx.IsTLS() || strings.EqualFold(string(ctx.Request.Header.Peek("X-Forwarded-Proto")), "https") {
		scheme = "https"
	}
	return (&url.URL{Scheme: scheme, Host: string(ctx.Host())}).String()
}

var linkTexts = map[string]texts{
	"en": {"Title": "Newsletter links", "Back": "Dashboard",
		"Intro": "Make a tracking link or an open pixel for a newsletter issue. Every recipient gets the same link: it names the issue and the page, never a person. Paste it into your newsletter tool's template and switch off the tool's own per-recipient click and open tracking.",
		"Site":  "Site", "Campaign": "Campaign (newsletter issue)", "CampaignHint": "For example nieuwsbrief-2026-12. Never a recipient's name or address.",
		"Kind": "What to make", "KindLink": "Tracking link (counts clicks)", "KindPixel": "Open pixel (counts opens)",
		"URL": "Destination", "URLHint": "Where the link leads, e.g. https://example.com/huren. Recipient-looking parameters (email, uid, mc_eid, …) are dropped.",
		"Submit": "Make", "Result": "Your link", "ResultPixel": "Your open pixel", "PixelHTML": "HTML for the template",
		"Copy": "Copy", "Copied": "Copied", "CopyFailed": "Select the text and copy it by hand.",
		"BadKind": "Choose a tracking link or an open pixel.", "BadSite": "Choose one of your sites.",
		"BadCampaign": "Give the campaign a name of at most 200 characters, without control characters, and not an e-mail address.",
		"BadURL":      "Give an absolute http(s) address, such as https://example.com/huren (at most 2000 characters).",
		"Dropped":     "Dropped query parameters that look like they name a recipient: %s. A newsletter link must be the same for everyone.",
		"NoKey":       "The signing key cannot be read from the database right now. Try again in a moment.",
		"Privacy":     "Opens from mail privacy proxies (such as Apple Mail) and clicks by link scanners are counted apart as machine opens and clicks, never as people."},
	"nl": {"Title": "Nieuwsbrieflinks", "Back": "Dashboard",
		"Intro": "Maak een trackinglink of een openpixel voor een nieuwsbrief. Iedere ontvanger krijgt dezelfde link: die noemt de nieuwsbrief en de pagina, nooit een persoon. Plak hem in de sjabloon van je nieuwsbrieftool en zet het eigen klik- en openmeten per ontvanger van die tool uit.",
		"Site":  "Site", "Campaign": "Campagne (nieuwsbriefnummer)", "CampaignHint": "Bijvoorbeeld nieuwsbrief-2026-12. Nooit de naam of het adres van een ontvanger.",
		"Kind": "Wat maken", "KindLink": "Trackinglink (telt kliks)", "KindPixel": "Openpixel (telt openingen)",
		"URL": "Bestemming", "URLHint": "Waar de link heen gaat, bijv. https://example.com/huren. Parameters die op een ontvanger lijken (email, uid, mc_eid, …) worden weggelaten.",
		"Submit": "Maken", "Result": "Je link", "ResultPixel": "Je openpixel", "PixelHTML": "HTML voor de sjabloon",
		"Copy": "Kopiëren", "Copied": "Gekopieerd", "CopyFailed": "Selecteer de tekst en kopieer hem met de hand.",
		"BadKind": "Kies een trackinglink of een openpixel.", "BadSite": "Kies een van je sites.",
		"BadCampaign": "Geef de campagne een naam van hoogstens 200 tekens, zonder stuurtekens en geen e-mailadres.",
		"BadURL":      "Geef een volledig http(s)-adres, zoals https://example.com/huren (hoogstens 2000 tekens).",
		"Dropped":     "Parameters weggelaten die op een ontvanger lijken: %s. Een nieuwsbrieflink moet voor iedereen gelijk zijn.",
		"NoKey":       "De ondertekeningssleutel is nu niet uit de database te lezen. Probeer het zo opnieuw.",
		"Privacy":     "Openingen door privacyproxy's van mailprogramma's (zoals Apple Mail) en kliks door linkscanners tellen apart als machine-openingen en -kliks, nooit als mensen."},
}

func linkText(lang string) texts { return linkTexts[lang] }
