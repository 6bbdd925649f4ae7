package dashboard

import (
	"turf/schema"

	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/crypto/bcrypt"
)

// The tables (schema/0020..0022) are append-only: every change is a new row
// with a higher version, and readers take the newest row per key with
// argMax, so nothing depends on when ReplacingMergeTree merges. Inserts go
// through PrepareBatch with explicit columns, the only way that works on
// every supported ClickHouse.

// User is a person who may log in to the dashboard.
type User struct {
	Name string
	// Role is RoleAdmin or RoleViewer (dashboard_roles; no row: viewer).
	Role    string
	Sites   []string // empty: every site; admins see every site anyway
	Created time.Time
	// SessionsAfter invalidates sessions made before it.
	SessionsAfter time.Time
	Deleted       bool
	hash          string
}

// Share is a read-only link to one site's dashboard.
type Share struct {
	ID      string
	Site    string
	Name    string
	Created time.Time
	Revoked bool
	hash    string
}

var (
	userNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)
	// ErrBadPassword is returned for passwords bcrypt cannot take or that are
	// too short to resist guessing.
	ErrBadPassword = errors.New("a password must be 10 to 72 bytes long")
)

// bcryptCost is a variable so tests can make hashing cheap.
var bcryptCost = 12

func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("cannot make a random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func version() uint64 { return uint64(time.Now().UnixNano()) }

func checkPassword(pw string) error {
	if len(pw) < 10 || len(pw) > 72 || !utf8.ValidString(pw) {
		return ErrBadPassword
	}
	return nil
}

// AddUser creates a user, or replaces an existing one's password and sites:
// an admin when sites is empty, else a viewer of those sites (what `turf
// user add` has always meant: no --site, every site).
func AddUser(ctx context.Context, conn driver.Conn, db, name, password string, sites []string) error {
	role := RoleAdmin
	if len(sites) > 0 {
		role = RoleViewer
	}
	return CreateUser(ctx, conn, db, name, password, role, sites)
}

// CreateUser creates a user with a role, or replaces an existing one's
// password, role and sites.
func CreateUser(ctx context.Context, conn driver.Conn, db, name, password, role string, sites []string) error {
	if err := checkRole(role); err != nil {
		return err
	}
	if !userNameRe.MatchString(name) {
		return fmt.Errorf("invalid user name %q: use letters, digits and . _ @ - (at most 64)", name)
	}
	if err := checkPassword(password); err != nil {
		return err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return fmt.Errorf("cannot hash the password: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	u := User{Name: name, Sites: sites, Created: now, SessionsAfter: now, hash: string(h)}
	if old, err := loadUser(ctx, conn, db, name); err != nil {
		return err
	} else if old != nil && !old.Deleted {
		u.Created = old.Created
	}
	if err := writeUser(ctx, conn, db, u); err != nil {
		return err
	}
	return writeRole(ctx, conn, db, name, role)
}

// SetPassword changes a user's password and ends their sessions.
func SetPassword(ctx context.Context, conn driver.Conn, db, name, password string) error {
	if err := checkPassword(password); err != nil {
		return err
	}
	u, err := existingUser(ctx, conn, db, name)
	if err != nil {
		return err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return fmt.Errorf("cannot hash the password: %w", err)
	}
	u.hash = string(h)
	u.SessionsAfter = time.Now().UTC().Truncate(time.Second).Add(time.Second)
	return writeUser(ctx, conn, db, *u)
}

// DeleteUser removes a user; their sessions stop working within the
// session cache's lifetime.
func DeleteUser(ctx context.Context, conn driver.Conn, db, name string) error {
	u, err := existingUser(ctx, conn, db, name)
	if err != nil {
		return err
	}
	u.Deleted = true
	u.hash = ""
	return writeUser(ctx, conn, db, *u)
}

func writeUser(ctx context.Context, conn driver.Conn, db string, u User) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+schema.Table(db, schema.Users)+" (username, password_hash, sites, created, sessions_after, deleted, version)")
	if err != nil {
		return fmt.Errorf("cannot store user %s: %w", u.Name, err)
	}
	defer b.Close()
	sites := u.Sites
	if sites == nil {
		sites = []string{}
	}
	if err := b.Append(u.Name, u.hash, sites, u.Created, u.SessionsAfter, boolByte(u.Deleted), version()); err != nil {
		return fmt.Errorf("cannot store user %s: %w", u.Name, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot store user %s: %w", u.Name, err)
	}
	return nil
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

const userSelect = "SELECT username, argMax(password_hash, version), argMax(sites, version), argMax(created, version), argMax(sessions_after, version), argMax(deleted, version) FROM %s"

// existingUser is loadUser for a user that must exist and not be deleted.
func existingUser(ctx context.Context, conn driver.Conn, db, name string) (*User, error) {
	u, err := loadUser(ctx, conn, db, name)
	if err != nil {
		return nil, err
	}
	if u == nil || u.Deleted {
		return nil, fmt.Errorf("no user %q", name)
	}
	return u, nil
}

func loadUser(ctx context.Context, conn driver.Conn, db, name string) (*User, error) {
	us, err := queryUsers(ctx, conn, fmt.Sprintf(userSelect+" WHERE username = @u GROUP BY username", schema.Table(db, schema.Users)), clickhouse.Named("u", name))
	if err != nil || len(us) == 0 {
		return nil, err
	}
	roles, err := loadRoles(ctx, conn, db, name)
	if err != nil {
		return nil, err
	}
	us[0].Role = roleOf(roles, name)
	return &us[0], nil
}

// ListUsers lists the users that exist (deleted ones left out).
func ListUsers(ctx context.Context, conn driver.Conn, db string) ([]User, error) {
	us, err := queryUsers(ctx, conn, fmt.Sprintf(userSelect+" GROUP BY username ORDER BY username", schema.Table(db, schema.Users)))
	if err != nil {
		return nil, err
	}
	roles, err := loadRoles(ctx, conn, db, "")
	if err != nil {
		return nil, err
	}
	out := us[:0]
	for _, u := range us {
		if !u.Deleted {
			u.Role = roleOf(roles, u.Name)
			out = append(out, u)
		}
	}
	return out, nil
}

func queryUsers(ctx context.Context, conn driver.Conn, q string, args ...any) ([]User, error) {
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		var del uint8
		if err := rows.Scan(&u.Name, &u.hash, &u.Sites, &u.Created, &u.SessionsAfter, &del); err != nil {
			return nil, fmt.Errorf("cannot read users: %w", err)
		}
		u.Deleted = del == 1
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read users: %w", err)
	}
	return out, nil
}

// session is a stored session.
type session struct {
	user    string
	created time.Time
	expires time.Time
	revoked bool
}

func writeSession(ctx context.Context, conn driver.Conn, db, hash string, s session) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+schema.Table(db, schema.Sessions)+" (session_hash, username, created, expires, revoked, version)")
	if err != nil {
		return fmt.Errorf("cannot store session: %w", err)
	}
	defer b.Close()
	if err := b.Append(hash, s.user, s.created, s.expires, boolByte(s.revoked), version()); err != nil {
		return fmt.Errorf("cannot store session: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot store session: %w", err)
	}
	return nil
}

func loadSession(ctx context.Context, conn driver.Conn, db, hash string) (*session, error) {
	rows, err := conn.Query(ctx, "SELECT argMax(username, version), argMax(created, version), argMax(expires, version), argMax(revoked, version) FROM "+
		schema.Table(db, schema.Sessions)+" WHERE session_hash = @h GROUP BY session_hash", clickhouse.Named("h", hash))
	if err != nil {
		return nil, fmt.Errorf("cannot read session: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	var s session
	var rev uint8
	if err := rows.Scan(&s.user, &s.created, &s.expires, &rev); err != nil {
		return nil, fmt.Errorf("cannot read session: %w", err)
	}
	s.revoked = rev == 1
	return &s, nil
}

// CreateShare makes a read-only link token for site; it is shown once.
func CreateShare(ctx context.Context, conn driver.Conn, db, site, name string) (string, Share, error) {
	if site == "" {
		return "", Share{}, errors.New("a share link needs a site (--site)")
	}
	var idb [4]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", Share{}, fmt.Errorf("cannot make a share id: %w", err)
	}
	secret, err := randomToken(32)
	if err != nil {
		return "", Share{}, err
	}
	s := Share{ID: hex.EncodeToString(idb[:]), Site: site, Name: name, Created: time.Now().UTC().Truncate(time.Second)}
	tok := s.ID + "-" + secret
	s.hash = hashToken(tok)
	return tok, s, writeShare(ctx, conn, db, s)
}

// RevokeShare revokes a share link by its id or its whole token.
func RevokeShare(ctx context.Context, conn driver.Conn, db, idOrToken string) error {
	id, _, _ := strings.Cut(idOrToken, "-")
	s, err := loadShare(ctx, conn, db, id)
	if err != nil {
		return err
	}
	if s == nil {
		return fmt.Errorf("no share link with id %q", id)
	}
	s.Revoked = true
	return writeShare(ctx, conn, db, *s)
}

func writeShare(ctx context.Context, conn driver.Conn, db string, s Share) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+schema.Table(db, schema.Shares)+" (share_id, token_hash, site, name, created, revoked, version)")
	if err != nil {
		return fmt.Errorf("cannot store share link %s: %w", s.ID, err)
	}
	defer b.Close()
	if err := b.Append(s.ID, s.hash, s.Site, s.Name, s.Created, boolByte(s.Revoked), version()); err != nil {
		return fmt.Errorf("cannot store share link %s: %w", s.ID, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot store share link %s: %w", s.ID, err)
	}
	return nil
}

const shareSelect = "SELECT share_id, argMax(token_hash, version), argMax(site, version), argMax(name, version), argMax(created, version), argMax(revoked, version) FROM %s"

func loadShare(ctx context.Context, conn driver.Conn, db, id string) (*Share, error) {
	ss, err := queryShares(ctx, conn, fmt.Sprintf(shareSelect+" WHERE share_id = @id GROUP BY share_id", schema.Table(db, schema.Shares)), clickhouse.Named("id", id))
	if err != nil || len(ss) == 0 {
		return nil, err
	}
	return &ss[0], nil
}

// ListShares lists every share link, revoked ones included.
func ListShares(ctx context.Context, conn driver.Conn, db string) ([]Share, error) {
	return queryShares(ctx, conn, fmt.Sprintf(shareSelect+" GROUP BY share_id ORDER BY share_id", schema.Table(db, schema.Shares)))
}

func queryShares(ctx context.Context, conn driver.Conn, q string, args ...any) ([]Share, error) {
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read share links: %w", err)
	}
	defer rows.Close()
	var out []Share
	for rows.Next() {
		var s Share
		var rev uint8
		if err := rows.Scan(&s.ID, &s.hash, &s.Site, &s.Name, &s.Created, &rev); err != nil {
			return nil, fmt.Errorf("cannot read share links: %w", err)
		}
		s.Revoked = rev == 1
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read share links: %w", err)
	}
	return out, nil
}
