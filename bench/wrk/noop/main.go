// Command noop is the ceiling for bench/wrk/run.sh: a fasthttp server set up
// like turf's that answers every request the way turf answers an accepted
// event, and does nothing else. What wrk measures against it on a machine is
// the most any collector behind the same HTTP stack could accept there, so
// turf's figure is read as a share of it, measured in the same run.
package main

import (
	"flag"
	"log"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18098", "address to serve on (loopback)")
	flag.Parse()
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.Response.Header.Set("Access-Control-Allow-Origin", "*")
			ctx.SetContentType("text/plain; charset=utf-8")
			ctx.SetStatusCode(fasthttp.StatusAccepted)
			ctx.SetBodyString("ok")
		},
		Name: "turf", ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second,
		MaxRequestBodySize: 1 << 20, NoDefaultDate: true,
	}
	log.Fatal(srv.ListenAndServe(*listen))
}
