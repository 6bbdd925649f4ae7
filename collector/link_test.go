package collector_test

import (
	"context"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"turf/collector"
	"turf/collector/sink"
	"turf/collector/visitor"
	"turf/internal/chtest"
	"turf/internal/linksign"
	"turf/schema"
)

// TestLinkAnswers pins the newsletter paths' answers that the end-to-end
// test in cmd/turf does not reach: no key loaded yet, methods, opt-out,
// a link for a site this instance does not serve.
func TestLinkAnswers(t *testing.T) {
	db := chtest.New(t)
	set := metrics.NewSet()
	snk, err := sink.New(db.Conn, db.Name, sink.Config{Dir: t.TempDir(), SyncInterval: time.Second, BatchSize: 100, FlushInterval: 50 * time.Millisecond, QueueSize: 100}, set, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	go snk.Run()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = snk.Close(ctx)
	})
	keys := linksign.NewKeys(db.Conn, db.Name, time.Now)
	c, err := collector.New(collector.Config{Sites: []string{"example.com"}, IPv4Prefix: 24, IPv6Prefix: 48, HonourGPC: true},
		collector.Deps{Sink: snk, Salts: visitor.NewStore(db.Conn, db.Name, time.Now, time.Minute, t.Logf), Metrics: set, Links: keys})
	if err != nil {
		t.Fatal(err)
	}
	serve := func(method, uri string, hdr ...string) *fasthttp.Response {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(method)
		ctx.Request.SetRequestURI(uri)
		ctx.Request.Header.SetUserAgent("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0")
		for i := 0; i+1 < len(hdr); i += 2 {
			ctx.Request.Header.Set(hdr[i], hdr[i+1])
		}
		if !c.Handle(&ctx) {
			t.Fatalf("%s %s not handled", method, uri)
		}
		var r fasthttp.Response
		ctx.Response.CopyTo(&r)
		return &r
	}
	l := linksign.Link{Kind: linksign.Click, Site: "example.com", Campaign: "c", URL: "https://example.com/a"}
	tmp := &linksign.Key{1}
	if r := serve("GET", linksign.Path(linksign.Sign(tmp, l), linksign.Click)); r.StatusCode() != 503 || len(r.Header.Peek("Location")) != 0 {
		t.Errorf("before any key: %d, Location %q; want 503 and none", r.StatusCode(), r.Header.Peek("Location"))
	}
	if err := keys.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	key, _ := keys.Signer()
	link := linksign.Path(linksign.Sign(key, l), linksign.Click)
	if r := serve("POST", link); r.StatusCode() != 405 || len(r.Header.Peek("Location")) != 0 {
		t.Errorf("POST: %d", r.StatusCode())
	}
	// Opted out: redirected, not stored.
	if r := serve("GET", link, "Sec-GPC", "1"); r.StatusCode() != 302 {
		t.Errorf("GPC: %d", r.StatusCode())
	}
	// A site this instance does not serve: redirected (the link is
	// genuine), not stored, and no UTM added.
	other := linksign.Link{Kind: linksign.Click, Site: "other.example", Campaign: "c", URL: "https://other.example/x"}
	if r := serve("GET", linksign.Path(linksign.Sign(key, other), linksign.Click)); r.StatusCode() != 302 || string(r.Header.Peek("Location")) != "https://other.example/x" {
		t.Errorf("other site: %d %q", r.StatusCode(), r.Header.Peek("Location"))
	}
	if r := serve("GET", link); r.StatusCode() != 302 {
		t.Errorf("plain: %d", r.StatusCode())
	}
	if err := snk.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := db.Count(t, "SELECT count() FROM "+schema.Table(db.Name, schema.Events)); n != 1 {
		t.Errorf("%d events stored, want 1 (the plain click)", n)
	}
}
