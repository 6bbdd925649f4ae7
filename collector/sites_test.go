package collector

import (
	"context"
	"testing"
	"time"

	"turf/internal/chtest"
	"turf/schema"
)

// TestSitesFromSettings: the collector learns the sites admins add (and
// forgets those they remove) from settings_sites, and always keeps the flag
// sites.
func TestSitesFromSettings(t *testing.T) {
	db := chtest.New(t)
	ctx := context.Background()
	s, err := NewSites(db.Conn, db.Name, []string{"Flag.Example"})
	if err != nil {
		t.Fatal(err)
	}
	put := func(site string, deleted uint8, version uint64) {
		t.Helper()
		b, err := db.Conn.PrepareBatch(ctx, "INSERT INTO "+schema.Table(db.Name, schema.SettingsSites)+" (site, timezone, retention, created, deleted, version)")
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if err := b.Append(site, "", "", time.Now(), deleted, version); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	check := func(want map[string]bool) {
		t.Helper()
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		for site, has := range want {
			if s.Has(site) != has {
				t.Errorf("Has(%q) = %v, want %v", site, !has, has)
			}
		}
	}
	check(map[string]bool{"flag.example": true, "new.example": false})
	put("new.example", 0, 1)
	put("flag.example", 1, 1) // removed in the dashboard: the flag wins
	check(map[string]bool{"flag.example": true, "new.example": true})
	put("new.example", 1, 2)
	check(map[string]bool{"new.example": false})
	put("new.example", 0, 3)
	check(map[string]bool{"new.example": true})
	if _, err := NewSites(nil, "", []string{"bad site/"}); err == nil {
		t.Error("an invalid flag site was accepted")
	}
}
