// Package visitor turns (site, IP, User-Agent) into a visitor id that is only
// stable within one UTC day. The id is a keyed hash (SipHash-2-4; BLAKE2b for
// salts made by builds before it); the key is a random daily salt that every
// collector shares through ClickHouse and that is destroyed after its day, so
// nobody can recompute or link old ids.
//
// Which hash a day uses is recorded with its salt, so changing the hash never
// splits a day: a salt row written by an older build (32 bytes) keys BLAKE2b,
// a row of this one (a tag byte and a 16-byte key) keys SipHash-2-4, and
// every instance follows the stored row. After an upgrade, today's and
// tomorrow's salts already exist and keep BLAKE2b to their end; the first day
// whose salt this build makes counts with SipHash from its first event.
package visitor

import (
	"turf/schema"

	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/dchest/siphash"
	"golang.org/x/crypto/blake2b"
)

// Hash names the keyed hash a salt is for.
type Hash uint8

const (
	// BLAKE2b is keyed BLAKE2b-64 with a 32-byte key: the hash of builds
	// before SipHash, still used for the days whose salt they made.
	BLAKE2b Hash = iota + 1
	// SipHash24 is SipHash-2-4 with a 16-byte key: a pseudo-random
	// function made for short keyed inputs, about ten times cheaper per id
	// than BLAKE2b, and what new salts are made for.
	SipHash24
)

// Key sizes, and the tag that starts a stored SipHash salt (a BLAKE2b salt
// is stored as its bare 32 bytes, as older builds wrote it).
const (
	blake2bKeySize = 32
	sipKeySize     = 16
	sipTag         = 0x02
)

// Salt is one day's secret key and the hash it keys.
type Salt struct {
	Hash Hash
	Key  [blake2bKeySize]byte // SipHash uses the first 16 bytes, the rest stay zero
}

// key is the part of Key the hash uses.
func (s *Salt) key() []byte {
	if s.Hash == SipHash24 {
		return s.Key[:sipKeySize]
	}
	return s.Key[:]
}

// stored is the salt as its row in ClickHouse holds it.
func (s *Salt) stored() string {
	if s.Hash == SipHash24 {
		return string(append([]byte{sipTag}, s.Key[:sipKeySize]...))
	}
	return string(s.Key[:])
}

// parseStored reads a salt row's value; the error never quotes its bytes.
func parseStored(raw string) (*Salt, error) {
	var s Salt
	switch {
	case len(raw) == blake2bKeySize:
		s.Hash = BLAKE2b
		copy(s.Key[:], raw)
	case len(raw) == 1+sipKeySize && raw[0] == sipTag:
		s.Hash = SipHash24
		copy(s.Key[:], raw[1:])
	default:
		return nil, fmt.Errorf("has %d bytes, want %d (BLAKE2b) or %d (SipHash-2-4)", len(raw), blake2bKeySize, 1+sipKeySize)
	}
	return &s, nil
}

// ID computes the visitor id. ip must be the full client address: the id is
// the only thing derived from it before it is truncated. ua may be the
// header's bytes, so the hot path makes no string of it; the SipHash salts
// of new days cost no allocation.
func ID[UA string | []byte](salt *Salt, site string, ip netip.Addr, ua UA) uint64 {
	a16 := ip.Unmap().As16()
	if salt.Hash != SipHash24 {
		return blake2bID(salt, site, a16, []byte(ua))
	}
	// The message is len(site), site, the 16 address bytes, ua: the length
	// keeps (site "ab", ua "c") apart from (site "a", ua "bc"), and only
	// the last field has no length. A site is at most 253 bytes.
	var buf [512]byte // on the stack; a longer User-Agent spills to the heap
	m := append(buf[:0], byte(len(site)))
	m = append(m, site...)
	m = append(m, a16[:]...)
	m = append(m, ua...)
	return sipHash(salt.Key[:sipKeySize], m)
}

// sipHash is SipHash-2-4 of m under the 16-byte key, read as two
// little-endian words as the reference implementation does.
func sipHash(key, m []byte) uint64 {
	return siphash.Hash(binary.LittleEndian.Uint64(key), binary.LittleEndian.Uint64(key[8:]), m)
}

func blake2bID(salt *Salt, site string, a16 [16]byte, ua []byte) uint64 {
	h, err := blake2b.New(8, salt.Key[:])
	if err != nil {
		panic("BUG: blake2b rejects a 32-byte key: " + err.Error())
	}
	var buf [16 + 2]byte
	copy(buf[:16], a16[:])
	// Separators keep (site "ab", ua "c") apart from (site "a", ua "bc").
	h.Write([]byte(site))
	h.Write(buf[:])
	h.Write(ua)
	var sum [8]byte
	return binary.LittleEndian.Uint64(h.Sum(sum[:0]))
}

// Day is the UTC day a salt belongs to.
func Day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Store keeps the salts of the current and the next day in memory and in
// ClickHouse. Salts are created on first use by whichever instance needs one
// first; if two instances race, the salt created first (ties broken by its
// bytes) wins and every instance adopts it on its next refresh.
type Store struct {
	conn  driver.Conn
	table string
	now   func() time.Time
	grace time.Duration
	logf  func(string, ...any)

	mu    sync.RWMutex
	salts map[time.Time]*Salt
	// unsaved marks salts made while ClickHouse was unreachable: events are
	// not held back for the database, so a salt is made locally and stored
	// once the server answers (losing to an earlier one if there is one).
	unsaved map[time.Time]bool
}

// NewStore makes a store for db's salts table. now is the clock (tests
// inject one); grace is how long after its day a salt is kept, for clock skew
// between instances.
func NewStore(conn driver.Conn, db string, now func() time.Time, grace time.Duration, logf func(string, ...any)) *Store {
	return &Store{conn: conn, table: schema.Table(db, schema.Salts), now: now, grace: grace, logf: logf,
		salts: map[time.Time]*Salt{}, unsaved: map[time.Time]bool{}}
}

// Get returns the salt for the day of t from memory. It never waits on
// ClickHouse: when the salt is not loaded yet, a new one is made locally and
// saved by the next Sync.
func (s *Store) Get(t time.Time) *Salt {
	day := Day(t)
	s.mu.RLock()
	salt := s.salts[day]
	s.mu.RUnlock()
	if salt != nil {
		return salt
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if salt = s.salts[day]; salt == nil {
		salt = newSalt()
		s.salts[day] = salt
		s.unsaved[day] = true
	}
	return salt
}

// newSalt makes a salt for a day no instance has one for yet: always for
// SipHash-2-4.
func newSalt() *Salt {
	s := Salt{Hash: SipHash24}
	if _, err := rand.Read(s.Key[:sipKeySize]); err != nil {
		panic("BUG: crypto/rand failed: " + err.Error())
	}
	return &s
}

// Sync makes sure today's and tomorrow's salts exist in ClickHouse and in
// memory, adopts the winning salt where instances raced, and destroys salts
// whose day plus grace is over. Run calls it periodically; call it once at
// start so the first events use the shared salt.
func (s *Store) Sync(ctx context.Context) error {
	now := s.now()
	today := Day(now)
	for _, day := range []time.Time{today, today.AddDate(0, 0, 1)} {
		if err := s.syncDay(ctx, day); err != nil {
			return err
		}
	}
	return s.expire(ctx, now)
}

func (s *Store) syncDay(ctx context.Context, day time.Time) error {
	stored, err := s.load(ctx, day)
	if err != nil {
		return err
	}
	s.mu.Lock()
	local, unsaved := s.salts[day], s.unsaved[day]
	s.mu.Unlock()
	if stored == nil {
		if local == nil {
			local = newSalt()
		}
		if err := s.insert(ctx, day, local); err != nil {
			return err
		}
		// Read back: another instance may have inserted at the same moment.
		if stored, err = s.load(ctx, day); err != nil {
			return err
		}
		if stored == nil {
			return fmt.Errorf("salt for %s was inserted but cannot be read back", day.Format(time.DateOnly))
		}
	} else if unsaved && *local != *stored {
		s.logf("visitor salt for %s was made locally while ClickHouse was unreachable; adopting the stored one (visitors counted meanwhile may be counted twice)", day.Format(time.DateOnly))
	}
	s.mu.Lock()
	if cur := s.salts[day]; cur == nil || *cur != *stored {
		s.salts[day] = stored
	}
	delete(s.unsaved, day)
	s.mu.Unlock()
	return nil
}

// Days are bound as text and converted in SQL: ClickHouse 18.16 compares a
// Date with a DateTime parameter as plain numbers, which never match.
func (s *Store) load(ctx context.Context, day time.Time) (*Salt, error) {
	var raw string
	err := s.conn.QueryRow(ctx, "SELECT argMin(salt, (created, salt)) FROM "+s.table+" WHERE day = toDate(?)", day.Format(time.DateOnly)).Scan(&raw)
	if err != nil {
		return nil, fmt.Errorf("cannot read visitor salt for %s: %w", day.Format(time.DateOnly), err)
	}
	if raw == "" {
		return nil, nil
	}
	salt, err := parseStored(raw)
	if err != nil {
		return nil, fmt.Errorf("stored visitor salt for %s %w", day.Format(time.DateOnly), err)
	}
	return salt, nil
}

func (s *Store) insert(ctx context.Context, day time.Time, salt *Salt) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table+" (day, salt, created)")
	if err != nil {
		return fmt.Errorf("cannot store visitor salt for %s: %w", day.Format(time.DateOnly), err)
	}
	defer b.Close()
	if err := b.Append(day, salt.stored(), s.now()); err != nil {
		return fmt.Errorf("cannot store visitor salt for %s: %w", day.Format(time.DateOnly), err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot store visitor salt for %s: %w", day.Format(time.DateOnly), err)
	}
	return nil
}

// expire destroys every salt whose day ended more than grace ago, in memory
// and in ClickHouse (DROP PARTITION removes the data parts at once).
func (s *Store) expire(ctx context.Context, now time.Time) error {
	cutoff := Day(now.Add(-s.grace)) // salts of days before this one are over
	s.mu.Lock()
	for day, salt := range s.salts {
		if day.Before(cutoff) {
			*salt = Salt{} // wipe the bytes, not just the reference
			delete(s.salts, day)
			delete(s.unsaved, day)
		}
	}
	s.mu.Unlock()
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT day FROM "+s.table+" WHERE day < toDate(?)", cutoff.Format(time.DateOnly))
	if err != nil {
		return fmt.Errorf("cannot list expired visitor salts: %w", err)
	}
	var days []time.Time
	for rows.Next() {
		var d time.Time
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return fmt.Errorf("cannot list expired visitor salts: %w", err)
		}
		days = append(days, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot list expired visitor salts: %w", err)
	}
	for _, d := range days {
		if err := s.conn.Exec(ctx, "ALTER TABLE "+s.table+" DROP PARTITION '"+d.Format(time.DateOnly)+"'"); err != nil {
			return fmt.Errorf("cannot destroy visitor salt of %s: %w", d.Format(time.DateOnly), err)
		}
		s.logf("destroyed the visitor salt of %s", d.Format(time.DateOnly))
	}
	return nil
}

// Run calls Sync every interval until ctx ends, logging failures: a
// ClickHouse outage must not stop counting, only delay sharing new salts.
func (s *Store) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if err := s.Sync(sctx); err != nil {
				s.logf("visitor salts: %v", err)
			}
			cancel()
		}
	}
}
