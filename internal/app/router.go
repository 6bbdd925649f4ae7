package app

import (
	"context"
	"crypto/subtle"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"turf/collector"
	"turf/query"
	"turf/query/dashboard"
	"turf/script"
)

// router dispatches to the parts of turf that share the HTTP server. Each
// part reports whether a path is its own.
type router struct {
	collector *collector.Collector
	query     *query.API
	dashboard *dashboard.Dashboard
	metrics   *metrics.Set
	// metricsToken, when set, lets /metrics on the main listener answer
	// callers that send it as a Bearer token; without it /metrics is not
	// served there (see Config.MetricsListen).
	metricsToken string
	conn         driver.Conn
	// sinkHealth says whether events are accepted and whether they reach
	// ClickHouse or wait in the spool.
	sinkHealth func() (status, detail string)
}

func (r *router) handle(ctx *fasthttp.RequestCtx) {
	// The dashboard first: it answers the query paths for logged-in staff
	// and share links, and leaves Bearer calls to the API.
	if r.collector.Handle(ctx) || r.dashboard.Handle(ctx) || r.query.Handler(ctx) {
		return
	}
	switch string(ctx.Path()) {
	case script.Path:
		script.Serve(ctx)
	case "/healthz":
		r.healthz(ctx)
	case "/metrics":
		auth := ctx.Request.Header.Peek("Authorization")
		if r.metricsToken == "" || subtle.ConstantTimeCompare(auth, []byte("Bearer "+r.metricsToken)) != 1 {
			ctx.Error("not found", fasthttp.StatusNotFound)
			return
		}
		r.serveMetrics(ctx)
	default:
		ctx.Error("not found", fasthttp.StatusNotFound)
	}
}

func (r *router) serveMetrics(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; version=0.0.4")
	r.metrics.WritePrometheus(ctx)
	metrics.WriteProcessMetrics(ctx)
}

// metricsOnly serves the metrics listener: /metrics to anyone who can
// reach that address, nothing else.
func (r *router) metricsOnly(ctx *fasthttp.RequestCtx) {
	if string(ctx.Path()) != "/metrics" {
		ctx.Error("not found", fasthttp.StatusNotFound)
		return
	}
	r.serveMetrics(ctx)
}

// healthz tells three states apart, in the body's first word and the
// X-Turf-Health header: "ok"; "degraded" (200: events are accepted and kept
// in the spool, but ClickHouse is unreachable or behind, so dashboards lag);
// "down" (503: new events are refused, the spool is full or turf is
// stopping). A load balancer should keep sending to a degraded turf.
func (r *router) healthz(ctx *fasthttp.RequestCtx) {
	status, detail := r.sinkHealth()
	if status == "ok" {
		pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := r.conn.Ping(pctx); err != nil {
			status, detail = "degraded", "ClickHouse does not answer; events are spooled on disk"
		}
		cancel()
	}
	ctx.Response.Header.Set("X-Turf-Health", status)
	ctx.SetContentType("text/plain; charset=utf-8")
	if status == "down" {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
	}
	if detail != "" {
		ctx.SetBodyString(status + ": " + detail + "\n")
		return
	}
	ctx.SetBodyString(status + "\n")
}
