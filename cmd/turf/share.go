package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"turf/query/dashboard"
)

// turf share create|revoke|list: read-only dashboard links, one site each.
// The logic is in query/dashboard/store.go.

func init() {
	register("share", "create, revoke or list read-only dashboard links (turf share create --site example.com)", runShare)
}

const shareUsage = "usage: turf share create --site example.com [--name NAME] [--url https://stats.example.com] | turf share revoke --id ID | turf share list"

func runShare(args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New(shareUsage)
	}
	sub, args := args[0], args[1:]
	var site, name, base, id string
	fs := newFlagSet("share "+sub, "Manages read-only links to one site's dashboard. Anyone with the link sees that site's\nfigures without logging in, until it is revoked. The link is printed once; only its\nSHA-256 is stored.")
	switch sub {
	case "create":
		fs.StringVar(&site, "site", "", "the site the link shows, e.g. example.com")
		fs.StringVar(&name, "name", "", "a note saying who the link is for")
		fs.StringVar(&base, "url", "", "turf's public address, e.g. https://stats.example.com, to print a whole link (default: only the path)")
	case "revoke":
		fs.StringVar(&id, "id", "", "the link's id (see turf share list) or the whole link")
	}
	open := openClickHouse(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	conn, db, closeConn, err := open()
	if err != nil {
		return err
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	switch sub {
	case "create":
		tok, s, err := dashboard.CreateShare(ctx, conn, db, site, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "created share link %s for %s; it is shown only now:\n", s.ID, s.Site)
		fmt.Println(strings.TrimSuffix(base, "/") + "/share/" + tok)
		return nil
	case "revoke":
		if id == "" {
			return errors.New("--id is required (see turf share list)")
		}
		if i := strings.LastIndex(id, "/share/"); i >= 0 {
			id = id[i+len("/share/"):]
		}
		if err := dashboard.RevokeShare(ctx, conn, db, id); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "revoked; servers stop accepting it within 10s")
		return nil
	case "list":
		shares, err := dashboard.ListShares(ctx, conn, db)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tSITE\tCREATED\tREVOKED\tNAME")
		for _, s := range shares {
			fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%s\n", s.ID, s.Site, s.Created.UTC().Format(time.RFC3339), s.Revoked, s.Name)
		}
		return w.Flush()
	}
	return fmt.Errorf("unknown share command %q; %s", sub, shareUsage)
}
