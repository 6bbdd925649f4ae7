package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/internal/linksign"
)

// turf link create|pixel: newsletter tracking links and open pixels, signed
// with the key every turf instance shares through ClickHouse. The logic is
// in internal/linksign (shared with the dashboard's link page); see docs/newsletters.md.

func init() {
	register("link", "make a newsletter tracking link or open pixel (turf link create --site example.com --campaign ... --url ...)", func(args []string) error {
		return runLink(args, os.Stdout, os.Stderr)
	})
}

const linkUsage = "usage: turf link create --site example.com --campaign nieuwsbrief-2026-12 --url https://example.com/huren --public-url https://stats.example.com | turf link pixel --site example.com --campaign nieuwsbrief-2026-12 --public-url https://stats.example.com"

func runLink(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New(linkUsage)
	}
	sub, args := args[0], args[1:]
	var kind linksign.Kind
	switch sub {
	case "create":
		kind = linksign.Click
	case "pixel":
		kind = linksign.Open
	default:
		return fmt.Errorf("unknown link command %q; %s", sub, linkUsage)
	}
	var site, campaign, dest, public string
	fs := newFlagSet("link "+sub, "Prints a newsletter tracking link (create) or open-pixel URL (pixel) for one campaign.\nEvery recipient gets the same link: it names the campaign and the destination, never a person.\nFollowing it records a Newsletter Click (or loading the pixel a Newsletter Open); see docs/newsletters.md.")
	fs.StringVar(&site, "site", "", "the site the events are counted for, e.g. example.com (one of turf serve's --site)")
	fs.StringVar(&campaign, "campaign", "", "the newsletter issue, e.g. nieuwsbrief-2026-12; stored as prop campaign and as utm_campaign")
	if kind == linksign.Click {
		fs.StringVar(&dest, "url", "", "where the link leads, e.g. https://example.com/huren; recipient-looking query parameters (email, uid, mc_eid, ...) are dropped with a warning")
	}
	fs.StringVar(&public, "public-url", "", "turf's public address as mail clients reach it, e.g. https://stats.example.com (the address serving /api/event); the printed URL starts with it")
	open := openClickHouse(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkPublicURL(public); err != nil {
		return err
	}
	conn, db, closeConn, err := open()
	if err != nil {
		return err
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, dropped, err := makeLink(ctx, conn, db, linksign.Link{Kind: kind, Site: site, Campaign: campaign, URL: dest}, public)
	if err != nil {
		return err
	}
	if len(dropped) > 0 {
		fmt.Fprintf(stderr, "warning: dropped query parameters that look like they name a recipient: %s (a newsletter link must be the same for everyone)\n", strings.Join(dropped, ", "))
	}
	fmt.Fprintln(stdout, out)
	return nil
}

func checkPublicURL(public string) error {
	u, err := url.Parse(public)
	if public == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--public-url %q: give turf's public address, e.g. https://stats.example.com (also TURF_PUBLIC_URL)", public)
	}
	return nil
}

// makeLink checks l, cleans its destination, and signs it with the shared
// key (made now when this database has none yet). It returns the whole URL
// on public and the names of the query parameters it dropped.
func makeLink(ctx context.Context, conn driver.Conn, db string, l linksign.Link, public string) (string, []string, error) {
	l.Site = strings.ToLower(strings.TrimSpace(l.Site))
	if err := linksign.CheckSite(l.Site); err != nil {
		return "", nil, fmt.Errorf("--site: %w", err)
	}
	if err := linksign.CheckCampaign(l.Campaign); err != nil {
		return "", nil, fmt.Errorf("--campaign: %w", err)
	}
	var dropped []string
	if l.Kind == linksign.Click {
		var err error
		if l.URL, dropped, err = linksign.Clean(l.URL); err != nil {
			return "", nil, fmt.Errorf("--url: %w", err)
		}
	}
	keys := linksign.NewKeys(conn, db, time.Now)
	if err := keys.Sync(ctx); err != nil {
		return "", nil, err
	}
	key, err := keys.Signer()
	if err != nil {
		return "", nil, err
	}
	return strings.TrimSuffix(public, "/") + linksign.Path(linksign.Sign(key, l), l.Kind), dropped, nil
}
