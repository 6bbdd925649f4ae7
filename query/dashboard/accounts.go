package dashboard

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/schema"
)

// Roles. An admin changes settings, users, share links and API keys and
// sees every site; a viewer reads its sites (every site when its list is
// empty) and changes nothing.
const (
	RoleAdmin  = "admin"
	RoleViewer = "viewer"
)

func checkRole(r string) error {
	if r != RoleAdmin && r != RoleViewer {
		return fmt.Errorf("invalid role %q: use %s or %s", r, RoleAdmin, RoleViewer)
	}
	return nil
}

// visibleSites is the user's site list as sitesFor takes it.
func (u *User) visibleSites() []string {
	if u.Role == RoleAdmin {
		return nil
	}
	return u.Sites
}

// SetRole changes an existing user's role.
func SetRole(ctx context.Context, conn driver.Conn, db, name, role string) error {
	if err := checkRole(role); err != nil {
		return err
	}
	if _, err := existingUser(ctx, conn, db, name); err != nil {
		return err
	}
	return writeRole(ctx, conn, db, name, role)
}

func writeRole(ctx context.Context, conn driver.Conn, db, name, role string) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+schema.Table(db, schema.Roles)+" (username, role, version)")
	if err != nil {
		return fmt.Errorf("cannot store the role of %s: %w", name, err)
	}
	defer b.Close()
	if err := b.Append(name, role, version()); err != nil {
		return fmt.Errorf("cannot store the role of %s: %w", name, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot store the role of %s: %w", name, err)
	}
	return nil
}

// loadRoles reads the role of name, or of every user when name is "".
func loadRoles(ctx context.Context, conn driver.Conn, db, name string) (map[string]string, error) {
	q := "SELECT username, argMax(role, version) FROM " + schema.Table(db, schema.Roles)
	var args []any
	if name != "" {
		q += " WHERE username = @u"
		args = append(args, clickhouse.Named("u", name))
	}
	rows, err := conn.Query(ctx, q+" GROUP BY username", args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read the users' roles: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var u, r string
		if err := rows.Scan(&u, &r); err != nil {
			return nil, fmt.Errorf("cannot read the users' roles: %w", err)
		}
		out[u] = r
	}
	return out, rows.Err()
}

func roleOf(roles map[string]string, name string) string {
	if roles[name] == RoleAdmin {
		return RoleAdmin
	}
	return RoleViewer
}

// Invite kinds.
const (
	InviteNew   = "invite" // makes the account on use
	InviteReset = "reset"  // sets an existing user's password
)

// InviteTTL is how long an invitation or reset link works.
const InviteTTL = 7 * 24 * time.Hour

// Invite is a one-time link to set a password.
type Invite struct {
	Kind      string
	User      string
	Role      string
	Sites     []string
	CreatedBy string
	Created   time.Time
	Expires   time.Time
	Used      bool
	hash      string
}

// CreateInvite stores a one-time link and returns its token (shown once).
func CreateInvite(ctx context.Context, conn driver.Conn, db string, inv Invite) (string, error) {
	if !userNameRe.MatchString(inv.User) {
		return "", fmt.Errorf("invalid user name %q: use letters, digits and . _ @ - (at most 64)", inv.User)
	}
	if inv.Kind == InviteNew {
		if err := checkRole(inv.Role); err != nil {
			return "", err
		}
	}
	tok, err := randomToken(32)
	if err != nil {
		return "", err
	}
	now := time.Now().UTC().Truncate(time.Second)
	inv.hash, inv.Created, inv.Expires = hashToken(tok), now, now.Add(InviteTTL)
	return tok, writeInvite(ctx, conn, db, inv)
}

func writeInvite(ctx context.Context, conn driver.Conn, db string, inv Invite) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+schema.Table(db, schema.Invites)+" (invite_hash, kind, username, role, sites, created_by, created, expires, used, version)")
	if err != nil {
		return fmt.Errorf("cannot store the link for %s: %w", inv.User, err)
	}
	defer b.Close()
	sites := inv.Sites
	if sites == nil {
		sites = []string{}
	}
	if err := b.Append(inv.hash, inv.Kind, inv.User, inv.Role, sites, inv.CreatedBy, inv.Created, inv.Expires, boolByte(inv.Used), version()); err != nil {
		return fmt.Errorf("cannot store the link for %s: %w", inv.User, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot store the link for %s: %w", inv.User, err)
	}
	return nil
}

// loadInvite finds a usable link by its token: nil when unknown, used or
// expired.
func loadInvite(ctx context.Context, conn driver.Conn, db, token string, now time.Time) (*Invite, error) {
	if token == "" || len(token) > 100 {
		return nil, nil
	}
	rows, err := conn.Query(ctx, "SELECT argMax(kind, version), argMax(username, version), argMax(role, version), argMax(sites, version), argMax(created_by, version), "+
		"argMax(created, version), argMax(expires, version), argMax(used, version) FROM "+schema.Table(db, schema.Invites)+
		" WHERE invite_hash = @h GROUP BY invite_hash", clickhouse.Named("h", hashToken(token)))
	if err != nil {
		return nil, fmt.Errorf("cannot read the link: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	inv := Invite{hash: hashToken(token)}
	var used uint8
	if err := rows.Scan(&inv.Kind, &inv.User, &inv.Role, &inv.Sites, &inv.CreatedBy, &inv.Created, &inv.Expires, &used); err != nil {
		return nil, fmt.Errorf("cannot read the link: %w", err)
	}
	if used == 1 || !now.Before(inv.Expires) {
		return nil, nil
	}
	return &inv, nil
}
