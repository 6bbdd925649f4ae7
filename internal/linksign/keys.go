package linksign

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/schema"
)

// KeySize is the size of a signing key in bytes.
const KeySize = 32

// Key is one HMAC key.
type Key [KeySize]byte

// ErrNoKey is returned by Signer before a key has been loaded.
var ErrNoKey = errors.New("the newsletter link key is not loaded yet (ClickHouse has not answered since turf started)")

// Keys holds the link keys in memory and shares them through ClickHouse
// like the visitor salts: the first instance (or `turf link create`) that
// finds none makes one; if two race, the earliest (ties broken by its
// bytes) signs and every instance adopts it on its next Sync. All stored
// keys verify, so a link signed by an instance that lost a race still works.
//
// Unlike a salt, a key is never made locally while ClickHouse is down: a
// link signed with a key no other instance knows would break elsewhere.
// Until the first Sync succeeds, Verifiers is empty and links answer 503.
type Keys struct {
	conn  driver.Conn
	table string
	now   func() time.Time

	mu     sync.RWMutex
	signer *Key
	all    []*Key
}

// NewKeys makes the key store for db.
func NewKeys(conn driver.Conn, db string, now func() time.Time) *Keys {
	if now == nil {
		now = time.Now
	}
	return &Keys{conn: conn, table: schema.Table(db, schema.LinkKeys), now: now}
}

// Signer is the key new links are signed with.
func (k *Keys) Signer() (*Key, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.signer == nil {
		return nil, ErrNoKey
	}
	return k.signer, nil
}

// Verifiers are the keys a link may be signed with, from memory; empty
// before the first successful Sync. The caller must not change them.
func (k *Keys) Verifiers() []*Key {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.all
}

// Sync loads the stored keys, first making one when there is none.
func (k *Keys) Sync(ctx context.Context) error {
	all, err := k.load(ctx)
	if err != nil {
		return err
	}
	if len(all) == 0 {
		var key Key
		if _, err := rand.Read(key[:]); err != nil {
			panic("BUG: crypto/rand failed: " + err.Error())
		}
		if err := k.insert(ctx, &key); err != nil {
			return err
		}
		// Read back: another instance may have inserted at the same moment.
		if all, err = k.load(ctx); err != nil {
			return err
		}
		if len(all) == 0 {
			return errors.New("the newsletter link key was inserted but cannot be read back")
		}
	}
	k.mu.Lock()
	k.signer, k.all = all[0], all
	k.mu.Unlock()
	return nil
}

// load returns the stored keys, the signing one (earliest) first.
func (k *Keys) load(ctx context.Context) ([]*Key, error) {
	rows, err := k.conn.Query(ctx, "SELECT key FROM "+k.table+" ORDER BY created, key LIMIT 100")
	if err != nil {
		return nil, fmt.Errorf("cannot read the newsletter link keys: %w", err)
	}
	defer rows.Close()
	var out []*Key
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("cannot read the newsletter link keys: %w", err)
		}
		if len(raw) != KeySize {
			return nil, fmt.Errorf("a stored newsletter link key has %d bytes, want %d", len(raw), KeySize)
		}
		var key Key
		copy(key[:], raw)
		out = append(out, &key)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the newsletter link keys: %w", err)
	}
	return out, nil
}

func (k *Keys) insert(ctx context.Context, key *Key) error {
	b, err := k.conn.PrepareBatch(ctx, "INSERT INTO "+k.table+" (key, created)")
	if err != nil {
		return fmt.Errorf("cannot store the newsletter link key: %w", err)
	}
	defer b.Close()
	if err := b.Append(string(key[:]), k.now().UTC().Truncate(time.Second)); err != nil {
		return fmt.Errorf("cannot store the newsletter link key: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot store the newsletter link key: %w", err)
	}
	return nil
}

// Run calls Sync every interval until ctx ends (every 5s while no key is
// loaded yet), logging failures: links verify from memory meanwhile.
func (k *Keys) Run(ctx context.Context, every time.Duration, logf func(string, ...any)) {
	for {
		wait := every
		if len(k.Verifiers()) == 0 {
			wait = 5 * time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := k.Sync(sctx); err != nil {
			logf("newsletter link keys: %v", err)
		}
		cancel()
	}
}
