package settings

import (
	"context"
	"reflect"
	"testing"

	"turf/internal/chtest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

func TestCheckGoal(t *testing.T) {
	for _, c := range []struct {
		goal, currency string
		want, wantCur  string
		wantErr        bool
	}{
		{goal: "Signup", want: "Signup"},
		{goal: "  Visit   /thanks ", want: "Visit /thanks"},
		{goal: "Visit /blog/*", want: "Visit /blog/*"},
		{goal: "Purchase", currency: "eur", want: "Purchase", wantCur: "EUR"},
		{goal: "Visit thanks", wantErr: true},
		{goal: "", wantErr: true},
		{goal: "a\nb", wantErr: true},
		{goal: "Purchase", currency: "euro", wantErr: true},
	} {
		g, cur, err := CheckGoal(c.goal, c.currency)
		if (err != nil) != c.wantErr || g != c.want && !c.wantErr || cur != c.wantCur && !c.wantErr {
			t.Errorf("CheckGoal(%q, %q) = %q, %q, %v", c.goal, c.currency, g, cur, err)
		}
	}
}

func TestNormalizeSite(t *testing.T) {
	for in, want := range map[string]string{
		"Example.COM": "example.com", "https://shop.example.nl/": "shop.example.nl", "localhost": "localhost",
		"exa mple.com": "", "example.com/path": "", "": "", "-a.com": "", "user@example.com": "",
	} {
		got, err := NormalizeSite(in)
		if (err != nil) != (want == "") || got != want && want != "" {
			t.Errorf("NormalizeSite(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestApplyFlagsWin: a flag's site cannot be removed, its time zone and
// retention win over the stored ones, and its goals come first.
func TestApplyFlagsWin(t *testing.T) {
	snap := Snapshot{
		Sites: []Site{{Site: "a.example", Timezone: "Europe/London", Retention: "6mo"}, {Site: "b.example", Timezone: "Asia/Tokyo"}},
		Goals: []Goal{{Site: "a.example", Goal: "Visit /thanks"}, {Site: "a.example", Goal: "Signup"}, {Site: "a.example", Goal: "Purchase", Currency: "EUR"}, {Site: "gone.example", Goal: "X"}},
	}
	f := Flags{Sites: []string{"c.example", "a.example"}, Timezones: map[string]string{"a.example": "Europe/Amsterdam"},
		Goals: map[string][]string{"a.example": {"Signup"}}, Retention: map[string]string{"b.example": "25mo"}}
	e := snap.Apply(f)
	if want := []string{"c.example", "a.example", "b.example"}; !reflect.DeepEqual(e.Sites, want) {
		t.Errorf("sites %v, want %v (flag order first)", e.Sites, want)
	}
	if e.Timezones["a.example"] != "Europe/Amsterdam" || e.Timezones["b.example"] != "Asia/Tokyo" {
		t.Errorf("time zones %v", e.Timezones)
	}
	if e.Retention["a.example"] != "6mo" || e.Retention["b.example"] != "25mo" {
		t.Errorf("retention %v", e.Retention)
	}
	if want := []string{"Signup", "Visit /thanks", "Purchase"}; !reflect.DeepEqual(e.Goals["a.example"], want) {
		t.Errorf("goals %v, want %v", e.Goals["a.example"], want)
	}
	if _, ok := e.Goals["gone.example"]; ok {
		t.Error("a goal of a site that is not there was kept")
	}
	if want := []string{"Signup", "Visit /thanks", "Purchase;currency=EUR"}; !reflect.DeepEqual(e.Specs["a.example"], want) {
		t.Errorf("goal specs %v, want %v (a stored goal's currency in the query side's syntax)", e.Specs["a.example"], want)
	}
	for _, k := range []string{"site:a.example", "site:c.example", "timezone:a.example", "retention:b.example", "goal:a.example:Signup"} {
		if !e.ByFlag[k] {
			t.Errorf("%s not marked as set by a flag", k)
		}
	}
	if e.ByFlag["site:b.example"] || e.ByFlag["goal:a.example:Visit /thanks"] {
		t.Error("stored settings marked as flags")
	}
}

// TestSeedAndStore: flags seed what is not stored, a second start adds
// nothing, a flag's new time zone is written, removals stick, and every
// change is in the audit log.
func TestSeedAndStore(t *testing.T) {
	db := chtest.New(t)
	ctx := context.Background()
	f := Flags{Sites: []string{"a.example"}, Timezones: map[string]string{"a.example": "Europe/Amsterdam"}, Goals: map[string][]string{"a.example": {"Signup"}}}
	for range 2 {
		if err := Seed(ctx, db.Conn, db.Name, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := PutSite(ctx, db.Conn, db.Name, Site{Site: "b.example"}); err != nil {
		t.Fatal(err)
	}
	if err := PutGoal(ctx, db.Conn, db.Name, Goal{Site: "b.example", Goal: "Visit /buy", Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	s, err := Load(ctx, db.Conn, db.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Sites) != 2 || s.Sites[0].Site != "a.example" || s.Sites[0].Timezone != "Europe/Amsterdam" || s.Sites[1].Site != "b.example" {
		t.Fatalf("sites %+v", s.Sites)
	}
	if len(s.Goals) != 2 || s.Goals[1] != (Goal{Site: "b.example", Goal: "Visit /buy", Currency: "USD"}) {
		t.Fatalf("goals %+v", s.Goals)
	}
	f.Timezones["a.example"] = "Europe/Berlin"
	if err := Seed(ctx, db.Conn, db.Name, f); err != nil {
		t.Fatal(err)
	}
	if err := DeleteSite(ctx, db.Conn, db.Name, s.Sites[1]); err != nil {
		t.Fatal(err)
	}
	if err := DeleteGoal(ctx, db.Conn, db.Name, s.Goals[1]); err != nil {
		t.Fatal(err)
	}
	if s, err = Load(ctx, db.Conn, db.Name); err != nil {
		t.Fatal(err)
	}
	if len(s.Sites) != 1 || s.Sites[0].Timezone != "Europe/Berlin" || len(s.Goals) != 1 {
		t.Fatalf("after the removals: %+v", s)
	}
	log, err := RecentAudit(ctx, db.Conn, db.Name, 10)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range log {
		if e.Actor != FlagActor {
			t.Errorf("entry %+v not by the flags", e)
		}
		actions = append(actions, e.Action)
	}
	// Seeded once, the new zone once: the second identical start wrote nothing.
	if len(actions) != 3 {
		t.Errorf("audit actions %v, want site.add, goal.add and site.timezone", actions)
	}
}
