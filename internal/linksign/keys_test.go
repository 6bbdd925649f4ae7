package linksign_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"turf/internal/chtest"
	"turf/internal/linksign"
	"turf/schema"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// TestKeysShared: the first store makes the key, a second one (another
// instance, or `turf link create`) adopts it, and a link signed by either
// verifies on both.
func TestKeysShared(t *testing.T) {
	db := chtest.New(t)
	ctx := context.Background()
	a := linksign.NewKeys(db.Conn, db.Name, time.Now)
	if _, err := a.Signer(); !errors.Is(err, linksign.ErrNoKey) || len(a.Verifiers()) != 0 {
		t.Fatalf("before Sync: %v, %d keys", err, len(a.Verifiers()))
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	b := linksign.NewKeys(db.Conn, db.Name, time.Now)
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	ka, _ := a.Signer()
	kb, _ := b.Signer()
	if *ka != *kb {
		t.Fatal("two stores on one database sign with different keys")
	}
	if n := db.Count(t, "SELECT count() FROM "+schema.Table(db.Name, schema.LinkKeys)); n != 1 {
		t.Errorf("%d keys stored, want 1", n)
	}
	l := linksign.Link{Kind: linksign.Open, Site: "example.com", Campaign: "c"}
	if _, ok := linksign.Verify(b.Verifiers(), linksign.Sign(ka, l), linksign.Open); !ok {
		t.Error("a link signed on one instance does not verify on the other")
	}
}
