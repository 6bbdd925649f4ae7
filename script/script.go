// Package script holds turf's tracker: the readable JavaScript in src/turf.js,
// its minified build in dist/script.min.js, and the handler that serves it at
// /js/script.js.
//
// The minified file is generated (go generate ./script) and committed, so
// building turf needs neither Node nor the network, and the binary does not
// link esbuild. A unit test fails when dist/ is stale.
package script

//go:generate go run ./internal/build

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"

	"github.com/andybalholm/brotli"
	"github.com/valyala/fasthttp"
)

// Path is where sites load the tracker from; the tracker derives the
// collector's address from it (../api/event relative to the script).
const Path = "/js/script.js"

// JS is the minified tracker exactly as served without compression.
//
//go:embed dist/script.min.js
var JS []byte

// cacheControl: the URL carries no content hash, so a release must reach
// browsers within the hour; stale-while-revalidate keeps page loads from
// waiting on that revalidation, which with the ETag is a cheap 304.
const cacheControl = "public, max-age=3600, stale-while-revalidate=86400"

// variant is one encoding of the tracker, prepared once at start-up.
type variant struct {
	encoding string // Content-Encoding value, "" for identity
	body     []byte
	etag     string
}

// Each encoding gets its own strong ETag: a strong validator promises
// byte-identical bodies, and the gzip and brotli bodies are not.
var identity, gzipped, brotlied = prepare(JS)

func prepare(js []byte) (identity, gz, br variant) {
	sum := sha256.Sum256(js)
	tag := hex.EncodeToString(sum[:12])
	identity = variant{"", js, `"` + tag + `"`}
	gz = variant{"gzip", gzipBytes(js), `"` + tag + `-gz"`}
	br = variant{"br", brotliBytes(js), `"` + tag + `-br"`}
	return identity, gz, br
}

// gzipBytes compresses b at the best level; it is also what the size budget in the
// tests is measured with.
func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		panic(fmt.Sprintf("BUG: gzip level: %v", err))
	}
	// Writes to a bytes.Buffer cannot fail.
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func brotliBytes(b []byte) []byte {
	var buf bytes.Buffer
	bw := brotli.NewWriterLevel(&buf, brotli.BestCompression)
	bw.Write(b)
	bw.Close()
	return buf.Bytes()
}

// Serve answers GET and HEAD for the tracker: compressed when the client
// accepts it, 304 when its copy is current, and readable from any origin
// because every site embeds it from the collector's host. Do not wrap it in
// fasthttp.CompressHandler: the bodies are compressed already.
func Serve(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
		h.Set(fasthttp.HeaderAllow, "GET, HEAD") // after Error, which resets headers
		return
	}

	v := identity
	ae := ctx.Request.Header.Peek(fasthttp.HeaderAcceptEncoding)
	switch {
	case acceptsEncoding(ae, "br"):
		v = brotlied
	case acceptsEncoding(ae, "gzip"):
		v = gzipped
	}

	h.Set(fasthttp.HeaderVary, "Accept-Encoding")
	h.Set(fasthttp.HeaderETag, v.etag)
	h.Set(fasthttp.HeaderCacheControl, cacheControl)
	h.Set(fasthttp.HeaderAccessControlAllowOrigin, "*")
	// Lets sites that set Cross-Origin-Embedder-Policy: require-corp load it.
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	h.Set(fasthttp.HeaderXContentTypeOptions, "nosniff")

	if etagMatches(ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch), v.etag) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	h.SetContentType("application/javascript; charset=utf-8")
	if v.encoding != "" {
		h.Set(fasthttp.HeaderContentEncoding, v.encoding)
	}
	// The bodies are never modified, so fasthttp may send them without a copy.
	ctx.Response.SetBodyRaw(v.body)
}

// acceptsEncoding reports whether an Accept-Encoding header allows coding,
// by name or through "*", honouring q=0 as a refusal.
func acceptsEncoding(header []byte, coding string) bool {
	star := false
	for len(header) > 0 {
		var item []byte
		item, header, _ = bytes.Cut(header, []byte(","))
		name, params, _ := bytes.Cut(item, []byte(";"))
		name = bytes.TrimSpace(name)
		ok := !refused(params)
		switch {
		case bytes.EqualFold(name, []byte(coding)):
			return ok
		case bytes.Equal(name, []byte("*")):
			star = ok
		}
	}
	return star
}

// refused reports whether the parameters of an Accept-Encoding item set q to
// zero ("q=0", "q=0.0", "q=0.000").
func refused(params []byte) bool {
	for len(params) > 0 {
		var p []byte
		p, params, _ = bytes.Cut(params, []byte(";"))
		k, val, _ := bytes.Cut(p, []byte("="))
		if !bytes.EqualFold(bytes.TrimSpace(k), []byte("q")) {
			continue
		}
		val = bytes.TrimSpace(val)
		return len(val) > 0 && len(bytes.Trim(val, "0.")) == 0
	}
	return false
}

// etagMatches implements If-None-Match's weak comparison: "*" or any listed
// tag equal to etag once a W/ prefix is ignored (a proxy that recompresses
// may have weakened the tag it passed on).
func etagMatches(header []byte, etag string) bool {
	for len(header) > 0 {
		var tag []byte
		tag, header, _ = bytes.Cut(header, []byte(","))
		tag = bytes.TrimSpace(tag)
		tag = bytes.TrimPrefix(tag, []byte("W/"))
		if string(tag) == "*" || string(tag) == etag {
			return true
		}
	}
	return false
}
