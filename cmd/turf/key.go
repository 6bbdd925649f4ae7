package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"turf/query"
)

// turf key create|revoke|list: Stats API keys. The logic is in query/keys.go.

func init() {
	register("key", "create, revoke or list Stats API keys (turf key create --site example.com)", runKey)
}

func runKey(args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New("usage: turf key create --site example.com [--name NAME] | turf key revoke KEY_ID | turf key list")
	}
	sub, args := args[0], args[1:]
	// The key id comes first (turf key revoke ID [flags]): flags end at the
	// first positional argument.
	var id string
	if sub == "revoke" && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	var sites listFlag
	var name string
	fs := newFlagSet("key "+sub, "Manages keys for POST /api/v2/query. A key is printed once, when it is created;\nonly its SHA-256 is stored.")
	if sub == "create" {
		fs.Var(&sites, "site", "site the key may read, e.g. example.com (repeatable, or comma-separated)")
		fs.StringVar(&name, "name", "", "a note saying who or what the key is for")
	}
	open := openClickHouse(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if sub == "revoke" && id == "" {
		return errors.New("usage: turf key revoke KEY_ID (the 8 hex digits after turf_, see turf key list)")
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
		key, k, err := query.CreateKey(ctx, conn, db, sites, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "created key %s for %s; it is shown only now:\n", k.ID, strings.Join(k.Sites, ", "))
		fmt.Println(key)
		return nil
	case "revoke":
		if err := query.RevokeKey(ctx, conn, db, id); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "revoked; servers stop accepting it within their key cache time (10s by default)")
		return nil
	case "list":
		keys, err := query.ListKeys(ctx, conn, db)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tSITES\tCREATED\tREVOKED\tNAME")
		for _, k := range keys {
			fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%s\n", k.ID, strings.Join(k.Sites, ","), k.Created.UTC().Format(time.RFC3339), k.Revoked, k.Name)
		}
		return w.Flush()
	}
	return fmt.Errorf("unknown key command %q: use create, revoke or list", sub)
}
