// Command noop is the ceiling for bench/wrk/run.sh: turf's fasthttp server
// (app.HTTPServer) that answers every request the way turf answers an accepted
// event, and does nothing else. What wrk measures against it on a machine is
// the most any collector behind the same HTTP stack could accept there, so
// turf's figure is read as a share of it, measured in the same run.
package main

import (
	"flag"
	"log"
	"os"

	"github.com/valyala/fasthttp"

	"turf/internal/app"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18098", "address to serve on (loopback)")
	flag.Parse()
	srv := app.HTTPServer(func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Access-Control-Allow-Origin", "*")
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetStatusCode(fasthttp.StatusAccepted)
		ctx.SetBodyString("ok")
	}, app.NewLogger(os.Stderr, 24, 48))
	log.Fatal(srv.ListenAndServe(*listen))
}
