package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"turf/internal/clientip"
)

// principal is who is asking: a logged-in user or a share link.
type principal struct {
	user  string   // "" for a share link
	admin bool     // the user's role is admin
	share string   // share id, "" for a user
	sites []string // the sites it may read, in the order of Config.Sites
	csrf  string   // the token API calls must echo; "" for share links
}

func (p principal) key() string {
	if p.share != "" {
		return "share:" + p.share
	}
	return "user:" + p.user
}

func (p principal) may(site string) bool { return slices.Contains(p.sites, site) }

// csrfToken is derived from the session secret, so it needs no storage:
// only a page that was given it (or that holds the cookie's value, which
// HttpOnly keeps from scripts) can send it.
func csrfToken(sessionToken string) string {
	m := hmac.New(sha256.New, []byte(sessionToken))
	m.Write([]byte("turf dashboard csrf"))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

func sameToken(a, b string) bool {
	return len(a) > 0 && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// authCache remembers checked sessions and share links for a short while,
// so that the dozen API calls of one dashboard load cost no ClickHouse round
// trip for authentication. A revocation elsewhere takes effect within ttl;
// one made through this process at once. Entries are keyed by the token's
// kind and hash (cacheKey), so that a token checked as one kind is never
// taken for another.
type authCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]cachedAuth // by cacheKey
}

// Token kinds, the prefix of their cache keys.
const (
	kindSession = "session"
	kindShare   = "share"
)

func cacheKey(kind, hash string) string { return kind + ":" + hash }

type cachedAuth struct {
	p       *principal // nil: invalid
	expires time.Time  // of the session itself
	fetched time.Time
}

func (c *authCache) get(hash string, now time.Time) (cachedAuth, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.m[hash]
	if !ok || now.Sub(a.fetched) > c.ttl || (a.p != nil && !a.expires.IsZero() && !now.Before(a.expires)) {
		return cachedAuth{}, false
	}
	return a, true
}

func (c *authCache) put(hash string, a cachedAuth) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) > 10000 {
		clear(c.m) // bounded: made-up tokens must not grow it forever
	}
	c.m[hash] = a
}

func (c *authCache) drop(hash string) {
	c.mu.Lock()
	delete(c.m, hash)
	c.mu.Unlock()
}

// sitesFor is the user's sites that turf serves, in Config.Sites order.
func (d *Dashboard) sitesFor(allowed []string) []string {
	var out []string
	for _, s := range d.allSites() {
		if len(allowed) == 0 || slices.Contains(allowed, s) {
			out = append(out, s)
		}
	}
	return out
}

// session checks a session cookie's value.
func (d *Dashboard) session(ctx context.Context, token string) (*principal, error) {
	if token == "" || len(token) > 100 {
		return nil, errNoSession
	}
	h := hashToken(token)
	ck := cacheKey(kindSession, h)
	now := d.cfg.Now()
	if a, ok := d.auth.get(ck, now); ok {
		if a.p == nil {
			return nil, errNoSession
		}
		return a.p, nil
	}
	s, err := loadSession(ctx, d.conn, d.db, h)
	if err != nil {
		return nil, err
	}
	var p *principal
	var expires time.Time
	if s != nil && !s.revoked && now.Before(s.expires) {
		u, err := loadUser(ctx, d.conn, d.db, s.user)
		if err != nil {
			return nil, err
		}
		if u != nil && !u.Deleted && !s.created.Before(u.SessionsAfter) {
			p = &principal{user: u.Name, admin: u.Role == RoleAdmin, sites: d.sitesFor(u.visibleSites()), csrf: csrfToken(token)}
			expires = s.expires
		}
	}
	d.auth.put(ck, cachedAuth{p: p, expires: expires, fetched: now})
	if p == nil {
		return nil, errNoSession
	}
	return p, nil
}

// share checks a share link's token.
func (d *Dashboard) share(ctx context.Context, token string) (*principal, error) {
	id, _, ok := strings.Cut(token, "-")
	if !ok || len(id) != 8 || len(token) > 100 {
		return nil, errBadShare
	}
	h := hashToken(token)
	ck := cacheKey(kindShare, h)
	now := d.cfg.Now()
	if a, ok := d.auth.get(ck, now); ok {
		if a.p == nil {
			return nil, errBadShare
		}
		return a.p, nil
	}
	s, err := loadShare(ctx, d.conn, d.db, id)
	if err != nil {
		return nil, err
	}
	var p *principal
	if s != nil && !s.Revoked && subtle.ConstantTimeCompare([]byte(s.hash), []byte(h)) == 1 && slices.Contains(d.allSites(), s.Site) {
		p = &principal{share: s.ID, sites: []string{s.Site}}
	}
	d.auth.put(ck, cachedAuth{p: p, fetched: now})
	if p == nil {
		return nil, errBadShare
	}
	return p, nil
}

// login checks a name and password and makes a session; it returns the
// cookie's value.
func (d *Dashboard) login(ctx context.Context, name, password string) (string, time.Time, error) {
	u, err := loadUser(ctx, d.conn, d.db, name)
	if err != nil {
		return "", time.Time{}, err
	}
	hash := dummyHash()
	if u != nil && !u.Deleted && u.hash != "" {
		hash = u.hash
	}
	// Compare even for unknown users, so the time taken does not tell
	// which names exist. One comparison costs a core for about 0.25s, so
	// only Config.MaxConcurrentLogins run at once, whatever the number of
	// addresses asking: the collector keeps the other cores.
	wait, cancel := context.WithTimeout(ctx, d.cfg.LoginWait)
	defer cancel()
	select {
	case d.bcrypt <- struct{}{}:
	case <-wait.Done():
		return "", time.Time{}, errLoginBusy
	}
	bad := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil
	<-d.bcrypt
	if bad || hash == dummyHash() {
		return "", time.Time{}, errBadLogin
	}
	return d.startSession(ctx, u.Name)
}

// startSession makes a session for a user whose password (or one-time
// link) was checked; it returns the cookie's value.
func (d *Dashboard) startSession(ctx context.Context, user string) (string, time.Time, error) {
	tok, err := randomToken(32)
	if err != nil {
		return "", time.Time{}, err
	}
	now := d.cfg.Now().UTC().Truncate(time.Second)
	exp := now.Add(d.cfg.SessionTTL)
	if err := writeSession(ctx, d.conn, d.db, hashToken(tok), session{user: user, created: now, expires: exp}); err != nil {
		return "", time.Time{}, err
	}
	return tok, exp, nil
}

var (
	errBadLogin  = errors.New("wrong user name or password")
	errLoginBusy = errors.New("too many log-ins at once")
)

// dummyHash is a bcrypt hash of a random password at the cost real ones
// have, compared against when the user does not exist. Made on first use:
// it takes as long as a log-in.
var dummyHash = sync.OnceValue(func() string {
	tok, _ := randomToken(16)
	h, err := bcrypt.GenerateFromPassword([]byte(tok), bcryptCost)
	if err != nil {
		panic("BUG: " + err.Error())
	}
	return string(h)
})

// logout revokes the session everywhere.
func (d *Dashboard) logout(ctx context.Context, token string) error {
	h := hashToken(token)
	s, err := loadSession(ctx, d.conn, d.db, h)
	if err != nil || s == nil {
		return err
	}
	d.auth.drop(cacheKey(kindSession, h))
	s.revoked = true
	return writeSession(ctx, d.conn, d.db, h, *s)
}

// Log-in throttling, and why it cannot lock a user out from afar.
//
// Every attempt spends a token of its client's address prefix (loginPrefix:
// /24 for IPv4, /48 for IPv6), because an address is cheap to change inside
// those: an IPv6 /64 alone is an unlimited supply. That bounds the guesses
// and the bcrypt work one network can cause; MaxConcurrentLogins bounds the
// bcrypt work of all networks together.
//
// Guessing one user's password from many networks is bounded by that user's
// bucket. It is spent only by failed attempts, and only by those from
// outside the prefixes the user has logged in from before (knownPrefixes):
// an attacker who empties carol's bucket keeps carol out of log-ins from
// new places for a while, never from where she logged in before. The known
// prefixes are kept in memory, so after a restart carol's first log-in from
// a place may wait out an ongoing attack (the 429 says when to retry).

// loginPrefix is the network a log-in attempt is throttled by.
func loginPrefix(a netip.Addr) string {
	return clientip.Truncate(a, 24, 48).String()
}

// knownPrefixes remembers, per user, the prefixes of successful log-ins.
type knownPrefixes struct {
	mu sync.Mutex
	m  map[string][]string // user -> prefixes, most recent last
}

const knownPerUser = 16

func (k *knownPrefixes) has(user, prefix string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Contains(k.m[user], prefix)
}

func (k *knownPrefixes) add(user, prefix string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil || len(k.m) > 10000 {
		k.m = map[string][]string{} // bounded; forgetting only costs the exemption
	}
	ps := slices.DeleteFunc(k.m[user], func(p string) bool { return p == prefix })
	if len(ps) >= knownPerUser {
		ps = ps[1:]
	}
	k.m[user] = append(ps, prefix)
}
