package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"turf/query/dashboard"
)

// turf user add|passwd|delete|list: people who log in to the dashboard.
// The logic is in query/dashboard/store.go.

func init() {
	register("user", "add, change, delete or list dashboard log-ins (turf user add --name alice)", runUser)
}

const userUsage = "usage: turf user add --name NAME [--site example.com] [--role admin|viewer] [--password-stdin] | turf user passwd --name NAME [--password-stdin] | turf user role --name NAME --role admin|viewer | turf user delete --name NAME | turf user list"

func runUser(args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New(userUsage)
	}
	sub, args := args[0], args[1:]
	var (
		name      string
		sites     listFlag
		role      string
		fromStdin bool
	)
	fs := newFlagSet("user "+sub, "Manages who may log in to the dashboard. Passwords are stored as bcrypt hashes only.\nWithout --password-stdin a random password is made and printed once.")
	if sub != "list" {
		fs.StringVar(&name, "name", "", "user name to log in with (letters, digits, . _ @ -)")
	}
	if sub == "add" {
		fs.Var(&sites, "site", "site the user may see (repeatable, or comma-separated); none: every site")
	}
	if sub == "add" || sub == "role" {
		fs.StringVar(&role, "role", "", "admin (changes settings, users, links and keys; sees every site) or viewer (sees its --site list, or every site). Default for add: admin without --site, viewer with")
	}
	if sub == "add" || sub == "passwd" {
		fs.BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input instead of making one")
	}
	open := openClickHouse(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if sub != "list" && name == "" {
		return errors.New("--name is required")
	}
	var password string
	if sub == "add" || sub == "passwd" {
		var err error
		if password, err = readOrMakePassword(fromStdin, os.Stdin); err != nil {
			return err
		}
	}
	conn, db, closeConn, err := open()
	if err != nil {
		return err
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	switch sub {
	case "add":
		if role == "" {
			role = dashboard.RoleAdmin
			if len(sites) > 0 {
				role = dashboard.RoleViewer
			}
		}
		if err := dashboard.CreateUser(ctx, conn, db, name, password, role, sites); err != nil {
			return err
		}
		scope := "every site"
		if len(sites) > 0 && role != dashboard.RoleAdmin {
			scope = strings.Join(sites, ", ")
		}
		fmt.Fprintf(os.Stderr, "user %s (%s) may now log in to the dashboard and see %s\n", name, role, scope)
	case "role":
		if err := dashboard.SetRole(ctx, conn, db, name, role); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s is now %s; open sessions follow within 10s\n", name, role)
		return nil
	case "passwd":
		if err := dashboard.SetPassword(ctx, conn, db, name, password); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "password of %s changed; their open sessions end within 10s\n", name)
	case "delete":
		if err := dashboard.DeleteUser(ctx, conn, db, name); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "user %s deleted; their open sessions end within 10s\n", name)
		return nil
	case "list":
		users, err := dashboard.ListUsers(ctx, conn, db)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tROLE\tSITES\tCREATED")
		for _, u := range users {
			s := strings.Join(u.Sites, ",")
			if s == "" {
				s = "(all)"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", u.Name, u.Role, s, u.Created.UTC().Format(time.RFC3339))
		}
		return w.Flush()
	default:
		return fmt.Errorf("unknown user command %q; %s", sub, userUsage)
	}
	if !fromStdin {
		fmt.Fprintln(os.Stderr, "the password is shown only now:")
		fmt.Println(password)
	}
	return nil
}

// readOrMakePassword reads one line from r, or makes a random password that
// is easy to type (no look-alike characters).
func readOrMakePassword(fromStdin bool, r io.Reader) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(r).ReadString('\n')
		if err != nil && (err != io.EOF || line == "") {
			return "", fmt.Errorf("cannot read the password from standard input: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789"
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("cannot make a password: %w", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:4]) + "-" + string(b[4:8]) + "-" + string(b[8:12]) + "-" + string(b[12:]), nil
}
