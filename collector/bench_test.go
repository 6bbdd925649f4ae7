package collector_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"turf/collector"
	"turf/collector/sink"
)

// BenchmarkHandleEvent measures the whole hot path of one POST /api/event:
// parse, bot check, visitor id, truncation, referrer and UA classification,
// spooling, and the insert: the flush loop runs against the real test server
// meanwhile, and the last batch is flushed before the clock stops, so
// allocs/op is the whole pipeline's per event.
func BenchmarkHandleEvent(b *testing.B) {
	c, snk, _, _ := newCollector(b, sink.Config{SyncInterval: time.Second, BatchSize: 10000, FlushInterval: time.Second, QueueSize: 1 << 20},
		collector.Config{Sites: []string{"example.com"}, IPv4Prefix: 24, IPv6Prefix: 48, HonourGPC: true})
	uas := []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
	}
	refs := []string{"https://t.co/abc", "https://www.google.nl/", "", "https://www.linkedin.com/feed/"}
	bodies := make([][]byte, 64)
	for i := range bodies {
		bodies[i] = fmt.Appendf(nil, `{"name":"pageview","url":"https://example.com/blog/post-%d?utm_source=nl","domain":"example.com","referrer":%q,"props":{"author":"a%d"}}`, i, refs[i%len(refs)], i%5)
	}
	// The clients' connections are made before the clock starts, so that
	// allocs/op counts the collector's allocations, not the harness's (a
	// fresh net.IP and fasthttp's fake connection per request were two).
	conns := make([]net.Conn, 256)
	for i := range conns {
		conns[i] = benchConn{&net.TCPAddr{IP: net.IPv4(198, 51, 100, byte(i)), Port: 1234}}
	}
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ctx.Init2(conns[i%len(conns)], benchLogger{}, false)
		req := &ctx.Request
		req.Reset()
		req.Header.SetMethod("POST")
		req.SetRequestURI("/api/event")
		req.Header.SetContentType("text/plain")
		req.Header.SetUserAgent(uas[i%len(uas)])
		req.SetBody(bodies[i%len(bodies)])
		ctx.Response.Reset()
		c.Handle(&ctx)
		if ctx.Response.StatusCode() != fasthttp.StatusAccepted {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
	if err := snk.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// benchConn is a client connection that only has addresses.
type benchConn struct{ remote net.Addr }

func (c benchConn) RemoteAddr() net.Addr           { return c.remote }
func (benchConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }
func (benchConn) Read([]byte) (int, error)         { return 0, net.ErrClosed }
func (benchConn) Write(b []byte) (int, error)      { return len(b), nil }
func (benchConn) Close() error                     { return nil }
func (benchConn) SetDeadline(time.Time) error      { return nil }
func (benchConn) SetReadDeadline(time.Time) error  { return nil }
func (benchConn) SetWriteDeadline(time.Time) error { return nil }

type benchLogger struct{}

func (benchLogger) Printf(string, ...any) {}
