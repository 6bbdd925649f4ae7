package sink

import (
	"bytes"
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"turf/internal/chtest"
	"turf/schema"
)

// A spool written by a build before region and city (record version 1)
// still decodes; the new fields read "(not set)".
func TestDecodeVersion1Record(t *testing.T) {
	e := Event{Site: "a", TS: time.Unix(1e9, 0).UTC(), Name: "pageview", Country: "NL", Interactive: true}
	rec := e.encode(nil)
	// Version 2 appends region, city (uvarint length 0 each), the scroll
	// byte and the engaged time (uvarint 0): four bytes.
	v1 := bytes.Clone(rec[:len(rec)-4])
	v1[0] = recordVersion1
	got, err := decodeEvent(v1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Region != "(not set)" || got.City != "(not set)" || got.Country != "NL" || !got.Interactive {
		t.Errorf("version 1 record: %+v", got)
	}
	if n := binary.PutUvarint(make([]byte, 10), 0); n != 1 {
		t.Fatal("BUG: the layout arithmetic above assumes a one-byte uvarint 0")
	}
}

// The engagement sink fills the engagements table, exactly once like the
// events sink, and its metrics carry the table label, so both sinks share
// one metrics set.
func TestEngagementSink(t *testing.T) {
	db := chtest.New(t)
	set := metrics.NewSet()
	events := startOn(t, db, Config{BatchSize: 100, FlushInterval: time.Hour, QueueSize: 100}, set)
	engs := startOn(t, db, Config{BatchSize: 100, FlushInterval: time.Hour, QueueSize: 100, Table: schema.Engagements}, set)
	now := time.Now().UTC().Truncate(time.Second)
	for i := range 5 {
		if err := events.Add(ev(i, now)); err != nil {
			t.Fatal(err)
		}
		e := Event{Site: "example.com", TS: now, Name: "engagement", VisitorID: uint64(i), Hostname: "example.com",
			Pathname: "/p", ScrollDepth: uint8(10 * i), EngagementMS: uint32(1000 * i)}
		if i == 4 {
			e.ScrollDepth = 255
		}
		if err := engs.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := events.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := engs.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := db.Count(t, "SELECT count() FROM "+db.Name+".events"); n != 5 {
		t.Errorf("events = %d, want 5", n)
	}
	if n := db.Count(t, "SELECT count() FROM "+db.Name+".engagements"); n != 5 {
		t.Errorf("engagements = %d, want 5", n)
	}
	if n := db.Count(t, "SELECT toUInt64(sum(engagement_ms) + sum(scroll_depth)) FROM "+db.Name+".engagements WHERE pathname = '/p'"); n != 10000+0+10+20+30+255 {
		t.Errorf("engagement sums = %d", n)
	}
	if n := db.Count(t, "SELECT count() FROM "+db.Name+".events WHERE name = 'engagement'"); n != 0 {
		t.Errorf("engagements in the events table: %d", n)
	}
	var b bytes.Buffer
	set.WritePrometheus(&b)
	if !strings.Contains(b.String(), `turf_events_inserted_total{table="engagements"} 5`) ||
		!strings.Contains(b.String(), "turf_events_inserted_total 5") {
		t.Errorf("metrics:\n%s", b.String())
	}
	for _, s := range []*Sink{events, engs} {
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
