package query

import (
	"turf/internal/clientip"
	"turf/schema"

	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/valyala/fasthttp"
	"golang.org/x/time/rate"
)

// Keys are "turf_<id>_<secret>": the id (8 hex digits) names the key in
// listings and revocations, the secret (32 random bytes) makes it
// unguessable. Only SHA-256 of the whole key is stored; a plain hash is
// enough because the key is random, not chosen by a person.

// Key is a stored key, without its secret.
type Key struct {
	ID      string
	Sites   []string
	Name    string
	Created time.Time
	Revoked bool
}

const keyPrefix = "turf_"

func hashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

func keyID(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, keyPrefix)
	if !ok {
		return "", false
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 8 || len(secret) != 64 {
		return "", false
	}
	return id, true
}

// CreateKey makes a key for the sites and returns it; it is shown once.
func CreateKey(ctx context.Context, conn driver.Conn, db string, sites []string, name string) (string, Key, error) {
	if len(sites) == 0 {
		return "", Key{}, errors.New("a key needs at least one site (--site)")
	}
	var b [36]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", Key{}, fmt.Errorf("cannot make a random key: %w", err)
	}
	id := hex.EncodeToString(b[:4])
	key := keyPrefix + id + "_" + hex.EncodeToString(b[4:])
	k := Key{ID: id, Sites: sites, Name: name, Created: time.Now().UTC().Truncate(time.Second)}
	if err := writeKey(ctx, conn, db, k, hashKey(key)); err != nil {
		return "", Key{}, err
	}
	return key, k, nil
}

func writeKey(ctx context.Context, conn driver.Conn, db string, k Key, hash string) error {
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+schema.Table(db, schema.APIKeys)+" (key_id, key_hash, sites, name, created, revoked, version)")
	if err != nil {
		return fmt.Errorf("cannot store key %s: %w", k.ID, err)
	}
	defer batch.Close()
	var rev uint8
	if k.Revoked {
		rev = 1
	}
	if err := batch.Append(k.ID, hash, k.Sites, k.Name, k.Created, rev, uint64(time.Now().UnixNano())); err != nil {
		return fmt.Errorf("cannot store key %s: %w", k.ID, err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("cannot store key %s: %w", k.ID, err)
	}
	return nil
}

// RevokeKey revokes a key by its id (or the whole key).
func RevokeKey(ctx context.Context, conn driver.Conn, db string, idOrKey string) error {
	id := idOrKey
	if kid, ok := keyID(idOrKey); ok {
		id = kid
	}
	k, hash, err := loadKey(ctx, conn, db, id)
	if err != nil {
		return err
	}
	if k == nil {
		return fmt.Errorf("no key with id %q", id)
	}
	k.Revoked = true
	return writeKey(ctx, conn, db, *k, hash)
}

const keySelect = "SELECT key_id, argMax(key_hash, version), argMax(sites, version), argMax(name, version), argMax(created, version), argMax(revoked, version) FROM %s"

func loadKey(ctx context.Context, conn driver.Conn, db, id string) (*Key, string, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf(keySelect+" WHERE key_id = @id GROUP BY key_id", schema.Table(db, schema.APIKeys)), named("id", id))
	if err != nil {
		return nil, "", fmt.Errorf("cannot read key %s: %w", id, err)
	}
	defer rows.Close()
	ks, hashes, err := scanKeys(rows)
	if err != nil || len(ks) == 0 {
		return nil, "", err
	}
	return &ks[0], hashes[0], nil
}

func scanKeys(rows driver.Rows) ([]Key, []string, error) {
	var ks []Key
	var hashes []string
	for rows.Next() {
		var k Key
		var h string
		var rev uint8
		if err := rows.Scan(&k.ID, &h, &k.Sites, &k.Name, &k.Created, &rev); err != nil {
			return nil, nil, fmt.Errorf("cannot read keys: %w", err)
		}
		k.Revoked = rev == 1
		ks = append(ks, k)
		hashes = append(hashes, h)
	}
	return ks, hashes, rows.Err()
}

// ListKeys lists every key, revoked ones included.
func ListKeys(ctx context.Context, conn driver.Conn, db string) ([]Key, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf(keySelect+" GROUP BY key_id ORDER BY key_id", schema.Table(db, schema.APIKeys)))
	if err != nil {
		return nil, fmt.Errorf("cannot list keys: %w", err)
	}
	defer rows.Close()
	ks, _, err := scanKeys(rows)
	return ks, err
}

var (
	errNoKey     = &HTTPError{fasthttp.StatusUnauthorized, "missing API key: send Authorization: Bearer <key>"}
	errBadKey    = &HTTPError{fasthttp.StatusUnauthorized, "invalid API key"}
	errWrongSite = &HTTPError{fasthttp.StatusForbidden, "this API key has no access to the site"}
	// errLookupLimited: too many uncached keys looked up (keyCache).
	errLookupLimited = &HTTPError{fasthttp.StatusTooManyRequests, "too many requests with unknown API keys; slow down"}
)

// keyCache remembers verified keys for a short while so that a query does
// not cost a ClickHouse round trip for authentication; a revocation takes
// effect within the TTL.
//
// Each made-up key costs a lookup, so lookups are rate limited over all
// clients (Config.KeyLookupRate). While they are, a key verified before is
// still served from its expired entry: a flood of unknown keys delays a
// revocation made elsewhere, but does not lock out the real keys.
//
// A key not in the cache yet (new, or unused for a while) has no such entry,
// so a flood from one network would keep it out until the flood stopped.
// Each client network (/24, /48) may therefore spend only a quarter of the
// lookups (networks): one flooding network is refused on its own while
// every other network still gets its keys looked up. A flood from many
// networks at once is bounded by the shared limiter alone.
type keyCache struct {
	conn     driver.Conn
	db       string
	ttl      time.Duration
	now      func() time.Time
	lookups  *rate.Limiter
	networks *networkLimiter
	ips      *clientip.Resolver
	mu       sync.Mutex
	keys     map[string]cachedKey // by hash of the whole key
}

// networkLimiter is a rate limiter per client network, bounded in size.
type networkLimiter struct {
	limit rate.Limit
	burst int
	mu    sync.Mutex
	m     map[netip.Prefix]*rate.Limiter
}

func newNetworkLimiter(perSecond float64, burst int) *networkLimiter {
	return &networkLimiter{limit: rate.Limit(perSecond), burst: max(burst, 1), m: map[netip.Prefix]*rate.Limiter{}}
}

// allow spends one token of a's network (/24 for IPv4, /48 for IPv6).
func (n *networkLimiter) allow(a netip.Addr, now time.Time) bool {
	if !a.IsValid() {
		return true // no address (in-process callers): the shared limiter alone
	}
	p := clientip.Truncate(a, 24, 48)
	n.mu.Lock()
	defer n.mu.Unlock()
	l, ok := n.m[p]
	if !ok {
		if len(n.m) > 10000 {
			clear(n.m) // bounded: an IPv6 flood must not grow it forever
		}
		l = rate.NewLimiter(n.limit, n.burst)
		n.m[p] = l
	}
	return l.AllowN(now, 1)
}

type cachedKey struct {
	key     *Key // nil: no such key
	fetched time.Time
}

func bearer(ctx *fasthttp.RequestCtx) string {
	h := string(ctx.Request.Header.Peek("Authorization"))
	if k, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(k)
	}
	return ""
}

// Authorize is the API's Authorizer: the request's Bearer key.
func (c *keyCache) Authorize(ctx context.Context, req *fasthttp.RequestCtx) (*Principal, error) {
	k, err := c.check(ctx, bearer(req), c.client(req))
	if err != nil {
		return nil, err
	}
	return &Principal{ID: "key:" + k.ID, Sites: k.Sites, Denied: errWrongSite, Lane: LaneKey}, nil
}

// client is the request's client address, through the trusted proxies.
func (c *keyCache) client(req *fasthttp.RequestCtx) netip.Addr {
	peer, ok := netip.AddrFromSlice(req.RemoteIP())
	if !ok || peer.IsUnspecified() {
		return netip.Addr{} // no connection: an in-process caller
	}
	return c.ips.Client(peer, string(req.Request.Header.Peek("X-Forwarded-For")), string(req.Request.Header.Peek("X-Real-Ip")))
}

// lookupAllowed spends a lookup of the client's network and then of all:
// a network past its share is refused without spending the shared budget.
func (c *keyCache) lookupAllowed(client netip.Addr, now time.Time) bool {
	return c.networks.allow(client, now) && c.lookups.AllowN(now, 1)
}

// check returns the stored key, if key is a valid one; client is the
// caller's address (zero for none), whose network the lookup is charged to.
func (c *keyCache) check(ctx context.Context, key string, client netip.Addr) (*Key, error) {
	if key == "" {
		return nil, errNoKey
	}
	id, ok := keyID(key)
	if !ok {
		return nil, errBadKey
	}
	h := hashKey(key)
	now := c.now()
	c.mu.Lock()
	ck, ok := c.keys[h]
	c.mu.Unlock()
	if (!ok || now.Sub(ck.fetched) > c.ttl) && !c.lookupAllowed(client, now) {
		if !ok || ck.key == nil {
			return nil, errLookupLimited
		}
		// A known key stays usable from its stale entry; see keyCache.
	} else if !ok || now.Sub(ck.fetched) > c.ttl {
		k, stored, err := loadKey(ctx, c.conn, c.db, id)
		if err != nil {
			return nil, err
		}
		if k != nil && subtle.ConstantTimeCompare([]byte(stored), []byte(h)) != 1 {
			k = nil
		}
		ck = cachedKey{key: k, fetched: now}
		c.mu.Lock()
		if len(c.keys) > 10000 {
			clear(c.keys) // bounded: guessed keys must not grow it forever
		}
		c.keys[h] = ck
		c.mu.Unlock()
	}
	if ck.key == nil || ck.key.Revoked {
		return nil, errBadKey
	}
	return ck.key, nil
}
