package app

import (
	"context"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"turf/collector"
	"turf/query"
	"turf/script"
)

// router dispatches to the parts of turf that share the HTTP server. Each
// part reports whether a path is its own.
type router struct {
	collector *collector.Collector
	query     *query.API
	metrics   *metrics.Set
	conn      driver.Conn
}

func (r *router) handle(ctx *fasthttp.RequestCtx) {
	if r.collector.Handle(ctx) || r.query.Handler(ctx) {
		return
	}
	switch string(ctx.Path()) {
	case script.Path:
		script.Serve(ctx)
	case "/healthz":
		r.healthz(ctx)
	case "/metrics":
		ctx.SetContentType("text/plain; version=0.0.4")
		r.metrics.WritePrometheus(ctx)
		metrics.WriteProcessMetrics(ctx)
	default:
		ctx.Error("not found", fasthttp.StatusNotFound)
	}
}

// healthz is 200 only when ClickHouse answers.
func (r *router) healthz(ctx *fasthttp.RequestCtx) {
	pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.conn.Ping(pctx); err != nil {
		ctx.Error("clickhouse: unavailable", fasthttp.StatusServiceUnavailable)
		return
	}
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString("ok\n")
}
