package main

import (
	"context"
	"reflect"
	"testing"

	"turf/internal/chtest"
	"turf/query/settings"
	"turf/retention"
)

// TestStoredSitePeriods: `turf retention` keeps what admins chose per site
// in the dashboard, and --retention-site wins over it.
func TestStoredSitePeriods(t *testing.T) {
	db := chtest.New(t)
	ctx := context.Background()
	for _, s := range []settings.Site{{Site: "a.example", Retention: "6mo"}, {Site: "b.example"}, {Site: "d.example", Retention: "90d"}} {
		if err := settings.PutSite(ctx, db.Conn, db.Name, s); err != nil {
			t.Fatal(err)
		}
	}
	got, err := storedSitePeriods(ctx, db.Conn, db.Name, map[string]retention.Period{"a.example": {Months: 2}, "c.example": {Months: 3}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]retention.Period{"a.example": {Months: 2}, "c.example": {Months: 3}, "d.example": {Days: 90}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("periods %v, want %v", got, want)
	}
}
