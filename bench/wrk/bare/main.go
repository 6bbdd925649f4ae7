// Command bare is the "bare fasthttp+JSON handler" of bench/wrk/compare.sh:
// a default fasthttp server whose handler decodes the event body with
// encoding/json, checks it names a page, and answers 202 the way turf
// does. It stores nothing; what wrk measures against it is what a minimal
// JSON endpoint serves on this machine, so turf's figure is read as a share
// of it, measured in the same run.
package main

import (
	"encoding/json"
	"flag"
	"log"

	"github.com/valyala/fasthttp"
)

// event is the part of the beacon a minimal endpoint would look at.
type event struct {
	Name     string `json:"name"`
	URL      string `json:"url"`
	Domain   string `json:"domain"`
	Referrer string `json:"referrer"`
}

func main() {
	listen := flag.String("listen", "127.0.0.1:18097", "address to serve on (loopback)")
	flag.Parse()
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		var e event
		if err := json.Unmarshal(ctx.PostBody(), &e); err != nil || e.Name == "" || e.URL == "" {
			ctx.Error("bad event", fasthttp.StatusBadRequest)
			return
		}
		ctx.Response.Header.Set("Access-Control-Allow-Origin", "*")
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetStatusCode(fasthttp.StatusAccepted)
		ctx.SetBodyString("ok")
	}, Name: "bare", NoDefaultDate: true}
	log.Fatal(srv.ListenAndServe(*listen))
}
